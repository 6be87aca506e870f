package nat

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// csumRand returns a deterministic random source, so a failure reproduces.
func csumRand(t testing.TB) *rand.Rand {
	t.Helper()
	return rand.New(rand.NewPCG(0x6e617467, 0x77636b73))
}

// csumRandBytes returns n random bytes from r.
func csumRandBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// csumAllZero reports whether every byte of b is zero.
func csumAllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestSumKnownVectors(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		initial uint32
		sum     uint32
		cksum   uint16
	}{
		{name: "empty", data: nil, sum: 0, cksum: 0xffff},
		{name: "single odd byte", data: []byte{0xab}, sum: 0xab00, cksum: 0x54ff},
		// RFC 1071 section 3 example.
		{name: "rfc1071", data: []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, sum: 0xddf2, cksum: 0x220d},
		{name: "all ones word", data: []byte{0xff, 0xff}, sum: 0xffff, cksum: 0x0000},
		{name: "carry folds", data: []byte{0xff, 0xff, 0x00, 0x01}, sum: 0x0001, cksum: 0xfffe},
		{name: "initial only", data: nil, initial: 0x0001_0002, sum: 0x0003, cksum: 0xfffc},
		{name: "initial all ones", data: []byte{0x00, 0x01}, initial: 0xffffffff, sum: 0x0001, cksum: 0xfffe},
		// A valid IPv4 header (example from Wikipedia's checksum article).
		{name: "ipv4 header", data: []byte{
			0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
		}, sum: 0xffff, cksum: 0x0000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.sum, naiveSum(tt.data, tt.initial), "oracle disagrees with the vector")
			assert.Equal(t, tt.sum, Sum(tt.data, tt.initial))
			assert.Equal(t, tt.cksum, Fold(Sum(tt.data, tt.initial)))
		})
	}
}

func TestSumMatchesNaive(t *testing.T) {
	r := csumRand(t)
	tests := []struct {
		name   string
		fill   func(n int) []byte
		maxLen int
	}{
		{name: "random", fill: func(n int) []byte { return csumRandBytes(r, n) }, maxLen: 1600},
		{name: "all 0xff", fill: func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = 0xff
			}
			return b
		}, maxLen: 300},
		{name: "all zero", fill: func(n int) []byte { return make([]byte, n) }, maxLen: 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for n := 0; n <= tt.maxLen; n++ {
				b := tt.fill(n)
				initial := r.Uint32()
				if n%3 == 0 {
					initial = 0
				}
				require.Equal(t, naiveSum(b, initial), Sum(b, initial), "len %d initial %#x", n, initial)
			}
		})
	}
}

func TestSumInPieces(t *testing.T) {
	r := csumRand(t)
	b := csumRandBytes(r, 1501)
	whole := Sum(b, 0)
	for _, cut := range []int{0, 2, 8, 14, 20, 34, 64, 1000, 1500} {
		t.Run(strconv.Itoa(cut), func(t *testing.T) {
			assert.Equal(t, whole, Sum(b[cut:], Sum(b[:cut], 0)))
		})
	}
}

func TestFold(t *testing.T) {
	tests := []struct {
		name string
		sum  uint32
		want uint16
	}{
		{name: "zero", sum: 0, want: 0xffff},
		{name: "ffff", sum: 0xffff, want: 0},
		{name: "one carry", sum: 0x1_0000, want: 0xfffe},
		{name: "max", sum: 0xffffffff, want: 0},
		{name: "double carry", sum: 0x1_fffe, want: 0},
		{name: "plain", sum: 0x1234, want: 0xedcb},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Fold(tt.sum))
		})
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	tests := []struct {
		name     string
		src, dst uint32
		proto    uint8
		length   uint16
	}{
		{name: "udp", src: 0x0a000104, dst: 0xc6120001, proto: ProtoUDP, length: 36},
		{name: "tcp max", src: 0xffffffff, dst: 0xffffffff, proto: ProtoTCP, length: 0xffff},
		{name: "zero", proto: ProtoTCP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := naiveSum(naivePseudoHeader(tt.src, tt.dst, tt.proto, tt.length), 0)
			assert.Equal(t, want, fold64(uint64(PseudoHeaderSum(tt.src, tt.dst, tt.proto, tt.length))))
		})
	}
}

