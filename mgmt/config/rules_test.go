package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProtocol(t *testing.T) {
	tests := []struct {
		in      string
		want    Protocol
		wantErr bool
	}{
		{"tcp", ProtocolTCP, false},
		{"udp", ProtocolUDP, false},
		{"icmp", ProtocolICMP, false},
		{"any", ProtocolAny, false},
		{"", 0, true},
		{"TCP", 0, true},
		{"sctp", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseProtocol(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.String())
		})
	}
}

func TestProtocolNumbers(t *testing.T) {
	assert.Equal(t, uint8(1), uint8(ProtocolICMP))
	assert.Equal(t, uint8(6), uint8(ProtocolTCP))
	assert.Equal(t, uint8(17), uint8(ProtocolUDP))
	assert.Equal(t, "protocol(50)", Protocol(50).String())
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		want    PortRange
		wantErr string
	}{
		{"*", AllPorts, ""},
		{"25", PortRange{25, 25}, ""},
		{"1", PortRange{1, 1}, ""},
		{"65535", PortRange{65535, 65535}, ""},
		{"1000-2000", PortRange{1000, 2000}, ""},
		{"", PortRange{}, "not a port"},
		{"0", PortRange{}, "not a port from 1 to 65535"},
		{"65536", PortRange{}, "not a port"},
		{"-5", PortRange{}, "not a port"},
		{"5-", PortRange{}, "not a port"},
		{"2000-1000", PortRange{}, `write "1000-2000"`},
		{"1-2-3", PortRange{}, "not a port"},
		{" 25", PortRange{}, "not a port"},
		{"+25", PortRange{}, "not a port"},
		{"**", PortRange{}, "not a port"},
		{"0x19", PortRange{}, "not a port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePortRange(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.String(), "String writes the configuration's form")
		})
	}
}

func TestPortRangeOfOnePort(t *testing.T) {
	r, err := ParsePortRange("8000-8000")
	require.NoError(t, err)
	assert.Equal(t, PortRange{8000, 8000}, r)
	assert.Equal(t, "8000", r.String())
}

func TestPortRangeContains(t *testing.T) {
	tests := []struct {
		name string
		r    PortRange
		port uint16
		want bool
	}{
		{"all holds 0", AllPorts, 0, true},
		{"all holds 65535", AllPorts, 65535, true},
		{"single", PortRange{25, 25}, 25, true},
		{"below", PortRange{1000, 2000}, 999, false},
		{"low edge", PortRange{1000, 2000}, 1000, true},
		{"high edge", PortRange{1000, 2000}, 2000, true},
		{"above", PortRange{1000, 2000}, 2001, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.r.Contains(tt.port))
		})
	}
}

func TestParseInbound(t *testing.T) {
	tests := []struct {
		in      string
		want    InboundRule
		wantErr string
	}{
		{"tcp/22", InboundRule{ProtocolTCP, PortRange{22, 22}}, ""},
		{"tcp/8000-8100", InboundRule{ProtocolTCP, PortRange{8000, 8100}}, ""},
		{"udp/*", InboundRule{ProtocolUDP, AllPorts}, ""},
		{"icmp", InboundRule{ProtocolICMP, AllPorts}, ""},
		{"icmp/8", InboundRule{}, "icmp takes no ports"},
		{"icmp/", InboundRule{}, "icmp takes no ports"},
		{"tcp", InboundRule{}, `tcp needs ports; write "tcp/22"`},
		{"udp/", InboundRule{}, "not a port"},
		{"tcp/0", InboundRule{}, "not a port from 1 to 65535"},
		{"tcp/100-50", InboundRule{}, `write "50-100"`},
		{"any/22", InboundRule{}, "tcp, udp or icmp"},
		{"", InboundRule{}, "tcp, udp or icmp"},
		{"TCP/22", InboundRule{}, "tcp, udp or icmp"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseInbound(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.String())
		})
	}
}

func TestDenyMatch(t *testing.T) {
	tests := []struct {
		name    string
		rule    DenyRule
		want    DenyMatch
		wantErr string
	}{
		{"smtp", DenyRule{Destination: "198.18.99.0/24", Protocol: "tcp", Ports: "25"},
			DenyMatch{mustPrefix("198.18.99.0/24"), ProtocolTCP, PortRange{25, 25}}, ""},
		{"defaults are any and *", DenyRule{Destination: "198.18.99.7"},
			DenyMatch{mustPrefix("198.18.99.7/32"), ProtocolAny, AllPorts}, ""},
		{"icmp", DenyRule{Destination: "198.18.0.0/16", Protocol: "icmp", Ports: "*"},
			DenyMatch{mustPrefix("198.18.0.0/16"), ProtocolICMP, AllPorts}, ""},
		{"udp range", DenyRule{Destination: "198.18.0.0/16", Protocol: "udp", Ports: "1000-2000"},
			DenyMatch{mustPrefix("198.18.0.0/16"), ProtocolUDP, PortRange{1000, 2000}}, ""},
		{"bad destination", DenyRule{Destination: "198.18.0.1/16"}, DenyMatch{}, "destination: "},
		{"bad protocol", DenyRule{Destination: "198.18.0.0/16", Protocol: "gre"}, DenyMatch{}, "protocol: "},
		{"bad ports", DenyRule{Destination: "198.18.0.0/16", Protocol: "tcp", Ports: "x"}, DenyMatch{}, "ports: "},
		{"icmp with ports", DenyRule{Destination: "198.18.0.0/16", Protocol: "icmp", Ports: "7"}, DenyMatch{}, "icmp has no ports"},
		{"any with ports", DenyRule{Destination: "198.18.0.0/16", Ports: "7"}, DenyMatch{}, "one rule for each"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.rule.Match()
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzParsePortRange checks that ParsePortRange never panics and that what
// it accepts writes back to text that parses to the same range.
func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"*", "25", "1000-2000", "0", "65536", "2-1", "-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePortRange(s)
		if err != nil {
			return
		}
		assert.LessOrEqual(t, r.Lo, r.Hi)
		again, err := ParsePortRange(r.String())
		require.NoError(t, err)
		assert.Equal(t, r, again)
	})
}

// FuzzParseInbound checks that ParseInbound never panics and round-trips.
func FuzzParseInbound(f *testing.F) {
	for _, s := range []string{"tcp/22", "udp/*", "icmp", "tcp/1-2", "icmp/1", "tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseInbound(s)
		if err != nil {
			return
		}
		again, err := ParseInbound(r.String())
		require.NoError(t, err)
		assert.Equal(t, r, again)
	})
}
