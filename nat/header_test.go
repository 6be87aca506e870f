package nat

import (
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hdrUDPPacket returns a valid IPv4/UDP packet with a 6-byte payload.
func hdrUDPPacket(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 128)
	n := BuildUDP(b, 0x0a000104, 0xc6120001, 40000, 53, 64, []byte("abcdef"))
	require.Equal(t, IPv4MinLen+UDPLen+6, n)
	return b[:n]
}

// hdrFixIPv4Checksum recomputes the header checksum of the IPv4 header at
// the start of b with the oracle, over as much of the header as b holds.
func hdrFixIPv4Checksum(b []byte) {
	hl := int(b[0]&0x0f) * 4
	if hl > len(b) {
		hl = len(b)
	}
	if hl < ipv4ChecksumOff+2 {
		return
	}
	binary.BigEndian.PutUint16(b[ipv4ChecksumOff:], naiveChecksumWithout(b[:hl], ipv4ChecksumOff, 0))
}

// hdrIPv4WithOptions returns a valid IPv4/UDP packet whose header carries
// 4 bytes of options (IHL 6).
func hdrIPv4WithOptions(t *testing.T) []byte {
	t.Helper()
	p := hdrUDPPacket(t)
	b := make([]byte, 0, len(p)+4)
	b = append(b, p[:IPv4MinLen]...)
	b = append(b, 0x01, 0x01, 0x01, 0x00) // NOP, NOP, NOP, end of options
	b = append(b, p[IPv4MinLen:]...)
	b[0] = 0x46
	binary.BigEndian.PutUint16(b[ipv4TotalLenOff:], uint16(len(b)))
	hdrFixIPv4Checksum(b)
	return b
}

func TestParseIPv4(t *testing.T) {
	tests := []struct {
		name string
		// mutate changes a valid UDP packet; fix recomputes the header
		// checksum afterwards so that only the intended fault remains.
		mutate  func(b []byte) []byte
		fix     bool
		ok      bool
		wantLen int
	}{
		{name: "valid", mutate: func(b []byte) []byte { return b }, ok: true, wantLen: 34},
		{name: "ethernet padding dropped", mutate: func(b []byte) []byte { return append(b, make([]byte, 12)...) }, ok: true, wantLen: 34},
		{name: "empty", mutate: func(b []byte) []byte { return nil }},
		{name: "short", mutate: func(b []byte) []byte { return b[:IPv4MinLen-1] }},
		{name: "version 6", fix: true, mutate: func(b []byte) []byte { b[0] = 0x65; return b }},
		{name: "version 0", fix: true, mutate: func(b []byte) []byte { b[0] = 0x05; return b }},
		{name: "ihl 4", fix: true, mutate: func(b []byte) []byte { b[0] = 0x44; return b }},
		{name: "ihl 0", fix: true, mutate: func(b []byte) []byte { b[0] = 0x40; return b }},
		{name: "ihl beyond buffer", fix: true, mutate: func(b []byte) []byte { b[0] = 0x4f; return b }},
		{name: "total length below header", fix: true, mutate: func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[ipv4TotalLenOff:], 19)
			return b
		}},
		{name: "total length zero", fix: true, mutate: func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[ipv4TotalLenOff:], 0)
			return b
		}},
		{name: "total length beyond buffer", fix: true, mutate: func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[ipv4TotalLenOff:], uint16(len(b)+1))
			return b
		}},
		{name: "truncated payload", mutate: func(b []byte) []byte { return b[:len(b)-1] }},
		{name: "bad header checksum", mutate: func(b []byte) []byte { b[ipv4ChecksumOff] ^= 0x01; return b }},
		{name: "bad header checksum from ttl", mutate: func(b []byte) []byte { b[ipv4TTLOff]--; return b }},
		{name: "header only", fix: true, ok: true, wantLen: 20, mutate: func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[ipv4TotalLenOff:], IPv4MinLen)
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mutate(hdrUDPPacket(t))
			if tt.fix {
				hdrFixIPv4Checksum(b)
			}
			ip, ok := ParseIPv4(b)
			require.Equal(t, tt.ok, ok)
			if !ok {
				assert.Nil(t, ip)
				return
			}
			assert.Len(t, ip, tt.wantLen)
			assert.Equal(t, tt.wantLen, ip.TotalLen())
			assert.True(t, ip.ChecksumValid())
		})
	}
}

