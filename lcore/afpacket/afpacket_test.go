//go:build linux

package afpacket

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/lcore"
)

func TestOptionsValidate(t *testing.T) {
	page := os.Getpagesize()
	tests := []struct {
		name  string
		opts  Options
		field string // "" when valid
	}{
		{"defaults", Options{Interface: "eth0"}, ""},
		{"small rings", Options{Interface: "eth0", FrameSize: 2048, BlockSize: page, Blocks: 4, TxFrames: 2}, ""},
		{"cpu fanout", Options{Interface: "eth0", Queues: 4, Fanout: FanoutCPU}, ""},
		{"no interface", Options{}, "Interface"},
		{"long interface", Options{Interface: "abcdefghijklmnop"}, "Interface"},
		{"negative queues", Options{Interface: "eth0", Queues: -1}, "Queues"},
		{"too many queues", Options{Interface: "eth0", Queues: MaxQueues + 1}, "Queues"},
		{"bad fanout", Options{Interface: "eth0", Fanout: 7}, "Fanout"},
		{"program fanout", Options{Interface: "eth0", Queues: 2, Fanout: FanoutProgram,
			Program: SteeringProgram(lcore.NewOwner(lcore.DefaultRSSKey, 2), lcore.PortInside)}, ""},
		{"program fanout without a program", Options{Interface: "eth0", Fanout: FanoutProgram}, "Fanout"},
		{"a program without program fanout", Options{Interface: "eth0", Program: make([]unix.SockFilter, 1)}, "Fanout"},
		{"program too long", Options{Interface: "eth0", Fanout: FanoutProgram, Program: make([]unix.SockFilter, 4097)}, "Program"},
		{"unaligned frame", Options{Interface: "eth0", FrameSize: 2000}, "FrameSize"},
		{"tiny frame", Options{Interface: "eth0", FrameSize: 64}, "FrameSize"},
		{"unaligned block", Options{Interface: "eth0", BlockSize: page + 16}, "BlockSize"},
		{"block not multiple of frame", Options{Interface: "eth0", FrameSize: 3 * 1024, BlockSize: page}, "BlockSize"},
		{"huge block", Options{Interface: "eth0", BlockSize: 2 << 30}, "BlockSize"},
		{"negative blocks", Options{Interface: "eth0", Blocks: -3}, "Blocks"},
		{"too many blocks", Options{Interface: "eth0", Blocks: 1 << 40}, "Blocks"},
		{"too many tx frames", Options{Interface: "eth0", TxFrames: 1 << 62}, "TxFrames"},
		{"short timeout", Options{Interface: "eth0", BlockTimeout: time.Microsecond}, "BlockTimeout"},
		{"long timeout", Options{Interface: "eth0", BlockTimeout: time.Hour}, "BlockTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidOptions)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	tests := []struct {
		name     string
		opts     Options
		is       error
		contains []string
	}{
		{"missing interface", Options{Interface: "ngw-missing"}, ErrNoSuchInterface, []string{"ngw-missing", "SIOCGIFINDEX"}},
		{"invalid options", Options{Interface: natIf, Queues: -2}, ErrInvalidOptions, []string{"Queues"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb.enter(t)
			p, err := Open(tt.opts)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, tt.is)
			for _, s := range tt.contains {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestSysErrNamesPermission(t *testing.T) {
	tests := []struct {
		name string
		err  error
		hint bool
	}{
		{"eperm", unix.EPERM, true},
		{"eacces", unix.EACCES, true},
		{"enodev", unix.ENODEV, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sysErr("veth-in", "socket(AF_PACKET, SOCK_RAW)", tt.err)
			assert.ErrorIs(t, err, tt.err)
			assert.Contains(t, err.Error(), "veth-in")
			assert.Contains(t, err.Error(), "socket(AF_PACKET, SOCK_RAW)")
			assert.Equal(t, tt.hint, strings.Contains(err.Error(), "CAP_NET_RAW"))
		})
	}
}

func TestPortInfo(t *testing.T) {
	tb := newVethNS(t)
	tb.ip(t, "link", "set", natIf, "mtu", "1400")
	tb.enter(t)
	p := openPort(t, Options{Interface: natIf, Queues: 2})
	assert.Equal(t, natIf, p.Name())
	assert.Equal(t, macOf(t, natIf), p.MAC())
	assert.Equal(t, 1400, p.MTU())
	assert.Equal(t, 2, p.NumQueues())
	assert.NotNil(t, p.Queue(1))
	assert.Nil(t, p.Queue(2))
	assert.Nil(t, p.Queue(-1))
	assert.Equal(t, 1, p.Queue(1).Index())

	tests := []struct {
		name  string
		state string
		up    bool
	}{
		{"up", "up", true},
		{"peer down", "down", false},
		{"peer up again", "up", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A veth end has carrier only while its peer is up. The
			// kernel updates the operational state (IFF_RUNNING) from a
			// work queue just after the change: wait for it, bounded.
			tb.ip(t, "link", "set", peerIf, tt.state)
			assert.Eventually(t, func() bool { return p.LinkUp() == tt.up }, 5*time.Second, 10*time.Millisecond,
				"LinkUp() never became %v", tt.up)
		})
	}
}

func TestRecvFromRawSocket(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	p := openPort(t, Options{Interface: natIf})
	raw := newRawSocket(t, peerIf)
	dst, src := macOf(t, natIf), macOf(t, peerIf)

	tests := []struct {
		name  string
		sizes []int
	}{
		{"one minimal frame", []int{testMinLen}},
		{"mixed sizes", []int{60, 128, 1514, 64, 999}},
		{"full MTU burst", []int{1514, 1514, 1514, 1514, 1514, 1514, 1514, 1514}},
	}
	seq := uint32(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent [][]byte
			for _, size := range tt.sizes {
				f := testFrame(dst, src, 1234, seq, size)
				seq++
				raw.send(t, f)
				sent = append(sent, f)
			}
			got := recvTest(t, p.Queue(0), len(sent), 32, 2048)
			require.Len(t, got, len(sent))
			for i := range sent {
				assert.Equal(t, sent[i], got[i].data, "frame %d", i)
				assert.Zero(t, got[i].flags, "frame %d", i)
			}
		})
	}
	st := p.Stats()
	assert.GreaterOrEqual(t, st.RxPackets, uint64(seq))
	assert.Zero(t, st.RxDrops)
	assert.Zero(t, st.RxErrors)
}

// TestRecvAcrossBlocks sends bursts spanning several small ring blocks and
// reads them with fewer buffers than frames, so bursts end mid-block and the
// cursor resumes.
func TestRecvAcrossBlocks(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	page := os.Getpagesize()
	p := openPort(t, Options{Interface: natIf, FrameSize: 2048, BlockSize: page, Blocks: 64})
	raw := newRawSocket(t, peerIf)
	dst, src := macOf(t, natIf), macOf(t, peerIf)

	tests := []struct {
		name   string
		frames int
		size   int
		burst  int
	}{
		{"one buffer", 40, 100, 1},
		{"seven buffers", 200, 60, 7},
		{"burst bigger than block", 150, 60, 64},
		{"large frames", 30, 1500, 5},
	}
	seq := uint32(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := seq
			for i := 0; i < tt.frames; i++ {
				raw.send(t, testFrame(dst, src, 1234, seq, tt.size))
				seq++
			}
			got := recvTest(t, p.Queue(0), tt.frames, tt.burst, 2048)
			require.Len(t, got, tt.frames)
			for i, r := range got {
				s, ok := testSeq(r.data)
				require.True(t, ok)
				assert.Equal(t, first+uint32(i), s, "frames arrive in order")
				assert.Equal(t, testFrame(dst, src, 1234, s, tt.size), r.data)
			}
		})
	}
	q := p.Queue(0)
	assert.Positive(t, q.block+int(q.left), "the cursor moved past block 0")
	assert.Zero(t, p.Stats().RxErrors)
}

