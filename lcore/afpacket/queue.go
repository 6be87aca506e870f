//go:build linux

package afpacket

// This file is the packet path: Recv, Send and Wait run on the worker that
// owns the Queue, with no allocation, no lock and at most one system call.

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Recv flags, one byte per received frame.
const (
	// FlagTruncated marks a frame longer than the caller's buffer (or than
	// the kernel's snapshot length): only the first sizes[i] bytes were kept.
	FlagTruncated uint8 = 1 << iota
	// FlagCsumNotReady marks a frame whose L4 checksum is partial
	// (TP_STATUS_CSUMNOTREADY): a virtual NIC with TX checksum offload left
	// only the pseudo-header sum in the checksum field. The receiver must
	// complete the checksum rather than check or update it.
	FlagCsumNotReady
)

// Layout of the TPACKET_V3 ring structures (linux/if_packet.h).
const (
	// tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1.
	blockStatusOff = 8
	blockNumPkts   = 12
	blockFirstPkt  = 16
	blockHeaderLen = 48 // BLK_PLUS_PRIV(0): aligned block header

	// tpacket3_hdr.
	hdrNextOff    = 0
	hdrSnaplenOff = 12
	hdrLenOff     = 16
	hdrStatusOff  = 20
	hdrMacOff     = 24
	hdrLen        = 48 // TPACKET_ALIGN(sizeof(struct tpacket3_hdr))

	// struct sockaddr_ll follows the header; sll_pkttype is at byte 10.
	sllPkttypeOff = hdrLen + 10
	sllLen        = 20

	// TX frames carry their data right after the aligned header
	// (tp_hdrlen - sizeof(struct sockaddr_ll)).
	txDataOff = hdrLen

	ethHeaderLen = 14
	vlanLen      = 4
)

// txBusy are the TX slot states owned by the kernel.
const txBusy = unix.TP_STATUS_SEND_REQUEST | unix.TP_STATUS_SENDING

// Queue is one RX/TX queue of a Port: an AF_PACKET socket with its RX and
// TX rings. It is used by exactly one goroutine at a time.
type Queue struct {
	port  *Port
	index int
	fd    int
	mem   []byte // the whole mapping: RX ring then TX ring; nil after Close

	// RX ring and cursor.
	rx         []byte
	blockSize  int
	blockCount int
	block      int    // block the cursor is in
	left       uint32 // frames of that block not yet walked; 0: block not opened
	off        int    // offset in the block of the next frame

	// TX ring and cursor.
	tx          []byte
	txFrameSize int
	txPerBlock  int
	txBlockSize int
	txSlots     int
	txNext      int
	txMaxLen    int

	pollfd [1]unix.PollFd

	// Counters, written by the owning worker once per burst and read by
	// Port.Stats from the management core.
	rxPackets atomic.Uint64
	rxErrors  atomic.Uint64
	txPackets atomic.Uint64
	txErrors  atomic.Uint64
}

// newQueue sets up socket fd as queue index of p: rings, mapping, options,
// and binding to the interface. It does not join the fanout group.
func newQueue(p *Port, index int, fd int, o Options) (*Queue, error) {
	q := &Queue{port: p, index: index, fd: fd}
	call := func(what string, err error) error {
		return p.sysErr(fmt.Sprintf("%s on queue %d", what, index), err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, call("setsockopt(PACKET_VERSION, TPACKET_V3)", err)
	}
	// PACKET_LOSS: the kernel skips a malformed TX frame instead of
	// stopping the TX ring at it. Must precede the rings.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_LOSS, 1); err != nil {
		return nil, call("setsockopt(PACKET_LOSS)", err)
	}
	perBlock := o.BlockSize / o.FrameSize
	timeoutMS := uint32((o.BlockTimeout + time.Millisecond - 1) / time.Millisecond)
	rxReq := unix.TpacketReq3{
		Block_size:     uint32(o.BlockSize),
		Block_nr:       uint32(o.Blocks),
		Frame_size:     uint32(o.FrameSize),
		Frame_nr:       uint32(perBlock * o.Blocks),
		Retire_blk_tov: timeoutMS,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &rxReq); err != nil {
		return nil, call("setsockopt(PACKET_RX_RING)", err)
	}
	txBlocks := o.txBlocks()
	txReq := unix.TpacketReq3{
		Block_size: uint32(o.BlockSize),
		Block_nr:   uint32(txBlocks),
		Frame_size: uint32(o.FrameSize),
		Frame_nr:   uint32(perBlock * txBlocks),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &txReq); err != nil {
		return nil, call("setsockopt(PACKET_TX_RING)", err)
	}
	rxBytes := o.BlockSize * o.Blocks
	txBytes := o.BlockSize * txBlocks
	mem, err := unix.Mmap(fd, 0, rxBytes+txBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, call("mmap", err)
	}
	q.mem = mem
	q.rx = mem[:rxBytes:rxBytes]
	q.tx = mem[rxBytes:]
	q.blockSize = o.BlockSize
	q.blockCount = o.Blocks
	q.txFrameSize = o.FrameSize
	q.txPerBlock = perBlock
	q.txBlockSize = o.BlockSize
	q.txSlots = perBlock * txBlocks
	q.txMaxLen = o.FrameSize - txDataOff
	fail := func(err error) (*Queue, error) {
		unix.Munmap(mem)
		q.mem, q.rx, q.tx = nil, nil, nil
		return nil, err
	}
	mtu, err := interfaceMTU(fd, p.name)
	if err != nil {
		return fail(call("ioctl(SIOCGIFMTU)", err))
	}
	q.txMaxLen = min(q.txMaxLen, mtu+ethHeaderLen+vlanLen)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return fail(call("setsockopt(PACKET_QDISC_BYPASS)", err))
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail(call("setsockopt(PACKET_IGNORE_OUTGOING)", err))
	}
	sa := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: p.ifindex}
	if err := unix.Bind(fd, &sa); err != nil {
		return fail(call("bind", err))
	}
	q.pollfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLERR}
	return q, nil
}

