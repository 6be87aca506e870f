package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Protocol is an IP protocol a rule matches. Its values are the IP protocol
// numbers, so the packet path compares them with the header's protocol
// field; ProtocolAny (0) matches every protocol.
type Protocol uint8

// The protocols a rule can name.
const (
	// ProtocolAny matches TCP, UDP and ICMP ("any", or an empty protocol in
	// a deny rule).
	ProtocolAny Protocol = 0
	// ProtocolICMP is ICMP ("icmp"), IP protocol 1.
	ProtocolICMP Protocol = 1
	// ProtocolTCP is TCP ("tcp"), IP protocol 6.
	ProtocolTCP Protocol = 6
	// ProtocolUDP is UDP ("udp"), IP protocol 17.
	ProtocolUDP Protocol = 17
)

// String returns the protocol as written in the configuration.
func (p Protocol) String() string {
	switch p {
	case ProtocolAny:
		return "any"
	case ProtocolICMP:
		return "icmp"
	case ProtocolTCP:
		return "tcp"
	case ProtocolUDP:
		return "udp"
	}
	return "protocol(" + strconv.Itoa(int(p)) + ")"
}

// ParseProtocol parses "tcp", "udp", "icmp" or "any" (lower case, as the
// configuration writes them).
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "tcp":
		return ProtocolTCP, nil
	case "udp":
		return ProtocolUDP, nil
	case "icmp":
		return ProtocolICMP, nil
	case "any":
		return ProtocolAny, nil
	}
	return 0, fmt.Errorf("unknown protocol %q: write tcp, udp, icmp or any", s)
}

// PortRange is an inclusive range of TCP or UDP ports. The configuration's
// "*" is AllPorts, 0-65535: port 0 can't be written, so AllPorts is the only
// range that includes it, and Contains needs no special case for "*".
type PortRange struct {
	Lo, Hi uint16
}

// AllPorts is the range "*" stands for. Do not modify it.
var AllPorts = PortRange{Lo: 0, Hi: 65535}

// Contains reports whether port lies in the range.
func (r PortRange) Contains(port uint16) bool { return port >= r.Lo && port <= r.Hi }

// IsAll reports whether the range is "*".
func (r PortRange) IsAll() bool { return r == AllPorts }

// String writes the range as the configuration does: "*", "25" or
// "1000-2000".
func (r PortRange) String() string {
	switch {
	case r.IsAll():
		return "*"
	case r.Lo == r.Hi:
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// ParsePortRange parses "*" (AllPorts), a port ("25") or a range
// ("1000-2000", low first). Ports are decimal, 1 to 65535.
func ParsePortRange(s string) (PortRange, error) {
	if s == "*" {
		return AllPorts, nil
	}
	loText, hiText, isRange := strings.Cut(s, "-")
	lo, err := parsePort(loText)
	if err != nil {
		return PortRange{}, fmt.Errorf("bad port range %q: %w; write \"25\", \"1000-2000\" or \"*\"", s, err)
	}
	hi := lo
	if isRange {
		if hi, err = parsePort(hiText); err != nil {
			return PortRange{}, fmt.Errorf("bad port range %q: %w; write \"25\", \"1000-2000\" or \"*\"", s, err)
		}
		if lo > hi {
			return PortRange{}, fmt.Errorf("bad port range %q: the first port is above the last; write \"%d-%d\"", s, hi, lo)
		}
	}
	return PortRange{Lo: lo, Hi: hi}, nil
}

// parsePort parses one decimal port, 1 to 65535.
func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port from 1 to 65535", s)
	}
	return uint16(n), nil
}

// InboundRule allows inbound-initiated flows of one protocol and port range
// to an instance [S6]. For ICMP, Ports is AllPorts.
type InboundRule struct {
	Protocol Protocol
	Ports    PortRange
}

// String writes the rule as the configuration does ("tcp/22", "icmp").
func (r InboundRule) String() string {
	if r.Protocol == ProtocolICMP {
		return "icmp"
	}
	return r.Protocol.String() + "/" + r.Ports.String()
}

// ParseInbound parses an instance's inbound rule: "tcp/22",
// "tcp/8000-8100", "udp/*" or "icmp". TCP and UDP need ports; ICMP takes
// none; "any" is not allowed (list each protocol).
func ParseInbound(s string) (InboundRule, error) {
	protoText, ports, hasPorts := strings.Cut(s, "/")
	switch protoText {
	case "icmp":
		if hasPorts {
			return InboundRule{}, fmt.Errorf("bad inbound rule %q: icmp takes no ports; write \"icmp\"", s)
		}
		return InboundRule{Protocol: ProtocolICMP, Ports: AllPorts}, nil
	case "tcp", "udp":
		proto, _ := ParseProtocol(protoText)
		if !hasPorts {
			return InboundRule{}, fmt.Errorf("bad inbound rule %q: %s needs ports; write \"%s/22\", \"%s/8000-8100\" or \"%s/*\"", s, protoText, protoText, protoText, protoText)
		}
		r, err := ParsePortRange(ports)
		if err != nil {
			return InboundRule{}, fmt.Errorf("bad inbound rule %q: %w", s, err)
		}
		return InboundRule{Protocol: proto, Ports: r}, nil
	}
	return InboundRule{}, fmt.Errorf("bad inbound rule %q: the protocol must be tcp, udp or icmp, as in \"tcp/22\", \"udp/*\" or \"icmp\"", s)
}
