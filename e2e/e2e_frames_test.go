package e2e

// This file builds the malformed frames of the flood check: frames
// addressed to natgw's MACs that no correct dataplane may translate, sent
// through raw AF_PACKET sockets from the far end of each of natgw's links.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// Frame size limits of the testbed's 1500-byte links.
const (
	ethHeaderLen = 14
	maxFrameLen  = 1514
)

// floodPort is one of natgw's links seen from its far end: where the flood
// is sent from and what the frames carry.
type floodPort struct {
	// name says which natgw port the frames reach.
	name string
	// ns and ifname are the testbed namespace and interface frames are
	// sent from.
	ns, ifname string
	// dst is natgw's MAC on the link, src the sender's.
	dst, src [6]byte
	// srcIPs and dstIPs are addresses put in IPv4 headers. None of them is
	// a real inside host or server port a later check uses, so even a
	// frame natgw wrongly accepted could not disturb the other checks.
	srcIPs, dstIPs [][4]byte
}

// e2eFloodPorts are natgw's inside and outside ports.
var e2eFloodPorts = []floodPort{
	{
		name: "inside", ns: "in", ifname: "eth0",
		dst:    [6]byte{0x02, 0x4e, 0x47, 0x01, 0x00, 0x01},
		src:    [6]byte{0x02, 0x4e, 0x47, 0x01, 0x00, 0x02},
		srcIPs: [][4]byte{{10, 0, 2, 9}, {10, 0, 77, 1}},
		dstIPs: [][4]byte{{198, 18, 0, 99}, {10, 0, 0, 1}},
	},
	{
		name: "outside", ns: "rt", ifname: "to-gw",
		dst:    [6]byte{0x02, 0x4e, 0x47, 0x02, 0x00, 0x02},
		src:    [6]byte{0x02, 0x4e, 0x47, 0x02, 0x00, 0x01},
		srcIPs: [][4]byte{{198, 18, 0, 99}, {198, 18, 0, 98}},
		dstIPs: [][4]byte{{198, 19, 1, 10}, {198, 19, 1, 20}, {198, 19, 1, 50}, {198, 19, 0, 2}},
	},
}

// frameBuilder builds frames for one port into a reused buffer.
type frameBuilder struct {
	r   *rand.Rand
	p   *floodPort
	buf []byte
}

// random fills b with random bytes.
func (f *frameBuilder) random(b []byte) {
	for i := range b {
		b[i] = byte(f.r.Uint32())
	}
}

// eth returns a frame of n bytes (n >= 14) with an Ethernet header of type
// etype and random bytes after it.
func (f *frameBuilder) eth(etype uint16, n int) []byte {
	b := f.buf[:n]
	f.random(b[ethHeaderLen:])
	copy(b[0:6], f.p.dst[:])
	copy(b[6:12], f.p.src[:])
	binary.BigEndian.PutUint16(b[12:14], etype)
	return b
}

// ipv4 returns a frame with a valid IPv4 header (20 bytes, DF, checksum
// right, total length matching) carrying l4len random bytes of protocol
// proto; the returned ip slice is the IPv4 packet.
func (f *frameBuilder) ipv4(proto uint8, l4len int) (frame, ip []byte) {
	frame = f.eth(0x0800, ethHeaderLen+20+l4len)
	ip = frame[ethHeaderLen:]
	ip[0] = 0x45
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:4], uint16(20+l4len))
	binary.BigEndian.PutUint16(ip[6:8], 0x4000)
	ip[8] = 64
	ip[9] = proto
	src := f.p.srcIPs[f.r.IntN(len(f.p.srcIPs))]
	dst := f.p.dstIPs[f.r.IntN(len(f.p.dstIPs))]
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	setIPv4Checksum(ip)
	return frame, ip
}

// setIPv4Checksum writes the header checksum of ip (header length from
// its IHL, at most len(ip)).
func setIPv4Checksum(ip []byte) {
	n := min(int(ip[0]&0x0f)*4, len(ip))
	ip[10], ip[11] = 0, 0
	var sum uint32
	for i := 0; i+1 < n; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:12], ^uint16(sum))
}

// frameKind is one family of malformed frames.
type frameKind struct {
	name  string
	build func(f *frameBuilder) []byte
}

// l4Protos are the protocols natgw translates.
var l4Protos = []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_ICMP}

