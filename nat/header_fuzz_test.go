package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hdrSeedPacket returns a valid IPv4/UDP packet for fuzz seeds.
func hdrSeedPacket() []byte {
	b := make([]byte, 64)
	return b[:BuildUDP(b, 0x0a000104, 0xc6120001, 40000, 53, 64, []byte("seed"))]
}

// hdrSeedCorpus returns valid packets of every kind, for fuzz seeds.
func hdrSeedCorpus() [][]byte {
	var seeds [][]byte
	add := func(build func(b []byte) int) {
		b := make([]byte, 700)
		seeds = append(seeds, b[:build(b)])
	}
	add(func(b []byte) int { return BuildUDP(b, 0x0a000104, 0xc6120001, 40000, 53, 64, []byte("seed")) })
	add(func(b []byte) int {
		return BuildTCP(b, TCPSegment{Src: 0x0a000104, Dst: 0xc6120001, SrcPort: 40000, DstPort: 443, Seq: 1, Ack: 2, Flags: TCPFlagSYN, TTL: 64})
	})
	add(func(b []byte) int { return BuildICMPEcho(b, 0x0a000104, 0xc6120001, ICMPEchoRequest, 1, 2, 64, nil) })
	add(func(b []byte) int {
		return BuildICMPError(b, 0xc6130002, 0x0a000104, ICMPDestUnreachable, ICMPCodeFragNeeded, 1400, IPv4(hdrSeedPacket()), 64)
	})
	return seeds
}

// hdrTouchIPv4 reads every field of ip and returns a value depending on
// all of them, so that nothing is optimised away.
func hdrTouchIPv4(ip IPv4) int {
	n := ip.HeaderLen() + ip.TotalLen() + int(ip.TOS()) + int(ip.ID()) + ip.FragOffset()
	n += int(ip.TTL()) + int(ip.Protocol()) + int(ip.Checksum()) + int(ip.Src()) + int(ip.Dst())
	n += len(ip.Payload()) + int(ip.ComputeChecksum())
	if ip.DF() || ip.MF() || ip.IsFragment() || ip.ChecksumValid() {
		n++
	}
	return n + int(TransportChecksum(ip))
}

// hdrTouchTCP reads every field of a view from ParseTCP.
func hdrTouchTCP(tcp TCP) int {
	n := int(tcp.SrcPort()) + int(tcp.DstPort()) + int(tcp.Seq()) + int(tcp.Ack()) + tcp.HeaderLen()
	n += int(tcp.Flags()) + int(tcp.Window()) + int(tcp.Checksum()) + len(tcp.Payload())
	if tcp.HasChecksumField() {
		n++
	}
	return n
}

// hdrTouchUDP reads every field of a UDP view.
func hdrTouchUDP(u UDP) int {
	return int(u.SrcPort()) + int(u.DstPort()) + u.Length() + int(u.Checksum()) + len(u.Payload())
}

// hdrTouchICMP reads every field of an ICMP view.
func hdrTouchICMP(c ICMP) int {
	n := int(c.Type()) + int(c.Code()) + int(c.Checksum()) + int(c.ID()) + int(c.Seq()) + int(c.MTU())
	if IsICMPError(c.Type()) {
		n++
	}
	return n + len(c.Payload())
}

