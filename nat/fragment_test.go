package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fragmentPacket splits an IPv4 packet (20-byte header) at payload offset
// at (a multiple of 8) into two fragments with valid header checksums.
func fragmentPacket(t *testing.T, whole []byte, at int) (first, second []byte) {
	t.Helper()
	ip, ok := ParseIPv4(whole)
	require.True(t, ok)
	pl := ip.Payload()
	first = append(append([]byte(nil), whole[:20]...), pl[:at]...)
	second = append(append([]byte(nil), whole[:20]...), pl[at:]...)
	f1, f2 := IPv4(first), IPv4(second)
	f1.SetTotalLen(uint16(len(first)))
	f1[6], f1[7] = 0x20, 0 // MF, offset 0
	f2.SetTotalLen(uint16(len(second)))
	off := uint16(at / 8)
	f2[6], f2[7] = byte(off>>8), byte(off)
	for _, f := range []IPv4{f1, f2} {
		f.SetID(0x1234)
		f.SetChecksum(0)
		f.SetChecksum(f.ComputeChecksum())
	}
	return first, second
}

func TestFragmentsFollowTheirFirst(t *testing.T) {
	p := testPolicy(t, 0)
	tr := newTestTranslator(t, p, 1024)
	payload := make([]byte, 2000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	whole := pkt{proto: ProtoUDP, src: memberA, dst: server, sport: 5000, dport: 53, payload: payload}.build(t)
	first, second := fragmentPacket(t, whole, 1480)

	sport, dport, ok := FlowPorts(IPv4(first), DirOut)
	require.True(t, ok)
	require.Equal(t, VerdictForward, tr.Outbound(first, 1000))
	require.Equal(t, VerdictForward, tr.OutboundFragment(second, sport, dport, 1000))
	f1, ok := ParseIPv4(first)
	require.True(t, ok)
	f2, ok := ParseIPv4(second)
	require.True(t, ok)
	assert.Equal(t, fe1, f1.Src())
	assert.Equal(t, fe1, f2.Src())

	// Reassembled, the datagram's UDP checksum is valid for the new source.
	re := append(append([]byte(nil), first[:20]...), append(append([]byte(nil), f1.Payload()...), f2.Payload()...)...)
	IPv4(re).SetTotalLen(uint16(len(re)))
	re[6], re[7] = 0, 0
	IPv4(re).SetChecksum(0)
	IPv4(re).SetChecksum(IPv4(re).ComputeChecksum())
	assert.Empty(t, checksumProblems(IPv4(re)))

	// A later fragment of an unknown datagram is dropped and counted.
	_, stray := fragmentPacket(t, udp(memberB, server, 7000, 53).build(t), 0)
	assert.Equal(t, DropFragment, tr.OutboundFragment(stray, 7000, 53, 1000))
	assert.Equal(t, DropFragment, tr.Outbound(second, 1000), "later fragments never go through Outbound")
}
