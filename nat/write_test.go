package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeCheckL4 checks with the oracle that the transport checksum of the
// IPv4 packet ip verifies.
func writeCheckL4(t *testing.T, ip IPv4) {
	t.Helper()
	l4 := ip.Payload()
	if ip.Protocol() == ProtoUDP {
		u, ok := ParseUDP(l4)
		require.True(t, ok, "UDP length field")
		l4 = u // the UDP checksum covers the UDP length only
	}
	var initial uint32
	if ip.Protocol() != ProtoICMP {
		initial = naiveSum(naivePseudoHeader(ip.Src(), ip.Dst(), ip.Protocol(), uint16(len(l4))), 0)
	}
	assert.Zero(t, naiveChecksum(l4, initial), "transport checksum does not verify")
}

// writePayload returns n bytes of a recognisable pattern.
func writePayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

func TestWriteIPv4(t *testing.T) {
	tests := []struct {
		name   string
		bufLen int
		h      IPv4Fields
		ok     bool
	}{
		{name: "header only", bufLen: 20, h: IPv4Fields{TotalLen: 20, TTL: 64, Protocol: ProtoUDP}, ok: true},
		{name: "no df", bufLen: 100, h: IPv4Fields{TotalLen: 100, ID: 9, TTL: 1, Protocol: ProtoTCP, Src: 1, Dst: 2}, ok: true},
		{name: "all ones", bufLen: 40, h: IPv4Fields{TOS: 0xff, TotalLen: 40, ID: 0xffff, DontFragment: true, TTL: 0xff, Protocol: 0xff, Src: 0xffffffff, Dst: 0xffffffff}, ok: true},
		{name: "total length below header", bufLen: 40, h: IPv4Fields{TotalLen: 19}},
		{name: "total length zero", bufLen: 40, h: IPv4Fields{}},
		{name: "buffer too small", bufLen: 39, h: IPv4Fields{TotalLen: 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, tt.bufLen)
			ip := WriteIPv4(b, tt.h)
			if !tt.ok {
				assert.Nil(t, ip)
				assert.Equal(t, make([]byte, tt.bufLen), b, "nothing may be written")
				return
			}
			require.Len(t, ip, int(tt.h.TotalLen))
			parsed, ok := ParseIPv4(b)
			require.True(t, ok)
			assert.Zero(t, naiveChecksum(parsed[:IPv4MinLen], 0))
			assert.Equal(t, tt.h.TOS, parsed.TOS())
			assert.Equal(t, tt.h.ID, parsed.ID())
			assert.Equal(t, tt.h.DontFragment, parsed.DF())
			assert.False(t, parsed.IsFragment())
			assert.Equal(t, tt.h.TTL, parsed.TTL())
			assert.Equal(t, tt.h.Protocol, parsed.Protocol())
			assert.Equal(t, tt.h.Src, parsed.Src())
			assert.Equal(t, tt.h.Dst, parsed.Dst())
		})
	}
}