// e2eFrameKinds are the malformed frames of the flood, each kind in turn.
var e2eFrameKinds = []frameKind{
	{"random bytes", func(f *frameBuilder) []byte {
		b := f.buf[:ethHeaderLen+f.r.IntN(maxFrameLen-ethHeaderLen+1)]
		f.random(b)
		copy(b[0:6], f.p.dst[:])
		copy(b[6:12], f.p.src[:])
		return b
	}},
	{"Ethernet header only", func(f *frameBuilder) []byte {
		types := []uint16{0x0800, 0x0806, 0x86dd, 0x8100, 0x88a8}
		return f.eth(types[f.r.IntN(len(types))], ethHeaderLen)
	}},
	{"truncated IPv4 header", func(f *frameBuilder) []byte {
		b := f.eth(0x0800, ethHeaderLen+1+f.r.IntN(19))
		b[ethHeaderLen] = 0x45
		return b
	}},
	{"IPv4 bad IHL", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(l4Protos[f.r.IntN(3)], f.r.IntN(24))
		if f.r.IntN(2) == 0 {
			ip[0] = 0x40 | byte(f.r.IntN(5)) // shorter than the fixed header
		} else {
			ip[0] = 0x4f // 60 bytes of header, more than the packet has
			if len(ip) >= 60 {
				binary.BigEndian.PutUint16(ip[2:4], 40)
			}
		}
		setIPv4Checksum(ip)
		return frame
	}},
	{"IPv4 bad total length", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(l4Protos[f.r.IntN(3)], 8+f.r.IntN(40))
		bad := []int{0, 1, 19, len(ip) + 1 + f.r.IntN(65535-len(ip)), 65535}
		binary.BigEndian.PutUint16(ip[2:4], uint16(bad[f.r.IntN(len(bad))]))
		setIPv4Checksum(ip)
		return frame
	}},
	{"IPv4 bad header checksum", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(l4Protos[f.r.IntN(3)], 8+f.r.IntN(40))
		ip[10] ^= byte(1 + f.r.IntN(255))
		return frame
	}},
	{"IPv4 bad version", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(l4Protos[f.r.IntN(3)], 8+f.r.IntN(40))
		versions := []byte{0, 1, 5, 6, 15}
		ip[0] = versions[f.r.IntN(len(versions))]<<4 | 5
		setIPv4Checksum(ip)
		return frame
	}},
	{"truncated TCP header", func(f *frameBuilder) []byte {
		frame, _ := f.ipv4(unix.IPPROTO_TCP, f.r.IntN(20))
		return frame
	}},
	{"TCP bad data offset", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(unix.IPPROTO_TCP, 20+f.r.IntN(20))
		if f.r.IntN(2) == 0 {
			ip[20+12] = byte(f.r.IntN(5)) << 4
		} else {
			ip[20+12] = 0xf0 // 60 bytes of TCP header, more than there is
		}
		return frame
	}},
	{"truncated UDP header", func(f *frameBuilder) []byte {
		frame, _ := f.ipv4(unix.IPPROTO_UDP, f.r.IntN(8))
		return frame
	}},
	{"UDP bad length", func(f *frameBuilder) []byte {
		n := 8 + f.r.IntN(64)
		frame, ip := f.ipv4(unix.IPPROTO_UDP, n)
		bad := []int{0, 7, n + 1 + f.r.IntN(1000), 65535}
		binary.BigEndian.PutUint16(ip[20+4:], uint16(bad[f.r.IntN(len(bad))]))
		return frame
	}},
	{"truncated ICMP header", func(f *frameBuilder) []byte {
		frame, _ := f.ipv4(unix.IPPROTO_ICMP, f.r.IntN(8))
		return frame
	}},
	{"ICMP error with a bad embedded packet", func(f *frameBuilder) []byte {
		inner := f.r.IntN(48)
		frame, ip := f.ipv4(unix.IPPROTO_ICMP, 8+inner)
		icmp := ip[20:]
		types := []byte{3, 11, 12}
		icmp[0] = types[f.r.IntN(len(types))]
		if inner >= 20 {
			// An embedded IPv4 header that looks like one of our own
			// packets, but with its transport header cut short or a
			// bad IHL.
			in := icmp[8:]
			in[0] = 0x45
			if f.r.IntN(3) == 0 {
				in[0] = 0x40 | byte(f.r.IntN(5))
			}
			in[9] = l4Protos[f.r.IntN(3)]
			copy(in[12:16], ip[16:20])
			copy(in[16:20], ip[12:16])
			binary.BigEndian.PutUint16(in[2:4], uint16(20+f.r.IntN(1500)))
		}
		return frame
	}},
	{"IPv4 stray fragment", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(l4Protos[f.r.IntN(3)], f.r.IntN(100))
		// MF with any offset, or a last fragment that runs past 64 KiB.
		flags := uint16(0x2000) | uint16(f.r.IntN(8192))
		if f.r.IntN(2) == 0 {
			flags = 8191
		}
		binary.BigEndian.PutUint16(ip[6:8], flags)
		setIPv4Checksum(ip)
		return frame
	}},
	{"IPv4 unsupported protocol", func(f *frameBuilder) []byte {
		protos := []uint8{0, 2, 4, 41, 47, 50, 132, 255}
		frame, _ := f.ipv4(protos[f.r.IntN(len(protos))], f.r.IntN(64))
		return frame
	}},
	{"IPv4 garbage options", func(f *frameBuilder) []byte {
		ihl := 6 + f.r.IntN(10)
		frame := f.eth(0x0800, ethHeaderLen+ihl*4+f.r.IntN(8))
		ip := frame[ethHeaderLen:]
		ip[0] = 0x40 | byte(ihl)
		binary.BigEndian.PutUint16(ip[2:4], uint16(len(ip)))
		ip[9] = l4Protos[f.r.IntN(3)]
		copy(ip[12:16], f.p.srcIPs[0][:])
		copy(ip[16:20], f.p.dstIPs[0][:])
		setIPv4Checksum(ip)
		return frame
	}},
	{"IPv4 TTL 0 or 1 with a truncated transport header", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(l4Protos[f.r.IntN(3)], f.r.IntN(8))
		ip[8] = byte(f.r.IntN(2))
		setIPv4Checksum(ip)
		return frame
	}},
	{"IPv6", func(f *frameBuilder) []byte {
		b := f.eth(0x86dd, ethHeaderLen+f.r.IntN(200))
		if len(b) > ethHeaderLen {
			b[ethHeaderLen] = 0x60
		}
		return b
	}},
	{"VLAN tagged IPv4", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(l4Protos[f.r.IntN(3)], 8+f.r.IntN(40))
		// Shift the packet 4 bytes to make room for an 802.1Q tag.
		n := len(frame) + 4
		copy(f.buf[ethHeaderLen+4:n], ip)
		b := f.buf[:n]
		tpid := []uint16{0x8100, 0x88a8}[f.r.IntN(2)]
		binary.BigEndian.PutUint16(b[12:14], tpid)
		binary.BigEndian.PutUint16(b[14:16], uint16(f.r.IntN(4096)))
		binary.BigEndian.PutUint16(b[16:18], 0x0800)
		return b
	}},
	{"ARP garbage", func(f *frameBuilder) []byte {
		n := f.r.IntN(40)
		b := f.eth(0x0806, ethHeaderLen+n)
		if n >= 28 {
			arp := b[ethHeaderLen:]
			binary.BigEndian.PutUint16(arp[0:2], 1)
			binary.BigEndian.PutUint16(arp[2:4], 0x0800)
			arp[4], arp[5] = 6, 4
			binary.BigEndian.PutUint16(arp[6:8], uint16(1+f.r.IntN(2)))
			// Break exactly one field that a correct parser checks, so
			// that the frame is never a valid ARP packet.
			switch f.r.IntN(4) {
			case 0:
				binary.BigEndian.PutUint16(arp[0:2], uint16(2+f.r.IntN(100)))
			case 1:
				binary.BigEndian.PutUint16(arp[2:4], 0x86dd)
			case 2:
				arp[4] = byte(7 + f.r.IntN(200))
			default:
				arp[5] = byte(5 + f.r.IntN(200))
			}
		}
		return b
	}},
	{"oversized IPv4", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(unix.IPPROTO_UDP, maxFrameLen-ethHeaderLen-20)
		binary.BigEndian.PutUint16(ip[2:4], 65535)
		binary.BigEndian.PutUint16(ip[20+4:], 65515)
		setIPv4Checksum(ip)
		return frame
	}},
	{"jumbo frame beyond the MTU", func(f *frameBuilder) []byte {
		frame, ip := f.ipv4(unix.IPPROTO_UDP, maxFrameLen-ethHeaderLen-20+1+f.r.IntN(7000))
		binary.BigEndian.PutUint16(ip[2:4], uint16(len(ip)))
		setIPv4Checksum(ip)
		return frame
	}},
}

