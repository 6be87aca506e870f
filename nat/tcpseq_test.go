package nat

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seg builds a TCP segment with the given sequence and acknowledgement
// numbers, window field and TCP options (a multiple of 4 bytes).
func seg(t testing.TB, src, dst uint32, sport, dport uint16, seq, ack uint32, flags uint8, win uint16, opts []byte) []byte {
	t.Helper()
	b := make([]byte, 128)
	n := BuildTCP(b, TCPSegment{Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Seq: seq, Ack: ack, Flags: flags, TTL: 64, Payload: opts})
	require.NotZero(t, n)
	tc := TCP(IPv4(b[:n]).Payload())
	ck := tc.Checksum()
	ck = UpdateChecksum16(ck, binary.BigEndian.Uint16(tc[tcpWindowOff:]), win)
	binary.BigEndian.PutUint16(tc[tcpWindowOff:], win)
	old := binary.BigEndian.Uint16(tc[tcpDataOffOff:])
	tc[tcpDataOffOff] = byte(5+len(opts)/4) << 4
	tc.SetChecksum(UpdateChecksum16(ck, old, binary.BigEndian.Uint16(tc[tcpDataOffOff:])))
	return b[:n]
}

// seqConn is an outbound TCP connection memberA:41000 -> server:80 through
// a translator, established with the handshake
//
//	client SYN seq 1000, server SYN+ACK seq 5000 ack 1001,
//	client ACK seq 1001 ack 5001,
//
// so the client expects 5001 next and the server 1001.
type seqConn struct {
	tr  *Translator
	pub uint16 // the client's public port
}

func newSeqConn(t *testing.T, synOpts, synAckOpts []byte, win uint16) seqConn {
	t.Helper()
	tr := newTestTranslator(t, testPolicy(t, 0), 1024)
	syn := seg(t, memberA, server, 41000, 80, 1000, 0, TCPFlagSYN, 65535, synOpts)
	require.Equal(t, VerdictForward, tr.Outbound(syn, 1000))
	c := seqConn{tr: tr, pub: parsed(t, syn).sport}
	require.Equal(t, VerdictForward, tr.Inbound(c.in(t, 5000, 1001, TCPFlagSYN|TCPFlagACK, synAckOpts), 1000))
	require.Equal(t, VerdictForward, tr.Outbound(seg(t, memberA, server, 41000, 80, 1001, 5001, TCPFlagACK, win, nil), 1001))
	require.Equal(t, StateTCPEstablished, c.flow(t).State)
	return c
}

// in builds a segment from the server to the client's public port.
func (c seqConn) in(t testing.TB, seq, ack uint32, flags uint8, opts []byte) []byte {
	return seg(t, server, fe1, 80, c.pub, seq, ack, flags, 65535, opts)
}

// out builds a segment from the client.
func (c seqConn) out(t testing.TB, seq, ack uint32, flags uint8) []byte {
	return seg(t, memberA, server, 41000, 80, seq, ack, flags, 65535, nil)
}

func (c seqConn) flow(t testing.TB) *Flow {
	k := OutKey{Priv: memberA, Remote: server, PrivPort: 41000, RemotePort: 80, Proto: ProtoTCP}
	idx := c.tr.Flows().LookupOut(&k)
	require.NotZero(t, idx)
	return c.tr.Flows().Flow(idx)
}