func TestRecvTruncates(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	p := openPort(t, Options{Interface: natIf})
	raw := newRawSocket(t, peerIf)
	dst, src := macOf(t, natIf), macOf(t, peerIf)

	tests := []struct {
		name    string
		size    int
		bufSize int
		trunc   bool
	}{
		{"fits exactly", 300, 300, false},
		{"one byte short", 300, 299, true},
		{"much longer", 1500, 64, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFrame(dst, src, 1234, uint32(i), tt.size)
			raw.send(t, f)
			got := recvTest(t, p.Queue(0), 1, 4, tt.bufSize)
			require.Len(t, got, 1)
			assert.Equal(t, f[:min(tt.size, tt.bufSize)], got[0].data)
			assert.Equal(t, tt.trunc, got[0].flags&FlagTruncated != 0)
		})
	}
}

func TestRecvBadArguments(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	p := openPort(t, Options{Interface: natIf})
	raw := newRawSocket(t, peerIf)
	dst, src := macOf(t, natIf), macOf(t, peerIf)
	q := p.Queue(0)
	for i := 0; i < 4; i++ {
		raw.send(t, testFrame(dst, src, 1234, uint32(i), 100))
	}
	require.True(t, q.Wait(5*time.Second), "frames arrive")

	tests := []struct {
		name  string
		bufs  [][]byte
		sizes []int
		flags []uint8
		want  int
	}{
		{"all nil", nil, nil, nil, 0},
		{"no sizes", make([][]byte, 2), nil, make([]uint8, 2), 0},
		{"no flags", make([][]byte, 2), make([]int, 2), nil, 0},
		{"zero capacity buffer", [][]byte{nil}, make([]int, 3), make([]uint8, 3), 1},
		{"short flags", [][]byte{make([]byte, 10), make([]byte, 10)}, make([]int, 2), make([]uint8, 1), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want > 0 {
				// The kernel may not have queued every frame sent when
				// the first is ready: wait for the one this case takes.
				require.True(t, q.Wait(5*time.Second), "a frame is ready")
			}
			n := q.Recv(tt.bufs, tt.sizes, tt.flags)
			assert.Equal(t, tt.want, n)
			for i := 0; i < n; i++ {
				assert.Equal(t, FlagTruncated, tt.flags[i]&FlagTruncated)
				assert.Equal(t, min(cap(tt.bufs[i]), 100), tt.sizes[i])
			}
		})
	}
}

