package main

import (
	"bytes"
	"os"
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