// Issue 14 item 4: a RST moves an established flow to closing only when
// its sequence number is the one the receiver expects; one inside the
// receiver's window is passed on for the receiver to challenge (RFC 5961
// §3.2) without changing the flow; any other is dropped as a blind reset
// and counted. Fails before tcpseq.go: every RST closed the flow.
func TestBlindReset(t *testing.T) {
	const rst, rstAck = TCPFlagRST, TCPFlagRST | TCPFlagACK
	tests := []struct {
		name      string
		inbound   bool
		seq       uint32
		flags     uint8
		want      Verdict
		wantState uint8
	}{
		{"inbound exact", true, 5001, rst, VerdictForward, StateTCPClosing},
		{"inbound exact with ACK", true, 5001, rstAck, VerdictForward, StateTCPClosing},
		{"inbound in window", true, 5001 + 60000, rst, VerdictForward, StateTCPEstablished},
		{"inbound just past the window", true, 5001 + 65535, rst, DropTCPInvalidRST, StateTCPEstablished},
		{"inbound far off", true, 0x80000000, rst, DropTCPInvalidRST, StateTCPEstablished},
		{"inbound just before", true, 5000, rstAck, DropTCPInvalidRST, StateTCPEstablished},
		{"outbound exact", false, 1001, rst, VerdictForward, StateTCPClosing},
		{"outbound off", false, 1001 + 1<<20, rst, DropTCPInvalidRST, StateTCPEstablished},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newSeqConn(t, nil, nil, 65535)
			var v Verdict
			if tc.inbound {
				v = c.tr.Inbound(c.in(t, tc.seq, 1001, tc.flags, nil), 1002)
			} else {
				v = c.tr.Outbound(c.out(t, tc.seq, 5001, tc.flags), 1002)
			}
			assert.Equal(t, tc.want, v)
			assert.Equal(t, tc.wantState, c.flow(t).State)
			assert.Equal(t, uint64(btoi(tc.want == DropTCPInvalidRST)), c.tr.Stats.Verdicts[DropTCPInvalidRST])
			// Data keeps flowing both ways beside a rejected reset.
			if tc.want != VerdictForward {
				assert.Equal(t, VerdictForward, c.tr.Inbound(c.in(t, 5001, 1001, TCPFlagACK, nil), 1003))
				assert.Equal(t, VerdictForward, c.tr.Outbound(c.out(t, 1001, 5001, TCPFlagACK), 1003))
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The window is the receiver's window field scaled by the shift its SYN
// announced (RFC 7323): the client announced 7 and advertises 1000, so its
// window is 128000.
func TestBlindResetWindowScale(t *testing.T) {
	wscale7 := []byte{1, 3, 3, 7} // NOP, window scale 7
	c := newSeqConn(t, wscale7, []byte{1, 3, 3, 2}, 1000)
	assert.Equal(t, uint8(8|3<<4), c.flow(t).wscale)
	assert.Equal(t, VerdictForward, c.tr.Inbound(c.in(t, 5001+127999, 1001, TCPFlagRST, nil), 1002))
	assert.Equal(t, StateTCPEstablished, c.flow(t).State, "in window, not exact: challenged by the host")
	assert.Equal(t, DropTCPInvalidRST, c.tr.Inbound(c.in(t, 5001+128000, 1001, TCPFlagRST, nil), 1002))
	// The server announced 2 and advertises 65535: 262140.
	assert.Equal(t, VerdictForward, c.tr.Outbound(c.out(t, 1001+262139, 5001, TCPFlagRST), 1002))
	assert.Equal(t, DropTCPInvalidRST, c.tr.Outbound(c.out(t, 1001+262140, 5001, TCPFlagRST), 1002))
	assert.Equal(t, StateTCPEstablished, c.flow(t).State)
}

// A RST answering a SYN must acknowledge it (RFC 793 SYN-SENT); the flow
// stays half-open otherwise.
func TestBlindResetHalfOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ack   uint32
		flags uint8
		want  Verdict
	}{
		{"acknowledges the SYN", 1001, TCPFlagRST | TCPFlagACK, VerdictForward},
		{"wrong ack", 1002, TCPFlagRST | TCPFlagACK, DropTCPInvalidRST},
		{"no ACK", 1001, TCPFlagRST, DropTCPInvalidRST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTranslator(t, testPolicy(t, 0), 1024)
			syn := seg(t, memberA, server, 41000, 80, 1000, 0, TCPFlagSYN, 65535, nil)
			require.Equal(t, VerdictForward, tr.Outbound(syn, 1000))
			r := seg(t, server, fe1, 80, parsed(t, syn).sport, 0, tc.ack, tc.flags, 0, nil)
			assert.Equal(t, tc.want, tr.Inbound(r, 1001))
			k := OutKey{Priv: memberA, Remote: server, PrivPort: 41000, RemotePort: 80, Proto: ProtoTCP}
			want := StateTCPClosing
			if tc.want != VerdictForward {
				want = StateTCPSynSent
			}
			assert.Equal(t, want, tr.Flows().Flow(tr.Flows().LookupOut(&k)).State)
		})
	}
}