func TestSendArrivesAtPeer(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	p := openPort(t, Options{Interface: natIf, TxFrames: 64})
	raw := newRawSocket(t, peerIf)
	dst, src := macOf(t, peerIf), p.MAC()
	q := p.Queue(0)

	tests := []struct {
		name   string
		sizes  []int
		rounds int
	}{
		{"one frame", []int{60}, 1},
		{"burst of 32", repeat(64, 32), 1},
		{"mixed sizes", []int{60, 1514, 128, 777}, 1},
		{"wraps the ring", repeat(200, 32), 5},
	}
	seq := uint32(0)
	var totalSent uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent [][]byte
			for r := 0; r < tt.rounds; r++ {
				bufs := make([][]byte, len(tt.sizes))
				for i, size := range tt.sizes {
					bufs[i] = testFrame(dst, src, 1234, seq, size)
					seq++
				}
				n, err := q.Send(bufs, tt.sizes)
				require.NoError(t, err)
				require.Equal(t, len(bufs), n, "the ring takes the whole burst")
				sent = append(sent, bufs...)
				// Read this round before the next so the peer's socket
				// buffer never overflows.
				got := raw.recvTest(t, len(bufs))
				require.Len(t, got, len(bufs))
				for i := range got {
					assert.Equal(t, bufs[i], got[i])
				}
			}
			totalSent += uint64(len(sent))
		})
	}
	st := p.Stats()
	assert.Equal(t, totalSent, st.TxPackets)
	assert.Zero(t, st.TxErrors)
}

