package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClusterCheck runs "natgw cluster-check": two copies of one node's
// configuration share every public address and are refused, naming the
// frontends; a node with its own addresses fits.
func TestClusterCheck(t *testing.T) {
	b, err := os.ReadFile(example)
	require.NoError(t, err)
	text := string(b)
	other := text
	for _, r := range [][2]string{
		{`"10.0.0.1/16"`, `"10.0.0.2/16"`}, {`"198.19.0.2/24"`, `"198.19.0.3/24"`},
		{`"198.19.1.10"`, `"198.19.2.10"`}, {`"198.19.1.11"`, `"198.19.2.11"`},
		{`"198.19.1.20"`, `"198.19.2.20"`}, {`"198.19.1.50"`, `"198.19.2.50"`},
	} {
		other = strings.ReplaceAll(other, r[0], r[1])
	}
	a, same, fits := writeFile(t, text), writeFile(t, text), writeFile(t, other)

	var stdout, stderr bytes.Buffer
	code := run([]string{"cluster-check", a, same}, &stdout, &stderr)
	assert.Equal(t, exitFail, code)
	assert.Contains(t, stderr.String(), same+": frontend[0].address: ")
	assert.Contains(t, stderr.String(), "same public 5-tuple")

	stdout.Reset()
	stderr.Reset()
	code = run([]string{"cluster-check", a, fits}, &stdout, &stderr)
	assert.Equal(t, exitOK, code, "stderr: %s", stderr.String())
	assert.Equal(t, "2 nodes: ok\n", stdout.String())

	assert.Equal(t, exitUsage, run([]string{"cluster-check", a}, &stdout, &stderr))
}

// testbedNodes writes the node configurations scripts/testbed-cluster.sh
// writes (its node_config function, called as its "up" calls it) to a
// temporary directory and returns their paths by node name.
func testbedNodes(t *testing.T) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	const script = `set -euo pipefail
f=../scripts/testbed-cluster.sh
eval "$(sed -n '/^node_config() {$/,/^}$/p' "$f")"
declare -F node_config >/dev/null
P=ngc
calls="$(grep -E '^[[:space:]]+node_config [a-z]+ ' "$f")"
[[ -n "$calls" ]]
eval "$calls"
`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "STATE_DIR="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node_config of scripts/testbed-cluster.sh: %s", out)
	nodes := map[string]string{}
	for _, n := range []string{"a", "b"} {
		path := filepath.Join(dir, "node-"+n+".toml")
		require.FileExists(t, path)
		nodes[n] = path
	}
	return nodes
}

// editNode writes a copy of the configuration at path with each pair of
// strings replaced (each must occur) and returns the copy's path, named
// name.
func editNode(t *testing.T, path, name string, pairs ...string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	text := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		require.Contains(t, text, pairs[i])
		text = strings.ReplaceAll(text, pairs[i], pairs[i+1])
	}
	out := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(out, []byte(text), 0o600))
	return out
}