func TestBuildRoundTrip(t *testing.T) {
	const src, dst = 0x0a000104, 0xc6120001
	tests := []struct {
		name    string
		payload int
		build   func(b, payload []byte) int
		check   func(t *testing.T, ip IPv4, payload []byte)
	}{
		{name: "udp", payload: 100, build: func(b, p []byte) int {
			return BuildUDP(b, src, dst, 40000, 53, 64, p)
		}, check: func(t *testing.T, ip IPv4, p []byte) {
			u, ok := ParseUDP(ip.Payload())
			require.True(t, ok)
			assert.Equal(t, uint16(40000), u.SrcPort())
			assert.Equal(t, uint16(53), u.DstPort())
			assert.Equal(t, UDPLen+len(p), u.Length())
			assert.NotZero(t, u.Checksum(), "a built UDP datagram always has a checksum")
			assert.Equal(t, p, []byte(u.Payload()))
		}},
		{name: "udp empty", payload: 0, build: func(b, p []byte) int {
			return BuildUDP(b, src, dst, 1, 2, 64, p)
		}, check: func(t *testing.T, ip IPv4, p []byte) {
			u, ok := ParseUDP(ip.Payload())
			require.True(t, ok)
			assert.Equal(t, UDPLen, u.Length())
		}},
		{name: "tcp odd payload", payload: 33, build: func(b, p []byte) int {
			return BuildTCP(b, TCPSegment{Src: src, Dst: dst, SrcPort: 40000, DstPort: 443, Seq: 0xfffffff0, Ack: 0x10, Flags: TCPFlagPSH | TCPFlagACK, TTL: 64, Payload: p})
		}, check: func(t *testing.T, ip IPv4, p []byte) {
			tcp, ok := ParseTCP(ip.Payload())
			require.True(t, ok)
			assert.Equal(t, uint16(40000), tcp.SrcPort())
			assert.Equal(t, uint16(443), tcp.DstPort())
			assert.Equal(t, uint32(0xfffffff0), tcp.Seq())
			assert.Equal(t, uint32(0x10), tcp.Ack())
			assert.Equal(t, uint8(TCPFlagPSH|TCPFlagACK), tcp.Flags())
			assert.Equal(t, p, []byte(tcp.Payload()))
		}},
		{name: "tcp rst", payload: 0, build: func(b, p []byte) int {
			return BuildTCP(b, TCPSegment{Src: src, Dst: dst, SrcPort: 1025, DstPort: 80, Seq: 1, Flags: TCPFlagRST, TTL: 64, Payload: p})
		}, check: func(t *testing.T, ip IPv4, p []byte) {
			tcp, ok := ParseTCP(ip.Payload())
			require.True(t, ok)
			assert.Equal(t, uint8(TCPFlagRST), tcp.Flags())
			assert.Empty(t, tcp.Payload())
		}},
		{name: "icmp echo reply", payload: 56, build: func(b, p []byte) int {
			return BuildICMPEcho(b, src, dst, ICMPEchoReply, 77, 3, 64, p)
		}, check: func(t *testing.T, ip IPv4, p []byte) {
			c, ok := ParseICMP(ip.Payload())
			require.True(t, ok)
			assert.Equal(t, uint8(ICMPEchoReply), c.Type())
			assert.Equal(t, uint16(77), c.ID())
			assert.Equal(t, uint16(3), c.Seq())
			assert.Equal(t, p, []byte(c.Payload()))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writePayload(tt.payload)
			b := make([]byte, 1600)
			n := tt.build(b, p)
			require.NotZero(t, n)
			ip, ok := ParseIPv4(b[:n])
			require.True(t, ok, "built packet must parse")
			assert.Len(t, ip, n)
			assert.True(t, ip.DF())
			assert.Equal(t, uint8(64), ip.TTL())
			assert.Equal(t, uint32(src), ip.Src())
			assert.Equal(t, uint32(dst), ip.Dst())
			writeCheckL4(t, ip)
			tt.check(t, ip, p)

			// The payload may already sit at its place in the buffer.
			b2 := make([]byte, 1600)
			hdr := n - len(p)
			copy(b2[hdr:], p)
			require.Equal(t, n, tt.build(b2, b2[hdr:hdr+len(p)]))
			assert.Equal(t, b[:n], b2[:n], "in-place payload")

			// One byte short of room writes nothing.
			short := make([]byte, n-1)
			assert.Zero(t, tt.build(short, p))
			assert.Equal(t, make([]byte, n-1), short)
		})
	}
}

