package e2e

// TestE2ENATBehaviour checks natgw's NAT behaviour with third-party tools:
// coturn's turnutils_natdiscovery against coturn's turnserver (RFC 5780)
// and the stun client against stund (RFC 3489), both servers in the
// server namespace on two of its addresses (198.18.0.10 and .11, SPEC
// §8), the clients on a pool member and on a default-SNAT host of the
// inside namespace, through natgw (two workers) on every driver of
// e2eDrivers, in the mapping behaviours of natModesOn (issue 19).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The STUN servers' addresses and ports: stund on its defaults (3478,
// 3479), turnserver beside it on 3490 (its alternate port 3491).
const (
	stunPrimary   = e2eServer
	stunSecondary = "198.18.0.11"
	turnPort      = "3490"
)

// natBehaviourTools are the third-party programs the test runs
// (scripts/install-deps.sh installs them).
var natBehaviourTools = []string{"turnserver", "turnutils_natdiscovery", "stun", "stund"}

func TestE2ENATBehaviour(t *testing.T) {
	skipUnlessE2E(t)
	for _, c := range natBehaviourTools {
		if _, err := exec.LookPath(c); err != nil {
			if os.Getenv("NATGW_REQUIRE_E2E") == "1" {
				t.Fatalf("%s not installed: run scripts/install-deps.sh", c)
			}
			t.Skipf("%s not installed: run scripts/install-deps.sh", c)
		}
	}
	tb := newTestbed(t)
	tb.startSTUNServers(t)
	sources := []struct{ name, addr string }{
		{"pool member", "10.0.1.4"},
		{"default-SNAT host", "10.0.9.9"},
	}
	for _, driver := range e2eDrivers() {
		for _, mode := range natModesOn(driver) {
			t.Run("driver="+driver+"/"+mode.name, func(t *testing.T) {
				r := tb.startRun(t, e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers,
					Mapping: mode.mapping, Filtering: mode.filtering})
				for _, src := range sources {
					t.Run(src.name+" natdiscovery", func(t *testing.T) {
						require.True(t, r.natgw.alive(), "natgw is not running: %v", r.natgw.waitErr)
						natDiscovery(t, tb, src.addr, mode)
					})
					t.Run(src.name+" stun", func(t *testing.T) {
						require.True(t, r.natgw.alive(), "natgw is not running: %v", r.natgw.waitErr)
						stunClient(t, tb, src.addr, mode)
					})
				}
				t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
			})
		}
	}
}

// natMode is a mapping behaviour of the pool and default SNAT (issue 19)
// and what the tools must report for it.
type natMode struct {
	name               string
	mapping, filtering string // configuration values, empty: default
	// mappingVerdict and filteringVerdict are turnutils_natdiscovery's
	// ("NAT with ... Mapping!"), stunVerdict the stun client's.
	mappingVerdict, filteringVerdict, stunVerdict string
	// hairpin: turnutils_natdiscovery's hairpinning test succeeds. A
	// second socket of the client sends to the first's public endpoint:
	// natgw hairpins it (RFC 4787 REQ-9) and filters it like a packet
	// from the outside, from the second socket's public endpoint, which
	// only endpoint-independent filtering lets in (the first mapping has
	// no flow with natgw's own address).
	hairpin bool
	// stunHairpin: the stun client's hairpin test succeeds. It sends from
	// the first socket to that socket's own public endpoint: with an
	// endpoint-independent mapping the hairpinned packet comes from that
	// same public endpoint, the remote of the very flow it travels on, so
	// every filtering lets it back in; with an address-and-port-dependent
	// one it comes from another port and is filtered.
	stunHairpin bool
}

// natModes are the modes checked: the default (the seed's semantics) and
// endpoint-independent mapping with each filtering.
var natModes = []natMode{
	{"address-and-port-dependent", "", "",
		"Address and Port Dependent Mapping", "Address and Port Dependent Filtering", "Primary: Dependent Mapping", false, false},
	{"EIM with APDF", "endpoint-independent", "address-and-port-dependent",
		"Endpoint Independent Mapping", "Address and Port Dependent Filtering", "Primary: Independent Mapping, Port Dependent Filter", false, true},
	{"EIM with ADF", "endpoint-independent", "address-dependent",
		"Endpoint Independent Mapping", "Address Dependent Filtering", "Primary: Independent Mapping, Address Dependent Filter", false, true},
	{"EIM with EIF", "endpoint-independent", "endpoint-independent",
		"Endpoint Independent Mapping", "Endpoint Independent Filtering", "Primary: Independent Mapping, Independent Filter", true, true},
}

// natModesOn returns the mapping behaviours checked on driver: every one
// on AF_PACKET; on the others the default and endpoint-independent
// filtering, the mode whose inbound packets from any remote cross
// workers. Filtering and mapping are the translator's, the same code on
// every driver, and each run costs about 25 s of the suite's budget.
func natModesOn(driver string) []natMode {
	if driver == "afpacket" {
		return natModes
	}
	return []natMode{natModes[0], natModes[len(natModes)-1]}
}

