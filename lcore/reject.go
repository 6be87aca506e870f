package lcore

import (
	"encoding/binary"
	"time"

	"github.com/natgw/natgw/nat"
)

// This file is on_exhaustion = "reject" (issue 18, RFC 6888 REQ-11): a
// new outbound flow that its pool refuses for lack of a port is still a
// port_exhausted drop, but the private host is answered at once — a TCP
// RST for a SYN, ICMP destination unreachable (administratively
// prohibited) otherwise — so the client fails in microseconds instead of
// retrying for a minute. The worker that refused a SYN turns it into the
// RST itself, in place, and sends it with the poll's own transmit burst:
// no copy, no management core on the way (on DPDK that thread competes
// for a CPU with the polling workers, and its idle sleep adds up to a
// millisecond). Anything else is handed to the management core, which
// owns the ICMP error budget. Each worker rate-limits its refusals with a
// token bucket (counted), so a host hammering an exhausted destination
// can't fill the management ring or the inside link.

// MsgReject: answer this outbound packet, refused for lack of a port and
// not a TCP SYN, with an ICMP administratively prohibited (a Packet.Flags
// bit above the driver's, like the other work items).
const MsgReject uint16 = 1 << 14

// Reject rate limit, per worker: RejectRate refusals a second, in bursts
// of up to RejectBurst.
const (
	RejectRate  = 1000
	RejectBurst = 100
)

// rejectState is a worker's token bucket, in thousandths of a token.
type rejectState struct {
	milli         int64
	last          nat.Tick
	started       bool
	sent, limited uint64
}

// take spends a token, if one is left at now.
func (r *rejectState) take(now nat.Tick) bool {
	const full = RejectBurst * 1000
	if !r.started {
		r.milli, r.started = full, true
	} else if d := int32(now - r.last); d > 0 {
		r.milli = min(full, r.milli+int64(d)*RejectRate)
	}
	r.last = now
	if r.milli < 1000 {
		return false
	}
	r.milli -= 1000
	return true
}

// rejectExhausted handles a packet refused with DropPortExhausted (already
// counted as a drop): from the inside, of a pool that rejects, and within
// the rate, a TCP SYN is answered here with a RST (resetSYN), anything
// else goes to the management core to be answered. It frees p unless p
// became the RST.
func (w *Worker) rejectExhausted(p *Packet, l3 []byte, port uint8, now nat.Tick) {
	if port == PortInside && len(l3) >= nat.IPv4MinLen {
		pol := w.tr.Policy()
		if m, v := pol.Classify(binary.BigEndian.Uint32(l3[12:])); v == nat.VerdictForward && pol.RejectsOnExhaustion(m.Scope) {
			if w.rej.take(now) {
				if w.resetSYN(p, l3) {
					w.rej.sent++
					return
				}
				p.Flags |= MsgReject
				if w.toMgmt.Push(p) {
					w.rej.sent++
				}
			} else {
				w.rej.limited++
			}
		}
	}
	w.free(p)
}

// resetSYN turns p, a TCP SYN from the inside whose IPv4 packet is l3, into
// the RST (with ACK, acknowledging the SYN, so the host's stack accepts
// it) the remote would answer with, and queues it back out of the inside
// port to the MAC it came from. The answer is written over the SYN, which
// is never shorter. It reports false, leaving p as it was, for anything
// but a first fragment of TCP with SYN alone.
func (w *Worker) resetSYN(p *Packet, l3 []byte) bool {
	orig, ok := nat.ParseIPv4(l3)
	if !ok || orig.Protocol() != nat.ProtoTCP || orig.FragOffset() != 0 {
		return false
	}
	tcp, ok := nat.ParseTCP(orig.Payload())
	if !ok || tcp.Flags()&(nat.TCPFlagSYN|nat.TCPFlagACK|nat.TCPFlagRST) != nat.TCPFlagSYN {
		return false
	}
	seg := nat.TCPSegment{Src: orig.Dst(), Dst: orig.Src(), SrcPort: tcp.DstPort(), DstPort: tcp.SrcPort(),
		Ack: tcp.Seq() + 1, Flags: nat.TCPFlagRST | nat.TCPFlagACK, TTL: 64}
	var host [6]byte
	copy(host[:], nat.Ethernet(p.Data).SrcMAC())
	n := nat.BuildTCP(l3, seg)
	if n == 0 {
		return false
	}
	nat.WriteEthernet(p.Data, host, w.mac[PortInside], nat.EtherTypeIPv4)
	p.Data = p.Data[:nat.EthernetLen+n]
	w.queueTx(PortInside, p)
	return true
}

// publishRejects copies the reject counters to the published ones.
func (w *Worker) publishRejects() {
	w.Counters.Rejects.Store(w.rej.sent)
	w.Counters.RejectsLimited.Store(w.rej.limited)
}

// rejectExhausted answers a refused outbound packet from the inside that
// is not a TCP SYN (the worker resets those itself, Worker.resetSYN) with
// ICMP destination unreachable, administratively prohibited (code 13),
// from natgw's inside address to the MAC the packet came from,
// rate-limited like every ICMP error.
func (m *Manager) rejectExhausted(p *Packet, now time.Time) {
	before := m.Stats.ICMPErrors.Load()
	m.icmpError(p, nat.ICMPDestUnreachable, nat.ICMPCodeAdminProhibited, 0, now)
	if m.Stats.ICMPErrors.Load() != before {
		m.Stats.RejectICMP.Add(1)
	}
}