// TestUpdateChecksumCorners covers the one's-complement corner cases of RFC
// 1624: checksums of 0x0000 and 0xFFFF before and after an update.
func TestUpdateChecksumCorners(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		off      int
		new      uint16
		want     uint16
		scratch  uint16 // checksum computed from scratch after the update
		verifies bool   // whether data plus the updated checksum verifies
	}{
		{name: "from 0x0000", data: []byte{0x12, 0x34, 0xed, 0xcb}, off: 0, new: 0x1235, want: 0xfffe, scratch: 0xfffe, verifies: true},
		{name: "to 0x0000", data: []byte{0x12, 0x34, 0xed, 0xca}, off: 0, new: 0x1235, want: 0x0000, scratch: 0x0000, verifies: true},
		{name: "from 0xffff (all zero data)", data: []byte{0, 0, 0, 0}, off: 2, new: 0x0001, want: 0xfffe, scratch: 0xfffe, verifies: true},
		{name: "no change", data: []byte{0x45, 0x00, 0x12, 0x34}, off: 2, new: 0x1234, want: naiveChecksum([]byte{0x45, 0x00, 0x12, 0x34}, 0), scratch: naiveChecksum([]byte{0x45, 0x00, 0x12, 0x34}, 0), verifies: true},
		// RFC 1624 eqn. 3 cannot produce 0xFFFF: data that becomes all zero
		// gets 0x0000 where a computation from scratch gives 0xFFFF.
		{name: "to all zero data", data: []byte{0xff, 0xff}, off: 0, new: 0x0000, want: 0x0000, scratch: 0xffff, verifies: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := binary.BigEndian.Uint16(tt.data[tt.off:])
			got := UpdateChecksum16(naiveChecksum(tt.data, 0), old, tt.new)
			assert.Equal(t, tt.want, got)
			d := append([]byte(nil), tt.data...)
			binary.BigEndian.PutUint16(d[tt.off:], tt.new)
			assert.Equal(t, tt.scratch, naiveChecksum(d, 0))
			d = binary.BigEndian.AppendUint16(d, got)
			assert.Equal(t, tt.verifies, naiveChecksum(d, 0) == 0, "verification of %x", d)
		})
	}
}

// checkIncremental changes the 2 or 4 bytes at even offset off of data to
// new, and checks that the incremental update of data's checksum equals the
// checksum computed from scratch (RFC 1624). It reports false when data or
// off does not allow the check.
func checkIncremental(t *testing.T, data []byte, off int, wide bool, new uint32) bool {
	t.Helper()
	size := 2
	if wide {
		size = 4
	}
	off &^= 1
	if off < 0 || off+size > len(data) {
		return false
	}
	before := naiveChecksum(data, 0)
	d := append([]byte(nil), data...)
	var got uint16
	if wide {
		old := binary.BigEndian.Uint32(d[off:])
		binary.BigEndian.PutUint32(d[off:], new)
		got = UpdateChecksum32(before, old, new)
	} else {
		old := binary.BigEndian.Uint16(d[off:])
		binary.BigEndian.PutUint16(d[off:], uint16(new))
		got = UpdateChecksum16(before, old, uint16(new))
	}
	scratch := naiveChecksum(d, 0)
	if csumAllZero(d) {
		// The one documented difference: eqn. 3 never yields 0xFFFF.
		assert.Equal(t, uint16(0x0000), got, "all-zero data")
		assert.Equal(t, uint16(0xffff), scratch, "all-zero data")
		return true
	}
	assert.Equal(t, scratch, got, "data %x off %d new %#x wide %v", data, off, new, wide)
	return true
}

func TestUpdateChecksumMatchesScratch(t *testing.T) {
	r := csumRand(t)
	tests := []struct {
		name string
		wide bool
		// gen returns data and the new field value.
		gen func() ([]byte, uint32)
	}{
		{name: "16-bit random", gen: func() ([]byte, uint32) { return csumRandBytes(r, 2+r.IntN(64)), r.Uint32() }},
		{name: "32-bit random", wide: true, gen: func() ([]byte, uint32) { return csumRandBytes(r, 4+r.IntN(64)), r.Uint32() }},
		{name: "16-bit sparse", gen: func() ([]byte, uint32) {
			// Mostly zero data with values near 0 and 0xFFFF reaches the
			// corner cases far more often than random data.
			d := make([]byte, 2+2*r.IntN(3))
			for i := range d {
				d[i] = [...]byte{0, 0, 0xff, 0xfe, 1}[r.IntN(5)]
			}
			return d, uint32([...]uint16{0, 0xffff, 1, 0xfffe}[r.IntN(4)])
		}},
		{name: "32-bit sparse", wide: true, gen: func() ([]byte, uint32) {
			d := make([]byte, 4+2*r.IntN(3))
			for i := range d {
				d[i] = [...]byte{0, 0, 0xff, 0xfe, 1}[r.IntN(5)]
			}
			return d, [...]uint32{0, 0xffffffff, 0xffff, 0xffff0000, 1}[r.IntN(5)]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checked := 0
			for range 5000 {
				d, v := tt.gen()
				if checkIncremental(t, d, r.IntN(len(d)), tt.wide, v) {
					checked++
				}
			}
			require.Greater(t, checked, 2500)
		})
	}
}