// floodResult counts what the flood of one port did.
type floodResult struct {
	// sent are frames the kernel accepted, rejected frames it refused (a
	// jumbo frame over the link MTU is refused with EMSGSIZE).
	sent, rejected int
	// perKind counts accepted frames by kind.
	perKind map[string]int
}

// newFrameBuilder returns a builder for port p seeded with seed.
func newFrameBuilder(p *floodPort, seed uint64) *frameBuilder {
	return &frameBuilder{r: rand.New(rand.NewPCG(seed, uint64(len(p.name)))), p: p, buf: make([]byte, 16384)}
}

// flood sends n malformed frames, the kinds in turn, from the far end of
// port p. It runs inside p's namespace (see inNetns) and pauses briefly
// every 64 frames so that natgw's receive ring, not the sending kernel's
// backlog, is what the frames meet.
func flood(p *floodPort, n int, seed uint64) (floodResult, error) {
	return floodPaced(p, n, seed, 200*time.Microsecond)
}

// floodPaced is flood with a pause of the given length after every 64
// frames; 0 sends as fast as the kernel takes them.
func floodPaced(p *floodPort, n int, seed uint64, pause time.Duration) (floodResult, error) {
	res := floodResult{perKind: map[string]int{}}
	ifi, err := net.InterfaceByName(p.ifname)
	if err != nil {
		return res, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return res, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 1}); err != nil {
		return res, err
	}
	sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
	copy(sa.Addr[:], p.dst[:])
	f := newFrameBuilder(p, seed)
	var lastErr error
	for i := 0; i < n; i++ {
		k := &e2eFrameKinds[i%len(e2eFrameKinds)]
		frame := k.build(f)
		if err := unix.Sendto(fd, frame, 0, sa); err != nil {
			res.rejected++
			if !errors.Is(err, unix.EMSGSIZE) && !errors.Is(err, unix.ENOBUFS) {
				lastErr = fmt.Errorf("%s frame of %d bytes: %w", k.name, len(frame), err)
			}
			continue
		}
		res.sent++
		res.perKind[k.name]++
		if pause > 0 && i%64 == 63 {
			time.Sleep(pause)
		}
	}
	return res, lastErr
}