func TestSendRejectsUnsendable(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	p := openPort(t, Options{Interface: natIf})
	raw := newRawSocket(t, peerIf)
	dst, src := macOf(t, peerIf), p.MAC()
	q := p.Queue(0)
	good := testFrame(dst, src, 1234, 7, 100)
	big := testFrame(dst, src, 1234, 8, 1600) // over MTU 1500 + headers

	tests := []struct {
		name   string
		bufs   [][]byte
		sizes  []int
		want   int
		errors uint64
		sent   int
	}{
		{"nothing", nil, nil, 0, 0, 0},
		{"sizes shorter than bufs", [][]byte{good, good}, []int{100}, 1, 0, 1},
		{"runt", [][]byte{good[:10]}, []int{10}, 1, 1, 0},
		{"negative size", [][]byte{good}, []int{-5}, 1, 1, 0},
		{"size beyond buffer", [][]byte{good}, []int{200}, 1, 1, 0},
		{"over MTU", [][]byte{big}, []int{len(big)}, 1, 1, 0},
		{"nil buffer", [][]byte{nil, good}, []int{100, 100}, 2, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.Stats()
			n, err := q.Send(tt.bufs, tt.sizes)
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
			after := p.Stats()
			assert.Equal(t, tt.errors, after.TxErrors-before.TxErrors)
			assert.Equal(t, uint64(tt.sent), after.TxPackets-before.TxPackets)
			if tt.sent > 0 {
				got := raw.recvTest(t, tt.sent)
				require.Len(t, got, tt.sent)
				assert.Equal(t, good, got[0])
			}
		})
	}
}

// TestNoOwnFrames checks that frames the port sends, and frames the host
// sends on the port's interface, never come back through Recv. A marker
// frame from the peer, sent after them, bounds the wait: frames are
// delivered to the ring in order, so anything looped back would be read
// before the marker.
func TestNoOwnFrames(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	p := openPort(t, Options{Interface: natIf, Queues: 1})
	hostRaw := newRawSocket(t, natIf)
	peerRaw := newRawSocket(t, peerIf)
	peerMAC, natMAC := macOf(t, peerIf), p.MAC()

	tests := []struct {
		name string
		send func(t *testing.T, seq uint32)
	}{
		{"driver Send", func(t *testing.T, seq uint32) {
			f := testFrame(peerMAC, natMAC, 1234, seq, 100)
			n, err := p.Queue(0).Send([][]byte{f}, []int{len(f)})
			require.NoError(t, err)
			require.Equal(t, 1, n)
		}},
		{"host raw socket", func(t *testing.T, seq uint32) {
			hostRaw.send(t, testFrame(peerMAC, natMAC, 1234, seq, 100))
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			own := uint32(1000 + i)
			marker := uint32(2000 + i)
			for j := 0; j < 10; j++ {
				tt.send(t, own)
			}
			require.Len(t, peerRaw.recvTest(t, 10), 10, "the peer got them")
			peerRaw.send(t, testFrame(natMAC, peerMAC, 1234, marker, 100))
			got := recvTest(t, p.Queue(0), 1, 32, 2048)
			require.Len(t, got, 1)
			s, ok := testSeq(got[0].data)
			require.True(t, ok)
			assert.Equal(t, marker, s, "the first frame read is the marker")
		})
	}
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// setTxChecksum turns TX checksum offload of interface name on or off, as
// `ethtool -K name tx on|off` does (SIOCETHTOOL, ETHTOOL_STXCSUM).
func setTxChecksum(t *testing.T, name string, on bool) {
	t.Helper()
	const ethtoolSTXCSUM = 0x17
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	v := ethtoolValue{cmd: ethtoolSTXCSUM}
	if on {
		v.data = 1
	}
	var req struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	copy(req.name[:], name)
	req.data = uintptr(unsafe.Pointer(&v))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req)))
	require.Zero(t, errno, "SIOCETHTOOL ETHTOOL_STXCSUM %s: %v", name, errno)
}

