//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoSuchInterface is wrapped by Open's error when the interface does not
// exist in the caller's network namespace.
var ErrNoSuchInterface = errors.New("no such interface")

// ErrClosed is returned by Queue.Send after the Port was closed.
var ErrClosed = errors.New("afpacket port closed")

// Stats are a Port's cumulative counters since Open, summed over its queues.
type Stats struct {
	// RxPackets counts frames handed to the caller by Recv.
	RxPackets uint64
	// RxDrops counts frames the kernel dropped because a ring was full
	// (tp_drops of PACKET_STATISTICS).
	RxDrops uint64
	// RxErrors counts ring entries Recv skipped because their header was
	// inconsistent (should stay 0).
	RxErrors uint64
	// TxPackets counts frames queued to the kernel by Send.
	TxPackets uint64
	// TxErrors counts frames Send dropped because they could never be sent
	// (shorter than an Ethernet header or longer than a TX slot or the MTU)
	// and failed TX kicks.
	TxErrors uint64
}

// Port is one interface driven through AF_PACKET rings. Its methods other
// than Queue's packet path are for the management core; see the package
// documentation for the threading rules.
type Port struct {
	name    string
	ifindex int
	mac     [6]byte
	queues  []*Queue

	mu      sync.Mutex // guards the fields below
	closed  bool
	promisc bool
	rxDrops uint64 // tp_drops accumulated: PACKET_STATISTICS resets on read
}

// Open opens interface opts.Interface with opts.Queues queues, each an
// AF_PACKET socket with a TPACKET_V3 RX ring and a TX ring, joined in one
// fanout group. It must run with root or CAP_NET_RAW, in the network
// namespace of the interface. Errors name the interface and the failing
// system call. With several queues, a frame arriving during Open before the
// last socket joins the fanout group may be delivered to more than one
// queue.
func Open(opts Options) (*Port, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	p := &Port{name: opts.Interface}
	for i := 0; i < opts.Queues; i++ {
		fd, err := openSocket(opts.Interface)
		if err != nil {
			p.closeAll()
			return nil, err
		}
		if i == 0 {
			if err := p.resolve(fd); err != nil {
				unix.Close(fd)
				return nil, err
			}
		}
		q, err := newQueue(p, i, fd, opts)
		if err != nil {
			unix.Close(fd)
			p.closeAll()
			return nil, err
		}
		p.queues = append(p.queues, q)
	}
	if err := p.joinFanout(opts.Fanout, opts.Program); err != nil {
		p.closeAll()
		return nil, err
	}
	if opts.Promiscuous {
		mreq := unix.PacketMreq{Ifindex: int32(p.ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(p.queues[0].fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			p.closeAll()
			return nil, p.sysErr("setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)", err)
		}
		p.promisc = true
	}
	return p, nil
}

// openSocket creates an AF_PACKET socket that receives nothing until bound.
func openSocket(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, sysErr(name, "socket(AF_PACKET, SOCK_RAW)", err)
	}
	return fd, nil
}

// resolve reads the interface index and MAC address through socket fd.
func (p *Port) resolve(fd int) error {
	var req ifreq
	if err := req.do(fd, p.name, unix.SIOCGIFINDEX); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("afpacket: %s: %w: ioctl(SIOCGIFINDEX): %w", p.name, ErrNoSuchInterface, err)
		}
		return p.sysErr("ioctl(SIOCGIFINDEX)", err)
	}
	p.ifindex = int(*(*int32)(unsafe.Pointer(&req.data[0])))
	if err := req.do(fd, p.name, unix.SIOCGIFHWADDR); err != nil {
		return p.sysErr("ioctl(SIOCGIFHWADDR)", err)
	}
	// ifr_hwaddr is a struct sockaddr: 2 bytes of family, then the address.
	copy(p.mac[:], req.data[2:8])
	return nil
}

// joinFanout puts every queue's socket in one new fanout group, in queue
// order (a FanoutProgram's result is the index of the socket in the group,
// which is the order sockets joined in). The first socket asks the kernel
// for a unique group id, so two Ports never share a group by accident.
func (p *Port) joinFanout(mode FanoutMode, prog []unix.SockFilter) error {
	kind := unix.PACKET_FANOUT_HASH
	switch mode {
	case FanoutCPU:
		kind = unix.PACKET_FANOUT_CPU
	case FanoutProgram:
		kind = unix.PACKET_FANOUT_CBPF
	}
	flags := unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING
	first := p.queues[0].fd
	err := unix.SetsockoptInt(first, unix.SOL_PACKET, unix.PACKET_FANOUT,
		(kind|flags|unix.PACKET_FANOUT_FLAG_UNIQUEID)<<16)
	if errors.Is(err, unix.EINVAL) {
		// Kernels before 6.8 lack the ignore-outgoing fanout flag; Recv
		// filters outgoing frames itself.
		flags = 0
		err = unix.SetsockoptInt(first, unix.SOL_PACKET, unix.PACKET_FANOUT,
			(kind|unix.PACKET_FANOUT_FLAG_UNIQUEID)<<16)
	}
	if err != nil {
		return p.sysErr("setsockopt(PACKET_FANOUT)", err)
	}
	val, err := unix.GetsockoptInt(first, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		return p.sysErr("getsockopt(PACKET_FANOUT)", err)
	}
	id := val & 0xffff
	if mode == FanoutProgram {
		// The group's program, before the other sockets join (until
		// then the group has one member, and no program means queue 0).
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if err := unix.SetsockoptSockFprog(first, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, &fprog); err != nil {
			return p.sysErr("setsockopt(PACKET_FANOUT_DATA)", err)
		}
	}
	for _, q := range p.queues[1:] {
		if err := unix.SetsockoptInt(q.fd, unix.SOL_PACKET, unix.PACKET_FANOUT, id|(kind|flags)<<16); err != nil {
			return p.sysErr(fmt.Sprintf("setsockopt(PACKET_FANOUT) of queue %d", q.index), err)
		}
	}
	return nil
}

