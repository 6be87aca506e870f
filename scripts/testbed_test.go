package scripts

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testbedCommands are the programs testbed_test.sh needs.
var testbedCommands = []string{
	"bash", "ip", "ethtool", "nft", "iperf3", "curl", "nc", "ping",
	"traceroute", "tcpdump", "flock", "timeout", "ss",
}

// skipUnlessTestbed skips the test where a testbed can't be built: not root,
// tools missing, or -short. With NATGW_REQUIRE_TESTBED=1 (for CI, after
// scripts/install-deps.sh) a missing prerequisite fails instead.
func skipUnlessTestbed(t *testing.T) {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("NATGW_REQUIRE_TESTBED") == "1" {
		skip = t.Fatalf
	}
	if testing.Short() {
		t.Skip("testbed test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		skip("testbed needs root (network namespaces)")
	}
	for _, c := range testbedCommands {
		if _, err := exec.LookPath(c); err != nil {
			skip("%s not installed: run scripts/install-deps.sh", c)
		}
	}
}

// TestTestbed builds the testbed in each mode with testbed_test.sh, checks
// it with real clients and tears it down; the script's own checks are listed
// in the log.
func TestTestbed(t *testing.T) {
	skipUnlessTestbed(t)
	tests := []struct {
		name string
		mode string
	}{
		{name: "kernel NAT translates pool, instance and default SNAT", mode: "kernel-nat"},
		{name: "bare gateway for natgw", mode: "natgw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "testbed_test.sh", tt.mode)
			// SIGTERM lets the script's trap tear the testbed down.
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			cmd.WaitDelay = 30 * time.Second
			cmd.Env = append(os.Environ(), "NATGW_TB=ngwgo")
			out, err := cmd.CombinedOutput()
			t.Logf("testbed_test.sh %s:\n%s", tt.mode, out)
			require.NoError(t, ctx.Err(), "testbed_test.sh timed out")
			assert.NoError(t, err)
			assert.Regexp(t, `(?m)^testbed: [1-9][0-9]* passed, 0 failed$`, string(out))
		})
	}
}
