package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidateMappingCapacity: natgw validate states the capacity
// trade-off of endpoint-independent pools and default SNAT (issue 19).
func TestValidateMappingCapacity(t *testing.T) {
	b, err := os.ReadFile(example)
	require.NoError(t, err)
	text := strings.Replace(string(b), "ports_per_member = 0", "ports_per_member = 64\nmapping = \"endpoint-independent\"\nfiltering = \"address-dependent\"", 1)
	text = strings.Replace(text, "ports_per_member = 1024", "ports_per_member = 1024\nmapping = \"endpoint-independent\"", 1)
	path := writeFile(t, text)
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, run([]string{"validate", "--config", path}, &stdout, &stderr), stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.Len(t, lines, 3, stdout.String())
	assert.Equal(t, path+": ok", lines[0])
	assert.Equal(t, `pool "web": endpoint-independent mapping, address-dependent filtering: a member maps at most 64 private endpoints (protocol, address, port) at once, whatever the destinations; address-and-port-dependent mapping would give it 64 ports towards each destination. With 2 workers each endpoint's mapping lives on one worker (a hash of the endpoint) and takes a port of that worker's share: at most 32 endpoints of a member on each worker`, lines[1])
	assert.Contains(t, lines[2], "default_snat: endpoint-independent mapping, address-and-port-dependent filtering: a source maps at most 1024 private endpoints")

	// The default modes add nothing.
	stdout.Reset()
	require.Equal(t, exitOK, run([]string{"validate", "--config", example}, &stdout, &stderr))
	assert.Equal(t, example+": ok\n", stdout.String())
}
