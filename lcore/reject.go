package lcore

import (
	"encoding/binary"
	"time"

	"github.com/natgw/natgw/nat"
)

// This file is on_exhaustion = "reject" (issue 18, RFC 6888 REQ-11): a
// new outbound flow that its pool refuses for lack of a port is still a
// port_exhausted drop, but the worker also hands the packet to the
// management core, which answers the private host at once — a TCP RST
// for a SYN, ICMP destination unreachable (administratively prohibited)
// otherwise — so the client fails in microseconds instead of retrying for
// a minute. Each worker rate-limits what it hands over with a token
// bucket (counted), so a host hammering an exhausted destination can't
// fill the management ring; the management core's ICMP error budget
// applies on top.

// MsgReject: answer this outbound packet, refused for lack of a port,
// with a RST or an ICMP administratively prohibited (a Packet.Flags bit
// above the driver's, like the other work items).
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
// the rate, it goes to the management core to be answered. It frees p.
func (w *Worker) rejectExhausted(p *Packet, l3 []byte, port uint8, now nat.Tick) {
	if port == PortInside && len(l3) >= nat.IPv4MinLen {
		pol := w.tr.Policy()
		if m, v := pol.Classify(binary.BigEndian.Uint32(l3[12:])); v == nat.VerdictForward && pol.RejectsOnExhaustion(m.Scope) {
			if w.rej.take(now) {
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

// publishRejects copies the reject counters to the published ones.
func (w *Worker) publishRejects() {
	w.Counters.Rejects.Store(w.rej.sent)
	w.Counters.RejectsLimited.Store(w.rej.limited)
}

// rejectExhausted answers a refused outbound packet from the inside: a RST
// (with ACK, acknowledging the SYN, so the host's stack accepts it) as if
// from the remote for a TCP SYN, else ICMP destination unreachable,
// administratively prohibited (code 13), from natgw's inside address
// (rate-limited like every ICMP error). The answer goes to the MAC the
// packet came from.
func (m *Manager) rejectExhausted(p *Packet, now time.Time) {
	if len(p.Data) < nat.EthernetLen+nat.IPv4MinLen {
		return
	}
	orig, ok := nat.ParseIPv4(p.Data[nat.EthernetLen:])
	if !ok {
		return
	}
	if orig.Protocol() == nat.ProtoTCP && orig.FragOffset() == 0 {
		if tcp, ok := nat.ParseTCP(orig.Payload()); ok && tcp.Flags()&(nat.TCPFlagSYN|nat.TCPFlagACK|nat.TCPFlagRST) == nat.TCPFlagSYN {
			out := m.pool.Get()
			if out == nil {
				return
			}
			buf := out.Data[:cap(out.Data)]
			n := nat.BuildTCP(buf[nat.EthernetLen:], nat.TCPSegment{Src: orig.Dst(), Dst: orig.Src(),
				SrcPort: tcp.DstPort(), DstPort: tcp.SrcPort(), Ack: tcp.Seq() + 1,
				Flags: nat.TCPFlagRST | nat.TCPFlagACK, TTL: 64})
			if n == 0 {
				m.pool.Put(out)
				return
			}
			var dstMAC [6]byte
			copy(dstMAC[:], nat.Ethernet(p.Data).SrcMAC())
			nat.WriteEthernet(buf, dstMAC, m.mac[PortInside], nat.EtherTypeIPv4)
			out.Data = buf[:nat.EthernetLen+n]
			m.send(PortInside, out)
			m.Stats.RejectResets.Add(1)
			return
		}
	}
	before := m.Stats.ICMPErrors.Load()
	m.icmpError(p, nat.ICMPDestUnreachable, nat.ICMPCodeAdminProhibited, 0, now)
	if m.Stats.ICMPErrors.Load() != before {
		m.Stats.RejectICMP.Add(1)
	}
}
