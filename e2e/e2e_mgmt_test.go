package e2e

// TestE2EMgmt is the end-to-end acceptance of issue 5 (the management
// plane) on the testbed, with every driver of e2eDrivers: SNAT exhaustion
// and its visibility [S4][S9], release of idle and closed flows' ports
// [S5], a reload that grows a pool into the next tier [S7] and a refused
// reload, and the metric names of SPEC §7 in a live scrape. natgw's
// management API is reached in the gateway namespace (e2e_api_test.go).

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
	"github.com/natgw/natgw/mgmt/config/configtest"
)

// e2eDropReasons are the reason labels of natgw_drops_total (SPEC §7).
var e2eDropReasons = mgmt.DropReasons()

// TestE2EMgmt runs natgw twice per driver: with 8-port blocks and short
// timeouts (exhaustion, release, metric names), and with a 50-member pool
// that a reload grows to 51.
func TestE2EMgmt(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	for _, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) {
			t.Run("ports_per_member 8", func(t *testing.T) { mgmtSmallBlocks(t, tb, driver) })
			t.Run("pool grows from 50 to 51 members", func(t *testing.T) { mgmtPoolGrows(t, tb, driver) })
		})
	}
}

// smallBlock returns the block of member in pool "web" with 8-port blocks.
func smallBlock(t *testing.T, member string) (first, last int) {
	t.Helper()
	all, err := expandMembers(e2ePoolMembers)
	require.NoError(t, err)
	for i, a := range all {
		if a.String() == member {
			return 1024 + i*8, 1024 + i*8 + 7
		}
	}
	t.Fatalf("%s is not a member of pool web", member)
	return 0, 0
}

// mgmtSmallBlocks: natgw with ports_per_member = 8, udp = 2s and
// tcp_closing = 2s.
func mgmtSmallBlocks(t *testing.T, tb *testbed, driver string) {
	cfg := e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers, PortsPerMember: 8, UDP: "2s", TCPClosing: "2s"}
	r := tb.startRun(t, cfg)
	api := tb.api()
	checks := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"every SPEC §7 metric in a live scrape", func(t *testing.T) { checkMetricNames(t, api) }},
		{"8 UDP flows fill a block, the 9th is dropped, other destinations still work", func(t *testing.T) { checkExhaustion(t, r, api) }},
		{"closed TCP connections release their ports after tcp_closing", func(t *testing.T) { checkClosedRelease(t, r, api) }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			require.True(t, r.natgw.alive(), "natgw is not running: %v", r.natgw.waitErr)
			c.run(t)
		})
	}
	t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
}

// checkMetricNames: every metric of SPEC §7 is in a real scrape, which
// parses as Prometheus text; every drop and expiry reason is exported;
// no natgw label carries an address.
func checkMetricNames(t *testing.T, api *apiClient) {
	m := api.scrape(t)
	for _, name := range append(mgmt.SpecMetricNames(), "go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes") {
		assert.Contains(t, m, name, "metric family")
	}
	for name := range m {
		if strings.HasPrefix(name, "natgw_") {
			assert.Contains(t, mgmt.MetricNames(), name, "a natgw metric family not in mgmt's table")
		}
	}
	labelValues := func(family, label string) map[string]bool {
		seen := map[string]bool{}
		if f, ok := m[family]; ok {
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == label {
						seen[l.GetValue()] = true
					}
				}
			}
		}
		return seen
	}
	drops := labelValues("natgw_drops_total", "reason")
	for _, r := range e2eDropReasons {
		assert.True(t, drops[r], "natgw_drops_total{reason=%q}", r)
	}
	expired := labelValues("natgw_flows_expired_total", "reason")
	for _, r := range mgmt.ExpireReasons() {
		assert.True(t, expired[r], "natgw_flows_expired_total{reason=%q}", r)
	}
	assert.True(t, labelValues("natgw_snat_port_exhaustion_total", "pool")["web"], "pool web")
	assert.Equal(t, map[string]bool{"inside": true, "outside": true}, labelValues("natgw_port_link_up", "port"))
	assert.Equal(t, 2.0, m.sum("natgw_port_link_up"), "both links up")
	assert.Equal(t, 1.0, m.sum("natgw_config_generation"))
	for name, f := range m {
		if !strings.HasPrefix(name, "natgw_") {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				_, err := netip.ParseAddr(l.GetValue())
				assert.Error(t, err, "%s{%s=%q}: labels never carry an address", name, l.GetName(), l.GetValue())
			}
		}
	}
}