func TestParseIPv4Options(t *testing.T) {
	b := hdrIPv4WithOptions(t)
	ip, ok := ParseIPv4(b)
	require.True(t, ok)
	assert.Equal(t, 24, ip.HeaderLen())
	assert.Equal(t, ip.Checksum(), ip.ComputeChecksum())
	u, ok := ParseUDP(ip.Payload())
	require.True(t, ok)
	assert.Equal(t, uint16(40000), u.SrcPort())
	assert.Equal(t, []byte("abcdef"), u.Payload())
	assert.Equal(t, TransportChecksum(ip), u.Checksum(), "IP options are not part of the UDP checksum")

	b[IPv4MinLen] = 0x02 // option byte changed: header checksum no longer valid
	_, ok = ParseIPv4(b)
	assert.False(t, ok)
}

func TestIPv4Accessors(t *testing.T) {
	b := make([]byte, 64)
	ip := WriteIPv4(b, IPv4Fields{TOS: 0xb8, TotalLen: 40, ID: 0xbeef, DontFragment: true, TTL: 17, Protocol: ProtoTCP, Src: 0x0a000104, Dst: 0xc6120001})
	require.NotNil(t, ip)
	require.Len(t, ip, 40)
	parsed, ok := ParseIPv4(b)
	require.True(t, ok, "WriteIPv4 must produce a valid header")
	require.Len(t, parsed, 40)

	assert.Equal(t, 20, ip.HeaderLen())
	assert.Equal(t, 40, ip.TotalLen())
	assert.Equal(t, uint8(0xb8), ip.TOS())
	assert.Equal(t, uint16(0xbeef), ip.ID())
	assert.True(t, ip.DF())
	assert.False(t, ip.MF())
	assert.Equal(t, 0, ip.FragOffset())
	assert.False(t, ip.IsFragment())
	assert.Equal(t, uint8(17), ip.TTL())
	assert.Equal(t, uint8(ProtoTCP), ip.Protocol())
	assert.Equal(t, uint32(0x0a000104), ip.Src())
	assert.Equal(t, uint32(0xc6120001), ip.Dst())
	assert.Len(t, ip.Payload(), 20)
	assert.Equal(t, ip.ComputeChecksum(), ip.Checksum())
	assert.Equal(t, []byte{10, 0, 1, 4}, []byte(ip[ipv4SrcOff:ipv4SrcOff+4]), "address must be big endian on the wire")

	ip.SetSrc(0xc6130a0a)
	ip.SetDst(0x0a000105)
	ip.SetTTL(3)
	ip.SetID(7)
	ip.SetTotalLen(30)
	assert.False(t, ip.ChecksumValid(), "setters must not touch the checksum")
	ip.SetChecksum(ip.ComputeChecksum())
	assert.True(t, ip.ChecksumValid())
	assert.Equal(t, uint32(0xc6130a0a), ip.Src())
	assert.Equal(t, uint32(0x0a000105), ip.Dst())
	assert.Equal(t, uint8(3), ip.TTL())
	assert.Equal(t, uint16(7), ip.ID())
	assert.Equal(t, 30, ip.TotalLen())
	assert.Len(t, ip.Payload(), 10)
}

func TestIPv4Fragments(t *testing.T) {
	tests := []struct {
		name     string
		frag     uint16
		df, mf   bool
		offset   int
		fragment bool
	}{
		{name: "whole", frag: 0},
		{name: "df", frag: 0x4000, df: true},
		{name: "first fragment", frag: 0x2000, mf: true, fragment: true},
		{name: "middle fragment", frag: 0x2000 | 185, mf: true, offset: 1480, fragment: true},
		{name: "last fragment", frag: 185, offset: 1480, fragment: true},
		{name: "max offset", frag: 0x1fff, offset: 0x1fff * 8, fragment: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hdrUDPPacket(t)
			binary.BigEndian.PutUint16(b[ipv4FragOff:], tt.frag)
			hdrFixIPv4Checksum(b)
			ip, ok := ParseIPv4(b)
			require.True(t, ok)
			assert.Equal(t, tt.df, ip.DF())
			assert.Equal(t, tt.mf, ip.MF())
			assert.Equal(t, tt.offset, ip.FragOffset())
			assert.Equal(t, tt.fragment, ip.IsFragment())
		})
	}
}

