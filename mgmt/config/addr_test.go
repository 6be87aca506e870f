package config

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/natgw/natgw/portalloc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestParseIPv4(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"198.19.1.10", true},
		{"0.0.0.0", true},
		{"198.19.1", false},
		{"198.19.1.256", false},
		{"::1", false},
		{"::ffff:198.19.1.10", false},
		{"198.19.1.10/32", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseIPv4(tt.in)
			if !tt.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.in, a.String())
		})
	}
}

func TestParseIPv4Prefix(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"10.0.2.0/28", "10.0.2.0/28", ""},
		{"10.0.2.5", "10.0.2.5/32", ""},
		{"10.0.2.5/32", "10.0.2.5/32", ""},
		{"0.0.0.0/0", "0.0.0.0/0", ""},
		{"10.0.2.5/28", "", `write the network, "10.0.2.0/28", or the single address "10.0.2.5"`},
		{"10.0.2.0/33", "", "not an IPv4 address or prefix"},
		{"fd00::/64", "", "not an IPv4 address or prefix"},
		{"fd00::1", "", "not an IPv4 address or prefix"},
		{"", "", "not an IPv4 address or prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParseIPv4Prefix(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.String())
		})
	}
}

func TestParseInterfaceAddress(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"10.0.0.1/16", ""},
		{"198.19.0.0/31", ""},
		{"198.19.0.1/31", ""},
		{"10.0.0.0/16", "network address"},
		{"10.0.255.255/16", "broadcast address"},
		{"10.0.0.1/32", "1 to 31"},
		{"10.0.0.1/0", "1 to 31"},
		{"10.0.0.1", "with prefix length"},
		{"fd00::1/64", "with prefix length"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParseInterfaceAddress(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.in, p.String(), "the host address is kept")
		})
	}
}

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    [6]byte
		wantErr string
	}{
		{"02:00:00:00:00:01", [6]byte{2, 0, 0, 0, 0, 1}, ""},
		{"02-00-00-00-00-0a", [6]byte{2, 0, 0, 0, 0, 10}, ""},
		{"0200.0000.00ff", [6]byte{2, 0, 0, 0, 0, 255}, ""},
		{"03:00:00:00:00:01", [6]byte{}, "multicast or broadcast"},
		{"00:00:00:00:00:00", [6]byte{}, "all-zero"},
		{"02:00:00:00:00:00:00:01", [6]byte{}, "not an Ethernet address"},
		{"02:00:00:00:00", [6]byte{}, "not an Ethernet address"},
		{"", [6]byte{}, "not an Ethernet address"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			mac, err := ParseMAC(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, mac)
		})
	}
}

func TestLastAddr(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"10.0.0.0/16", "10.0.255.255"},
		{"10.0.0.7/32", "10.0.0.7"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"198.19.0.0/31", "198.19.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			assert.Equal(t, tt.want, lastAddr(mustPrefix(tt.prefix)).String())
		})
	}
}

func TestPoolMemberAddrs(t *testing.T) {
	tests := []struct {
		name    string
		members []string
		want    []string
		wantErr error
	}{
		{"as written", []string{"10.0.1.5", "10.0.2.0/31", "10.0.1.4"}, []string{"10.0.1.5", "10.0.2.0", "10.0.2.1", "10.0.1.4"}, nil},
		{"whole /30", []string{"10.0.2.0/30"}, []string{"10.0.2.0", "10.0.2.1", "10.0.2.2", "10.0.2.3"}, nil},
		{"duplicate", []string{"10.0.2.0/30", "10.0.2.3"}, nil, ErrDuplicateMember},
		{"too many, not expanded", []string{"10.0.0.0/8"}, nil, portalloc.ErrPoolTooLarge},
		{"/0 not expanded", []string{"0.0.0.0/0", "0.0.0.0/0"}, nil, portalloc.ErrPoolTooLarge},
		{"empty", nil, []string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Pool{Name: "p", Members: tt.members}
			addrs, err := p.MemberAddrs()
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			got := make([]string, len(addrs))
			for i, a := range addrs {
				got[i] = a.String()
			}
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := (&Pool{Members: []string{"nope"}}).MemberAddrs()
	assert.Error(t, err)
}

func TestPoolBlockSize(t *testing.T) {
	tests := []struct {
		name    string
		pool    Pool
		want    int
		wantErr bool
	}{
		{"tier 1-50", Pool{Members: []string{"10.0.0.0/27"}}, 1024, false},
		{"tier 51-100", Pool{Members: []string{"10.0.0.0/26"}}, 512, false},
		{"tier 801-1000", Pool{Members: []string{"10.0.0.0/23", "10.0.4.0/24", "10.0.5.0/26"}}, 32, false},
		{"manual", Pool{Members: []string{"10.0.0.0/26"}, PortsPerMember: 2048}, 2048, false},
		{"manual bad", Pool{Members: []string{"10.0.0.0/26"}, PortsPerMember: 7}, 0, true},
		{"too large", Pool{Members: []string{"10.0.0.0/21"}}, 0, true},
		{"empty", Pool{}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.pool.BlockSize()
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestConfigAccessorsOnInvalid(t *testing.T) {
	c := &Config{Inside: InsidePort{Address: "bad"}, Outside: OutsidePort{Address: "bad", Gateway: "bad"}}
	assert.False(t, c.InsidePrefix().IsValid())
	assert.False(t, c.OutsidePrefix().IsValid())
	assert.False(t, c.GatewayAddr().IsValid())
	_, ok := c.FrontendAddr("fe1")
	assert.False(t, ok)
	_, err := c.FrontendAddrs([]string{"fe1"})
	assert.Error(t, err)
	_, err = Instance{Inbound: []string{"x"}}.InboundRules()
	assert.Error(t, err)
	_, err = (&DefaultSNAT{Sources: []string{"x"}}).SourcePrefixes()
	assert.Error(t, err)
	assert.False(t, errors.Is(err, ErrDuplicateMember))
}

func TestDefaultSNATSourcePrefixes(t *testing.T) {
	d := &DefaultSNAT{Sources: []string{"10.0.0.0/8", "172.16.0.1"}}
	got, err := d.SourcePrefixes()
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{mustPrefix("10.0.0.0/8"), mustPrefix("172.16.0.1/32")}, got)
}
