package nat

// Fragments (SPEC §2): the first fragment of a datagram carries the
// transport header and is translated like any packet (its transport
// checksum covers the whole datagram, so updating it there is enough).
// Later fragments carry no ports; the runtime learns the ports from the
// first fragment (FlowPorts) and passes them here, and only the address is
// rewritten.

// FlowPorts returns the ports under which the translator files a packet's
// flow (source, destination as on the wire; the echo id stands for the
// private or public port, 0 for the remote one). dir is DirOut for packets
// from the inside. ok is false for packets that have none.
func FlowPorts(ip IPv4, dir int) (sport, dport uint16, ok bool) {
	kind, sport, dport := ReadTransport(ip.Protocol(), ip.Payload())
	switch kind {
	case TransportPorts:
		return sport, dport, true
	case TransportEcho:
		if dir == DirOut {
			return sport, 0, true
		}
		return 0, dport, true
	}
	return 0, 0, false
}

// OutboundFragment translates a later fragment from the inside whose
// datagram's ports (as FlowPorts gave them for its first fragment) are
// sport and dport.
func (t *Translator) OutboundFragment(pkt []byte, sport, dport uint16, now Tick) Verdict {
	return t.count(t.fragment(pkt, sport, dport, DirOut, now), &t.batchInfo[0], DirOut)
}

// InboundFragment is OutboundFragment for fragments from the outside.
func (t *Translator) InboundFragment(pkt []byte, sport, dport uint16, now Tick) Verdict {
	return t.count(t.fragment(pkt, sport, dport, DirIn, now), &t.batchInfo[0], DirIn)
}

func (t *Translator) fragment(pkt []byte, sport, dport uint16, dir int, now Tick) Verdict {
	pi := &t.batchInfo[0]
	*pi = pktInfo{}
	ip, ok := ParseIPv4(pkt)
	if !ok {
		return DropMalformed
	}
	pi.ip = ip
	if ip.TTL() <= 1 {
		return DropTTLExceeded
	}
	proto := ip.Protocol()
	var idx uint32
	if dir == DirOut {
		t.redirKey = OutKey{Priv: ip.Src(), Remote: ip.Dst(), PrivPort: sport, RemotePort: dport, Proto: proto}
		idx = t.flows.LookupOut(&t.redirKey)
	} else {
		k := InKey{Pub: ip.Dst(), Remote: ip.Src(), PubPort: dport, RemotePort: sport, Proto: proto}
		idx = t.flows.LookupIn(&k)
	}
	if idx = t.current(idx); idx == 0 {
		if (dir == DirIn && t.handoffIn(proto, ip.Dst(), dport)) || (dir == DirOut && t.handoffOut(proto, ip.Src(), sport)) {
			return VerdictHandoff // another worker's mapping (eim.go)
		}
		if dir == DirOut && t.redirect && t.redirChk(0, &t.redirKey) {
			// Its first fragment was redirected: the rest follow it.
			return VerdictRedirect
		}
		return DropFragment
	}
	f := t.flows.Flow(idx)
	if f.Flags&flagHairpin != 0 {
		// Hairpinned datagrams are not reassembled or tracked
		// through the inbound side: their later fragments are
		// dropped (see VerdictHairpin).
		return DropFragment
	}
	t.flows.Touch(idx, now)
	oldA, newA := f.Priv, f.Pub
	if dir == DirIn {
		oldA, newA = f.Pub, f.Priv
	}
	ck := UpdateChecksum32(ip.Checksum(), oldA, newA)
	ck = UpdateChecksum16(ck, uint16(ip.TTL())<<8|uint16(proto), uint16(ip.TTL()-1)<<8|uint16(proto))
	if dir == DirOut {
		ip.SetSrc(newA)
	} else {
		ip.SetDst(newA)
	}
	ip.SetTTL(ip.TTL() - 1)
	ip.SetChecksum(ck)
	return VerdictForward
}