func TestParseIPv4Embedded(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(b []byte) []byte
		fix        bool
		ok         bool
		wantLen    int
		checksumOK bool
	}{
		{name: "whole packet", mutate: func(b []byte) []byte { return b }, ok: true, wantLen: 34, checksumOK: true},
		{name: "header and 8 bytes", mutate: func(b []byte) []byte { return b[:28] }, ok: true, wantLen: 28, checksumOK: true},
		{name: "header only", mutate: func(b []byte) []byte { return b[:20] }, ok: true, wantLen: 20, checksumOK: true},
		{name: "trailing bytes cut", mutate: func(b []byte) []byte { return append(b, 1, 2, 3) }, ok: true, wantLen: 34, checksumOK: true},
		{name: "bad checksum accepted", mutate: func(b []byte) []byte { b[ipv4ChecksumOff] ^= 0xff; return b }, ok: true, wantLen: 34},
		{name: "short", mutate: func(b []byte) []byte { return b[:19] }},
		{name: "version 6", fix: true, mutate: func(b []byte) []byte { b[0] = 0x65; return b }},
		{name: "ihl 4", fix: true, mutate: func(b []byte) []byte { b[0] = 0x44; return b }},
		{name: "ihl beyond quote", fix: true, mutate: func(b []byte) []byte { b[0] = 0x46; return b[:23] }},
		{name: "total length below header", fix: true, mutate: func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[ipv4TotalLenOff:], 19)
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mutate(hdrUDPPacket(t))
			if tt.fix {
				hdrFixIPv4Checksum(b)
			}
			ip, ok := ParseIPv4Embedded(b)
			require.Equal(t, tt.ok, ok)
			if !ok {
				return
			}
			assert.Len(t, ip, tt.wantLen)
			assert.Equal(t, 34, ip.TotalLen(), "TotalLen is the original packet's")
			assert.Len(t, ip.Payload(), tt.wantLen-IPv4MinLen)
			assert.Equal(t, tt.checksumOK, ip.ChecksumValid())
			if len(ip.Payload()) >= UDPLen {
				u, ok := ParseUDPEmbedded(ip.Payload())
				require.True(t, ok)
				assert.Equal(t, uint16(40000), u.SrcPort())
				assert.Equal(t, uint16(53), u.DstPort())
				assert.Equal(t, 14, u.Length())
			}
		})
	}
}

func TestParseTCP(t *testing.T) {
	seg := func() []byte {
		b := make([]byte, 128)
		n := BuildTCP(b, TCPSegment{Src: 0x0a000104, Dst: 0xc6120001, SrcPort: 40000, DstPort: 443, Seq: 0x01020304, Ack: 0x05060708, Flags: TCPFlagSYN | TCPFlagACK, TTL: 64, Payload: []byte("data")})
		require.NotZero(t, n)
		return b[IPv4MinLen:n]
	}
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		ok     bool
		hlen   int
	}{
		{name: "valid", mutate: func(b []byte) []byte { return b }, ok: true, hlen: 20},
		{name: "header only", mutate: func(b []byte) []byte { return b[:20] }, ok: true, hlen: 20},
		{name: "options", mutate: func(b []byte) []byte { b[tcpDataOffOff] = 6 << 4; return b }, ok: true, hlen: 24},
		{name: "empty", mutate: func(b []byte) []byte { return nil }},
		{name: "short", mutate: func(b []byte) []byte { return b[:19] }},
		{name: "embedded 8 bytes", mutate: func(b []byte) []byte { return b[:8] }},
		{name: "data offset 4", mutate: func(b []byte) []byte { b[tcpDataOffOff] = 4 << 4; return b }},
		{name: "data offset 0", mutate: func(b []byte) []byte { b[tcpDataOffOff] = 0; return b }},
		{name: "data offset beyond", mutate: func(b []byte) []byte { b[tcpDataOffOff] = 6 << 4; return b[:20] }},
		{name: "data offset 15", mutate: func(b []byte) []byte { b[tcpDataOffOff] = 15 << 4; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tcp, ok := ParseTCP(tt.mutate(seg()))
			require.Equal(t, tt.ok, ok)
			if !ok {
				assert.Nil(t, tcp)
				return
			}
			assert.Equal(t, tt.hlen, tcp.HeaderLen())
			assert.Len(t, tcp.Payload(), len(tcp)-tt.hlen)
		})
	}
}