// TestE2EFrameKinds checks the flood's frame builders without a testbed:
// every kind builds frames addressed to natgw's MAC within the link's
// limits (only the jumbo kind exceeds them), and builders never panic.
func TestE2EFrameKinds(t *testing.T) {
	for _, k := range e2eFrameKinds {
		t.Run(k.name, func(t *testing.T) {
			for pi := range e2eFloodPorts {
				p := &e2eFloodPorts[pi]
				f := newFrameBuilder(p, 1)
				for i := 0; i < 500; i++ {
					frame := k.build(f)
					if !assert.GreaterOrEqual(t, len(frame), ethHeaderLen, "%s frame %d", p.name, i) {
						return
					}
					assert.Equal(t, p.dst[:], frame[0:6], "destination MAC")
					assert.Equal(t, p.src[:], frame[6:12], "source MAC")
					if k.name == "jumbo frame beyond the MTU" {
						assert.Greater(t, len(frame), maxFrameLen)
					} else {
						assert.LessOrEqual(t, len(frame), maxFrameLen)
					}
				}
			}
		})
	}
}

// TestSetIPv4Checksum checks the flood's header checksum against headers
// whose checksum is known (the first is the usual textbook example of the
// IPv4 header checksum).
func TestSetIPv4Checksum(t *testing.T) {
	tests := []struct {
		name string
		hdr  []byte
		want uint16
	}{
		{"example header", []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xff, 0xff,
			0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}, 0xb861},
		{"all zero but version and IHL", []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0xbaff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setIPv4Checksum(tt.hdr)
			assert.Equal(t, tt.want, binary.BigEndian.Uint16(tt.hdr[10:12]))
		})
	}
}
