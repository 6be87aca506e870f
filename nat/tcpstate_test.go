package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTCPTransition(t *testing.T) {
	const (
		syn    = TCPFlagSYN
		synAck = TCPFlagSYN | TCPFlagACK
		ack    = TCPFlagACK
		fin    = TCPFlagFIN | TCPFlagACK
		rst    = TCPFlagRST
		rstAck = TCPFlagRST | TCPFlagACK
		out    = true
		in     = false
	)
	tests := []struct {
		name         string
		state, flags uint8
		tcpFlags     uint8
		outbound     bool
		wantState    uint8
		wantFlags    uint8
	}{
		{"new outbound flow is half-open", StateFree, 0, syn, out, StateTCPSynSent, 0},
		{"new inbound flow is half-open", StateFree, 0, syn, in, StateTCPSynSent, 0},
		{"new flow opened by a RST", StateFree, 0, rst, out, StateTCPClosing, FlagRST},
		{"outbound retransmission stays half-open", StateTCPSynSent, 0, syn, out, StateTCPSynSent, 0},
		{"reply establishes", StateTCPSynSent, 0, synAck, in, StateTCPEstablished, 0},
		{"any inbound packet establishes", StateTCPSynSent, 0, ack, in, StateTCPEstablished, 0},
		{"inbound FIN on half-open establishes and records it", StateTCPSynSent, 0, fin, in, StateTCPEstablished, FlagFinIn},
		{"RST on half-open", StateTCPSynSent, 0, rst, in, StateTCPClosing, FlagRST},
		{"data keeps established", StateTCPEstablished, 0, ack, out, StateTCPEstablished, 0},
		{"outbound FIN", StateTCPEstablished, 0, fin, out, StateTCPEstablished, FlagFinOut},
		{"inbound FIN", StateTCPEstablished, 0, fin, in, StateTCPEstablished, FlagFinIn},
		{"second FIN inbound closes", StateTCPEstablished, FlagFinOut, fin, in, StateTCPClosing, FlagFinOut | FlagFinIn},
		{"second FIN outbound closes", StateTCPEstablished, FlagFinIn, fin, out, StateTCPClosing, FlagFinOut | FlagFinIn},
		{"repeated FIN one way stays open", StateTCPEstablished, FlagFinOut, fin, out, StateTCPEstablished, FlagFinOut},
		{"outbound RST", StateTCPEstablished, 0, rst, out, StateTCPClosing, FlagRST},
		{"inbound RST+ACK", StateTCPEstablished, FlagFinOut, rstAck, in, StateTCPClosing, FlagFinOut | FlagRST},
		{"last ACK while closing", StateTCPClosing, FlagFinOut | FlagFinIn, ack, out, StateTCPClosing, FlagFinOut | FlagFinIn},
		{"RST while closing", StateTCPClosing, FlagFinOut | FlagFinIn, rst, in, StateTCPClosing, FlagFinOut | FlagFinIn | FlagRST},
		{"port reuse after close", StateTCPClosing, FlagFinOut | FlagFinIn, syn, out, StateTCPSynSent, 0},
		{"port reuse after reset", StateTCPClosing, FlagRST, syn, out, StateTCPSynSent, 0},
		{"inbound SYN does not reopen", StateTCPClosing, FlagRST, syn, in, StateTCPClosing, FlagRST},
		{"outbound SYN+ACK does not reopen", StateTCPClosing, FlagRST, synAck, out, StateTCPClosing, FlagRST},
		{"reuse keeps the reclaim mark", StateTCPClosing, FlagRST | FlagReclaim, syn, out, StateTCPSynSent, FlagReclaim},
		{"reclaim mark survives", StateTCPEstablished, FlagReclaim, fin, out, StateTCPEstablished, FlagReclaim | FlagFinOut},
		{"translator bits survive reuse", StateTCPClosing, FlagRST | 1<<5 | 1<<7, syn, out, StateTCPSynSent, 1<<5 | 1<<7},
		{"translator bits survive opening", StateFree, 1 << 5, syn, in, StateTCPSynSent, 1 << 5},
		{"udp untouched", StateUDP, 0, rst, out, StateUDP, 0},
		{"icmp untouched", StateICMP, FlagReclaim, fin, in, StateICMP, FlagReclaim},
		{"unknown state untouched", 99, 0, rst, in, 99, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, f := TCPTransition(tc.state, tc.flags, tc.tcpFlags, tc.outbound)
			assert.Equal(t, tc.wantState, s, "state")
			assert.Equal(t, tc.wantFlags, f, "flags")
		})
	}
}

// TestTCPTransitionTimeouts follows a whole connection and checks the
// timeout class of each step [S5].
func TestTCPTransitionTimeouts(t *testing.T) {
	to := testTimeouts
	steps := []struct {
		tcpFlags uint8
		outbound bool
		timeout  Tick
	}{
		{TCPFlagSYN, true, to.TCPTransitory},
		{TCPFlagSYN | TCPFlagACK, false, to.TCPEstablished},
		{TCPFlagACK, true, to.TCPEstablished},
		{TCPFlagFIN | TCPFlagACK, true, to.TCPEstablished},
		{TCPFlagFIN | TCPFlagACK, false, to.TCPClosing},
		{TCPFlagACK, true, to.TCPClosing},
		{TCPFlagSYN, true, to.TCPTransitory},
	}
	state, flags := StateFree, uint8(0)
	for n, st := range steps {
		state, flags = TCPTransition(state, flags, st.tcpFlags, st.outbound)
		assert.Equal(t, st.timeout, Timeout(state, &to), "step %d", n)
	}
}