// startSTUNServers runs turnserver (STUN only, no authentication, RFC 5780
// on two listening addresses, logging to stdout) and stund in the server
// namespace for the rest of t, each bounded to 8 minutes and killed on
// cleanup, and waits until both listen.
func (tb *testbed) startSTUNServers(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	start := func(args ...string) *syncBuffer {
		cmd := tb.command(ctx, "srv", args...)
		log := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = log, log
		require.NoError(t, cmd.Start(), "%s", args[0])
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s log (tail):\n%s", args[0], lastLines(log.String(), 30))
			}
		})
		return log
	}
	turnLog := start("turnserver", "-n", "-p", turnPort, "-L", stunPrimary, "-L", stunSecondary,
		"--stun-only", "--no-auth", "--no-tls", "--no-dtls", "--no-tcp", "--no-cli",
		"--log-file", "stdout", "--simple-log")
	stundLog := start("stund", "-h", stunPrimary, "-a", stunSecondary)
	want := []string{stunPrimary + ":" + turnPort, stunSecondary + ":" + turnPort, stunPrimary + ":3478", stunSecondary + ":3479"}
	err := waitFor(20*time.Second, func() error {
		out, err := tb.run(5*time.Second, "srv", "ss", "-Hlun")
		if err != nil {
			return err
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("nothing listens on udp %s yet", w)
			}
		}
		return nil
	})
	require.NoError(t, err, "turnserver:\n%s\nstund:\n%s", lastLines(turnLog.String(), 20), stundLog.String())
}

// natDiscovery runs turnutils_natdiscovery's mapping, filtering and
// hairpinning discovery from src against turnserver and checks natgw's
// behaviour is mode's: its mapping and filtering, and whether the
// hairpinned request arrives. The tool's hairpinning test sends from a
// second socket of src to the first socket's public endpoint, which has
// flows only towards the STUN server; natgw hairpins (RFC 4787 REQ-9)
// and filters hairpinned packets like packets from the outside (see
// hairpinPoolToPool), so the request arrives with endpoint-independent
// filtering only, and is dropped as no_flow otherwise.
func natDiscovery(t *testing.T, tb *testbed, src string, mode natMode) {
	var out string
	var err error
	// A lost datagram can make the tool miss a response: up to 3 runs.
	for range 3 {
		out, err = tb.run(60*time.Second, "in", "turnutils_natdiscovery", "-m", "-f", "-H",
			"-p", turnPort, "-L", src, stunPrimary)
		if err == nil && strings.Contains(out, "Mapping!") && strings.Contains(out, "Filtering!") {
			break
		}
	}
	t.Logf("turnutils_natdiscovery from %s:\n%s", src, verdictLines(out))
	require.NoError(t, err, out)
	assert.Contains(t, out, "NAT with "+mode.mappingVerdict+"!", out)
	assert.Contains(t, out, "NAT with "+mode.filteringVerdict+"!", out)
	assert.NotContains(t, out, "No NAT!", out)
	if mode.hairpin {
		assert.Contains(t, out, "Received a request (maybe a successful hairpinning)", out)
	} else {
		assert.NotContains(t, out, "Received a request (maybe a successful hairpinning)", out)
	}
	// Every reflexive address is a public address of natgw, never src.
	assert.NotContains(t, out, "reflexive addr: "+src+":", out)
	want := e2eDefaultPublic
	if src != "10.0.9.9" {
		want = e2ePoolPublic
	}
	assert.Contains(t, out, "UDP reflexive addr: "+want+":", out)
}

// stunClient runs the stun client (RFC 3489 classic tests) from src
// against stund and checks its verdict is mode's: a NAT with address-and-
// port-dependent mapping is what RFC 3489 calls symmetric ("Dependent
// Mapping"), endpoint-independent mapping is "Independent Mapping" with
// the filter; and the hairpin (natMode.stunHairpin).
func stunClient(t *testing.T, tb *testbed, src string, mode natMode) {
	var out string
	var err error
	for range 3 {
		out, err = tb.run(60*time.Second, "in", "stun", stunPrimary, "-v", "-i", src)
		if !strings.Contains(out, "Blocked or could not reach") && !strings.Contains(out, "error") {
			break
		}
	}
	t.Logf("stun from %s:\n%s", src, verdictLines(out))
	// The client's exit status is its NAT type code, not success.
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err, out)
	}
	assert.Contains(t, out, mode.stunVerdict+",", out)
	if mode.stunHairpin {
		assert.Contains(t, out, ", will hairpin", out)
	} else {
		assert.Contains(t, out, ", no hairpin", out)
	}
	assert.Contains(t, out, "is nat  = 1", out)
}

// verdictLines returns the lines of a tool's output worth quoting: the
// verdicts and the addresses seen.
func verdictLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		for _, k := range []string{"NAT", "reflexive", "Response origin", "Other addr", "hairpin", "Primary", "Return value", "test ", "is nat", "mapped IP", "preserver", "MappedAddress"} {
			if strings.Contains(l, k) {
				keep = append(keep, strings.TrimSpace(l))
				break
			}
		}
	}
	return strings.Join(keep, "\n")
}
