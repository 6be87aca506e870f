package e2e

// TestE2EReject is the end-to-end acceptance of issue 18 part 3 on the
// testbed: a member holds all 8 ports of its block towards one HTTP
// server; with on_exhaustion = "drop" a curl to that server does not
// connect (it times out), and after a reload to "reject" the curl fails
// with "Connection refused" (natgw's RST), every SYN answered by one RST
// (no retransmitted SYN). The times are logged, not asserted, three ways
// (refusalTimes): the SYN to RST gap on the wire, curl's own time, and
// the wall time of `ip netns exec ... curl`, which also counts starting
// both programs.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
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
		out, err := tb.curl(15*time.Second, member, "http://"+server+"/", "-v", "--connect-timeout", "3", "-m", "4",
			"-w", "\n"+curlTimeTotal+"%{time_total}\n")
		return out, time.Since(start), err
	}
	t.Run("drop: the connection does not go through", func(t *testing.T) {
		out, took, err := curl()
		t.Logf("curl with on_exhaustion drop failed after %v (curl's own time %v): %s",
			took.Round(time.Millisecond), curlOwnTime(out), curlError(out))
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
				return fmt.Errorf("not refused yet: %s", curlError(out))
			}
			return nil
		}))
		t.Logf("curl with on_exhaustion reject failed after %v (curl's own time %v): %s",
			took.Round(time.Millisecond), curlOwnTime(out), curlError(out))
		m := api.scrape(t)
		assert.GreaterOrEqual(t, m.sum("natgw_snat_exhaustion_rejects_total", "result", "sent"), 1.0)
	})
	t.Run("reject: refusal times", func(t *testing.T) {
		tb.refusalTimes(t, driver, member, curl)
	})
	t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
}

// refusalRuns is how many refused curls refusalTimes measures.
const refusalRuns = 10

// refusalTimes runs refusalRuns curls that natgw refuses while tcpdump
// watches the inside host's eth0, checks that each connection saw one
// SYN and one RST, and logs for each run and as min / median / max: the
// gap between the SYN and natgw's RST on the wire (natgw's own latency,
// the scheduling of its threads included), curl's own time (what curl
// reports, "after N ms"), and the wall time of `ip netns exec ... curl`
// (also starting both programs: on the 2-CPU testbed, with DPDK workers
// polling on both CPUs, that start dominates). No time is asserted.
func (tb *testbed) refusalTimes(t *testing.T, driver, member string,
	curl func() (string, time.Duration, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := tb.command(ctx, "in", "tcpdump", "-i", "eth0", "-nn", "-l", "--immediate-mode", "-tt",
		"tcp and host "+member+" and host "+e2eServer+" and port 8080")
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	require.NoError(t, waitFor(10*time.Second, func() error {
		if strings.Contains(stderr.String(), "listening on") {
			return nil
		}
		return errors.New("tcpdump is not listening yet")
	}), "tcpdump: %s", stderr.String())

	var walls, owns []time.Duration
	for range refusalRuns {
		out, wall, err := curl()
		require.Error(t, err, "%s", out)
		require.Contains(t, out, "Connection refused")
		walls, owns = append(walls, wall), append(owns, curlOwnTime(out))
	}
	// Each RST is printed as it arrives; wait for the last one.
	var conns map[string]*refusal
	require.NoError(t, waitFor(10*time.Second, func() error {
		conns = parseRefusals(stdout.String(), member)
		if n := countRefused(conns); n < refusalRuns {
			return fmt.Errorf("tcpdump saw %d RSTs of %d", n, refusalRuns)
		}
		return nil
	}), "tcpdump output:\n%s", stdout.String())
	cmd.Process.Signal(os.Interrupt)
	<-exited

	for port, c := range conns {
		assert.Equal(t, 1, c.syns, "connection from port %s: one SYN, answered (no retransmission)", port)
		assert.Equal(t, 1, c.rsts, "connection from port %s: one RST", port)
	}
	require.Len(t, conns, refusalRuns, "one connection per curl")
	// The curls ran one after the other: the connections in the order
	// of their SYNs are the runs.
	runs := slices.SortedFunc(maps.Values(conns), func(a, b *refusal) int { return a.syn.Compare(b.syn) })
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	var wires []time.Duration
	for i, c := range runs {
		wires = append(wires, c.rst.Sub(c.syn))
		t.Logf("%s run %d: SYN to RST on the wire %v, curl's own time %v, wall time with ip netns exec %v",
			driver, i+1, r(wires[i]), r(owns[i]), r(walls[i]))
	}
	t.Logf("%s refusal times over %d runs (min / median / max): SYN to RST %s; curl's own %s; wall %s",
		driver, refusalRuns, spread(wires), spread(owns), spread(walls))
}

// refusal is one connection as tcpdump saw it: its SYNs, RSTs and the
// time of the first of each.
type refusal struct {
	syns, rsts int
	syn, rst   time.Time
}

// parseRefusals reads tcpdump -tt -nn lines of connections between member
// and the server, by the member's port.
func parseRefusals(dump, member string) map[string]*refusal {
	conns := map[string]*refusal{}
	for _, line := range strings.Split(dump, "\n") {
		// 1796526429.466097 IP 10.0.2.3.55196 > 198.18.0.10.8080: Flags [S], ...
		f := strings.Fields(line)
		if len(f) < 7 || f[1] != "IP" || f[5] != "Flags" {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		src, dst := f[2], strings.TrimSuffix(f[4], ":")
		switch {
		case f[6] == "[S]," && strings.HasPrefix(src, member+"."):
			c := refusalOf(conns, strings.TrimPrefix(src, member+"."))
			if c.syns++; c.syns == 1 {
				c.syn = at
			}
		case strings.HasPrefix(f[6], "[R") && strings.HasPrefix(dst, member+"."):
			c := refusalOf(conns, strings.TrimPrefix(dst, member+"."))
			if c.rsts++; c.rsts == 1 {
				c.rst = at
			}
		}
	}
	return conns
}

func refusalOf(conns map[string]*refusal, port string) *refusal {
	if conns[port] == nil {
		conns[port] = &refusal{}
	}
	return conns[port]
}

// countRefused returns how many connections got a RST.
func countRefused(conns map[string]*refusal) int {
	n := 0
	for _, c := range conns {
		if c.rsts > 0 {
			n++
		}
	}
	return n
}

// curlTimeTotal prefixes curl's own elapsed time in its -w output.
const curlTimeTotal = "curl_time_total="

// curlOwnTime returns the time curl reported for itself (-w
// %{time_total}), or -1 when its output has none.
func curlOwnTime(out string) time.Duration {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), curlTimeTotal); ok {
			if sec, err := strconv.ParseFloat(v, 64); err == nil {
				return time.Duration(sec * float64(time.Second))
			}
		}
	}
	return -1
}

// curlError returns curl's error line ("curl: (7) ..."), or the last
// non-empty line of its output when it has none.
func curlError(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "curl: (") {
			return l
		}
	}
	return lines[len(lines)-1]
}

// spread formats the min, median and max of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("%v / %v / %v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
