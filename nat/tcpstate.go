package nat

// Flow states and TCP connection tracking [S5]. TCPTransition is a pure
// function on the packet path of the worker that owns the flow: the
// translator feeds it the flow's state, flags and the segment's TCP flags
// and stores the result with FlowTable.SetState when it changed.

// Flow states (Flow.State). The state selects the idle timeout class.
const (
	// StateFree marks an unused record; no live flow has it.
	StateFree uint8 = iota
	// StateTCPSynSent is a half-open TCP flow: opened, no reply seen yet
	// (tcp_transitory timeout).
	StateTCPSynSent
	// StateTCPEstablished is a TCP flow that has seen traffic both ways,
	// possibly with a FIN in one direction (tcp_established timeout).
	StateTCPEstablished
	// StateTCPClosing is a TCP flow after FINs in both directions or a RST
	// (tcp_closing linger).
	StateTCPClosing
	// StateUDP is a UDP flow (udp timeout).
	StateUDP
	// StateICMP is an ICMP echo flow (icmp timeout).
	StateICMP
)

// Flow flags (Flow.Flags).
const (
	// FlagFinOut records a FIN from the private side.
	FlagFinOut uint8 = 1 << iota
	// FlagFinIn records a FIN from the remote side.
	FlagFinIn
	// FlagRST records a RST in either direction.
	FlagRST
	// FlagReclaim is reserved for the translator (reload reclamation [S7]);
	// the flow table and TCPTransition leave it alone.
	FlagReclaim
)

// TCPTransition returns the state and flags of a TCP flow after a segment
// with TCP flags tcpFlags (TCPFlagFIN, TCPFlagSYN, TCPFlagRST, TCPFlagACK,
// as read from the header) crossed it. outbound is true for segments from
// the side that opened the flow (the private host, for the usual outbound
// flow) and false for the other side. The rules [S5]:
//   - a new flow (StateFree) starts in StateTCPSynSent without FIN or RST
//     flags, and the segment that opened it is then applied as below;
//   - a RST in either direction moves to StateTCPClosing with FlagRST;
//   - an outbound SYN without ACK on a StateTCPClosing flow (the port is
//     reused after a close) starts over in StateTCPSynSent with the FIN and
//     RST flags cleared;
//   - any inbound segment on a StateTCPSynSent flow establishes it (except
//     the segment that opened the flow, when StateFree is passed in);
//   - a FIN sets FlagFinOut (outbound) or FlagFinIn (inbound); with both set
//     the flow moves to StateTCPClosing.
//
// States that are not TCP states are returned unchanged. Flag bits other
// than FlagFinOut, FlagFinIn and FlagRST (FlagReclaim, the translator's own
// bits) are always preserved. TCPTransition runs on the packet path: it
// does not allocate.
func TCPTransition(state, flags, tcpFlags uint8, outbound bool) (newState, newFlags uint8) {
	opening := false
	switch state {
	case StateFree:
		state, flags, opening = StateTCPSynSent, flags&^tcpTrackFlags, true
	case StateTCPSynSent, StateTCPEstablished, StateTCPClosing:
	default:
		return state, flags
	}
	if tcpFlags&TCPFlagRST != 0 {
		return StateTCPClosing, flags | FlagRST
	}
	if state == StateTCPClosing {
		if outbound && tcpFlags&(TCPFlagSYN|TCPFlagACK) == TCPFlagSYN {
			return StateTCPSynSent, flags &^ tcpTrackFlags
		}
		if tcpFlags&TCPFlagFIN != 0 {
			flags |= finFlag(outbound)
		}
		return state, flags
	}
	if state == StateTCPSynSent && !outbound && !opening {
		state = StateTCPEstablished
	}
	if tcpFlags&TCPFlagFIN != 0 {
		flags |= finFlag(outbound)
		if flags&(FlagFinOut|FlagFinIn) == FlagFinOut|FlagFinIn {
			state = StateTCPClosing
		}
	}
	return state, flags
}

// tcpTrackFlags are the flag bits TCPTransition owns.
const tcpTrackFlags = FlagFinOut | FlagFinIn | FlagRST

// finFlag returns the FIN flag of a direction.
func finFlag(outbound bool) uint8 {
	if outbound {
		return FlagFinOut
	}
	return FlagFinIn
}