// TestNATRewriteIncremental rewrites the source address and port of a UDP
// and a TCP packet the way the translator does, updating both checksums
// incrementally, and compares with the packet built from scratch.
func TestNATRewriteIncremental(t *testing.T) {
	const (
		priv, pub, remote = 0x0a000104, 0xc6130a0a, 0xc6120001
		sport, pport      = 40000, 1025
	)
	payload := []byte("natgw incremental checksum")
	tests := []struct {
		name  string
		build func(b []byte, src uint32, sport uint16) int
	}{
		{name: "udp", build: func(b []byte, src uint32, sport uint16) int {
			return BuildUDP(b, src, remote, sport, 53, 64, payload)
		}},
		{name: "tcp", build: func(b []byte, src uint32, sport uint16) int {
			return BuildTCP(b, TCPSegment{Src: src, Dst: remote, SrcPort: sport, DstPort: 443, Seq: 1, Ack: 2, Flags: TCPFlagACK, TTL: 64, Payload: payload})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]byte, 128)
			want := make([]byte, 128)
			n := tt.build(got, priv, sport)
			require.NotZero(t, n)
			require.Equal(t, n, tt.build(want, pub, pport))

			ip, ok := ParseIPv4(got[:n])
			require.True(t, ok)
			ip.SetSrc(pub)
			ip.SetChecksum(UpdateChecksum32(ip.Checksum(), priv, pub))
			// TTL decrement: TTL shares a 16-bit word with the protocol.
			ttl := ip.TTL()
			ip.SetTTL(ttl - 1)
			ip.SetChecksum(UpdateChecksum16(ip.Checksum(), uint16(ttl)<<8|uint16(ip.Protocol()), uint16(ttl-1)<<8|uint16(ip.Protocol())))

			l4 := ip.Payload()
			// Source port and checksum sit at the same offsets in TCP and UDP
			// up to the checksum field, which differs.
			off := udpChecksumOff
			if ip.Protocol() == ProtoTCP {
				off = tcpChecksumOff
			}
			c := binary.BigEndian.Uint16(l4[off:])
			c = UpdateChecksum32(c, priv, pub)
			c = UpdateChecksum16(c, sport, pport)
			binary.BigEndian.PutUint16(l4[0:], pport)
			binary.BigEndian.PutUint16(l4[off:], c)

			wantIP, ok := ParseIPv4(want[:n])
			require.True(t, ok)
			wantIP.SetTTL(63)
			wantIP.SetChecksum(wantIP.ComputeChecksum())
			assert.Equal(t, want[:n], got[:n])
			assert.True(t, ip.ChecksumValid())
		})
	}
}

