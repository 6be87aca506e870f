package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minimal is the smallest valid configuration: the two ports.
const minimal = `
[inside]
port = "veth-in"
address = "10.0.0.1/16"

[outside]
port = "veth-out"
address = "198.19.0.2/24"
gateway = "198.19.0.1"
`

// requireErrors asserts that err is Errors and returns it.
func requireErrors(t *testing.T, err error) Errors {
	t.Helper()
	require.Error(t, err)
	var errs Errors
	require.True(t, errors.As(err, &errs), "error is %T, not Errors: %v", err, err)
	require.NotEmpty(t, errs)
	return errs
}

func TestLoadExample(t *testing.T) {
	c, err := Load("testdata/example.toml")
	require.NoError(t, err)

	assert.Equal(t, "dpdk", c.Dataplane.Driver)
	assert.Equal(t, 2, c.Dataplane.Workers)
	assert.Len(t, c.Dataplane.EALArgs, 4)
	assert.Equal(t, netip.MustParsePrefix("10.0.0.1/16"), c.InsidePrefix())
	assert.Equal(t, netip.MustParsePrefix("198.19.0.2/24"), c.OutsidePrefix())
	assert.Equal(t, netip.MustParseAddr("198.19.0.1"), c.GatewayAddr())
	assert.Equal(t, 4*time.Minute, c.Timeouts.TCPEstablished.Duration)
	assert.Equal(t, 60*time.Second, c.Timeouts.ICMP.Duration)
	assert.True(t, c.Timeouts.ICMP.Set)

	require.Len(t, c.Neighbors, 1)
	assert.Equal(t, [6]byte{2, 0, 0, 0, 0, 1}, c.Neighbors[0].HardwareAddr())

	require.Len(t, c.Pools, 1)
	addrs, err := c.Pools[0].MemberAddrs()
	require.NoError(t, err)
	assert.Len(t, addrs, 18)
	size, err := c.Pools[0].BlockSize()
	require.NoError(t, err)
	assert.Equal(t, 1024, size)
	fe, err := c.FrontendAddrs(c.Pools[0].Frontends)
	require.NoError(t, err)
	assert.Equal(t, []uint32{198<<24 | 19<<16 | 1<<8 | 10}, fe)

	require.Len(t, c.Instances, 1)
	rules, err := c.Instances[0].InboundRules()
	require.NoError(t, err)
	assert.Equal(t, []InboundRule{
		{Protocol: ProtocolTCP, Ports: PortRange{22, 22}},
		{Protocol: ProtocolTCP, Ports: PortRange{8000, 8100}},
		{Protocol: ProtocolUDP, Ports: AllPorts},
	}, rules)

	require.NotNil(t, c.DefaultSNAT)
	assert.Equal(t, []string{"fe-default"}, c.DefaultSNAT.Frontends)

	require.Len(t, c.Deny, 1)
	m, err := c.Deny[0].Match()
	require.NoError(t, err)
	assert.Equal(t, DenyMatch{
		Destination: netip.MustParsePrefix("198.18.99.0/24"),
		Protocol:    ProtocolTCP,
		Ports:       PortRange{25, 25},
	}, m)
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(t *testing.T, c *Config)
	}{
		{"left out", "", func(t *testing.T, c *Config) {
			assert.Equal(t, DefaultDriver, c.Dataplane.Driver)
			assert.Equal(t, DefaultWorkers, c.Dataplane.Workers)
			assert.Equal(t, DefaultFlowCapacity, c.Dataplane.FlowCapacity)
			assert.Equal(t, 4*time.Minute, c.Timeouts.TCPEstablished.Duration)
			assert.Equal(t, 30*time.Second, c.Timeouts.TCPTransitory.Duration)
			assert.Equal(t, 10*time.Second, c.Timeouts.TCPClosing.Duration)
			assert.Equal(t, 4*time.Minute, c.Timeouts.UDP.Duration)
			assert.Equal(t, 60*time.Second, c.Timeouts.ICMP.Duration)
			assert.False(t, c.Timeouts.UDP.Set, "Set says whether the file had the key")
			assert.Nil(t, c.DefaultSNAT)
			assert.Equal(t, "127.0.0.1:9650", c.Mgmt.Listen)
		}},
		{"given values kept", `
[dataplane]
driver = "afpacket"
workers = 3
flow_capacity = 5000
[timeouts]
udp = "90s"
[mgmt]
listen = "127.0.0.1:1234"
`, func(t *testing.T, c *Config) {
			assert.Equal(t, "afpacket", c.Dataplane.Driver)
			assert.Equal(t, 3, c.Dataplane.Workers)
			assert.Equal(t, 5000, c.Dataplane.FlowCapacity)
			assert.Equal(t, 90*time.Second, c.Timeouts.UDP.Duration)
			assert.True(t, c.Timeouts.UDP.Set)
			assert.Equal(t, 4*time.Minute, c.Timeouts.TCPEstablished.Duration)
			assert.Equal(t, "127.0.0.1:1234", c.Mgmt.Listen)
		}},
		{"default_snat block size", `
[[frontend]]
name = "fe"
address = "198.19.1.1"
[default_snat]
sources = ["10.0.0.0/16"]
frontends = ["fe"]
`, func(t *testing.T, c *Config) {
			require.NotNil(t, c.DefaultSNAT)
			assert.Equal(t, DefaultSNATPortsPerMember, c.DefaultSNAT.PortsPerMember)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal+tt.extra), "test.toml")
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestApplyDefaultsIdempotent(t *testing.T) {
	c := &Config{Timeouts: Timeouts{UDP: Duration{Duration: 5 * time.Second}}}
	c.ApplyDefaults()
	first := *c
	c.ApplyDefaults()
	assert.Equal(t, first, *c)
	assert.Equal(t, 5*time.Second, c.Timeouts.UDP.Duration, "a value set in code is kept")
}

// TestParseErrors covers the problems Parse finds before or besides
// Validate: syntax, types, durations, unknown keys.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		wantKeys []string
		wantLine int
		wantMsg  string
	}{
		{"syntax", minimal + "[timeouts]\nudp = 4m\n", []string{""}, 11, "TOML syntax"},
		{"syntax on first line", "= 3\n", []string{""}, 1, "TOML syntax"},
		{"duplicate key", minimal + "[mgmt]\nlisten = \"a\"\nlisten = \"b\"\n", []string{""}, 12, "TOML syntax"},
		{"wrong type", minimal + "[dataplane]\nworkers = \"two\"\n", []string{"dataplane.workers"}, 11, "incompatible types"},
		{"bad duration", minimal + "[timeouts]\nudp = \"4 minutes\"\n", []string{"timeouts.udp"}, 11, `"4 minutes" is not a duration`},
		{"duration without unit", minimal + "[timeouts]\ntcp_closing = 10\n", []string{"timeouts.tcp_closing"}, 11, "with a unit"},
		{"wrong type in first of two tables", minimal + "[[frontend]]\nname = 5\naddress = \"198.19.1.1\"\n[[frontend]]\nname = \"b\"\naddress = \"198.19.1.2\"\n",
			[]string{"frontend[0].name"}, 0, "incompatible types"},
		{"wrong type in second of two tables", minimal + "[[frontend]]\nname = \"a\"\naddress = \"198.19.1.1\"\n[[frontend]]\nname = 5\naddress = \"198.19.1.2\"\n",
			[]string{"frontend[1].name"}, 0, "incompatible types"},
		{"wrong type in inline array", "frontend = [{name = \"a\"}, {name = 3}]\n" + minimal,
			[]string{"frontend[1].name"}, 0, "incompatible types"},
		{"wrong type in member list", minimal + "[[pool]]\nname = \"a\"\nmembers = [\"10.0.1.1\", 3]\n",
			[]string{"pool[0].members"}, 0, "incompatible types"},
		{"table where a value belongs", minimal + "[[pool]]\nname = \"a\"\n[pool.members]\nx = 1\n",
			[]string{"pool[0].members"}, 0, "incompatible types"},
		{"unknown top-level table", minimal + "[dataplan]\nworkers = 2\n", []string{"dataplan"}, 0, `did you mean "dataplane"?`},
		{"unknown key", strings.Replace(minimal, "gateway", "gatway", 1), []string{"outside.gatway", "outside.gateway"}, 0, `did you mean "gateway"?`},
		{"unknown key in array", minimal + "[[frontend]]\nname = \"a\"\naddress = \"198.19.1.1\"\n[[frontend]]\nname = \"b\"\naddres = \"198.19.1.2\"\n",
			[]string{"frontend[1].addres", "frontend[1].address"}, 0, `did you mean "address"?`},
		{"unknown key in inline array", "frontend = [{name = \"a\", address = \"198.19.1.1\"}, {name = \"b\", address = \"198.19.1.2\", x = 1}]\n" + minimal,
			[]string{"frontend.x"}, 0, "unknown key"},
		{"unknown nested table reported once", minimal + "[foo.bar]\nx = 1\ny = 2\n", []string{"foo.bar"}, 0, "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.text), "f.toml")
			errs := requireErrors(t, err)
			assert.Equal(t, tt.wantKeys, errs.Keys(), "errors: %v", err)
			assert.Equal(t, tt.wantLine, errs[0].Line)
			assert.Contains(t, errs[0].Msg, tt.wantMsg)
			for _, e := range errs {
				assert.Equal(t, "f.toml", e.Source)
			}
		})
	}
}

