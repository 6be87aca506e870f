package e2e

// TestSoak is the soak of issue 7: natgw (AF_PACKET, two workers, short
// timeouts) under constant flow churn — many short UDP exchanges and
// HTTP/1.0 connections from pool members, a default-SNAT host and the
// instance, to two servers — for NATGW_SOAK (default 5m; -short skips
// it). At the end, once the idle timeouts have passed, every flow and
// every used port must be gone and memory must be flat. Longer runs:
//
//	NATGW_SOAK=2h go test -tags dpdk -run TestSoak -timeout 3h -v ./e2e
//
// (the -timeout must exceed the soak by 3 minutes; see docs/OPERATIONS.md).

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// e2eSoakDefault is the soak's length when NATGW_SOAK is not set.
const e2eSoakDefault = 5 * time.Minute

// e2eSoakSources are the inside hosts of the soak's churn.
var e2eSoakSources = []string{"10.0.1.4", "10.0.1.5", "10.0.2.1", "10.0.2.2", "10.0.9.9", "10.0.3.7"}

// soakSample is one reading of natgw's memory and flows.
type soakSample struct {
	at    time.Duration
	rss   uint64 // bytes
	heap  float64
	flows float64
}

// soakCounts counts the churn's attempts and failures.
type soakCounts struct {
	udp, udpFailed, tcp, tcpFailed atomic.Int64
	firstErr                       atomic.Pointer[string]
}

// fail records a failure.
func (c *soakCounts) fail(n *atomic.Int64, err error) {
	n.Add(1)
	msg := err.Error()
	c.firstErr.CompareAndSwap(nil, &msg)
}

// soakDuration returns NATGW_SOAK, or the default.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("NATGW_SOAK")
	if v == "" {
		return e2eSoakDefault
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "NATGW_SOAK=%q", v)
	require.Positive(t, d, "NATGW_SOAK=%q", v)
	return d
}