func TestTransportChecksum(t *testing.T) {
	buf := make([]byte, 2048)
	tests := []struct {
		name  string
		build func(b []byte) int
		ok    bool
	}{
		{name: "udp", ok: true, build: func(b []byte) int {
			return BuildUDP(b, 0x0a000001, 0xc6120001, 1000, 53, 64, []byte("hello"))
		}},
		{name: "tcp odd payload", ok: true, build: func(b []byte) int {
			return BuildTCP(b, TCPSegment{Src: 0x0a000001, Dst: 0xc6120001, SrcPort: 1000, DstPort: 80, Seq: 7, Ack: 9, Flags: TCPFlagSYN, TTL: 64, Payload: []byte("abc")})
		}},
		{name: "icmp echo", ok: true, build: func(b []byte) int {
			return BuildICMPEcho(b, 0x0a000001, 0xc6120001, ICMPEchoRequest, 7, 1, 64, []byte("ping"))
		}},
		{name: "icmp all zero message", ok: true, build: func(b []byte) int {
			// Echo reply, id 0, seq 0, no data: the message sums to zero and
			// its checksum must be 0xFFFF, not 0x0000.
			return BuildICMPEcho(b, 0x0a000001, 0xc6120001, ICMPEchoReply, 0, 0, 64, nil)
		}},
		{name: "udp short length field", ok: false, build: func(b []byte) int {
			n := BuildUDP(b, 0x0a000001, 0xc6120001, 1000, 53, 64, []byte("hello"))
			binary.BigEndian.PutUint16(b[IPv4MinLen+udpLengthOff:], 4)
			return n
		}},
		{name: "tcp truncated", ok: false, build: func(b []byte) int {
			n := BuildUDP(b, 0x0a000001, 0xc6120001, 1000, 53, 64, []byte("x"))
			b[ipv4ProtoOff] = ProtoTCP
			ip := IPv4(b[:n])
			ip.SetChecksum(ip.ComputeChecksum())
			return n
		}},
		{name: "fragment", ok: false, build: func(b []byte) int {
			n := BuildUDP(b, 0x0a000001, 0xc6120001, 1000, 53, 64, []byte("hello"))
			b[ipv4FragOff] |= 0x20 // MF
			ip := IPv4(b[:n])
			ip.SetChecksum(ip.ComputeChecksum())
			return n
		}},
		{name: "other protocol", ok: false, build: func(b []byte) int {
			n := BuildUDP(b, 0x0a000001, 0xc6120001, 1000, 53, 64, []byte("hello"))
			b[ipv4ProtoOff] = 47 // GRE
			ip := IPv4(b[:n])
			ip.SetChecksum(ip.ComputeChecksum())
			return n
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.build(buf)
			require.NotZero(t, n)
			ip, ok := ParseIPv4(buf[:n])
			require.True(t, ok)
			l4 := append([]byte(nil), ip.Payload()...)
			if !tt.ok {
				assert.Zero(t, TransportChecksum(ip))
				assert.False(t, CompleteChecksum(ip))
				assert.Equal(t, l4, []byte(ip.Payload()), "CompleteChecksum changed a packet it refused")
				return
			}
			off, initial := icmpChecksumOff, uint32(0)
			switch ip.Protocol() {
			case ProtoTCP:
				off = tcpChecksumOff
				initial = naiveSum(naivePseudoHeader(ip.Src(), ip.Dst(), ProtoTCP, uint16(len(l4))), 0)
			case ProtoUDP:
				off = udpChecksumOff
				initial = naiveSum(naivePseudoHeader(ip.Src(), ip.Dst(), ProtoUDP, uint16(len(l4))), 0)
			}
			want := naiveChecksumWithout(l4, off, initial)
			assert.Equal(t, want, TransportChecksum(ip))

			// A partial checksum (the pseudo header sum a NIC leaves) is
			// completed to the full one; so is garbage.
			for _, partial := range []uint16{^Fold(initial), 0x0000, 0xffff, 0x1234} {
				binary.BigEndian.PutUint16(ip.Payload()[off:], partial)
				require.True(t, CompleteChecksum(ip))
				stored := binary.BigEndian.Uint16(ip.Payload()[off:])
				if want == 0 && ip.Protocol() == ProtoUDP {
					assert.Equal(t, uint16(0xffff), stored)
				} else {
					assert.Equal(t, want, stored)
				}
				assert.Zero(t, naiveChecksum(ip.Payload(), initial), "completed checksum does not verify")
			}
		})
	}
}

// TestCompleteChecksumUDPZero finds a UDP datagram whose checksum computes
// to zero and checks that it is stored as 0xFFFF (RFC 768).
func TestCompleteChecksumUDPZero(t *testing.T) {
	buf := make([]byte, 64)
	n := BuildUDP(buf, 0x0a000001, 0xc6120001, 1000, 53, 64, []byte{0, 0})
	require.NotZero(t, n)
	ip, ok := ParseIPv4(buf[:n])
	require.True(t, ok)
	// Choose the two payload bytes so that the checksum computes to 0.
	u := UDP(ip.Payload())
	u.SetChecksum(0)
	s := naiveSum(naivePseudoHeader(ip.Src(), ip.Dst(), ProtoUDP, uint16(len(u))), 0)
	s = naiveSum(u, s)
	binary.BigEndian.PutUint16(u.Payload(), ^uint16(s))
	require.Zero(t, TransportChecksum(ip), "test packet does not sum to zero")
	require.True(t, CompleteChecksum(ip))
	assert.Equal(t, uint16(0xffff), u.Checksum())
}