// TestCsumNotReady sends a UDP datagram through the kernel stack of the peer
// end: with TX checksum offload on, the veth hands it over with a partial
// checksum and Recv must flag it.
func TestCsumNotReady(t *testing.T) {
	tb := newVethNS(t)
	tb.ip(t, "addr", "add", "10.77.0.2/24", "dev", peerIf)
	tb.enter(t)
	p := openPort(t, Options{Interface: natIf})
	natMAC := p.MAC()
	tb.ip(t, "neigh", "replace", "10.77.0.1", "lladdr", net6(natMAC), "dev", peerIf, "nud", "permanent")

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	to := &unix.SockaddrInet4{Port: 9999, Addr: [4]byte{10, 77, 0, 1}}

	tests := []struct {
		name    string
		offload bool
	}{
		{"offload on", true},
		{"offload off", false},
		{"offload on again", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb.enter(t)
			setTxChecksum(t, peerIf, tt.offload)
			payload := []byte(fmt.Sprintf("csum-%d", i))
			require.NoError(t, unix.Sendto(fd, payload, 0, to))
			var frame []byte
			var flag uint8
			bufs, sizes, flags := [][]byte{make([]byte, 2048)}, []int{0}, []uint8{0}
			for tries := 0; frame == nil && tries < 100; tries++ {
				if p.Queue(0).Recv(bufs, sizes, flags) == 0 {
					p.Queue(0).Wait(50 * time.Millisecond)
					continue
				}
				f := bufs[0][:sizes[0]]
				if len(f) >= 42 && f[23] == unix.IPPROTO_UDP && bytes.HasSuffix(f, payload) {
					frame, flag = f, flags[0]
				}
			}
			require.NotNil(t, frame, "the datagram arrived")
			assert.Equal(t, tt.offload, flag&FlagCsumNotReady != 0)
		})
	}
}

// net6 formats a MAC address for the ip command.
func net6(mac [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
}

func TestFanoutQueues(t *testing.T) {
	tests := []struct {
		name   string
		queues int
		mode   FanoutMode
	}{
		{"hash 2 queues", 2, FanoutHash},
		{"hash 4 queues", 4, FanoutHash},
		{"cpu 2 queues", 2, FanoutCPU},
		{"program 2 queues", 2, FanoutProgram},
		{"program 4 queues", 4, FanoutProgram},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newVethNS(t)
			tb.enter(t)
			opts := Options{Interface: natIf, Queues: tt.queues, Fanout: tt.mode}
			owner := lcore.NewOwner(lcore.DefaultRSSKey, tt.queues)
			if tt.mode == FanoutProgram {
				// As the outside port: the remote is the frames' source,
				// 10.99.0.1 and the flow's source port.
				opts.Program = SteeringProgram(owner, lcore.PortOutside)
			}
			p := openPort(t, opts)
			raw := newRawSocket(t, peerIf)
			dst, src := macOf(t, natIf), macOf(t, peerIf)
			const flows, perFlow = 64, 3
			for k := 0; k < perFlow; k++ {
				for f := 0; f < flows; f++ {
					raw.send(t, testFrame(dst, src, uint16(2000+f), uint32(f*perFlow+k), 80))
				}
			}
			seen := map[uint32]int{} // sequence number -> queue
			bufs, sizes, flags := [][]byte{make([]byte, 2048)}, []int{0}, []uint8{0}
			for idle := 0; len(seen) < flows*perFlow && idle < 100; {
				progress := false
				for qi := 0; qi < tt.queues; qi++ {
					for p.Queue(qi).Recv(bufs, sizes, flags) == 1 {
						s, ok := testSeq(bufs[0][:sizes[0]])
						if !ok {
							continue
						}
						progress = true
						_, dup := seen[s]
						assert.False(t, dup, "frame %d delivered twice", s)
						seen[s] = qi
					}
				}
				if !progress {
					idle++
					p.Queue(idle % tt.queues).Wait(20 * time.Millisecond)
				}
			}
			require.Len(t, seen, flows*perFlow, "every frame arrives exactly once")
			if tt.mode == FanoutHash {
				used := map[int]bool{}
				for f := 0; f < flows; f++ {
					q := seen[uint32(f*perFlow)]
					used[q] = true
					for k := 1; k < perFlow; k++ {
						assert.Equal(t, q, seen[uint32(f*perFlow+k)], "flow %d stays on one queue", f)
					}
				}
				assert.Greater(t, len(used), 1, "flows spread over queues")
			}
			if tt.mode == FanoutProgram {
				for f := 0; f < flows; f++ {
					want := owner.Of(0x0a630001, uint16(2000+f))
					for k := 0; k < perFlow; k++ {
						require.Equal(t, want, seen[uint32(f*perFlow+k)], "flow %d on its owner's queue", f)
					}
				}
			}
		})
	}
}