// checkExhaustion: [S2][S4][S5][S9] with 8-port blocks, 8 UDP flows from
// 10.0.1.4 to one server port take the 8 ports, a 9th is dropped and
// counted (once in the log), a flow to another destination still goes
// through on a port of the same block, /v1/mappings shows 8 ports in use;
// then after 3 s of silence (udp = 2s) 8 new flows succeed and the idle
// expiries are counted.
func checkExhaustion(t *testing.T, r *e2eRun, api *apiClient) {
	const member = "10.0.1.4"
	first, last := smallBlock(t, member)
	dst := netip.MustParseAddrPort(e2eServer + ":9000")
	exhausted0 := api.scrape(t).sum("natgw_snat_port_exhaustion_total", "pool", "web")

	flows := r.tb.openUDPFlows(t, member, dst, 8)
	seen, errs := exchangeAll(flows, 3, time.Second)
	ports := map[uint16]bool{}
	for i := range flows {
		require.NoError(t, errs[i], "flow %d of 8", i+1)
		assert.Equal(t, e2ePoolPublic, seen[i].Addr().String())
		assert.True(t, int(seen[i].Port()) >= first && int(seen[i].Port()) <= last, "port %d outside %d-%d", seen[i].Port(), first, last)
		ports[seen[i].Port()] = true
	}
	require.Len(t, ports, 8, "8 flows to one destination hold 8 distinct ports")

	// Keep the 8 flows alive (udp = 2s) while the checks below run.
	stop := make(chan struct{})
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, f := range flows {
					f.send("keepalive")
				}
			}
		}
	}()
	stopKeepalive := func() {
		select {
		case <-stop:
		default:
			close(stop)
			<-kept
		}
	}
	defer stopKeepalive()

	t.Run("the 9th flow to the same destination is dropped and counted", func(t *testing.T) {
		ninth := r.tb.openUDPFlows(t, member, dst, 1)[0]
		_, _, err := ninth.exchange(2, time.Second)
		assert.Error(t, err, "a 9th flow got through a block of 8 ports")
		v, err := api.waitMetric(10*time.Second, func(v float64) bool { return v >= exhausted0+2 },
			"natgw_snat_port_exhaustion_total", "pool", "web")
		assert.NoError(t, err, "natgw_snat_port_exhaustion_total{pool=web} was %v before", exhausted0)
		t.Logf("natgw_snat_port_exhaustion_total{pool=web}: %v -> %v", exhausted0, v)
		line := "member=" + member + " pool=web destination=" + dst.String() + " protocol=udp"
		assert.NoError(t, r.natgw.waitLog(line, 1, 5*time.Second))
		assert.Equal(t, 1, strings.Count(r.natgw.log.String(), line), "exhaustion log lines (at most one per member and destination per 10 s)")
	})
	t.Run("a flow to another destination goes through", func(t *testing.T) {
		other := netip.MustParseAddrPort("198.18.0.11:9000")
		f := r.tb.openUDPFlows(t, member, other, 1)[0]
		seen, from, err := f.exchange(3, time.Second)
		require.NoError(t, err)
		assert.Equal(t, other, from, "echo source")
		assert.Equal(t, e2ePoolPublic, seen.Addr().String())
		assert.True(t, ports[seen.Port()], "port %d is one of the block's 8 (all in use towards %s)", seen.Port(), dst)
	})
	t.Run("mapping shows 8 ports in use", func(t *testing.T) {
		m := api.mapping(t, member)
		assert.Equal(t, "pool", m.Scenario)
		assert.Equal(t, "web", m.Pool)
		if assert.NotNil(t, m.Public) {
			assert.Equal(t, e2ePoolPublic, *m.Public)
		}
		if assert.NotNil(t, m.Ports) {
			assert.Equal(t, mgmt.PortRange{First: uint16(first), Last: uint16(last)}, *m.Ports)
		}
		assert.Equal(t, 8, m.PortsInUse)
		assert.GreaterOrEqual(t, m.Flows, 9, "8 flows to %s and one to 198.18.0.11", dst)

		out, err := r.tb.run(10*time.Second, "gw", r.tb.natgw, "ctl", "--json", "mapping", member)
		require.NoError(t, err, out)
		assert.Contains(t, out, `"ports_in_use": 8`, "natgw ctl --json mapping")
	})

	t.Run("after 3 s of silence the ports are free again", func(t *testing.T) {
		idle0 := api.scrape(t).sum("natgw_flows_expired_total", "reason", "idle")
		stopKeepalive()
		for _, f := range flows {
			f.close()
		}
		time.Sleep(3 * time.Second)
		fresh := r.tb.openUDPFlows(t, member, dst, 8)
		seen, errs := exchangeAll(fresh, 3, time.Second)
		for i := range fresh {
			if assert.NoError(t, errs[i], "new flow %d of 8", i+1) {
				assert.True(t, int(seen[i].Port()) >= first && int(seen[i].Port()) <= last, "port %d", seen[i].Port())
			}
		}
		v, err := api.waitMetric(10*time.Second, func(v float64) bool { return v >= idle0+8 },
			"natgw_flows_expired_total", "reason", "idle")
		assert.NoError(t, err, "natgw_flows_expired_total{reason=idle} was %v before", idle0)
		t.Logf("natgw_flows_expired_total{reason=idle}: %v -> %v", idle0, v)
	})
}