func TestChecksumNoAllocs(t *testing.T) {
	data := make([]byte, 1500)
	buf := make([]byte, 128)
	n := BuildUDP(buf, 0x0a000001, 0xc6120001, 1000, 53, 64, []byte("hello"))
	require.NotZero(t, n)
	ip, ok := ParseIPv4(buf[:n])
	require.True(t, ok)
	var sink uint32
	tests := []struct {
		name string
		fn   func()
	}{
		{name: "Sum", fn: func() { sink += Sum(data, sink) }},
		{name: "Fold", fn: func() { sink += uint32(Fold(sink)) }},
		{name: "PseudoHeaderSum", fn: func() { sink += PseudoHeaderSum(sink, 2, ProtoTCP, 40) }},
		{name: "UpdateChecksum16", fn: func() { sink += uint32(UpdateChecksum16(uint16(sink), 1, 2)) }},
		{name: "UpdateChecksum32", fn: func() { sink += uint32(UpdateChecksum32(uint16(sink), 1, 2)) }},
		{name: "TransportChecksum", fn: func() { sink += uint32(TransportChecksum(ip)) }},
		{name: "CompleteChecksum", fn: func() {
			if CompleteChecksum(ip) {
				sink++
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(100, tt.fn))
		})
	}
}

func BenchmarkSum(b *testing.B) {
	for _, n := range []int{20, 64, 1500} {
		data := csumRandBytes(csumRand(b), n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			var s uint32
			for b.Loop() {
				s = Sum(data, s)
			}
			csumBenchSink = s
		})
	}
}

func BenchmarkNaiveSum(b *testing.B) {
	for _, n := range []int{64, 1500} {
		data := csumRandBytes(csumRand(b), n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			var s uint32
			for b.Loop() {
				s = naiveSum(data, s)
			}
			csumBenchSink = s
		})
	}
}

func BenchmarkUpdateChecksum32(b *testing.B) {
	b.ReportAllocs()
	c := uint16(0x1234)
	old := uint32(0x0a000104)
	for b.Loop() {
		c = UpdateChecksum32(c, old, 0xc6130a0a)
		old++
	}
	csumBenchSink = uint32(c)
}

// csumBenchSink keeps benchmark results alive.
var csumBenchSink uint32

// TestTranslationDeltas: a flow's precomputed deltas update a checksum to
// the same one's complement value as the field-by-field RFC 1624 update,
// outbound and (with the complements) inbound.
func TestTranslationDeltas(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	same := func(a, b uint16) bool { return a == b || (a == 0 || a == 0xFFFF) && (b == 0 || b == 0xFFFF) }
	for i := 0; i < 100000; i++ {
		f := Flow{Priv: r.Uint32(), Pub: r.Uint32(), PrivPort: uint16(r.Uint32()), PubPort: uint16(r.Uint32())}
		if i%10 == 0 {
			f.Pub, f.PubPort = f.Priv, f.PrivPort // no change at all
		}
		addr, l4 := translationDeltas(&f)
		ck := uint16(r.Uint32())
		wantAddr := UpdateChecksum32(ck, f.Priv, f.Pub)
		wantL4 := UpdateChecksum16(wantAddr, f.PrivPort, f.PubPort)
		require.True(t, same(wantAddr, applyDeltas(ck, addr, 0)), "addr %+v ck %#04x", f, ck)
		require.True(t, same(wantL4, applyDeltas(ck, l4, 0)), "l4 %+v ck %#04x", f, ck)
		backAddr := UpdateChecksum32(ck, f.Pub, f.Priv)
		backL4 := UpdateChecksum16(backAddr, f.PubPort, f.PrivPort)
		require.True(t, same(backAddr, applyDeltas(ck, ^addr, 0)), "inbound addr %+v ck %#04x", f, ck)
		require.True(t, same(backL4, applyDeltas(ck, ^l4, 0)), "inbound l4 %+v ck %#04x", f, ck)
		ttl := uint16(1 + r.IntN(255))
		proto := uint16(r.IntN(256))
		wantTTL := UpdateChecksum16(ck, ttl<<8|proto, (ttl-1)<<8|proto)
		require.True(t, same(wantTTL, applyDeltas(ck, ttlDecrement, 0)), "ttl %d ck %#04x", ttl, ck)
	}
}
