package nat

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzTranslateRoundTrip: a packet translated out, answered by its mirror
// image and translated in, comes back as the mirror image of the original,
// with every checksum valid by the naive oracle.
func FuzzTranslateRoundTrip(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint16(40000), uint16(53), []byte("hello"), uint8(TCPFlagSYN), false)
	f.Add(uint8(1), uint8(1), uint16(1), uint16(65535), []byte{}, uint8(0), true)
	f.Add(uint8(2), uint8(2), uint16(7), uint16(0), []byte("ping payload of odd len"), uint8(0), false)
	f.Add(uint8(0), uint8(2), uint16(0xFFFF), uint16(0xFFFF), []byte{0xFF, 0xFF, 0, 0}, uint8(TCPFlagFIN|TCPFlagACK), false)
	p := testPolicy(f, 0)
	sources := []uint32{memberA, instPriv, dflt}
	f.Fuzz(func(t *testing.T, protoSel, srcSel uint8, sport, dport uint16, payload []byte, flags uint8, zeroCsum bool) {
		if len(payload) > 1200 {
			payload = payload[:1200]
		}
		tr := NewTranslator(p, TranslatorOptions{FlowCapacity: 64, Seed: uint64(sport)}, 1000)
		src := sources[int(srcSel)%len(sources)]
		o := pkt{src: src, dst: server, sport: sport, dport: dport, payload: payload, flags: flags &^ TCPFlagRST, zeroUDPCsum: zeroCsum}
		switch protoSel % 3 {
		case 0:
			o.proto = ProtoTCP
		case 1:
			o.proto = ProtoUDP
		default:
			o.proto, o.icmpType, o.icmpID, o.icmpSq = ProtoICMP, ICMPEchoRequest, sport, dport
		}
		orig := o.build(t)
		b := append([]byte(nil), orig...)
		require.Equal(t, VerdictForward, tr.Outbound(b, 1000))
		out := parsed(t, b)

		// The mirror image of what went out.
		var in []byte
		if o.proto == ProtoICMP {
			in = pkt{proto: ProtoICMP, src: server, dst: out.ip.Src(), icmpType: ICMPEchoReply, icmpID: out.sport, icmpSq: dport, payload: payload}.build(t)
		} else {
			in = mirror(b)
		}
		require.Equal(t, VerdictForward, tr.Inbound(in, 1001))
		back := parsed(t, in)

		var want []byte
		if o.proto == ProtoICMP {
			want = pkt{proto: ProtoICMP, src: server, dst: src, icmpType: ICMPEchoReply, icmpID: sport, icmpSq: dport, payload: payload, ttl: 63}.build(t)
		} else {
			want = mirror(orig)
			IPv4(want).SetTTL(62)
			IPv4(want).SetChecksum(0)
			IPv4(want).SetChecksum(IPv4(want).ComputeChecksum())
		}
		assert.Equal(t, want, []byte(back.ip))
	})
}

// mirror swaps the addresses and ports of a TCP or UDP packet; the
// checksums stay valid (the sums are commutative).
func mirror(b []byte) []byte {
	m := append([]byte(nil), b...)
	ip := IPv4(m)
	src, dst := ip.Src(), ip.Dst()
	ip.SetSrc(dst)
	ip.SetDst(src)
	l4 := ip.Payload()
	sp, dp := binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
	binary.BigEndian.PutUint16(l4[0:], dp)
	binary.BigEndian.PutUint16(l4[2:], sp)
	return m
}

// FuzzTranslateNoPanic: any bytes, in either direction, give a verdict and
// never a panic; a forwarded packet whose checksums were valid still has
// valid checksums (a bad one is carried through, not repaired: the end host
// drops it).
func FuzzTranslateNoPanic(f *testing.F) {
	p := testPolicy(f, 8)
	seeds := [][]byte{
		udp(memberA, server, 1, 2).build(f),
		tcp(instPriv, server, 1, 2, TCPFlagSYN).build(f),
		pkt{proto: ProtoICMP, src: memberA, dst: server, icmpType: ICMPEchoRequest, icmpID: 3}.build(f),
		{0x45}, {},
	}
	eb := make([]byte, 600)
	ip, _ := ParseIPv4(udp(fe1, server, 1024, 53).build(f))
	n := BuildICMPError(eb, router, fe1, ICMPTimeExceeded, 0, 0, ip, 64)
	seeds = append(seeds, eb[:n])
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, inbound bool) {
		tr := NewTranslator(p, TranslatorOptions{FlowCapacity: 16, Seed: 3}, 1000)
		// Prime a flow so inbound packets and errors can hit one.
		require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 1, 2).build(t), 1000))
		validIn := false
		if ip, ok := ParseIPv4(b); ok {
			validIn = len(checksumProblems(ip)) == 0
		}
		var v Verdict
		if inbound {
			v = tr.Inbound(b, 1001)
		} else {
			v = tr.Outbound(b, 1001)
		}
		require.Less(t, v, NumVerdicts)
		if v == VerdictForward && validIn {
			ip, ok := ParseIPv4(b)
			require.True(t, ok)
			assertChecksums(t, ip)
		}
	})
}