func TestTCPAccessors(t *testing.T) {
	b := make([]byte, 128)
	n := BuildTCP(b, TCPSegment{Src: 0x0a000104, Dst: 0xc6120001, SrcPort: 40000, DstPort: 443, Seq: 0x01020304, Ack: 0x05060708, Flags: TCPFlagFIN | TCPFlagACK, TTL: 64, Payload: []byte("data")})
	require.Equal(t, IPv4MinLen+TCPMinLen+4, n)
	ip, ok := ParseIPv4(b[:n])
	require.True(t, ok)
	tcp, ok := ParseTCP(ip.Payload())
	require.True(t, ok)
	assert.Equal(t, uint16(40000), tcp.SrcPort())
	assert.Equal(t, uint16(443), tcp.DstPort())
	assert.Equal(t, uint32(0x01020304), tcp.Seq())
	assert.Equal(t, uint32(0x05060708), tcp.Ack())
	assert.Equal(t, uint8(TCPFlagFIN|TCPFlagACK), tcp.Flags())
	assert.Equal(t, uint16(0xffff), tcp.Window())
	assert.Equal(t, TCPMinLen, tcp.HeaderLen())
	assert.True(t, tcp.HasChecksumField())
	assert.Equal(t, []byte("data"), tcp.Payload())
	assert.Equal(t, TransportChecksum(ip), tcp.Checksum())

	tcp.SetSrcPort(1025)
	tcp.SetDstPort(8443)
	tcp.SetChecksum(0xabcd)
	assert.Equal(t, uint16(1025), tcp.SrcPort())
	assert.Equal(t, uint16(8443), tcp.DstPort())
	assert.Equal(t, uint16(0xabcd), tcp.Checksum())

	emb, ok := ParseTCPEmbedded(ip.Payload()[:8])
	require.True(t, ok)
	assert.Equal(t, uint16(1025), emb.SrcPort())
	assert.Equal(t, uint32(0x01020304), emb.Seq())
	assert.False(t, emb.HasChecksumField(), "an 8-byte quote has no TCP checksum field")
	_, ok = ParseTCPEmbedded(ip.Payload()[:7])
	assert.False(t, ok)
}

func TestParseUDP(t *testing.T) {
	dgram := func() []byte { return append([]byte(nil), hdrUDPPacket(t)[IPv4MinLen:]...) }
	tests := []struct {
		name    string
		mutate  func(b []byte) []byte
		ok      bool
		wantLen int
	}{
		{name: "valid", mutate: func(b []byte) []byte { return b }, ok: true, wantLen: 14},
		{name: "trailing bytes cut", mutate: func(b []byte) []byte { return append(b, 0, 0) }, ok: true, wantLen: 14},
		{name: "header only", mutate: func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[udpLengthOff:], 8)
			return b[:8]
		}, ok: true, wantLen: 8},
		{name: "empty", mutate: func(b []byte) []byte { return nil }},
		{name: "short", mutate: func(b []byte) []byte { return b[:7] }},
		{name: "length 7", mutate: func(b []byte) []byte { binary.BigEndian.PutUint16(b[udpLengthOff:], 7); return b }},
		{name: "length 0", mutate: func(b []byte) []byte { binary.BigEndian.PutUint16(b[udpLengthOff:], 0); return b }},
		{name: "length beyond", mutate: func(b []byte) []byte { return b[:13] }},
		{name: "length max", mutate: func(b []byte) []byte { binary.BigEndian.PutUint16(b[udpLengthOff:], 0xffff); return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok := ParseUDP(tt.mutate(dgram()))
			require.Equal(t, tt.ok, ok)
			if !ok {
				assert.Nil(t, u)
				return
			}
			assert.Len(t, u, tt.wantLen)
			assert.Equal(t, tt.wantLen, u.Length())
			assert.Len(t, u.Payload(), tt.wantLen-UDPLen)
		})
	}
}

