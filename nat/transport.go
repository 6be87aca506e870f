package nat

// TransportKind says how a packet's transport header identifies its flow.
type TransportKind uint8

// The kinds of transport header ReadTransport tells apart.
const (
	// TransportUnsupported: a protocol or ICMP type natgw does not
	// translate.
	TransportUnsupported TransportKind = iota
	// TransportTruncated: a protocol natgw translates, but too short to
	// hold the identifiers.
	TransportTruncated
	// TransportPorts: TCP or UDP; the identifiers are the ports.
	TransportPorts
	// TransportEcho: ICMP echo request or reply; both identifiers are the
	// echo identifier, which stands for the private and public port.
	TransportEcho
	// TransportICMPError: an ICMP error; the packet it quotes identifies
	// the flow (read it with ReadTransport on the quoted header).
	TransportICMPError
)

// ReadTransport reads the identifiers of a transport header — the one
// place natgw reads them, for the owner function, the fragment table, the
// translator and the quotes of ICMP errors. proto is the IP protocol and
// l4 the bytes from the transport header on (a quote's 8 bytes are
// enough). sport and dport are the header's source and destination port,
// or the echo identifier twice; they are 0 for the other kinds. It only
// checks that the identifiers are there: the translator validates the
// headers it rewrites with ParseTCP, ParseUDP and ParseICMP.
func ReadTransport(proto uint8, l4 []byte) (kind TransportKind, sport, dport uint16) {
	switch proto {
	case ProtoTCP, ProtoUDP:
		if len(l4) < 4 {
			return TransportTruncated, 0, 0
		}
		// TCP and UDP both start with the source and destination port.
		u := UDP(l4)
		return TransportPorts, u.SrcPort(), u.DstPort()
	case ProtoICMP:
		if len(l4) < ICMPHeaderLen {
			return TransportTruncated, 0, 0
		}
		c := ICMP(l4)
		switch t := c.Type(); {
		case t == ICMPEchoRequest || t == ICMPEchoReply:
			id := c.ID()
			return TransportEcho, id, id
		case IsICMPError(t):
			return TransportICMPError, 0, 0
		}
	}
	return TransportUnsupported, 0, 0
}
