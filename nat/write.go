package nat

// Header writers and packet builders, used by tests and by the appliance to
// originate packets (ARP replies, echo replies, ICMP errors, RSTs on idle
// expiry). They write into a caller's buffer, return the number of bytes
// written (0, writing nothing, when the buffer is too small or the packet
// would exceed 65535 bytes) and never allocate. They run on whichever core
// owns the buffer.

import "encoding/binary"

// Defaults of the packets the Build functions originate.
const (
	// tcpBuildWindow is the receive window of segments built by BuildTCP.
	tcpBuildWindow = 0xffff
	// ipv4MaxLen is the largest IPv4 total length.
	ipv4MaxLen = 0xffff
)

// WriteEthernet writes an Ethernet II header into b and returns
// EthernetLen, or 0 when len(b) < EthernetLen.
func WriteEthernet(b []byte, dst, src [6]byte, etherType uint16) int {
	if len(b) < EthernetLen {
		return 0
	}
	copy(b[ethDstOff:ethDstOff+6], dst[:])
	copy(b[ethSrcOff:ethSrcOff+6], src[:])
	binary.BigEndian.PutUint16(b[ethTypeOff:], etherType)
	return EthernetLen
}

// IPv4Fields are the fields WriteIPv4 writes into a 20-byte IPv4 header
// without options.
type IPv4Fields struct {
	// TOS is the type-of-service (DSCP and ECN) byte.
	TOS uint8
	// TotalLen is the packet length, header included; at least IPv4MinLen.
	TotalLen uint16
	// ID is the identification field.
	ID uint16
	// DontFragment sets the DF flag.
	DontFragment bool
	// TTL is the time to live.
	TTL uint8
	// Protocol is the payload's protocol (ProtoTCP, ProtoUDP, ProtoICMP).
	Protocol uint8
	// Src is the source address in host byte order.
	Src uint32
	// Dst is the destination address in host byte order.
	Dst uint32
}

// WriteIPv4 writes a 20-byte IPv4 header with fields h and its checksum
// into b and returns the view of the packet, b[:h.TotalLen]. The payload
// is not touched. It returns nil, writing nothing, when h.TotalLen is less
// than IPv4MinLen or greater than len(b).
func WriteIPv4(b []byte, h IPv4Fields) IPv4 {
	if int(h.TotalLen) < IPv4MinLen || int(h.TotalLen) > len(b) {
		return nil
	}
	writeIPv4Header(b, &h)
	return IPv4(b[:h.TotalLen])
}

// writeIPv4Header writes h and its checksum into b, which must hold at
// least IPv4MinLen bytes.
func writeIPv4Header(b []byte, h *IPv4Fields) {
	b = b[:IPv4MinLen]
	b[ipv4VerIHLOff] = 0x45
	b[ipv4TOSOff] = h.TOS
	binary.BigEndian.PutUint16(b[ipv4TotalLenOff:], h.TotalLen)
	binary.BigEndian.PutUint16(b[ipv4IDOff:], h.ID)
	var frag uint16
	if h.DontFragment {
		frag = ipv4FlagDF
	}
	binary.BigEndian.PutUint16(b[ipv4FragOff:], frag)
	b[ipv4TTLOff] = h.TTL
	b[ipv4ProtoOff] = h.Protocol
	binary.BigEndian.PutUint16(b[ipv4ChecksumOff:], 0)
	binary.BigEndian.PutUint32(b[ipv4SrcOff:], h.Src)
	binary.BigEndian.PutUint32(b[ipv4DstOff:], h.Dst)
	binary.BigEndian.PutUint16(b[ipv4ChecksumOff:], Fold(Sum(b, 0)))
}

// buildLength returns the total length of an IPv4 packet of hdr bytes of
// headers followed by payload, or 0 when it exceeds the IPv4 maximum or
// len(b).
func buildLength(b []byte, hdr int, payload []byte) int {
	n := hdr + len(payload)
	if n > ipv4MaxLen || n > len(b) {
		return 0
	}
	return n
}

// BuildUDP writes an IPv4 packet (20-byte header, DF set, ID 0) carrying a
// UDP datagram with payload into b, both checksums valid, and returns its
// length, or 0 when it does not fit in b. payload may already sit in b at
// its final place or elsewhere in b: it is moved before the headers are
// written.
func BuildUDP(b []byte, src, dst uint32, sport, dport uint16, ttl uint8, payload []byte) int {
	n := buildLength(b, IPv4MinLen+UDPLen, payload)
	if n == 0 {
		return 0
	}
	copy(b[IPv4MinLen+UDPLen:n], payload)
	writeIPv4Header(b, &IPv4Fields{TotalLen: uint16(n), DontFragment: true, TTL: ttl, Protocol: ProtoUDP, Src: src, Dst: dst})
	u := b[IPv4MinLen:n]
	binary.BigEndian.PutUint16(u[udpSrcPortOff:], sport)
	binary.BigEndian.PutUint16(u[udpDstPortOff:], dport)
	binary.BigEndian.PutUint16(u[udpLengthOff:], uint16(len(u)))
	binary.BigEndian.PutUint16(u[udpChecksumOff:], 0)
	c := Fold(Sum(u, PseudoHeaderSum(src, dst, ProtoUDP, uint16(len(u)))))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[udpChecksumOff:], c)
	return n
}

// TCPSegment is what BuildTCP writes: a TCP segment and the addresses of
// the IPv4 packet that carries it.
type TCPSegment struct {
	// Src and Dst are the addresses, host byte order.
	Src, Dst uint32
	// SrcPort and DstPort are the ports.
	SrcPort, DstPort uint16
	// Seq and Ack are the sequence and acknowledgement numbers.
	Seq, Ack uint32
	// Flags are the TCP flags (TCPFlagSYN|TCPFlagACK...).
	Flags uint8
	// TTL is the IPv4 time to live.
	TTL uint8
	// Payload is the segment's data; it may already sit in the buffer
	// BuildTCP writes to.
	Payload []byte
}