func TestUDPAccessors(t *testing.T) {
	ip, ok := ParseIPv4(hdrUDPPacket(t))
	require.True(t, ok)
	u, ok := ParseUDP(ip.Payload())
	require.True(t, ok)
	assert.Equal(t, uint16(40000), u.SrcPort())
	assert.Equal(t, uint16(53), u.DstPort())
	assert.Equal(t, 14, u.Length())
	assert.Equal(t, []byte("abcdef"), u.Payload())
	assert.Equal(t, TransportChecksum(ip), u.Checksum())

	u.SetSrcPort(1)
	u.SetDstPort(2)
	u.SetChecksum(0)
	assert.Equal(t, uint16(1), u.SrcPort())
	assert.Equal(t, uint16(2), u.DstPort())
	assert.Equal(t, uint16(0), u.Checksum())
	assert.Equal(t, []byte{0, 1, 0, 2}, []byte(u[:4]), "ports must be big endian on the wire")
}

func TestParseICMP(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{name: "empty", b: nil},
		{name: "short", b: make([]byte, 7)},
		{name: "header only", b: make([]byte, 8), ok: true},
		{name: "with data", b: make([]byte, 64), ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := ParseICMP(tt.b)
			require.Equal(t, tt.ok, ok)
			if ok {
				assert.Len(t, c.Payload(), len(tt.b)-ICMPHeaderLen)
			}
		})
	}
}

func TestICMPAccessors(t *testing.T) {
	b := make([]byte, 128)
	n := BuildICMPEcho(b, 0x0a000104, 0xc6120001, ICMPEchoRequest, 0x1234, 0x5678, 64, []byte("ping"))
	require.Equal(t, IPv4MinLen+ICMPHeaderLen+4, n)
	ip, ok := ParseIPv4(b[:n])
	require.True(t, ok)
	c, ok := ParseICMP(ip.Payload())
	require.True(t, ok)
	assert.Equal(t, uint8(ICMPEchoRequest), c.Type())
	assert.Equal(t, uint8(0), c.Code())
	assert.Equal(t, uint16(0x1234), c.ID())
	assert.Equal(t, uint16(0x5678), c.Seq())
	assert.Equal(t, []byte("ping"), c.Payload())
	assert.Equal(t, TransportChecksum(ip), c.Checksum())

	c.SetID(0x4321)
	c.SetChecksum(0xbeef)
	c.SetMTU(1400)
	assert.Equal(t, uint16(0x4321), c.ID())
	assert.Equal(t, uint16(0xbeef), c.Checksum())
	assert.Equal(t, uint16(1400), c.MTU())
	assert.Equal(t, uint16(1400), c.Seq(), "MTU shares bytes 6-7 with the echo sequence number")
}

func TestIsICMPError(t *testing.T) {
	tests := []struct {
		typ  uint8
		want bool
	}{
		{ICMPEchoReply, false},
		{ICMPDestUnreachable, true},
		{4, false}, // source quench (deprecated)
		{5, false}, // redirect
		{ICMPEchoRequest, false},
		{ICMPTimeExceeded, true},
		{ICMPParamProblem, true},
		{13, false}, // timestamp
		{255, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(int(tt.typ)), func(t *testing.T) {
			assert.Equal(t, tt.want, IsICMPError(tt.typ))
		})
	}
}

func TestEthernet(t *testing.T) {
	dst := [6]byte{0x02, 0, 0, 0, 0, 0x01}
	src := [6]byte{0x02, 0, 0, 0, 0, 0x02}
	b := make([]byte, 60)
	require.Equal(t, EthernetLen, WriteEthernet(b, dst, src, EtherTypeIPv4))
	e, ok := ParseEthernet(b)
	require.True(t, ok)
	assert.Equal(t, dst, e.Dst())
	assert.Equal(t, src, e.Src())
	assert.Equal(t, dst[:], e.DstMAC())
	assert.Equal(t, src[:], e.SrcMAC())
	assert.Equal(t, uint16(EtherTypeIPv4), e.EtherType())
	assert.Len(t, e.Payload(), 60-EthernetLen)

	// Swap addresses as a reply would.
	e.SetDst(src)
	e.SetSrc(dst)
	e.SetEtherType(EtherTypeARP)
	assert.Equal(t, src, e.Dst())
	assert.Equal(t, dst, e.Src())
	assert.Equal(t, []byte{0x08, 0x06}, []byte(e[12:14]))

	_, ok = ParseEthernet(b[:EthernetLen-1])
	assert.False(t, ok)
	assert.Zero(t, WriteEthernet(b[:EthernetLen-1], dst, src, EtherTypeIPv4))
}