// FuzzParseIPv4 checks that parsing never panics, that a parsed view keeps
// its promises and can be read fully, and that complete and embedded
// parsing agree.
func FuzzParseIPv4(f *testing.F) {
	for _, s := range hdrSeedCorpus() {
		f.Add(s)
	}
	f.Add([]byte{0x4f, 0, 0, 0x14})
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(nil), data...)
		ip, ok := ParseIPv4(in)
		emb, embOK := ParseIPv4Embedded(in)
		if embOK {
			hdrTouchIPv4(emb)
			assert.LessOrEqual(t, emb.HeaderLen(), len(emb))
			assert.GreaterOrEqual(t, emb.TotalLen(), emb.HeaderLen())
			if u, ok := ParseUDPEmbedded(emb.Payload()); ok {
				hdrTouchUDP(u)
			}
			if tcp, ok := ParseTCPEmbedded(emb.Payload()); ok {
				_ = int(tcp.SrcPort()) + int(tcp.DstPort()) + int(tcp.Seq())
				if tcp.HasChecksumField() {
					_ = tcp.Checksum()
				}
			}
		}
		if !ok {
			return
		}
		require.True(t, embOK, "a complete packet must parse as embedded too")
		assert.Equal(t, []byte(ip), []byte(emb))
		assert.Len(t, ip, ip.TotalLen())
		assert.GreaterOrEqual(t, ip.HeaderLen(), IPv4MinLen)
		assert.True(t, ip.ChecksumValid())
		assert.Equal(t, ip.Checksum(), ip.ComputeChecksum())
		hdrTouchIPv4(ip)

		// Transport views of the payload can be read fully.
		switch ip.Protocol() {
		case ProtoTCP:
			if tcp, ok := ParseTCP(ip.Payload()); ok {
				hdrTouchTCP(tcp)
			}
		case ProtoUDP:
			if u, ok := ParseUDP(ip.Payload()); ok {
				hdrTouchUDP(u)
			}
		case ProtoICMP:
			if c, ok := ParseICMP(ip.Payload()); ok {
				hdrTouchICMP(c)
				if IsICMPError(c.Type()) {
					if inner, ok := ParseIPv4Embedded(c.Payload()); ok {
						hdrTouchIPv4(inner)
					}
				}
			}
		}

		// Completing the transport checksum gives one that verifies.
		if CompleteChecksum(ip) {
			writeCheckL4(t, ip)
		}

		// Any parsed packet can be quoted in a valid ICMP error.
		b := make([]byte, ICMPErrorMaxLen)
		n := BuildICMPError(b, 1, 2, ICMPTimeExceeded, 0, 0, ip, 64)
		require.NotZero(t, n)
		e, ok := ParseIPv4(b[:n])
		require.True(t, ok)
		writeCheckL4(t, e)
	})
}

// FuzzParseL4 checks that the transport parsers never panic, that parsed
// views can be read fully, and that a packet carrying data as protocol
// proto gets a transport checksum that verifies.
func FuzzParseL4(f *testing.F) {
	for _, s := range hdrSeedCorpus() {
		f.Add(s[IPv4MinLen:], s[ipv4ProtoOff])
	}
	f.Add([]byte{}, uint8(ProtoTCP))
	f.Add(make([]byte, 8), uint8(ProtoUDP))
	f.Add([]byte{0, 1, 0, 2, 0, 7, 0, 0}, uint8(ProtoUDP))
	f.Add(make([]byte, 20), uint8(ProtoTCP))
	f.Fuzz(func(t *testing.T, data []byte, proto uint8) {
		if tcp, ok := ParseTCP(data); ok {
			assert.GreaterOrEqual(t, tcp.HeaderLen(), TCPMinLen)
			assert.LessOrEqual(t, tcp.HeaderLen(), len(tcp))
			hdrTouchTCP(tcp)
		}
		if u, ok := ParseUDP(data); ok {
			assert.Len(t, u, u.Length())
			hdrTouchUDP(u)
		}
		if u, ok := ParseUDPEmbedded(data); ok {
			hdrTouchUDP(UDP(u[:UDPLen]))
		}
		if c, ok := ParseICMP(data); ok {
			hdrTouchICMP(c)
		}
		_, _ = ParseTCPEmbedded(data)

		if len(data) > 0xffff-IPv4MinLen {
			return
		}
		b := make([]byte, IPv4MinLen+len(data))
		copy(b[IPv4MinLen:], data)
		ip := WriteIPv4(b, IPv4Fields{TotalLen: uint16(len(b)), TTL: 64, Protocol: proto, Src: 0x0a000104, Dst: 0xc6120001})
		require.NotNil(t, ip)
		if CompleteChecksum(ip) {
			writeCheckL4(t, ip)
		} else {
			assert.Zero(t, TransportChecksum(ip))
		}
	})
}