// processRSS returns the resident set size of process pid, in bytes.
func processRSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// TestSoak runs the churn, samples natgw's memory every 5 s, and checks
// the end state.
func TestSoak(t *testing.T) {
	skipUnlessE2E(t)
	soak := soakDuration(t)
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < soak+3*time.Minute {
		skip := t.Skipf
		if os.Getenv("NATGW_REQUIRE_E2E") == "1" {
			skip = t.Fatalf
		}
		skip("a %v soak needs a -timeout at least 3 minutes longer than what is left (%v)", soak, time.Until(deadline).Round(time.Second))
	}
	tb := newTestbed(t)
	cfg := e2eConfig{Driver: "afpacket", Workers: 2, Members: e2ePoolMembers,
		UDP: "3s", TCPEstablished: "10s", TCPTransitory: "5s", TCPClosing: "2s", ICMP: "5s"}
	r := tb.startRun(t, cfg)
	api := tb.api()
	pid := r.natgw.cmd.Process.Pid
	m0 := api.scrape(t)

	ctx, cancel := context.WithTimeout(context.Background(), soak)
	defer cancel()
	var counts soakCounts
	var wg sync.WaitGroup
	servers := []string{e2eServer, "198.18.0.11"}
	for i, src := range e2eSoakSources {
		wg.Add(2)
		go func() { // short UDP flows: one exchange each, then closed
			defer wg.Done()
			for n := i; ctx.Err() == nil; n++ {
				dst := netip.MustParseAddrPort(servers[n%len(servers)] + ":9000")
				f, err := tb.openUDP(netip.AddrPortFrom(netip.MustParseAddr(src), 0), dst)
				if err != nil {
					counts.fail(&counts.udpFailed, err)
					continue
				}
				counts.udp.Add(1)
				if _, _, err := f.exchange(3, time.Second); err != nil {
					counts.fail(&counts.udpFailed, fmt.Errorf("udp %s -> %s: %w", src, dst, err))
				}
				f.close()
				time.Sleep(5 * time.Millisecond)
			}
		}()
		go func() { // short TCP connections: one HTTP/1.0 request each
			defer wg.Done()
			for n := i; ctx.Err() == nil; n++ {
				dst := servers[n%len(servers)] + ":8080"
				counts.tcp.Add(1)
				if _, err := tb.httpGet10(src, dst); err != nil {
					counts.fail(&counts.tcpFailed, fmt.Errorf("tcp %s -> %s: %w", src, dst, err))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}

	var samples []soakSample
	start := time.Now()
	tick := time.NewTicker(5 * time.Second)
	for sampling := true; sampling; {
		select {
		case <-ctx.Done():
			sampling = false
		case <-tick.C:
			require.True(t, r.natgw.alive(), "natgw died during the soak: %v", r.natgw.waitErr)
			rss, err := processRSS(pid)
			require.NoError(t, err)
			m, err := api.scrapeE()
			require.NoError(t, err)
			samples = append(samples, soakSample{at: time.Since(start), rss: rss,
				heap: m.sum("go_memstats_heap_inuse_bytes"), flows: m.sum("natgw_flows_active")})
		}
	}
	tick.Stop()
	wg.Wait()

	udp, tcp := counts.udp.Load(), counts.tcp.Load()
	udpFailed, tcpFailed := counts.udpFailed.Load(), counts.tcpFailed.Load()
	t.Logf("%v of churn: %d UDP flows (%d failed), %d TCP connections (%d failed)", soak, udp, udpFailed, tcp, tcpFailed)
	if p := counts.firstErr.Load(); p != nil {
		t.Logf("first failure: %s", *p)
	}
	var peakFlows float64
	for _, s := range samples {
		peakFlows = max(peakFlows, s.flows)
	}
	t.Logf("peak natgw_flows_active %v", peakFlows)
	require.Greater(t, udp+tcp, int64(1000), "the churn hardly ran")
	assert.LessOrEqual(t, udpFailed*1000, udp, "more than 0.1%% of UDP flows failed")
	assert.LessOrEqual(t, tcpFailed*1000, tcp, "more than 0.1%% of TCP connections failed")

	t.Run("flows and used ports back to zero after the idle timeouts", func(t *testing.T) {
		idleStart := time.Now()
		_, err := api.waitMetric(60*time.Second, func(v float64) bool { return v == 0 }, "natgw_flows_active")
		require.NoError(t, err, "flows left after the soak")
		t.Logf("all flows gone %v after the churn stopped", time.Since(idleStart).Round(time.Millisecond))
		for _, src := range e2eSoakSources {
			m := api.mapping(t, src)
			assert.Zero(t, m.Flows, "flows of %s", src)
			assert.Zero(t, m.PortsInUse, "ports in use by %s", src)
		}
		assert.Empty(t, api.flows(t, ""), "/v1/flows")
		// The utilisation gauges follow at the workers' next scan.
		_, err = api.waitMetric(20*time.Second, func(v float64) bool { return v == 0 }, "natgw_snat_flows")
		assert.NoError(t, err, "natgw_snat_flows")
		_, err = api.waitMetric(20*time.Second, func(v float64) bool { return v == 0 }, "natgw_snat_port_utilization_max")
		assert.NoError(t, err, "natgw_snat_port_utilization_max")
		m1 := api.scrape(t)
		created := m1.sum("natgw_flows_created_total") - m0.sum("natgw_flows_created_total")
		expired := m1.sum("natgw_flows_expired_total") - m0.sum("natgw_flows_expired_total")
		assert.Equal(t, created+m0.sum("natgw_flows_active"), expired, "flows expired during the soak: those created and those there before")
		for _, reason := range e2eDropReasons {
			if d := m1.sum("natgw_drops_total", "reason", reason) - m0.sum("natgw_drops_total", "reason", reason); d != 0 {
				t.Logf("natgw_drops_total{reason=%q} +%v", reason, d)
			}
		}
		t.Logf("flows created %v, expired: idle +%v closed +%v reset +%v reclaimed +%v", created,
			m1.sum("natgw_flows_expired_total", "reason", "idle")-m0.sum("natgw_flows_expired_total", "reason", "idle"),
			m1.sum("natgw_flows_expired_total", "reason", "closed")-m0.sum("natgw_flows_expired_total", "reason", "closed"),
			m1.sum("natgw_flows_expired_total", "reason", "reset")-m0.sum("natgw_flows_expired_total", "reason", "reset"),
			m1.sum("natgw_flows_expired_total", "reason", "reclaimed")-m0.sum("natgw_flows_expired_total", "reason", "reclaimed"))
		// Packet buffers: every AF_PACKET worker buffer is back in its
		// pool (natgw_buffers_in_use, counted by each worker between
		// polls). DPDK mbufs are not counted by the API.
		_, counted := m1["natgw_buffers_in_use"]
		require.True(t, counted, "natgw_buffers_in_use is exported for AF_PACKET workers")
		assert.Zero(t, m1.sum("natgw_buffers_in_use"), "packet buffers still out of their pools")
	})

	t.Run("memory is flat", func(t *testing.T) {
		require.GreaterOrEqual(t, len(samples), 6, "memory samples")
		third := len(samples) / 3
		peak := func(s []soakSample) (rss uint64, heap float64) {
			for _, x := range s {
				rss, heap = max(rss, x.rss), max(heap, x.heap)
			}
			return rss, heap
		}
		firstRSS, firstHeap := peak(samples[:third])
		lastRSS, lastHeap := peak(samples[len(samples)-third:])
		t.Logf("RSS peak %.1f MiB in the first third, %.1f MiB in the last; Go heap in use %.1f MiB, %.1f MiB (%d samples)",
			float64(firstRSS)/(1<<20), float64(lastRSS)/(1<<20), firstHeap/(1<<20), lastHeap/(1<<20), len(samples))
		assert.LessOrEqual(t, float64(lastRSS), 1.10*float64(firstRSS), "RSS grew more than 10%% over the soak")
	})
	t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
}