// release unmaps the rings and closes the socket; later calls do nothing.
func (q *Queue) release() error {
	if q.fd < 0 {
		return nil
	}
	var errMap error
	if q.mem != nil {
		errMap = unix.Munmap(q.mem)
	}
	q.mem, q.rx, q.tx = nil, nil, nil
	q.left = 0
	errClose := unix.Close(q.fd)
	q.fd = -1
	if errMap != nil {
		return q.port.sysErr(fmt.Sprintf("munmap of queue %d", q.index), errMap)
	}
	if errClose != nil {
		return q.port.sysErr(fmt.Sprintf("close of queue %d", q.index), errClose)
	}
	return nil
}

// Index returns the queue's number within its Port.
func (q *Queue) Index() int { return q.index }

// Fd returns the queue's socket descriptor (for an event loop polling many
// queues), or -1 after Close. The caller must not close it.
func (q *Queue) Fd() int { return q.fd }

// Recv copies up to len(bufs) received frames into bufs, without blocking.
// Frame i goes to bufs[i][:cap(bufs[i])]; sizes[i] is its stored length and
// flags[i] its Flag* bits (FlagTruncated when the frame did not fit).
// It returns the number of frames stored; only min(len(bufs), len(sizes),
// len(flags)) frames are stored. A burst may end in the middle of a ring
// block; the next call resumes there. Each block goes back to the kernel as
// soon as its last frame is copied. Frames the host itself sent
// (PACKET_OUTGOING) are skipped. Recv never allocates or blocks.
func (q *Queue) Recv(bufs [][]byte, sizes []int, flags []uint8) int {
	limit := min(len(bufs), len(sizes), len(flags))
	rx := q.rx
	if rx == nil {
		return 0
	}
	bs := q.blockSize
	n := 0
	var bad uint64
	for n < limit {
		base := q.block * bs
		blk := rx[base : base+bs : base+bs]
		if q.left == 0 {
			if atomic.LoadUint32(u32(blk, blockStatusOff))&unix.TP_STATUS_USER == 0 {
				break
			}
			q.left = *u32(blk, blockNumPkts)
			q.off = int(*u32(blk, blockFirstPkt))
			if q.left == 0 {
				q.releaseBlock(blk)
				continue
			}
		}
		off := q.off
		if off < blockHeaderLen || off > bs-hdrLen-sllLen {
			bad++
			q.releaseBlock(blk)
			continue
		}
		snap := int(*u32(blk, off+hdrSnaplenOff))
		start := off + int(*u16(blk, off+hdrMacOff))
		if start > bs || snap > bs-start {
			bad++
			q.releaseBlock(blk)
			continue
		}
		wire := int(*u32(blk, off+hdrLenOff))
		status := *u32(blk, off+hdrStatusOff)
		pkttype := blk[off+sllPkttypeOff]
		next := int(*u32(blk, off+hdrNextOff))
		q.off = off + next
		q.left--
		if q.left > 0 && next < hdrLen+sllLen {
			// A frame that does not advance the cursor: the rest of
			// the block can't be walked.
			bad++
			q.left = 0
		}
		if pkttype != unix.PACKET_OUTGOING {
			dst := bufs[n][:cap(bufs[n])]
			size := copy(dst, blk[start:start+snap])
			var f uint8
			if size < wire {
				f |= FlagTruncated
			}
			if status&unix.TP_STATUS_CSUMNOTREADY != 0 {
				f |= FlagCsumNotReady
			}
			sizes[n] = size
			flags[n] = f
			n++
		}
		if q.left == 0 {
			q.releaseBlock(blk)
		}
	}
	if n > 0 {
		q.rxPackets.Add(uint64(n))
	}
	if bad > 0 {
		q.rxErrors.Add(bad)
	}
	return n
}