// A flow opened from the outside (an instance's inbound rule) is guarded
// the same way: the remote's SYN tells the sequence the instance expects.
func TestBlindResetInboundFlow(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 0), 1024)
	mk := func(seq, ack uint32, flags uint8) []byte {
		return seg(t, server, instPub, 40000, 22, seq, ack, flags, 65535, nil)
	}
	require.Equal(t, VerdictForward, tr.Inbound(mk(300, 0, TCPFlagSYN), 1000))
	require.Equal(t, VerdictForward, tr.Outbound(seg(t, instPriv, server, 22, 40000, 900, 301, TCPFlagSYN|TCPFlagACK, 65535, nil), 1000))
	require.Equal(t, VerdictForward, tr.Inbound(mk(301, 901, TCPFlagACK), 1000))
	k := InKey{Pub: instPub, Remote: server, PubPort: 22, RemotePort: 40000, Proto: ProtoTCP}
	f := tr.Flows().Flow(tr.Flows().LookupIn(&k))
	require.Equal(t, StateTCPEstablished, f.State)
	assert.Equal(t, DropTCPInvalidRST, tr.Inbound(mk(301+1<<24, 0, TCPFlagRST), 1001))
	assert.Equal(t, StateTCPEstablished, f.State)
	assert.Equal(t, VerdictForward, tr.Inbound(mk(301, 0, TCPFlagRST), 1001))
	assert.Equal(t, StateTCPClosing, f.State)
}

// A FIN outside the receiver's window is passed on but does not close the
// flow: after the client's FIN, a blind FIN from outside would otherwise
// move the flow to closing.
func TestBlindFIN(t *testing.T) {
	c := newSeqConn(t, nil, nil, 65535)
	require.Equal(t, VerdictForward, c.tr.Outbound(c.out(t, 1001, 5001, TCPFlagFIN|TCPFlagACK), 1002))
	assert.Equal(t, VerdictForward, c.tr.Inbound(c.in(t, 0x90000000, 1002, TCPFlagFIN|TCPFlagACK, nil), 1002))
	f := c.flow(t)
	assert.Equal(t, StateTCPEstablished, f.State)
	assert.Zero(t, f.Flags&FlagFinIn)
	// The server's own FIN closes it.
	assert.Equal(t, VerdictForward, c.tr.Inbound(c.in(t, 5001, 1002, TCPFlagFIN|TCPFlagACK, nil), 1003))
	assert.Equal(t, StateTCPClosing, c.flow(t).State)
}

// The burst path checks resets the same way: a blind RST in the middle of
// a burst of the flow's data is dropped and the data passes.
func TestBlindResetBurst(t *testing.T) {
	c := newSeqConn(t, nil, nil, 65535)
	pkts := [][]byte{
		c.in(t, 5001, 1001, TCPFlagACK, nil),
		c.in(t, 0x12345678, 1001, TCPFlagRST, nil),
		c.in(t, 5001, 1001, TCPFlagACK, nil),
	}
	verdicts := make([]Verdict, len(pkts))
	c.tr.InboundBurst(pkts, verdicts, 1002)
	assert.Equal(t, []Verdict{VerdictForward, DropTCPInvalidRST, VerdictForward}, verdicts)
	assert.Equal(t, StateTCPEstablished, c.flow(t).State)
	assert.Equal(t, uint64(1), c.tr.Stats.Verdicts[DropTCPInvalidRST])
	assert.Equal(t, memberA, IPv4(pkts[2]).Dst())
}

// Rejecting a reset allocates nothing.
func TestBlindResetNoAllocs(t *testing.T) {
	c := newSeqConn(t, nil, nil, 65535)
	r := c.in(t, 0x12345678, 1001, TCPFlagRST, nil)
	work := make([]byte, len(r))
	assert.Zero(t, testing.AllocsPerRun(500, func() {
		copy(work, r)
		c.tr.Inbound(work, 1002)
	}))
}

func TestWScaleOption(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []byte
		want uint8
	}{
		{"none", nil, 0},
		{"alone", []byte{3, 3, 5, 0}, 5},
		{"after MSS and SACK-permitted", []byte{2, 4, 5, 0xb4, 4, 2, 1, 3, 3, 9, 0, 0}, 9},
		{"capped at 14", []byte{3, 3, 200, 0}, 14},
		{"end of options first", []byte{0, 3, 3, 5}, 0},
		{"truncated", []byte{1, 1, 1, 3}, 0},
		{"zero length option", []byte{8, 0, 3, 3}, 0},
		{"overlong option", []byte{8, 10, 3, 3}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := seg(t, memberA, server, 1, 2, 0, 0, TCPFlagSYN, 0, tc.opts)
			tcp, ok := ParseTCP(IPv4(b).Payload())
			require.True(t, ok)
			assert.Equal(t, tc.want, wscaleOption(tcp))
		})
	}
}
