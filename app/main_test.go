package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// example is the valid configuration of package config's tests.
const example = "../mgmt/config/testdata/example.toml"

// writeFile writes text to a file in a fresh temporary directory.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "natgw.toml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// badConfig has two problems: an unknown driver and a gateway off the link.
const badConfig = `
[dataplane]
driver = "xdp"
[inside]
port = "in"
address = "10.0.0.1/16"
[outside]
port = "out"
address = "198.19.0.2/24"
gateway = "198.19.7.1"
`

func TestRun(t *testing.T) {
	bad := writeFile(t, badConfig)
	syntax := writeFile(t, "[inside]\nport = @\n")
	missing := filepath.Join(t.TempDir(), "missing.toml")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		// wantStderr lists lines (or parts of lines) stderr must contain.
		wantStderr []string
		// stderrLines is the exact number of lines on stderr, or -1.
		stderrLines int
	}{
		{"validate ok", []string{"validate", "--config", example}, 0, example + ": ok\n", nil, 0},
		{"validate ok single dash", []string{"validate", "-config=" + example}, 0, example + ": ok\n", nil, 0},
		{"validate bad", []string{"validate", "--config", bad}, 1, "", []string{
			bad + `: dataplane.driver: unknown driver "xdp"`,
			bad + ": outside.gateway: 198.19.7.1 is not in the outside subnet 198.19.0.0/24",
		}, 2},
		{"validate syntax", []string{"validate", "--config", syntax}, 1, "", []string{syntax + ":2: TOML syntax"}, 1},
		{"validate missing file", []string{"validate", "--config", missing}, 1, "", []string{"natgw validate: config: open " + missing}, 1},
		{"validate without --config", []string{"validate"}, 2, "", []string{"--config FILE is required", "usage: natgw validate"}, -1},
		{"validate extra argument", []string{"validate", "--config", example, "more"}, 2, "", []string{`unexpected argument "more"`}, -1},
		{"validate unknown flag", []string{"validate", "--cfg", example}, 2, "", []string{"flag provided but not defined: -cfg"}, -1},
		{"version", []string{"version"}, 0, "natgw dev (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n", nil, 0},
		{"version extra argument", []string{"version", "x"}, 2, "", []string{`unexpected argument "x"`}, -1},
		{"no arguments", nil, 2, "", []string{"usage: natgw COMMAND", "natgw validate --config FILE"}, -1},
		{"help", []string{"help"}, 2, "", []string{"usage: natgw COMMAND"}, -1},
		{"--help", []string{"--help"}, 2, "", []string{"usage: natgw COMMAND"}, -1},
		{"unknown command", []string{"frobnicate"}, 2, "", []string{`natgw: unknown command "frobnicate"`, "usage: natgw COMMAND"}, -1},
		{"run without config", []string{"run"}, 2, "", []string{"usage: natgw run --config FILE"}, -1},
		{"run with a driver not built in", []string{"run", "--config", example}, 1, "", []string{`dataplane.driver \"dpdk\" is not built into this binary`}, -1},
		{"run with a bad file", []string{"run", "--config", "testdata/does-not-exist.toml"}, 1, "", []string{"does-not-exist.toml"}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, built := drivers["dpdk"]; built && tt.name == "run with a driver not built in" {
				t.Skip("this binary has the dpdk driver")
			}
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", stderr.String())
			assert.Equal(t, tt.wantStdout, stdout.String())
			for _, want := range tt.wantStderr {
				assert.Contains(t, stderr.String(), want)
			}
			if tt.stderrLines >= 0 {
				assert.Equal(t, tt.stderrLines, strings.Count(stderr.String(), "\n"), "stderr: %s", stderr.String())
			}
		})
	}
}

func TestVersionVariable(t *testing.T) {
	saved := version
	t.Cleanup(func() { version = saved })
	version = "v1.2.3"
	var stdout bytes.Buffer
	require.Equal(t, 0, run([]string{"version"}, &stdout, &bytes.Buffer{}))
	assert.True(t, strings.HasPrefix(stdout.String(), "natgw v1.2.3 (go"), stdout.String())
}

func TestCommandTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			assert.False(t, seen[c.name], "command listed twice")
			seen[c.name] = true
			assert.NotEmpty(t, c.summary)
			assert.True(t, strings.HasPrefix(c.synopsis, c.name), "synopsis %q starts with the name", c.synopsis)
			assert.NotNil(t, c.run)
		})
	}
}

// natgw validate notes draining frontends: whether the pools' blocks all
// moved off them, or which members stay for lack of room (issue 19).
func TestValidateDrainNotes(t *testing.T) {
	base := `
[inside]
port = "in"
address = "10.0.0.1/16"
[outside]
port = "out"
address = "198.19.0.2/24"
gateway = "198.19.0.1"
[[frontend]]
name = "fe1"
address = "198.19.1.10"
drain = true
[[frontend]]
name = "fe2"
address = "198.19.1.11"
[[pool]]
name = "web"
frontends = ["fe1", "fe2"]
ports_per_member = 1008
`
	for _, tc := range []struct {
		name, members, want string
	}{
		{"room", `members = ["10.0.1.0/28"]`, "note: frontend 198.19.1.10 drains: every pool block is on another frontend"},
		{"no room", `members = ["10.0.1.0/25"]`, "no room for 64 members"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, base+tc.members+"\n")
			var out, errOut bytes.Buffer
			assert.Equal(t, exitOK, run([]string{"validate", "--config", path}, &out, &errOut), errOut.String())
			assert.Contains(t, out.String(), tc.want)
		})
	}
}