func TestBuildTooLarge(t *testing.T) {
	b := make([]byte, 70000)
	big := make([]byte, 65535)
	tests := []struct {
		name  string
		build func(payload int) int
		hdr   int
	}{
		{name: "udp", hdr: IPv4MinLen + UDPLen, build: func(n int) int { return BuildUDP(b, 1, 2, 3, 4, 64, big[:n]) }},
		{name: "tcp", hdr: IPv4MinLen + TCPMinLen, build: func(n int) int {
			return BuildTCP(b, TCPSegment{Src: 1, Dst: 2, SrcPort: 3, DstPort: 4, Seq: 5, Ack: 6, Flags: TCPFlagACK, TTL: 64, Payload: big[:n]})
		}},
		{name: "icmp echo", hdr: IPv4MinLen + ICMPHeaderLen, build: func(n int) int {
			return BuildICMPEcho(b, 1, 2, ICMPEchoRequest, 3, 4, 64, big[:n])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, 65535, tt.build(65535-tt.hdr), "largest IPv4 packet")
			assert.Zero(t, tt.build(65535-tt.hdr+1), "one byte over the IPv4 maximum")
		})
	}
}

func TestBuildICMPError(t *testing.T) {
	const router, host = 0xc6130002, 0x0a000104
	orig := func(payload int) IPv4 {
		b := make([]byte, 1600)
		n := BuildUDP(b, host, 0xc6120001, 40000, 53, 3, writePayload(payload))
		require.NotZero(t, n)
		ip, ok := ParseIPv4(b[:n])
		require.True(t, ok)
		return ip
	}
	tests := []struct {
		name      string
		typ, code uint8
		mtu       uint16
		origLen   int // payload bytes of the original UDP datagram
		bufLen    int
		wantLen   int // 0: nothing written
		wantMTU   uint16
	}{
		{name: "time exceeded small", typ: ICMPTimeExceeded, code: ICMPCodeTTLExceeded, origLen: 10, bufLen: 1600, wantLen: 28 + 38},
		{name: "port unreachable", typ: ICMPDestUnreachable, code: ICMPCodePortUnreachable, mtu: 1400, origLen: 10, bufLen: 1600, wantLen: 28 + 38},
		{name: "frag needed carries mtu", typ: ICMPDestUnreachable, code: ICMPCodeFragNeeded, mtu: 1400, origLen: 1472, bufLen: 1600, wantLen: 576, wantMTU: 1400},
		{name: "exactly 576", typ: ICMPTimeExceeded, origLen: 576 - 28 - 28, bufLen: 576, wantLen: 576},
		{name: "one over 576 is cut", typ: ICMPTimeExceeded, origLen: 576 - 28 - 28 + 1, bufLen: 576, wantLen: 576},
		{name: "large original cut", typ: ICMPParamProblem, origLen: 1472, bufLen: 1600, wantLen: 576},
		{name: "buffer too small", typ: ICMPTimeExceeded, origLen: 1472, bufLen: 575},
		{name: "buffer too small for short quote", typ: ICMPTimeExceeded, origLen: 0, bufLen: 28 + 27},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := orig(tt.origLen)
			b := make([]byte, tt.bufLen)
			n := BuildICMPError(b, router, host, tt.typ, tt.code, tt.mtu, o, 64)
			require.Equal(t, tt.wantLen, n)
			if n == 0 {
				assert.Equal(t, make([]byte, tt.bufLen), b, "nothing may be written")
				return
			}
			ip, ok := ParseIPv4(b[:n])
			require.True(t, ok)
			assert.LessOrEqual(t, ip.TotalLen(), ICMPErrorMaxLen)
			assert.Equal(t, uint8(ProtoICMP), ip.Protocol())
			assert.Equal(t, uint32(router), ip.Src())
			assert.Equal(t, uint32(host), ip.Dst())
			writeCheckL4(t, ip)
			c, ok := ParseICMP(ip.Payload())
			require.True(t, ok)
			assert.Equal(t, tt.typ, c.Type())
			assert.Equal(t, tt.code, c.Code())
			assert.Equal(t, tt.wantMTU, c.MTU())
			assert.Zero(t, c.ID(), "unused bytes 4-5 must be zero")
			assert.Equal(t, []byte(o[:n-28]), c.Payload(), "quote is a prefix of the original")

			inner, ok := ParseIPv4Embedded(c.Payload())
			require.True(t, ok)
			assert.True(t, inner.ChecksumValid())
			assert.Equal(t, o.TotalLen(), inner.TotalLen())
			u, ok := ParseUDPEmbedded(inner.Payload())
			require.True(t, ok)
			assert.Equal(t, uint16(40000), u.SrcPort())
		})
	}
}