// mappedSocket reports whether the process maps the socket with inode ino.
func mappedSocket(t *testing.T, ino uint64) bool {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	return strings.Contains(string(maps), fmt.Sprintf("socket:[%d]", ino))
}

func TestClose(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	p, err := Open(Options{Interface: natIf, Queues: 2, Promiscuous: true})
	require.NoError(t, err)
	require.Equal(t, 1, tb.promiscuity(t, natIf), "promiscuous while open")

	var inodes []uint64
	for i := 0; i < p.NumQueues(); i++ {
		var st unix.Stat_t
		require.NoError(t, unix.Fstat(p.Queue(i).Fd(), &st))
		require.True(t, mappedSocket(t, st.Ino), "queue %d ring mapped", i)
		inodes = append(inodes, st.Ino)
	}

	tests := []struct {
		name string
	}{
		{"first close"},
		{"second close"},
		{"third close"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.NoError(t, p.Close())
			assert.Zero(t, tb.promiscuity(t, natIf), "promiscuous mode left")
			for i, ino := range inodes {
				q := p.Queue(i)
				assert.False(t, mappedSocket(t, ino), "queue %d ring unmapped", i)
				assert.Equal(t, -1, q.Fd())
				assert.Zero(t, q.Recv([][]byte{make([]byte, 64)}, []int{0}, []uint8{0}))
				n, err := q.Send([][]byte{make([]byte, 64)}, []int{64})
				assert.Zero(t, n)
				assert.ErrorIs(t, err, ErrClosed)
				assert.False(t, q.Wait(time.Millisecond))
				assert.False(t, q.Ready())
			}
			assert.False(t, p.LinkUp())
			assert.Zero(t, p.MTU())
			assert.Equal(t, Stats{}, p.Stats())
		})
	}
}

func TestNoAllocs(t *testing.T) {
	tb := newVethNS(t)
	tb.enter(t)
	a := openPort(t, Options{Interface: natIf})
	b := openPort(t, Options{Interface: peerIf})
	qa, qb := a.Queue(0), b.Queue(0)
	const burst = 16
	tx := make([][]byte, burst)
	txSizes := make([]int, burst)
	for i := range tx {
		tx[i] = testFrame(b.MAC(), a.MAC(), 1234, uint32(i), 64)
		txSizes[i] = len(tx[i])
	}
	rx := make([][]byte, burst)
	for i := range rx {
		rx[i] = make([]byte, 2048)
	}
	rxSizes := make([]int, burst)
	rxFlags := make([]uint8, burst)

	tests := []struct {
		name string
		fn   func()
	}{
		{"Send", func() { qa.Send(tx, txSizes) }},
		{"Recv", func() { qb.Recv(rx, rxSizes, rxFlags) }},
		{"Recv empty", func() { qa.Recv(rx, rxSizes, rxFlags) }},
		{"Wait", func() { qb.Wait(time.Millisecond) }},
		{"Send, Wait, Recv", func() {
			qa.Send(tx, txSizes)
			qb.Wait(100 * time.Millisecond)
			qb.Recv(rx, rxSizes, rxFlags)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(50, tt.fn))
		})
	}
	assert.Positive(t, b.Stats().RxPackets, "Recv saw frames")
}

// promiscuity returns the promiscuity count of interface name, as shown by
// ip -d link (SIOCGIFFLAGS does not report promiscuity held by sockets).
func (tb *vethNS) promiscuity(t *testing.T, name string) int {
	t.Helper()
	out, err := exec.Command("ip", "-n", tb.ns, "-d", "link", "show", name).CombinedOutput()
	require.NoError(t, err, "%s", out)
	fields := strings.Fields(string(out))
	for i, f := range fields[:len(fields)-1] {
		if f == "promiscuity" {
			n, err := strconv.Atoi(fields[i+1])
			require.NoError(t, err)
			return n
		}
	}
	require.Fail(t, "no promiscuity in ip output", "%s", out)
	return -1
}

// repeat returns n copies of v.
func repeat(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}