func TestSyntaxErrorNamesLine(t *testing.T) {
	_, err := Parse([]byte("[inside]\nport = \"a\"\naddress = 10.0.0.1/16\n"), "x.toml")
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "x.toml:3: "), "got %q", err)
}

func TestAllErrorsAtOnce(t *testing.T) {
	text := `
[dataplane]
driver = "xdp"
[inside]
port = "veth-in"
address = "10.0.0.1/16"
[outside]
port = "veth-out"
address = "198.19.0.2/24"
gateway = "198.19.0.1"
[timeouts]
udp = "48h"
[[frontend]]
name = "fe1"
address = "10.0.5.5"
`
	_, err := Parse([]byte(text), "three.toml")
	errs := requireErrors(t, err)
	assert.Equal(t, []string{"dataplane.driver", "timeouts.udp", "frontend[0].address"}, errs.Keys())
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, `three.toml: dataplane.driver: unknown driver "xdp": write "dpdk" or "afpacket"`, lines[0])
	assert.Equal(t, "three.toml: timeouts.udp: 48h0m0s is too long: timeouts are at most 24h", lines[1])
	assert.Contains(t, lines[2], "three.toml: frontend[0].address: 10.0.5.5 is in the inside subnet 10.0.0.0/16")
}

func TestLoadWritesSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	require.NoError(t, os.WriteFile(path, []byte(minimal+"[dataplane]\nworkers = 0\nflow_capacity = -1\n"), 0o600))
	_, err := Load(path)
	errs := requireErrors(t, err)
	assert.Equal(t, []string{"dataplane.flow_capacity"}, errs.Keys(), "workers 0 means the default: %v", err)
	assert.Equal(t, path, errs[0].Source)
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  FieldError
		want string
	}{
		{"all parts", FieldError{Source: "a.toml", Line: 3, Key: "inside.port", Msg: "missing"}, "a.toml:3: inside.port: missing"},
		{"no line", FieldError{Source: "a.toml", Key: "inside.port", Msg: "missing"}, "a.toml: inside.port: missing"},
		{"no source", FieldError{Line: 3, Key: "k", Msg: "m"}, "line 3: k: m"},
		{"key only", FieldError{Key: "k", Msg: "m"}, "k: m"},
		{"file-wide", FieldError{Source: "a.toml", Line: 1, Msg: "TOML syntax: x"}, "a.toml:1: TOML syntax: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestErrorsUnwrap(t *testing.T) {
	var err error = Errors{{Key: "a", Msg: "x"}, {Key: "b", Msg: "y"}}
	var fe *FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "a", fe.Key)
	assert.Equal(t, "a: x\nb: y", err.Error())
}
