package nat

// Sequence checks of TCP segments that end a connection (issue 14, blind
// resets). An off-path host that guesses a flow's 4-tuple can send a RST
// or FIN with any sequence number; natgw must not let such a segment close
// the flow. The reference is RFC 5961 §3 and what Linux conntrack
// (nf_conntrack_proto_tcp) does:
//
//   - a RST whose sequence number is exactly the one the receiver expects
//     next (the acknowledgement number of the receiver's last segment) is
//     accepted: forwarded, and the flow moves to closing;
//   - a RST inside the receiver's window but not exact is forwarded with
//     the flow's state unchanged: the receiving host answers it with a
//     challenge ACK (RFC 5961 §3.2), and a legitimate peer then sends the
//     exact RST, which closes the flow. natgw sends no challenge ACK itself;
//   - any other RST is dropped (DropTCPInvalidRST);
//   - a RST answering a SYN (the flow is half-open and the RST comes from
//     the side that did not open it) is accepted only with an ACK of the
//     SYN (RFC 793 SYN-SENT processing), and dropped otherwise;
//   - a FIN outside the receiver's window is forwarded but does not count
//     towards closing the flow (a retransmitted FIN the receiver already
//     acknowledged falls here too; its first copy was counted).
//
// Where natgw has not seen what the receiver expects (a flow picked up in
// the middle, after a restart), the segment is accepted as before. The
// state costs 5 bytes of the flow record's padding; only segments with
// RST, FIN or SYN pay the checks, established data segments pay one more
// 2-byte store (the window) next to the acknowledgement they store already.

// maxWScale is the largest window scale shift (RFC 7323 §2.3); an unknown
// scale is taken as this, so a flow natgw picked up mid-stream gets the
// most liberal window.
const maxWScale = 14

// tcpCheck applies the sequence checks above to a TCP segment of flow f
// (out: from the private side). It returns the TCP flags TCPTransition
// should apply (RST or FIN cleared when they must not change the state)
// and false when the segment must be dropped. It also learns the sides'
// initial sequence numbers and window scales from SYNs. Called only for
// segments with RST, FIN or SYN set.
func tcpCheck(f *Flow, pi *pktInfo, out bool) (uint8, bool) {
	tcp := TCP(pi.l4)
	fl := pi.tcpFlags
	orig := out != (f.Flags&flagInbound != 0) // from the side that opened the flow
	if fl&TCPFlagSYN != 0 {
		tcpLearnSYN(f, tcp, out, orig)
		return fl, true
	}
	// expect is the sequence number the receiver expects next, win its
	// window; sender is what the sending side has acknowledged.
	var expect, sender, win uint32
	if out {
		expect, sender, win = f.AckRemote, f.AckPriv, window(f.winRemote, f.wscale>>4)
	} else {
		expect, sender, win = f.AckPriv, f.AckRemote, window(f.winPriv, f.wscale&0xF)
	}
	seq := tcp.Seq()
	if fl&TCPFlagRST != 0 {
		if f.State == StateTCPSynSent && !orig {
			// The answer to a SYN: the sender's acknowledgement field
			// holds the opener's ISN+1 (tcpLearnSYN), which the RST
			// must acknowledge.
			if sender == 0 || (fl&TCPFlagACK != 0 && pi.ack == sender) {
				return fl, true
			}
			return fl, false
		}
		switch off := seq - expect; {
		case expect == 0 || off == 0:
			return fl, true
		case off < max(win, 1):
			return fl &^ TCPFlagRST, true // the receiver challenges it
		}
		return fl, false
	}
	if fl&TCPFlagFIN != 0 && expect != 0 {
		// The FIN's own sequence number follows the segment's data.
		end := seq + uint32(len(tcp.Payload()))
		if end-expect >= max(win, 1) {
			fl &^= TCPFlagFIN
		}
	}
	return fl, true
}

// window returns a side's receive window from its unscaled window field
// and its stored scale (shift+1, 0 = unknown).
func window(w uint16, scale uint8) uint32 {
	shift := uint32(maxWScale)
	if scale != 0 {
		shift = min(uint32(scale-1), maxWScale)
	}
	return uint32(w) << shift
}

// tcpLearnSYN records what a SYN tells: a SYN without ACK that opens (or,
// on a closed flow, reopens) the connection starts the sequence state
// over: the other side will acknowledge its ISN+1, and the opener has
// acknowledged nothing yet. The SYN and the SYN+ACK answering it carry
// their sender's window scale.
func tcpLearnSYN(f *Flow, tcp TCP, out, orig bool) {
	scale := wscaleOption(tcp) + 1
	if tcp.Flags()&TCPFlagACK == 0 && orig && (f.State == StateTCPSynSent || f.State == StateTCPClosing) {
		next := tcp.Seq() + 1
		if out {
			f.AckRemote, f.AckPriv = next, 0
			f.wscale = scale
		} else {
			f.AckPriv, f.AckRemote = next, 0
			f.wscale = scale << 4
		}
		return
	}
	if f.State != StateTCPSynSent || orig {
		return // a SYN in the middle of a connection teaches nothing
	}
	if out {
		f.wscale = f.wscale&0xF0 | scale
	} else {
		f.wscale = f.wscale&0x0F | scale<<4
	}
}

// wscaleOption returns the window scale shift a SYN announces (RFC 7323
// §2.2), capped at maxWScale, and 0 when it has none.
func wscaleOption(tcp TCP) uint8 {
	opts := tcp[TCPMinLen:tcp.HeaderLen()]
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // end of options
			return 0
		case 1: // no-operation
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return 0
		}
		if opts[0] == 3 && opts[1] == 3 {
			return min(opts[2], maxWScale)
		}
		opts = opts[opts[1]:]
	}
	return 0
}
