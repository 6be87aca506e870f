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

// defaultSNATSection is a [default_snat] section with its frontend, for
// tests to append keys to.
const defaultSNATSection = `
[[frontend]]
name = "fe"
address = "198.19.1.1"
[default_snat]
sources = ["10.0.0.0/16"]
frontends = ["fe"]
`

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
			assert.Equal(t, 25, c.Limits.HostFlowPercent)
			assert.Equal(t, 50, c.Limits.InboundFlowPercent)
		}},
		{"given values kept", `
[dataplane]
driver = "afpacket"
workers = 3
flow_capacity = 5000
[timeouts]
udp = "90s"
tcp_reset_on_idle = true
[mgmt]
listen = "127.0.0.1:1234"
[limits]
host_flow_percent = 100
inbound_flow_percent = 10
`, func(t *testing.T, c *Config) {
			assert.Equal(t, 100, c.Limits.HostFlowPercent)
			assert.Equal(t, 10, c.Limits.InboundFlowPercent)
			assert.True(t, c.Timeouts.TCPResetOnIdle)
			assert.Equal(t, "afpacket", c.Dataplane.Driver)
			assert.Equal(t, 3, c.Dataplane.Workers)
			assert.Equal(t, 5000, c.Dataplane.FlowCapacity)
			assert.Equal(t, 90*time.Second, c.Timeouts.UDP.Duration)
			assert.True(t, c.Timeouts.UDP.Set)
			assert.Equal(t, 4*time.Minute, c.Timeouts.TCPEstablished.Duration)
			assert.Equal(t, "127.0.0.1:1234", c.Mgmt.Listen)
		}},
		{"default_snat block size", defaultSNATSection, func(t *testing.T, c *Config) {
			require.NotNil(t, c.DefaultSNAT)
			assert.Equal(t, DefaultSNATPortsPerMember, c.DefaultSNAT.PortsPerMember)
			assert.Equal(t, DefaultSNATReclaimIdle, c.DefaultSNAT.ReclaimIdle.Duration)
		}},
		{"default_snat reclaim_idle", defaultSNATSection + `reclaim_idle = "5s"
`, func(t *testing.T, c *Config) {
			require.NotNil(t, c.DefaultSNAT)
			assert.Equal(t, 5*time.Second, c.DefaultSNAT.ReclaimIdle.Duration)
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
		{"misspelt table of a dotted key", "dataplan.workers = 2\n" + minimal, []string{"dataplan.workers"}, 0, `did you mean "dataplane.workers"?`},
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
	assert.Equal(t, []string{"dataplane.workers", "dataplane.flow_capacity"}, errs.Keys(), "an explicit 0 is validated: %v", err)
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

// TestKeysAreCaseSensitive checks that a known key spelled in another case
// is an unknown key, although the TOML decoder matches names without regard
// to case and so decodes it.
func TestKeysAreCaseSensitive(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		wantKey string
		wantMsg string
	}{
		{"key", minimal + "[dataplane]\nWORKERS = 4\n", "dataplane.WORKERS",
			`unknown key (keys are case-sensitive: did you mean "workers"?)`},
		{"table", strings.Replace(minimal, "[inside]", "[Inside]", 1), "Inside",
			`unknown key (keys are case-sensitive: did you mean "inside"?)`},
		{"dotted key", "Timeouts.udp = \"4m\"\n" + minimal, "Timeouts.udp",
			`unknown key (keys are case-sensitive: did you mean "timeouts.udp"?)`},
		{"timeout", minimal + "[timeouts]\nUdp = \"4m\"\n", "timeouts.Udp",
			`unknown key (keys are case-sensitive: did you mean "udp"?)`},
		{"bad timeout", minimal + "[timeouts]\nUDP = 240\n", "timeouts.UDP",
			`unknown key (keys are case-sensitive: did you mean "udp"?)`},
		{"inline table", "mgmt = {Listen = \"127.0.0.1:1\"}\n" + minimal, "mgmt.Listen",
			`unknown key (keys are case-sensitive: did you mean "listen"?)`},
		{"array of tables", minimal + "[[Frontend]]\nname = \"a\"\naddress = \"198.19.1.1\"\n", "Frontend",
			`unknown key (keys are case-sensitive: did you mean "frontend"?)`},
		{"key in array of tables", minimal + "[[frontend]]\nname = \"a\"\naddress = \"198.19.1.1\"\n[[frontend]]\nName = \"b\"\naddress = \"198.19.1.2\"\n",
			"frontend[1].Name", `unknown key (keys are case-sensitive: did you mean "name"?)`},
		{"key in optional table", minimal + "[[frontend]]\nname = \"a\"\naddress = \"198.19.1.1\"\n[default_snat]\nsources = [\"10.0.0.0/16\"]\nFrontends = [\"a\"]\n",
			"default_snat.Frontends", `unknown key (keys are case-sensitive: did you mean "frontends"?)`},
		{"list in array of tables", minimal + "[[frontend]]\nname = \"f\"\naddress = \"198.19.1.1\"\n[[pool]]\nname = \"p\"\nfrontends = [\"f\"]\nMembers = [\"10.0.1.1\"]\n",
			"pool[0].Members", `unknown key (keys are case-sensitive: did you mean "members"?)`},
		{"bool", minimal + "[mgmt]\nAllow_Insecure = true\n", "mgmt.Allow_Insecure",
			`unknown key (keys are case-sensitive: did you mean "allow_insecure"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.text), "f.toml")
			errs := requireErrors(t, err)
			assert.Equal(t, []string{tt.wantKey}, errs.Keys(), "errors: %v", err)
			assert.Equal(t, tt.wantMsg, errs[0].Msg)
		})
	}
}

// TestKeyCaseMessage checks the whole text of a case mismatch as the
// validate command prints it.
func TestKeyCaseMessage(t *testing.T) {
	_, err := Parse([]byte(minimal+"[dataplane]\nWORKERS = 4\n"), "f.toml")
	require.Error(t, err)
	assert.Equal(t, `f.toml: dataplane.WORKERS: unknown key (keys are case-sensitive: did you mean "workers"?)`, err.Error())
}

// TestBadTimeoutsReportedTogether checks that a bad timeout doesn't stop
// parsing: every bad timeout is reported, with its line, along with the
// other problems of the file.
func TestBadTimeoutsReportedTogether(t *testing.T) {
	text := minimal + `
[dataplane]
driver = "xdp"
[timeouts]
tcp_established = "4 minutes"
tcp_transitory = "30s"
tcp_closing = 10
udp = 240
icmp = "x"
tcp_reset_on_idle = true
[mgmt]
lisen = "127.0.0.1:1"
`
	_, err := Parse([]byte(text), "t.toml")
	errs := requireErrors(t, err)
	assert.ElementsMatch(t, []string{"mgmt.lisen", "timeouts.tcp_established", "timeouts.tcp_closing",
		"timeouts.udp", "timeouts.icmp", "dataplane.driver"}, errs.Keys(), "errors: %v", err)
	lines := make(map[string]int)
	msgs := make(map[string]string)
	for _, e := range errs {
		lines[e.Key], msgs[e.Key] = e.Line, e.Msg
	}
	assert.Equal(t, 14, lines["timeouts.tcp_established"])
	assert.Equal(t, 16, lines["timeouts.tcp_closing"])
	assert.Equal(t, 17, lines["timeouts.udp"])
	assert.Equal(t, 18, lines["timeouts.icmp"])
	assert.Contains(t, msgs["timeouts.tcp_established"], `"4 minutes" is not a duration`)
	assert.Contains(t, msgs["timeouts.udp"], "240")
	assert.Contains(t, msgs["timeouts.udp"], "with a unit")
	assert.Contains(t, msgs["timeouts.icmp"], `"x" is not a duration`)
}

// TestTimeoutValueTypes checks the problem reported for each kind of TOML
// value written where a timeout belongs.
func TestTimeoutValueTypes(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		wantMsg string // "" when the value is valid
		want    time.Duration
	}{
		{"duration", `"90s"`, "", 90 * time.Second},
		{"compound duration", `"1h30m"`, "", 90 * time.Minute},
		{"integer", `240`, "240 has no unit", 0},
		{"float", `1.5`, "1.5 has no unit", 0},
		{"bad string", `"soon"`, `"soon" is not a duration`, 0},
		{"empty string", `""`, `"" is not a duration`, 0},
		{"bool", `true`, "a boolean is not a duration", 0},
		{"array", `["4m"]`, "an array is not a duration", 0},
		{"table", `{m = 4}`, "a table is not a duration", 0},
		{"datetime", `1979-05-27T07:32:00Z`, "a date or time is not a duration", 0},
		{"zero", `"0s"`, "0s is too short", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal+"[timeouts]\nudp = "+tt.value+"\n"), "f.toml")
			if tt.wantMsg == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, c.Timeouts.UDP.Duration)
				assert.True(t, c.Timeouts.UDP.Set)
				return
			}
			errs := requireErrors(t, err)
			assert.Equal(t, []string{"timeouts.udp"}, errs.Keys(), "errors: %v", err)
			assert.Contains(t, errs[0].Msg, tt.wantMsg)
		})
	}
}

// TestExplicitZeroIsValidated checks that defaults fill only keys the file
// leaves out: a key written as 0 or "" is kept and validated.
func TestExplicitZeroIsValidated(t *testing.T) {
	const frontend = "[[frontend]]\nname = \"fe\"\naddress = \"198.19.1.1\"\n"
	tests := []struct {
		name    string
		text    string
		wantKey string
		wantMsg string
	}{
		{"workers", minimal + "[dataplane]\nworkers = 0\n", "dataplane.workers", "0 workers: must be 1 to 64"},
		{"flow capacity", minimal + "[dataplane]\nflow_capacity = 0\n", "dataplane.flow_capacity", "0: must be 1 to"},
		{"driver", minimal + "[dataplane]\ndriver = \"\"\n", "dataplane.driver", `unknown driver ""`},
		{"inline table", "dataplane = {workers = 0}\n" + minimal, "dataplane.workers", "0 workers"},
		{"timeout", minimal + "[timeouts]\ntcp_closing = \"0s\"\n", "timeouts.tcp_closing", "0s is too short"},
		{"mgmt listen", minimal + "[mgmt]\nlisten = \"\"\n", "mgmt.listen", `"" is not host:port`},
		{"host flow percent", minimal + "[limits]\nhost_flow_percent = 0\n", "limits.host_flow_percent", "0: must be 1 to 100"},
		{"inbound flow percent", minimal + "[limits]\ninbound_flow_percent = 0\n", "limits.inbound_flow_percent", "0: must be 1 to 100"},
		{"default snat block size", minimal + frontend + "[default_snat]\nsources = [\"10.0.0.0/16\"]\nfrontends = [\"fe\"]\nports_per_member = 0\n",
			"default_snat.ports_per_member", "leave the key out for 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.text), "f.toml")
			errs := requireErrors(t, err)
			assert.Equal(t, []string{tt.wantKey}, errs.Keys(), "errors: %v", err)
			assert.Contains(t, errs[0].Msg, tt.wantMsg)
		})
	}
}

// TestSyntaxErrorLine checks that a syntax error names the line it is on,
// also when the parser finds it at the newline ending that line.
func TestSyntaxErrorLine(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		wantLine int
	}{
		{"unclosed table at end of line", "[inside]\nport = \"a\"\n[dataplane\nworkers = 2\n", 3},
		{"unclosed table, last line", "[inside]\nport = \"a\"\n[dataplane\n", 3},
		{"unclosed table, no final newline", "[inside]\nport = \"a\"\n[dataplane", 3},
		{"unclosed table, CRLF", "[inside]\r\nport = \"a\"\r\n[dataplane\r\nworkers = 2\r\n", 3},
		{"unclosed table after BOM", "\xef\xbb\xbf[inside]\nport = \"a\"\n[dataplane\nworkers = 2\n", 3},
		{"missing value", "[inside]\nport =\naddress = \"x\"\n", 2},
		{"newline in string", "[inside]\nport = \"a\naddress = \"x\"\n", 2},
		{"unclosed array", "[dataplane]\neal_args = [\"a\",\n\"b\"\n", 3},
		{"bare word", "[inside]\nport = \"a\"\naddress = 10.0.0.1/16\n", 3},
		{"blank key", "\n\n= 3\n", 3},
		{"duplicate key", "[mgmt]\nlisten = \"a\"\nlisten = \"b\"\n", 3},
		{"duplicate table", "[mgmt]\n[inside]\n[mgmt]\n", 3},
		{"first line", "[inside\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.text), "s.toml")
			errs := requireErrors(t, err)
			require.Len(t, errs, 1, "errors: %v", err)
			assert.Equal(t, "", errs[0].Key)
			assert.Contains(t, errs[0].Msg, "TOML syntax")
			assert.Equal(t, tt.wantLine, errs[0].Line, "error: %v", err)
		})
	}
}

// TestInsideSourceCheck: inside.source_check defaults to on, false turns
// it off, a value of another type is refused naming the key, and
// [[inside.routed]] parses.
func TestInsideSourceCheck(t *testing.T) {
	b, err := os.ReadFile("testdata/example.toml")
	require.NoError(t, err)
	with := func(lines string) string {
		return strings.Replace(string(b), "address = \"10.0.0.1/16\"", "address = \"10.0.0.1/16\"\n"+lines, 1)
	}
	c, err := Parse(b, "example.toml")
	require.NoError(t, err)
	assert.True(t, c.Inside.SourceCheckOn(), "on by default")

	c, err = Parse([]byte(with("source_check = false")), "off.toml")
	require.NoError(t, err)
	assert.False(t, c.Inside.SourceCheckOn())

	_, err = Parse([]byte(with(`source_check = "yes"`)), "bad.toml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "source_check")

	_, err = Parse([]byte(with("source_chek = true")), "typo.toml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "source_chek")

	text := strings.Replace(string(b), "[outside]", "[[inside.routed]]\nprefix = \"10.200.0.0/16\"\nvia = \"10.0.0.254\"\n\n[outside]", 1)
	c, err = Parse([]byte(text), "routed.toml")
	require.NoError(t, err)
	assert.Equal(t, []RoutedPrefix{{Prefix: "10.200.0.0/16", Via: "10.0.0.254"}}, c.Inside.Routed)
}

// TestWorkerPriorityKey: dataplane.worker_priority is read from its TOML
// key, and without worker_cpus the file is refused naming the key.
func TestWorkerPriorityKey(t *testing.T) {
	c, err := Parse([]byte(minimal+"[dataplane]\nworkers = 1\nworker_cpus = [1]\nworker_priority = 50\n"), "f.toml")
	require.NoError(t, err)
	assert.Equal(t, 50, c.Dataplane.WorkerPriority)

	_, err = Parse([]byte(minimal+"[dataplane]\nworker_priority = 50\n"), "f.toml")
	errs := requireErrors(t, err)
	assert.Equal(t, []string{"dataplane.worker_priority"}, errs.Keys(), "errors: %v", err)
	assert.Contains(t, errs[0].Msg, "needs dataplane.worker_cpus")
}