// checkClosedRelease: [S5] 8 concurrent HTTP/1.0 requests (the server closes) from
// one member to one server port take the 8 ports of its block; the closed
// flows keep their ports for tcp_closing (2 s), then release them, counted
// as "closed"; 8 new connections then succeed.
func checkClosedRelease(t *testing.T, r *e2eRun, api *apiClient) {
	const member = "10.0.2.1"
	first, last := smallBlock(t, member)
	dst := e2eServer + ":8080"
	m0 := api.scrape(t)
	closed0 := m0.sum("natgw_flows_expired_total", "reason", "closed")
	reset0 := m0.sum("natgw_flows_expired_total", "reason", "reset")

	// requests sends 8 requests at once and returns the public ports the
	// server saw.
	requests := func() map[uint16]bool {
		seen := make([]netip.AddrPort, 8)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				seen[i], errs[i] = r.tb.httpGet10(member, dst)
			}()
		}
		wg.Wait()
		ports := map[uint16]bool{}
		for i, ap := range seen {
			if !assert.NoError(t, errs[i], "request %d", i+1) {
				continue
			}
			assert.Equal(t, e2ePoolPublic, ap.Addr().String())
			assert.True(t, int(ap.Port()) >= first && int(ap.Port()) <= last, "port %d outside %d-%d", ap.Port(), first, last)
			ports[ap.Port()] = true
		}
		return ports
	}
	firstStart := time.Now()
	ports := requests()
	closedAt := time.Now()
	require.Len(t, ports, 8, "8 connections to one destination held 8 distinct ports")

	// The closed flows hold their ports for tcp_closing: checked only
	// while that is certain (the first connection closed less than 2 s
	// ago), so a slow machine skips the check rather than fail it.
	if time.Since(firstStart) < time.Second {
		err := r.tb.inNetns("in", func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(member)}, Timeout: 500 * time.Millisecond}
			c, err := d.Dial("tcp4", dst)
			if err == nil {
				c.Close()
			}
			return err
		})
		if time.Since(firstStart) < 1900*time.Millisecond {
			assert.Error(t, err, "a 9th connection got a port while 8 closed flows hold theirs")
		}
		var closing int
		for _, f := range api.flows(t, member) {
			if f.Protocol == "tcp" && f.State == "closing" {
				closing++
			}
		}
		if time.Since(firstStart) < 1900*time.Millisecond {
			assert.Equal(t, 8, closing, "flows of %s in state closing", member)
		}
	} else {
		t.Logf("8 requests took %v: the check that closed flows hold their ports is skipped", closedAt.Sub(firstStart))
	}

	err := waitFor(15*time.Second, func() error {
		if n := api.mapping(t, member).PortsInUse; n != 0 {
			return fmt.Errorf("%d ports in use", n)
		}
		return nil
	})
	require.NoError(t, err, "the closed flows' ports were never released")
	held := time.Since(closedAt)
	t.Logf("ports released %v after the last connection closed", held.Round(time.Millisecond))
	assert.GreaterOrEqual(t, held, 1800*time.Millisecond, "closed flows released before tcp_closing (2 s)")

	v, err := api.waitMetric(10*time.Second, func(v float64) bool { return v >= closed0+8 },
		"natgw_flows_expired_total", "reason", "closed")
	assert.NoError(t, err, "natgw_flows_expired_total{reason=closed} was %v before", closed0)
	reset := api.scrape(t).sum("natgw_flows_expired_total", "reason", "reset")
	t.Logf("natgw_flows_expired_total: closed %v -> %v, reset %v -> %v", closed0, v, reset0, reset)

	assert.Len(t, requests(), 8, "8 new connections after tcp_closing")
}