// Name returns the interface name the Port was opened on.
func (p *Port) Name() string { return p.name }

// MAC returns the interface's hardware address as read at Open.
func (p *Port) MAC() [6]byte { return p.mac }

// NumQueues returns the number of queues of the Port.
func (p *Port) NumQueues() int { return len(p.queues) }

// Queue returns queue i, or nil when i is out of range.
func (p *Port) Queue(i int) *Queue {
	if i < 0 || i >= len(p.queues) {
		return nil
	}
	return p.queues[i]
}

// MTU returns the interface's current MTU, or 0 when it can't be read (the
// Port is closed or the interface is gone). It is at most the MTU the
// interface had at Open: the queues' TX frames were sized for that one, so
// an MTU raised later is used up to it.
func (p *Port) MTU() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0
	}
	mtu, err := interfaceMTU(p.queues[0].fd, p.name)
	if err != nil {
		return 0
	}
	return min(mtu, p.queues[0].txMaxLen-ethHeaderLen-vlanLen)
}

// LinkUp reports whether the interface is administratively up and has a
// carrier (IFF_UP and IFF_RUNNING). It is false after Close.
func (p *Port) LinkUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	flags, err := interfaceFlags(p.queues[0].fd, p.name)
	if err != nil {
		return false
	}
	const want = unix.IFF_UP | unix.IFF_RUNNING
	return flags&want == want
}

// Stats returns the Port's counters summed over its queues. It may be
// called from any goroutine while workers run; after Close it returns the
// final counts.
func (p *Port) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.collectDropsLocked()
	}
	s := Stats{RxDrops: p.rxDrops}
	for _, q := range p.queues {
		s.RxPackets += q.rxPackets.Load()
		s.RxErrors += q.rxErrors.Load()
		s.TxPackets += q.txPackets.Load()
		s.TxErrors += q.txErrors.Load()
	}
	return s
}

// collectDropsLocked adds the kernel's drop counts since the last read to
// p.rxDrops. PACKET_STATISTICS resets the kernel counters on every read.
func (p *Port) collectDropsLocked() {
	for _, q := range p.queues {
		st, err := unix.GetsockoptTpacketStatsV3(q.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err == nil {
			p.rxDrops += uint64(st.Drops)
		}
	}
}

// Close leaves promiscuous mode, unmaps every ring and closes every socket.
// It is idempotent: later calls return nil. Workers must have stopped using
// the queues (see the package documentation).
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.collectDropsLocked()
	var errs []error
	if p.promisc {
		mreq := unix.PacketMreq{Ifindex: int32(p.ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(p.queues[0].fd, unix.SOL_PACKET, unix.PACKET_DROP_MEMBERSHIP, &mreq); err != nil {
			errs = append(errs, p.sysErr("setsockopt(PACKET_DROP_MEMBERSHIP)", err))
		}
		p.promisc = false
	}
	errs = append(errs, p.closeAll())
	p.closed = true
	return errors.Join(errs...)
}

// closeAll releases every queue opened so far.
func (p *Port) closeAll() error {
	var errs []error
	for _, q := range p.queues {
		if err := q.release(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sysErr wraps err from syscall call with the interface name.
func (p *Port) sysErr(call string, err error) error { return sysErr(p.name, call, err) }

// sysErr wraps err from syscall call on interface name, with a hint for a
// permission error.
func sysErr(name, call string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("afpacket: %s: %s: %w (AF_PACKET needs root or CAP_NET_RAW)", name, call, err)
	}
	return fmt.Errorf("afpacket: %s: %s: %w", name, call, err)
}

// ifreq is struct ifreq: the interface name and a 24-byte union.
type ifreq struct {
	name [unix.IFNAMSIZ]byte
	data [24]byte
}

// do runs ioctl req on fd for interface name, filling r.
func (r *ifreq) do(fd int, name string, req uintptr) error {
	*r = ifreq{}
	copy(r.name[:unix.IFNAMSIZ-1], name)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(r)))
	if errno != 0 {
		return errno
	}
	return nil
}

// interfaceMTU reads the MTU of interface name through socket fd.
func interfaceMTU(fd int, name string) (int, error) {
	var req ifreq
	if err := req.do(fd, name, unix.SIOCGIFMTU); err != nil {
		return 0, err
	}
	return int(*(*int32)(unsafe.Pointer(&req.data[0]))), nil
}

// interfaceFlags reads the IFF_* flags of interface name through socket fd.
func interfaceFlags(fd int, name string) (uint32, error) {
	var req ifreq
	if err := req.do(fd, name, unix.SIOCGIFFLAGS); err != nil {
		return 0, err
	}
	return uint32(*(*uint16)(unsafe.Pointer(&req.data[0]))), nil
}
