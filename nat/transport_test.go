package nat

import "testing"

func TestReadTransport(t *testing.T) {
	ports := []byte{0x12, 0x34, 0x00, 0x50, 0, 0, 0, 0}
	echo := func(typ uint8) []byte { return []byte{typ, 0, 0, 0, 0xbe, 0xef, 0, 1} }
	for _, tc := range []struct {
		name         string
		proto        uint8
		l4           []byte
		kind         TransportKind
		sport, dport uint16
	}{
		{"tcp", ProtoTCP, ports, TransportPorts, 0x1234, 80},
		{"udp", ProtoUDP, ports[:4], TransportPorts, 0x1234, 80},
		{"udp short", ProtoUDP, ports[:3], TransportTruncated, 0, 0},
		{"tcp empty", ProtoTCP, nil, TransportTruncated, 0, 0},
		{"echo request", ProtoICMP, echo(ICMPEchoRequest), TransportEcho, 0xbeef, 0xbeef},
		{"echo reply", ProtoICMP, echo(ICMPEchoReply), TransportEcho, 0xbeef, 0xbeef},
		{"echo short", ProtoICMP, echo(ICMPEchoRequest)[:7], TransportTruncated, 0, 0},
		{"unreachable", ProtoICMP, echo(ICMPDestUnreachable), TransportICMPError, 0, 0},
		{"time exceeded", ProtoICMP, echo(ICMPTimeExceeded), TransportICMPError, 0, 0},
		{"timestamp", ProtoICMP, echo(13), TransportUnsupported, 0, 0},
		{"gre", 47, ports, TransportUnsupported, 0, 0},
	} {
		kind, sport, dport := ReadTransport(tc.proto, tc.l4)
		if kind != tc.kind || sport != tc.sport || dport != tc.dport {
			t.Errorf("%s: got %d %#x %#x, want %d %#x %#x", tc.name, kind, sport, dport, tc.kind, tc.sport, tc.dport)
		}
	}
}