// e2eGrowMembers returns the members 10.0.4.1 .. 10.0.4.n.
func e2eGrowMembers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.0.4.%d", i+1)
	}
	return out
}

// mgmtPoolGrows: [S7] a pool of 50 members (1024 ports each) grows to 51
// (512 each) by POST /v1/config/reload: the first member's flows on the
// upper half of its old block are expired as "reclaimed", exactly those;
// its others keep their public port. Then a reload of an invalid file is
// refused with every error, and the running configuration keeps serving.
func mgmtPoolGrows(t *testing.T, tb *testbed, driver string) {
	const member = "10.0.4.1" // member 0: 1024-2047, then 1024-1535
	tb.inAddr(t, member)
	cfg := e2eConfig{Driver: driver, Workers: 2, Members: e2eGrowMembers(50)}
	r := tb.startRun(t, cfg)
	api := tb.api()
	dst := netip.MustParseAddrPort(e2eServer + ":9000")

	m := api.mapping(t, member)
	require.NotNil(t, m.Ports)
	require.Equal(t, mgmt.PortRange{First: 1024, Last: 2047}, *m.Ports, "block of %s in a 50-member pool", member)

	const n = 24
	flows := tb.openUDPFlows(t, member, dst, n)
	seen, errs := exchangeAll(flows, 3, time.Second)
	byPrivate := map[uint16]uint16{}
	for i, f := range flows {
		require.NoError(t, errs[i], "flow %d", i+1)
		require.Equal(t, e2ePoolPublic, seen[i].Addr().String())
		byPrivate[f.local().Port()] = seen[i].Port()
	}
	t.Run("/v1/flows lists the flows with the public ports the server saw", func(t *testing.T) {
		listed := map[uint16]uint16{}
		for _, f := range api.flows(t, member) {
			if f.Protocol != "udp" || f.Remote != dst.String() {
				continue
			}
			priv, err1 := netip.ParseAddrPort(f.Private)
			pub, err2 := netip.ParseAddrPort(f.Public)
			if assert.NoError(t, err1) && assert.NoError(t, err2) {
				listed[priv.Port()] = pub.Port()
			}
		}
		assert.Equal(t, byPrivate, listed)
	})

	reclaimed0 := api.scrape(t).sum("natgw_flows_expired_total", "reason", "reclaimed")
	var doomed int
	for _, p := range seen {
		if p.Port() > 1535 {
			doomed++
		}
	}
	t.Logf("%d of %d flows of %s are on ports 1536-2047", doomed, n, member)

	t.Run("reload to 51 members reclaims exactly the upper half's flows", func(t *testing.T) {
		cfg.Members = e2eGrowMembers(51)
		writeConfig(t, r.config, cfg)
		st, body := api.reload(t)
		require.Equal(t, http.StatusOK, st, "reload: %s", body)
		assert.JSONEq(t, `{"generation": 2}`, string(body))
		m := api.mapping(t, member)
		require.NotNil(t, m.Ports)
		require.Equal(t, mgmt.PortRange{First: 1024, Last: 1535}, *m.Ports, "block of %s in a 51-member pool", member)

		v, err := api.waitMetric(15*time.Second, func(v float64) bool { return v >= reclaimed0+float64(doomed) },
			"natgw_flows_expired_total", "reason", "reclaimed")
		require.NoError(t, err)
		assert.Equal(t, reclaimed0+float64(doomed), v, "flows expired as reclaimed")

		for i, f := range flows {
			now, _, err := f.exchange(3, time.Second)
			if !assert.NoError(t, err, "flow %d after the reload", i+1) {
				continue
			}
			assert.Equal(t, e2ePoolPublic, now.Addr().String())
			if seen[i].Port() <= 1535 {
				assert.Equal(t, seen[i].Port(), now.Port(), "a flow on a kept port keeps it")
			} else {
				assert.True(t, now.Port() >= 1024 && now.Port() <= 1535, "a reclaimed flow's new port %d is in the new block", now.Port())
				seen[i] = now
			}
		}
		assert.Equal(t, reclaimed0+float64(doomed), api.scrape(t).sum("natgw_flows_expired_total", "reason", "reclaimed"),
			"no other flow was reclaimed")
	})

	t.Run("an invalid file is refused with every error and the old configuration serves", func(t *testing.T) {
		m0 := api.scrape(t)
		gen0 := m0.sum("natgw_config_generation")
		failed0 := m0.sum("natgw_config_reloads_total", "result", "error")
		bad := cfg
		bad.PortsPerMember = 12
		x := bad.config()
		x.Frontends[0].Address = "198.19.1.300"
		x.Pools[0].Frontends = append(x.Pools[0].Frontends, "fe9")
		// A config.Duration can't hold a bad value: the text gets it.
		x.Timeouts.UDP = configtest.Duration("17m")
		text := strings.Replace(string(configtest.Text(x)), `udp = "17m0s"`, `udp = "soon"`, 1)
		writeFileAtomic(t, r.config, []byte(text))

		st, body := api.reload(t)
		require.Equal(t, http.StatusBadRequest, st, "reload of an invalid file: %s", body)
		var e mgmt.ErrorResponse
		require.NoError(t, json.Unmarshal(body, &e), "%s", body)
		assert.Len(t, e.Errors, 4, "errors: %q", e.Errors)
		for _, key := range []string{"timeouts.udp", "frontend[0].address", "pool[0].frontends[1]", "pool[0].ports_per_member"} {
			assert.Contains(t, strings.Join(e.Errors, "\n"), key)
		}

		m1 := api.scrape(t)
		assert.Equal(t, gen0, m1.sum("natgw_config_generation"), "generation")
		assert.Equal(t, failed0+1, m1.sum("natgw_config_reloads_total", "result", "error"))
		m := api.mapping(t, member)
		if assert.NotNil(t, m.Ports) {
			assert.Equal(t, mgmt.PortRange{First: 1024, Last: 1535}, *m.Ports, "the running 51-member layout")
		}
		for i, f := range flows {
			now, _, err := f.exchange(3, time.Second)
			if assert.NoError(t, err, "flow %d after the refused reload", i+1) {
				assert.Equal(t, seen[i].Port(), now.Port(), "public port of flow %d", i+1)
			}
		}
		// A new member flow still gets the running layout.
		f := tb.openUDPFlows(t, member, netip.MustParseAddrPort("198.18.0.11:9000"), 1)[0]
		now, _, err := f.exchange(3, time.Second)
		if assert.NoError(t, err) {
			assert.True(t, now.Port() >= 1024 && now.Port() <= 1535, "port %d", now.Port())
		}
	})
	t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
}