// BuildTCP writes an IPv4 packet (20-byte header, DF set, ID 0) carrying
// the TCP segment s into b, both checksums valid, and returns its length,
// or 0 when it does not fit in b. The TCP header has no options, window
// 65535 and urgent pointer 0. s.Payload may already sit in b: it is moved
// before the headers are written.
func BuildTCP(b []byte, s TCPSegment) int {
	n := buildLength(b, IPv4MinLen+TCPMinLen, s.Payload)
	if n == 0 {
		return 0
	}
	copy(b[IPv4MinLen+TCPMinLen:n], s.Payload)
	writeIPv4Header(b, &IPv4Fields{TotalLen: uint16(n), DontFragment: true, TTL: s.TTL, Protocol: ProtoTCP, Src: s.Src, Dst: s.Dst})
	t := b[IPv4MinLen:n]
	binary.BigEndian.PutUint16(t[tcpSrcPortOff:], s.SrcPort)
	binary.BigEndian.PutUint16(t[tcpDstPortOff:], s.DstPort)
	binary.BigEndian.PutUint32(t[tcpSeqOff:], s.Seq)
	binary.BigEndian.PutUint32(t[tcpAckOff:], s.Ack)
	t[tcpDataOffOff] = (TCPMinLen / 4) << 4
	t[tcpFlagsOff] = s.Flags
	binary.BigEndian.PutUint16(t[tcpWindowOff:], tcpBuildWindow)
	binary.BigEndian.PutUint16(t[tcpChecksumOff:], 0)
	binary.BigEndian.PutUint16(t[tcpUrgentOff:], 0)
	binary.BigEndian.PutUint16(t[tcpChecksumOff:], Fold(Sum(t, PseudoHeaderSum(s.Src, s.Dst, ProtoTCP, uint16(len(t))))))
	return n
}

// BuildICMPEcho writes an IPv4 packet (20-byte header, DF set, ID 0)
// carrying an ICMP echo message of type typ (ICMPEchoRequest or
// ICMPEchoReply) with identifier id, sequence number seq and data payload
// into b, both checksums valid, and returns its length, or 0 when it does
// not fit in b. payload may already sit in b: it is moved before the
// headers are written.
func BuildICMPEcho(b []byte, src, dst uint32, typ uint8, id, seq uint16, ttl uint8, payload []byte) int {
	n := buildLength(b, IPv4MinLen+ICMPHeaderLen, payload)
	if n == 0 {
		return 0
	}
	copy(b[IPv4MinLen+ICMPHeaderLen:n], payload)
	writeIPv4Header(b, &IPv4Fields{TotalLen: uint16(n), DontFragment: true, TTL: ttl, Protocol: ProtoICMP, Src: src, Dst: dst})
	c := b[IPv4MinLen:n]
	c[icmpTypeOff] = typ
	c[icmpCodeOff] = 0
	binary.BigEndian.PutUint16(c[icmpChecksumOff:], 0)
	binary.BigEndian.PutUint16(c[icmpIDOff:], id)
	binary.BigEndian.PutUint16(c[icmpSeqOff:], seq)
	binary.BigEndian.PutUint16(c[icmpChecksumOff:], Fold(Sum(c, 0)))
	return n
}

// BuildICMPError writes an IPv4 packet (20-byte header, DF set, ID 0)
// carrying an ICMP error of type typ and code code about packet orig into
// b, both checksums valid, and returns its length. The error quotes orig's
// header and as much of its payload as keeps the whole packet within
// ICMPErrorMaxLen bytes (RFC 1812 4.3.2.3). mtu is written as the next-hop
// MTU of a fragmentation-needed error (ICMPDestUnreachable with
// ICMPCodeFragNeeded) and ignored otherwise; the rest of the header is
// zero. It returns 0, writing nothing, when len(orig) < IPv4MinLen or the
// packet does not fit in b. orig may lie in b (a received packet answered
// in its own buffer): it is quoted before the headers are written.
//
// Whether an error may be sent at all (not about an ICMP error, a
// non-first fragment or a broadcast, and rate-limited) is the caller's
// decision.
func BuildICMPError(b []byte, src, dst uint32, typ, code uint8, mtu uint16, orig IPv4, ttl uint8) int {
	const hdr = IPv4MinLen + ICMPHeaderLen
	if len(orig) < IPv4MinLen {
		return 0
	}
	q := len(orig)
	if q > ICMPErrorMaxLen-hdr {
		q = ICMPErrorMaxLen - hdr
	}
	n := hdr + q
	if n > len(b) {
		return 0
	}
	copy(b[hdr:n], orig[:q])
	writeIPv4Header(b, &IPv4Fields{TotalLen: uint16(n), DontFragment: true, TTL: ttl, Protocol: ProtoICMP, Src: src, Dst: dst})
	c := b[IPv4MinLen:n]
	c[icmpTypeOff] = typ
	c[icmpCodeOff] = code
	binary.BigEndian.PutUint16(c[icmpChecksumOff:], 0)
	binary.BigEndian.PutUint32(c[icmpIDOff:], 0)
	if typ == ICMPDestUnreachable && code == ICMPCodeFragNeeded {
		binary.BigEndian.PutUint16(c[icmpMTUOff:], mtu)
	}
	binary.BigEndian.PutUint16(c[icmpChecksumOff:], Fold(Sum(c, 0)))
	return n
}