// releaseBlock hands block blk back to the kernel and moves the cursor to
// the next block.
func (q *Queue) releaseBlock(blk []byte) {
	atomic.StoreUint32(u32(blk, blockStatusOff), unix.TP_STATUS_KERNEL)
	q.left = 0
	q.block++
	if q.block == q.blockCount {
		q.block = 0
	}
}

// Send queues bufs[i][:sizes[i]] for transmission, for i below
// min(len(bufs), len(sizes)), and kicks the kernel with one sendto. It
// returns how many frames it accepted: frames from the first it could not
// place (the TX ring is full) on are not sent, and the caller counts them as
// tx_full. A frame that can never be sent (shorter than an Ethernet header,
// longer than its buffer, a TX slot or the MTU read at Open) is dropped,
// counted in Stats.TxErrors and still counted as accepted. The error is
// non-nil only when the kick failed for a reason other than a full device
// queue (for example the link is down); accepted frames then stay in the
// ring and go out with a later kick. Send never allocates.
func (q *Queue) Send(bufs [][]byte, sizes []int) (int, error) {
	tx := q.tx
	if tx == nil {
		return 0, ErrClosed
	}
	limit := min(len(bufs), len(sizes))
	accepted, queued := 0, 0
	var bad uint64
	pending := false
	for ; accepted < limit; accepted++ {
		size := sizes[accepted]
		buf := bufs[accepted]
		if size < ethHeaderLen || size > q.txMaxLen || size > len(buf) {
			bad++
			continue
		}
		slot := q.txNext
		frame := (slot/q.txPerBlock)*q.txBlockSize + (slot%q.txPerBlock)*q.txFrameSize
		f := tx[frame : frame+q.txFrameSize : frame+q.txFrameSize]
		status := atomic.LoadUint32(u32(f, hdrStatusOff))
		if status&txBusy != 0 {
			pending = status&unix.TP_STATUS_SEND_REQUEST != 0
			break
		}
		copy(f[txDataOff:], buf[:size])
		*u32(f, hdrNextOff) = 0
		*u32(f, hdrSnaplenOff) = uint32(size)
		*u32(f, hdrLenOff) = uint32(size)
		atomic.StoreUint32(u32(f, hdrStatusOff), unix.TP_STATUS_SEND_REQUEST)
		q.txNext++
		if q.txNext == q.txSlots {
			q.txNext = 0
		}
		queued++
	}
	var err error
	if queued > 0 || pending {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(q.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0, unix.EAGAIN, unix.ENOBUFS, unix.EINTR:
			// Frames not taken yet stay SEND_REQUEST and leave with the
			// next kick.
		default:
			bad++
			err = errno
		}
	}
	if queued > 0 {
		q.txPackets.Add(uint64(queued))
	}
	if bad > 0 {
		q.txErrors.Add(bad)
	}
	return accepted, err
}

// Ready reports whether Recv has a frame to return now (it may still return
// 0 when every ready frame is one the host sent).
func (q *Queue) Ready() bool {
	rx := q.rx
	if rx == nil {
		return false
	}
	if q.left > 0 {
		return true
	}
	return atomic.LoadUint32(u32(rx, q.block*q.blockSize+blockStatusOff))&unix.TP_STATUS_USER != 0
}

// Wait blocks in poll(2) until a frame is ready for Recv or timeout passes,
// and reports whether one is ready. A timeout of 0 or less only checks.
// It lets an idle worker sleep instead of spinning. Frames become visible
// when the kernel retires their block: at once when it fills, else after
// Options.BlockTimeout.
func (q *Queue) Wait(timeout time.Duration) bool {
	if q.Ready() {
		return true
	}
	if q.rx == nil || timeout <= 0 {
		return false
	}
	ms := (timeout + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxInt32 {
		ms = math.MaxInt32
	}
	q.pollfd[0].Revents = 0
	unix.Poll(q.pollfd[:], int(ms)) // EINTR or an error: report readiness as is
	return q.Ready()
}

// u32 returns a pointer to the native-endian uint32 at b[off:off+4].
func u32(b []byte, off int) *uint32 {
	_ = b[off+3]
	return (*uint32)(unsafe.Pointer(&b[off]))
}

// u16 returns a pointer to the native-endian uint16 at b[off:off+2].
func u16(b []byte, off int) *uint16 {
	_ = b[off+1]
	return (*uint16)(unsafe.Pointer(&b[off]))
}

// htons converts a 16-bit value to network byte order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
