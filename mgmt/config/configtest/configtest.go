package configtest

import (
	"bytes"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/natgw/natgw/mgmt/config"
)

// Addresses of the example configuration, for tests that send packets
// through it or check what it translates to.
const (
	// InsideAddress is natgw's address on the inside link, with its prefix.
	InsideAddress = "10.0.0.1/16"
	// OutsideAddress is natgw's address on the outside link, with its prefix.
	OutsideAddress = "198.19.0.2/24"
	// Gateway is the outside next hop.
	Gateway = "198.19.0.1"
	// PoolPublic is frontend fe1's address, the public address of pool "web".
	PoolPublic = "198.19.1.10"
	// DefaultPublic is frontend fe-default's address, the public address
	// of default SNAT.
	DefaultPublic = "198.19.1.20"
	// InstancePrivate and InstancePublic are the instance's addresses.
	InstancePrivate = "10.0.3.7"
	InstancePublic  = "198.19.1.50"
)

// PoolMembers are the members of pool "web", in configuration order.
func PoolMembers() []string { return []string{"10.0.1.4", "10.0.1.5", "10.0.2.0/28"} }

// Example returns the SPEC §5 example configuration as natgw's tests run
// it, a new copy on each call. It differs from the SPEC's text (and from
// mgmt/config/testdata/example.toml) in what a test needs:
//   - the driver is "afpacket" on the ports "veth-in" and "veth-out" (no
//     eal_args), with one worker and 100000 flows;
//   - it has no static neighbour;
//   - frontend fe-default is 198.19.1.20 (the SPEC leaves it undefined);
//   - the instance also accepts inbound ICMP;
//   - every default is written out ([mgmt] listen, [limits]), so that
//     Text writes a file that means the same as the struct.
//
// Fields a test sets to zero are written as zero, as a file with that
// value would be, and validated like one; set a section's pointer or
// slice to nil to leave it out.
func Example() *config.Config {
	return &config.Config{
		Dataplane: config.Dataplane{Driver: "afpacket", Workers: 1, FlowCapacity: 100000},
		Inside:    config.InsidePort{Port: "veth-in", Address: InsideAddress},
		Outside:   config.OutsidePort{Port: "veth-out", Address: OutsideAddress, Gateway: Gateway},
		Timeouts: config.Timeouts{
			TCPEstablished: Duration("4m"),
			TCPTransitory:  Duration("30s"),
			TCPClosing:     Duration("10s"),
			UDP:            Duration("4m"),
			ICMP:           Duration("60s"),
		},
		Frontends: []config.Frontend{{Name: "fe1", Address: PoolPublic}, {Name: "fe-default", Address: DefaultPublic}},
		Pools:     []config.Pool{{Name: "web", Frontends: []string{"fe1"}, Members: PoolMembers()}},
		Instances: []config.Instance{{Private: InstancePrivate, Public: InstancePublic,
			Inbound: []string{"tcp/22", "tcp/8000-8100", "udp/*", "icmp"}}},
		DefaultSNAT: &config.DefaultSNAT{Sources: []string{"10.0.0.0/8"}, Frontends: []string{"fe-default"},
			PortsPerMember: 1024},
		Deny: []config.DenyRule{{Destination: "198.18.99.0/24", Protocol: "tcp", Ports: "25"}},
		Mgmt: config.Mgmt{Listen: config.DefaultMgmtListen},
		Limits: config.Limits{HostFlowPercent: config.DefaultHostFlowPercent,
			InboundFlowPercent: config.DefaultInboundFlowPercent},
	}
}

// Duration returns the config.Duration a file writes as s ("4m", "2s").
// It panics on a string that is not a Go duration: tests write literals.
func Duration(s string) config.Duration {
	var d config.Duration
	if err := d.UnmarshalText([]byte(s)); err != nil {
		panic("configtest: " + err.Error())
	}
	return d
}

// Text returns c as a TOML file natgw reads (key names from config's
// field tags; nil sections left out, every other field written as it is).
func Text(c *config.Config) []byte {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		// Every field of config.Config has a TOML form: this is a bug in
		// the test's configuration or in this package.
		panic("configtest: encoding the configuration: " + err.Error())
	}
	return b.Bytes()
}

// Parse writes c as TOML and parses it back with config.Parse, as natgw
// loads a file, failing t when the configuration is not valid. The
// result has config's defaults applied.
func Parse(t testing.TB, c *config.Config) *config.Config {
	t.Helper()
	parsed, err := config.Parse(Text(c), "configtest.toml")
	if err != nil {
		t.Fatalf("configtest: the test's configuration is not valid: %v\n%s", err, Text(c))
	}
	return parsed
}