// TestClusterCheckPeers runs "natgw cluster-check" on the configurations
// of scripts/testbed-cluster.sh (they must pass as written) and on
// variants of them: bgp.cluster_peers must name the other nodes' inside
// addresses. An address that is no node's, a node that a peer lists but
// that does not list it back while its source check is on (it would drop
// the peer's redirects), and an inside subnet that differs are errors; a
// peer missing otherwise is a warning, which still passes.
func TestClusterCheckPeers(t *testing.T) {
	tb := testbedNodes(t)
	a, b := tb["a"], tb["b"]
	const peersA, peersB = `cluster_peers = ["10.1.0.12"]`, `cluster_peers = ["10.1.0.11"]`
	// A third node of the testbed, c: 10.1.0.13 inside.
	c := editNode(t, b, "node-c.toml",
		`"10.1.0.12/24"`, `"10.1.0.13/24"`, `"198.19.0.12/24"`, `"198.19.0.13/24"`,
		`"198.19.1.12"`, `"198.19.1.13"`, `"10.254.0.12"`, `"10.254.0.13"`,
		`"fe-b"`, `"fe-c"`)

	tests := []struct {
		name   string
		files  []string
		code   int
		stdout string
		errs   []string // substrings of stderr, in order
		not    []string // substrings stderr must not hold
	}{
		{"testbed as written", []string{a, b}, exitOK, "2 nodes: ok\n", nil, []string{"warning", "cluster_peers"}},
		{"no cluster_peers anywhere", []string{
			editNode(t, a, "node-a.toml", peersA, ""),
			editNode(t, b, "node-b.toml", peersB, ""),
		}, exitOK, "2 nodes: ok\n", nil, []string{"warning"}},
		{"address of no node", []string{
			editNode(t, a, "node-a.toml", peersA, `cluster_peers = ["10.1.0.12", "10.1.0.99"]`), b,
		}, exitFail, "", []string{"node-a.toml: bgp.cluster_peers[1]: 10.1.0.99 is no other node's inside address", "10.1.0.12 of " + b}, []string{"warning"}},
		{"not listed back, source check on", []string{
			a, editNode(t, b, "node-b.toml", peersB, ""),
		}, exitFail, "", []string{"node-b.toml: bgp.cluster_peers: missing 10.1.0.11 (inside.address of " + a + "): ", "as spoofed"}, []string{"warning"}},
		{"not listed back, source check off", []string{
			a, editNode(t, b, "node-b.toml", peersB, "", "[inside]\n", "[inside]\nsource_check = false\n"),
		}, exitOK, "2 nodes: ok, 1 warning\n", []string{"warning: ", "node-b.toml: bgp.cluster_peers: missing 10.1.0.11 (inside.address of " + a + "): without cluster_peers this node's drain cannot hand new flows to " + a}, []string{"spoofed"}},
		{"a peer missing on both sides", []string{
			a,
			editNode(t, b, "node-b.toml", peersB, `cluster_peers = ["10.1.0.11", "10.1.0.13"]`),
			editNode(t, c, "node-c.toml", peersB, `cluster_peers = ["10.1.0.12"]`),
		}, exitOK, "3 nodes: ok, 2 warnings\n", []string{
			"warning: " + a + ": bgp.cluster_peers: missing 10.1.0.13 (inside.address of ",
			"node-c.toml): this node's drain cannot hand new flows to ",
			"warning: ", "node-c.toml: bgp.cluster_peers: missing 10.1.0.11 (inside.address of " + a + ")",
		}, []string{"spoofed"}},
		{"three nodes listing each other", []string{
			editNode(t, a, "node-a.toml", peersA, `cluster_peers = ["10.1.0.12", "10.1.0.13"]`),
			editNode(t, b, "node-b.toml", peersB, `cluster_peers = ["10.1.0.11", "10.1.0.13"]`),
			editNode(t, c, "node-c.toml", peersB, `cluster_peers = ["10.1.0.12", "10.1.0.11"]`),
		}, exitOK, "3 nodes: ok\n", nil, []string{"warning"}},
		{"other inside subnet", []string{
			a, editNode(t, b, "node-b.toml", `"10.1.0.12/24"`, `"10.1.0.12/25"`),
		}, exitFail, "", []string{"node-b.toml: inside.address: 10.1.0.12/25 is in 10.1.0.0/25, not in the inside subnet 10.1.0.0/24 of " + a}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"cluster-check"}, tt.files...), &stdout, &stderr)
			assert.Equal(t, tt.code, code, "stderr: %s", stderr.String())
			assert.Equal(t, tt.stdout, stdout.String())
			rest := stderr.String()
			for _, s := range tt.errs {
				i := strings.Index(rest, s)
				if !assert.GreaterOrEqual(t, i, 0, "stderr holds %q after the previous ones:\n%s", s, stderr.String()) {
					break
				}
				rest = rest[i+len(s):]
			}
			for _, s := range tt.not {
				assert.NotContains(t, stderr.String(), s)
			}
		})
	}
}