func TestARP(t *testing.T) {
	smac := [6]byte{0x02, 0xaa, 0, 0, 0, 0x01}
	tmac := [6]byte{0x02, 0xbb, 0, 0, 0, 0x02}
	valid := func() []byte {
		b := make([]byte, 46) // padded to the Ethernet minimum
		require.Equal(t, ARPLen, WriteARP(b, ARPRequest, smac, 0xc6130002, tmac, 0xc6130001))
		return b
	}
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		ok     bool
	}{
		{name: "valid", mutate: func(b []byte) []byte { return b }, ok: true},
		{name: "exact length", mutate: func(b []byte) []byte { return b[:ARPLen] }, ok: true},
		{name: "empty", mutate: func(b []byte) []byte { return nil }},
		{name: "short", mutate: func(b []byte) []byte { return b[:ARPLen-1] }},
		{name: "htype 6", mutate: func(b []byte) []byte { b[1] = 6; return b }},
		{name: "ptype ipv6", mutate: func(b []byte) []byte { b[2], b[3] = 0x86, 0xdd; return b }},
		{name: "hlen 8", mutate: func(b []byte) []byte { b[4] = 8; return b }},
		{name: "plen 16", mutate: func(b []byte) []byte { b[5] = 16; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ARP(tt.mutate(valid()))
			require.Equal(t, tt.ok, a.IsValid())
			if !tt.ok {
				return
			}
			assert.Equal(t, uint16(ARPRequest), a.Op())
			assert.Equal(t, smac[:], a.SenderMAC())
			assert.Equal(t, uint32(0xc6130002), a.SenderIP())
			assert.Equal(t, tmac[:], a.TargetMAC())
			assert.Equal(t, uint32(0xc6130001), a.TargetIP())
		})
	}
	assert.Zero(t, WriteARP(make([]byte, ARPLen-1), ARPReply, smac, 1, tmac, 2))
}

func TestParseNoAllocs(t *testing.T) {
	pkt := hdrUDPPacket(t)
	l4 := pkt[IPv4MinLen:]
	var sink int
	tests := []struct {
		name string
		fn   func()
	}{
		{name: "ParseEthernet", fn: func() { e, _ := ParseEthernet(pkt); sink += len(e) }},
		{name: "ParseIPv4", fn: func() { ip, _ := ParseIPv4(pkt); sink += len(ip) }},
		{name: "ParseIPv4Embedded", fn: func() { ip, _ := ParseIPv4Embedded(pkt[:28]); sink += len(ip) }},
		{name: "ParseTCP", fn: func() { tcp, _ := ParseTCP(l4); sink += len(tcp) }},
		{name: "ParseUDP", fn: func() { u, _ := ParseUDP(l4); sink += len(u) }},
		{name: "ParseICMP", fn: func() { c, _ := ParseICMP(l4); sink += len(c) }},
		{name: "ARP.IsValid", fn: func() {
			if ARP(pkt).IsValid() {
				sink++
			}
		}},
		{name: "accessors", fn: func() {
			ip := IPv4(pkt)
			sink += int(ip.Src()) + int(ip.TTL()) + ip.HeaderLen() + len(ip.Payload())
			sink += int(UDP(l4).SrcPort()) + int(Ethernet(pkt).EtherType())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(100, tt.fn))
		})
	}
	assert.NotZero(t, sink)
}

func BenchmarkParseIPv4(b *testing.B) {
	buf := make([]byte, 128)
	n := BuildUDP(buf, 0x0a000104, 0xc6120001, 40000, 53, 64, make([]byte, 18))
	pkt := buf[:n]
	b.ReportAllocs()
	var sink int
	for b.Loop() {
		ip, ok := ParseIPv4(pkt)
		if ok {
			sink += len(ip)
		}
	}
	if sink == 0 {
		b.Fatal("ParseIPv4 rejected the benchmark packet")
	}
}
