package e2e

// TestE2EReject is the end-to-end acceptance of issue 18 part 2 on the
// testbed: a member holds all 8 ports of its block towards one HTTP
// server; with on_exhaustion = "drop" a curl to that server does not
// connect (it times out), and after a reload to "reject" the curl fails
// with "Connection refused" (natgw's RST). The elapsed times are logged,
// not asserted.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestE2EReject(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	for _, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) { rejectCurl(t, tb, driver) })
	}
}

func rejectCurl(t *testing.T, tb *testbed, driver string) {
	const server = e2eServer + ":8080"
	// Each driver's run uses its own member: the connections of the run
	// before, closed as its natgw stopped, still retransmit their FINs
	// for a while, and the next natgw would give them the member's few
	// ports (8) before the test's own connections. Neither is 10.0.1.4,
	// which the testbed's readiness checks use.
	member := "10.0.1.5"
	if driver != e2eDrivers()[0] {
		member = "10.0.2.3"
	}
	cfg := e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers, PortsPerMember: 8}
	r := tb.startRun(t, cfg)
	api := tb.api()

	conns, err := tb.dialMany("in", member, server, 8)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	require.NoError(t, err, "8 connections fill the block")

	// curl -v prints the connect error ("connect to ... failed:
	// Connection refused"); curl 7.88's own message says only
	// "Couldn't connect to server".
	curl := func() (string, time.Duration, error) {
		start := time.Now()
		out, err := tb.curl(15*time.Second, member, "http://"+server+"/", "-v", "--connect-timeout", "3", "-m", "4")
		return out, time.Since(start), err
	}
	t.Run("drop: the connection does not go through", func(t *testing.T) {
		out, took, err := curl()
		t.Logf("curl with on_exhaustion drop failed after %v: %s", took.Round(time.Millisecond), lastLine(out))
		require.Error(t, err, "%s", out)
		assert.NotContains(t, out, "Connection refused")
		assert.Contains(t, out, "curl: (28)", "a connect timeout")
	})
	t.Run("reject: connection refused", func(t *testing.T) {
		b, err := os.ReadFile(r.config)
		require.NoError(t, err)
		text := strings.Replace(string(b), "ports_per_member = 8", "ports_per_member = 8\non_exhaustion = \"reject\"", 1)
		require.NotEqual(t, string(b), text)
		writeFileAtomic(t, r.config, []byte(text))
		st, body := api.reload(t)
		require.Equal(t, 200, st, "%s", body)
		// The workers pick the policy up at their next poll.
		var out string
		var took time.Duration
		require.NoError(t, waitFor(10*time.Second, func() error {
			out, took, err = curl()
			if err == nil {
				return permanentError{fmt.Errorf("curl connected: %s", out)}
			}
			if !strings.Contains(out, "Connection refused") {
				return fmt.Errorf("not refused yet: %s", lastLine(out))
			}
			return nil
		}))
		t.Logf("curl with on_exhaustion reject failed after %v: %s", took.Round(time.Millisecond), lastLine(out))
		m := api.scrape(t)
		assert.GreaterOrEqual(t, m.sum("natgw_snat_exhaustion_rejects_total", "result", "sent"), 1.0)
	})
	t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
}

// lastLine returns the last non-empty line of curl's output.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
