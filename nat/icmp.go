package nat

import "encoding/binary"

// ICMP errors [S8]: an error quotes the packet that caused it. Coming in,
// the quote is a packet natgw sent out (source = public endpoint); going
// out, it is a packet natgw delivered to a private host (destination =
// private endpoint). The flow is found through the quote, and the quote's
// address, port and checksums are translated together with the outer
// header, so traceroute and path MTU discovery work through the NAT.

// icmpErrorIn translates an ICMP error from the outside about a flow.
func (t *Translator) icmpErrorIn(pi *pktInfo) Verdict { return t.icmpError(pi, DirIn) }

// icmpErrorOut translates an ICMP error a private host sends about an
// inbound packet of a flow (for example port unreachable).
func (t *Translator) icmpErrorOut(pi *pktInfo) Verdict { return t.icmpError(pi, DirOut) }

func (t *Translator) icmpError(pi *pktInfo, dir int) Verdict {
	icmp := ICMP(pi.l4)
	// The checksum is recomputed below: check the received one first, or
	// a corrupted error would leave natgw looking valid (RFC 5508 REQ-3).
	if Fold(Sum(icmp, 0)) != 0 {
		return DropMalformed
	}
	emb, ok := ParseIPv4Embedded(icmp.Payload())
	if !ok {
		return DropMalformed
	}
	if emb.FragOffset() != 0 {
		return DropFragment
	}
	el4 := emb.Payload()
	if len(el4) < 8 {
		return DropMalformed
	}
	proto := emb.Protocol()
	kind, sport, dport := ReadTransport(proto, el4)
	if kind != TransportPorts && kind != TransportEcho {
		return DropUnsupported // no error about an error
	}

	// Find the flow through the quote and check the error is addressed to
	// (or comes from) the quoted endpoint of ours.
	var idx uint32
	if dir == DirIn {
		if pi.ip.Dst() != emb.Src() {
			return DropNoFlow
		}
		k := InKey{Pub: emb.Src(), PubPort: sport, Remote: emb.Dst(), RemotePort: dport, Proto: proto}
		if proto == ProtoICMP {
			k.RemotePort = 0
		}
		idx = t.flows.LookupIn(&k)
	} else {
		if pi.ip.Src() != emb.Dst() {
			return DropUnsupported // from a router behind natgw: not translated
		}
		// Only back to the remote of the quoted flow, and under the deny
		// rules like any packet: else a host could quote one of its
		// flows and send errors anywhere (issue 14 item 5).
		if pi.ip.Dst() != emb.Src() {
			return DropNoFlow
		}
		if t.pol.Denied(pi.ip.Dst(), ProtoICMP, 0) {
			return DropDenied
		}
		k := OutKey{Priv: emb.Dst(), PrivPort: dport, Remote: emb.Src(), RemotePort: sport, Proto: proto}
		if proto == ProtoICMP {
			k.RemotePort = 0
		}
		idx = t.flows.LookupOut(&k)
	}
	if idx = t.current(idx); idx == 0 {
		if (dir == DirIn && t.handoffIn(proto, emb.Src(), sport)) || (dir == DirOut && t.handoffOut(proto, emb.Dst(), dport)) {
			return VerdictHandoff // about another worker's mapping (eim.go)
		}
		return DropNoFlow
	}
	f := t.flows.Flow(idx)

	// The quoted endpoint: its source going in, its destination going out.
	oldA, newA, oldP, newP := f.Pub, f.Priv, f.PubPort, f.PrivPort
	addrOff, portOff := 12, 0
	if dir == DirOut {
		oldA, newA, oldP, newP = f.Priv, f.Pub, f.PrivPort, f.PubPort
		addrOff, portOff = 16, 2
	}
	emb.SetChecksum(UpdateChecksum32(emb.Checksum(), oldA, newA))
	binary.BigEndian.PutUint32(emb[addrOff:], newA)
	switch proto {
	case ProtoTCP:
		binary.BigEndian.PutUint16(el4[portOff:], newP)
		if len(el4) >= 18 { // the quote reaches the TCP checksum
			ck := binary.BigEndian.Uint16(el4[16:])
			binary.BigEndian.PutUint16(el4[16:], UpdateChecksum16(UpdateChecksum32(ck, oldA, newA), oldP, newP))
		}
	case ProtoUDP:
		binary.BigEndian.PutUint16(el4[portOff:], newP)
		if ck := binary.BigEndian.Uint16(el4[6:]); ck != 0 {
			ck = UpdateChecksum16(UpdateChecksum32(ck, oldA, newA), oldP, newP)
			if ck == 0 {
				ck = 0xFFFF
			}
			binary.BigEndian.PutUint16(el4[6:], ck)
		}
	case ProtoICMP:
		ck := binary.BigEndian.Uint16(el4[2:])
		binary.BigEndian.PutUint16(el4[2:], UpdateChecksum16(ck, oldP, newP))
		binary.BigEndian.PutUint16(el4[4:], newP)
	}

	// The outer header: destination going in, source going out.
	ip := pi.ip
	ipCk := UpdateChecksum32(ip.Checksum(), oldA, newA)
	ipCk = UpdateChecksum16(ipCk, uint16(ip.TTL())<<8|ProtoICMP, uint16(ip.TTL()-1)<<8|ProtoICMP)
	if dir == DirIn {
		ip.SetDst(newA)
	} else {
		ip.SetSrc(newA)
	}
	ip.SetTTL(ip.TTL() - 1)
	ip.SetChecksum(ipCk)
	// The ICMP checksum covers the whole quote, which was checked above:
	// recompute it (errors are rare and short).
	icmp.SetChecksum(0)
	icmp.SetChecksum(Fold(Sum(icmp, 0)))
	return VerdictForward
}