func TestBuildICMPErrorInPlace(t *testing.T) {
	// The original packet sits in the buffer right after an Ethernet header
	// and the error is written over it, at the same place.
	const router, host = 0xc6130002, 0x0a000104
	frame := make([]byte, 2048)
	n := BuildTCP(frame[EthernetLen:], TCPSegment{Src: host, Dst: 0xc6120001, SrcPort: 40000, DstPort: 443, Seq: 1, Ack: 2, Flags: TCPFlagACK, TTL: 1, Payload: writePayload(1000)})
	require.NotZero(t, n)
	orig, ok := ParseIPv4(frame[EthernetLen : EthernetLen+n])
	require.True(t, ok)
	want := make([]byte, 2048)
	wantN := BuildICMPError(want, router, host, ICMPTimeExceeded, 0, 0, append(IPv4(nil), orig...), 64)
	require.Equal(t, ICMPErrorMaxLen, wantN)

	got := BuildICMPError(frame[EthernetLen:], router, host, ICMPTimeExceeded, 0, 0, orig, 64)
	require.Equal(t, wantN, got)
	assert.Equal(t, want[:wantN], frame[EthernetLen:EthernetLen+got])
}

func TestBuildICMPErrorBadOriginal(t *testing.T) {
	b := make([]byte, 600)
	assert.Zero(t, BuildICMPError(b, 1, 2, ICMPTimeExceeded, 0, 0, nil, 64))
	assert.Zero(t, BuildICMPError(b, 1, 2, ICMPTimeExceeded, 0, 0, make(IPv4, IPv4MinLen-1), 64))
	assert.Equal(t, make([]byte, 600), b)
}

func TestBuildNoAllocs(t *testing.T) {
	b := make([]byte, 2048)
	payload := writePayload(64)
	origBuf := make([]byte, 1600)
	on := BuildUDP(origBuf, 0x0a000104, 0xc6120001, 40000, 53, 1, writePayload(1000))
	require.NotZero(t, on)
	orig := IPv4(origBuf[:on])
	var sink int
	tests := []struct {
		name string
		fn   func()
	}{
		{name: "WriteEthernet", fn: func() { sink += WriteEthernet(b, [6]byte{1}, [6]byte{2}, EtherTypeIPv4) }},
		{name: "WriteARP", fn: func() { sink += WriteARP(b, ARPReply, [6]byte{1}, 1, [6]byte{2}, 2) }},
		{name: "WriteIPv4", fn: func() { sink += len(WriteIPv4(b, IPv4Fields{TotalLen: 40, TTL: 64, Protocol: ProtoTCP})) }},
		{name: "BuildUDP", fn: func() { sink += BuildUDP(b, 1, 2, 3, 4, 64, payload) }},
		{name: "BuildTCP", fn: func() {
			sink += BuildTCP(b, TCPSegment{Src: 1, Dst: 2, SrcPort: 3, DstPort: 4, Seq: 5, Ack: 6, Flags: TCPFlagRST, TTL: 64, Payload: payload})
		}},
		{name: "BuildICMPEcho", fn: func() { sink += BuildICMPEcho(b, 1, 2, ICMPEchoReply, 3, 4, 64, payload) }},
		{name: "BuildICMPError", fn: func() { sink += BuildICMPError(b, 1, 2, ICMPDestUnreachable, ICMPCodeFragNeeded, 1400, orig, 64) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(100, tt.fn))
		})
	}
	assert.NotZero(t, sink)
}

func BenchmarkBuildUDP(b *testing.B) {
	buf := make([]byte, 128)
	payload := make([]byte, 18) // a 64-byte Ethernet frame
	b.ReportAllocs()
	var sink int
	for b.Loop() {
		sink += BuildUDP(buf, 0x0a000104, 0xc6120001, 40000, 53, 64, payload)
	}
	if sink == 0 {
		b.Fatal("BuildUDP wrote nothing")
	}
}
