package e2e

// TestE2EAttribution: the attribution history of issue 16 against the
// real binary in the testbed. Real clients open connections through
// natgw; the public address and port the server saw is then asked of
// natgw (natgw ctl who and GET /v1/attribution) at the time of the
// connection, across a reload that moves a block to another member
// [S7], a default-SNAT block reclaimed from one host and given to
// another, a kill -9 and a clean restart.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
	"github.com/natgw/natgw/mgmt/config/configtest"
)

func TestE2EAttribution(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	// The history lives on the management side and sees the same block
	// events whatever the driver: one driver is enough here.
	driver := e2eDrivers()[0]
	t.Run("driver="+driver, func(t *testing.T) { attribution(t, tb, driver) })
}

// writeHistoryConfig renders c with a [nat_log] section keeping the
// attribution history at history.
func writeHistoryConfig(t *testing.T, path string, c e2eConfig, history string) {
	t.Helper()
	cfg := c.config()
	cfg.NatLog.History = history
	writeFileAtomic(t, path, configtest.Text(cfg))
}

// connect makes one HTTP request from private address src to the echo
// server and returns the public endpoint the server saw, and a time at
// which the connection's block was held (right after the request).
func connect(t *testing.T, tb *testbed, src string) (netip.AddrPort, time.Time) {
	t.Helper()
	out, err := tb.curl(10*time.Second, src, "http://"+e2eServer+":8080/")
	require.NoError(t, err, out)
	ap, err := netip.ParseAddrPort(strings.TrimSpace(out))
	require.NoError(t, err, "server reply %q", out)
	return ap, time.Now()
}

// rfc3339 formats a time for the API and ctl.
func rfc3339(at time.Time) string { return at.UTC().Format(time.RFC3339Nano) }

// whoAPI asks GET /v1/attribution who held ap at at.
func whoAPI(t *testing.T, api *apiClient, ap netip.AddrPort, at time.Time) mgmt.AttributionResponse {
	t.Helper()
	q := url.Values{"public": {ap.Addr().String()}, "port": {fmt.Sprint(ap.Port())}, "at": {rfc3339(at)}}
	var r mgmt.AttributionResponse
	api.getJSON(t, "/v1/attribution?"+q.Encode(), &r)
	return r
}

// whoCtl asks natgw ctl who (--json) in the gateway namespace.
func whoCtl(t *testing.T, tb *testbed, ap netip.AddrPort, at time.Time) mgmt.AttributionResponse {
	t.Helper()
	out, err := tb.run(15*time.Second, "gw", tb.natgw, "ctl", "--mgmt", e2eMgmtURL, "who", ap.String(), "--at", rfc3339(at), "--json")
	require.NoError(t, err, out)
	var r mgmt.AttributionResponse
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	return r
}

// who asks both ways, requires the same answer, and returns the holders.
func who(t *testing.T, tb *testbed, api *apiClient, ap netip.AddrPort, at time.Time) []mgmt.HolderInfo {
	t.Helper()
	a, c := whoAPI(t, api, ap, at), whoCtl(t, tb, ap, at)
	require.Equal(t, a, c, "the API and natgw ctl who disagree")
	return a.Holders
}

// heldBy waits until the history says private held ap at at (block
// events reach it a moment after the change: the NAT log's Tracker looks
// for default-SNAT changes every 50 ms), requires that to be the only
// holder, asked both ways, and returns it.
func heldBy(t *testing.T, tb *testbed, api *apiClient, ap netip.AddrPort, at time.Time, private string) mgmt.HolderInfo {
	t.Helper()
	var last []mgmt.HolderInfo
	err := waitFor(10*time.Second, func() error {
		last = whoAPI(t, api, ap, at).Holders
		for _, h := range last {
			if h.Private == private {
				return nil
			}
		}
		return fmt.Errorf("%s at %s: holders %+v", ap, rfc3339(at), last)
	})
	require.NoError(t, err, "the history never said %s held %s at %s", private, ap, rfc3339(at))
	return holder(t, who(t, tb, api, ap, at), private)
}

// holder requires exactly one holder, private, and returns it.
func holder(t *testing.T, hs []mgmt.HolderInfo, private string) mgmt.HolderInfo {
	t.Helper()
	require.Len(t, hs, 1, "holders: %+v", hs)
	require.Equal(t, private, hs[0].Private, "holders: %+v", hs)
	return hs[0]
}

func inRange(port uint16, r mgmt.PortRange) bool { return port >= r.First && port <= r.Last }

func attribution(t *testing.T, tb *testbed, driver string) {
	dir := t.TempDir()
	history := filepath.Join(dir, "attribution.db")
	path := filepath.Join(dir, "natgw.toml")
	cfg := e2eConfig{Driver: driver, Workers: 1, Members: e2ePoolMembers, TCPClosing: "1s"}
	writeHistoryConfig(t, path, cfg, history)
	natgw := tb.startNatgw(t, path)
	require.NoError(t, natgw.waitLog("natgw running", 1, 30*time.Second), "natgw log:\n%s", natgw.log.String())
	require.NoError(t, natgw.waitReady(30*time.Second), "natgw never translated a request")
	api := tb.api()
	tb.inAddr(t, "10.0.1.6") // joins the pool at the reload
	tb.inAddr(t, "10.0.1.7") // a default-SNAT host

	// Default SNAT: 10.0.9.9 takes a block on first use.
	d1, tD1 := connect(t, tb, "10.0.9.9")
	require.Equal(t, e2eDefaultPublic, d1.Addr().String())
	hD1 := heldBy(t, tb, api, d1, tD1, "10.0.9.9")
	assert.Equal(t, "default_snat", hD1.Scope)
	assert.True(t, inRange(d1.Port(), hD1.Ports))
	assert.Nil(t, hD1.End)

	// A pool member's block, generation 1.
	a1, tA1 := connect(t, tb, "10.0.1.4")
	require.Equal(t, e2ePoolPublic, a1.Addr().String())
	hA1 := heldBy(t, tb, api, a1, tA1, "10.0.1.4")
	assert.Equal(t, mgmt.HolderInfo{Private: "10.0.1.4", Ports: mgmt.PortRange{First: 1024, Last: 2047}, Scope: "pool",
		Name: "web", Generation: 1, Start: hA1.Start, EndReason: "open"}, hA1)
	text, err := tb.run(15*time.Second, "gw", tb.natgw, "ctl", "--mgmt", e2eMgmtURL, "who", a1.String(), "--at", rfc3339(tA1))
	require.NoError(t, err, text)
	assert.Contains(t, text, "10.0.1.4")
	assert.Contains(t, text, "1024-2047")
	assert.Contains(t, text, "now (open)")

	t.Run("reload moves a block to another member [S7]", func(t *testing.T) {
		// Smaller blocks: each member keeps the first half of its block,
		// the newcomer 10.0.1.6 gets the lowest free one, the second
		// half of 10.0.1.4's (portalloc.LayoutStable).
		cfg.Members = append(append([]string{}, e2ePoolMembers...), "10.0.1.6")
		cfg.PortsPerMember = 512
		writeHistoryConfig(t, path, cfg, history)
		before := time.Now()
		st, body := api.reload(t)
		require.Equal(t, http.StatusOK, st, "%s", body)
		after := time.Now()
		a6, tA6 := connect(t, tb, "10.0.1.6")
		require.Equal(t, e2ePoolPublic, a6.Addr().String())
		require.True(t, a6.Port() >= 1536 && a6.Port() <= 2047, "10.0.1.6's port %d is not in 1536-2047", a6.Port())
		h6 := heldBy(t, tb, api, a6, tA6, "10.0.1.6")
		assert.Equal(t, mgmt.PortRange{First: 1536, Last: 2047}, h6.Ports)
		assert.Equal(t, uint64(2), h6.Generation)
		// The same public port, before the reload: 10.0.1.4's.
		h4 := heldBy(t, tb, api, a6, tA1, "10.0.1.4")
		assert.Equal(t, mgmt.PortRange{First: 1024, Last: 2047}, h4.Ports)
		assert.Equal(t, "released", h4.EndReason)
		require.NotNil(t, h4.End)
		assert.False(t, h4.End.Before(before.Add(-time.Second)) || h4.End.After(after.Add(time.Second)),
			"10.0.1.4's block ended at %s, the reload was between %s and %s", h4.End, before, after)
		// 10.0.1.4 keeps the first half.
		a4, tA4 := connect(t, tb, "10.0.1.4")
		h4b := heldBy(t, tb, api, a4, tA4, "10.0.1.4")
		assert.Equal(t, mgmt.PortRange{First: 1024, Last: 1535}, h4b.Ports)
	})

	t.Run("default-SNAT block reassigned to another host", func(t *testing.T) {
		// 10.0.9.9's connection is closed; its block is reclaimed after
		// default_snat.reclaim_idle without flows, plus up to two
		// reclamation passes (every reclaim_idle, when shorter than
		// mgmt.ReclaimInterval). A reload shortens reclaim_idle for this
		// step only (default-SNAT assignments survive it): with the
		// default 2m again, 10.0.1.7's block below stays held until the
		// restarts.
		short := cfg
		short.ReclaimIdle = "2s"
		writeHistoryConfig(t, path, short, history)
		st, body := api.reload(t)
		require.Equal(t, http.StatusOK, st, "%s", body)
		err := waitFor(time.Minute, func() error {
			if hs := whoAPI(t, api, d1, time.Now()).Holders; len(hs) != 0 {
				return fmt.Errorf("still held: %+v", hs)
			}
			return nil
		})
		require.NoError(t, err, "10.0.9.9's default-SNAT block was never reclaimed")
		writeHistoryConfig(t, path, cfg, history)
		st, body = api.reload(t)
		require.Equal(t, http.StatusOK, st, "%s", body)
		// The next host to need a block gets the one freed last.
		d2, tD2 := connect(t, tb, "10.0.1.7")
		require.Equal(t, e2eDefaultPublic, d2.Addr().String())
		h7 := heldBy(t, tb, api, d2, tD2, "10.0.1.7")
		require.Equal(t, hD1.Ports, h7.Ports, "10.0.1.7 did not get 10.0.9.9's block")
		// 10.0.9.9's own public port: 10.0.9.9's then, 10.0.1.7's now.
		h99 := heldBy(t, tb, api, d1, tD1, "10.0.9.9")
		assert.Equal(t, "released", h99.EndReason)
		require.NotNil(t, h99.End)
		assert.True(t, h99.End.Before(tD2))
		heldBy(t, tb, api, d1, tD2, "10.0.1.7")
	})

	// What the history says now, asked again after each restart.
	type question struct {
		ap netip.AddrPort
		at time.Time
	}
	past := []question{{d1, tD1}, {a1, tA1}}
	answers := map[question][]mgmt.HolderInfo{}
	for _, q := range past {
		answers[q] = whoAPI(t, api, q.ap, q.at).Holders
	}
	a4 := netip.AddrPortFrom(a1.Addr(), 1100) // 10.0.1.4's 1024-1535
	a6 := netip.AddrPortFrom(a1.Addr(), 1600) // 10.0.1.6's 1536-2047
	d2 := d1                                  // 10.0.1.7's since the reassignment
	tBefore := time.Now()
	before4 := heldBy(t, tb, api, a4, tBefore, "10.0.1.4")
	heldBy(t, tb, api, a6, tBefore, "10.0.1.6")
	heldBy(t, tb, api, d2, tBefore, "10.0.1.7")
	// natgw started in a subtest would be killed when the subtest ends.
	outer := t

	t.Run("kill -9 and restart: nothing committed is lost", func(t *testing.T) {
		tKill := time.Now()
		require.NoError(t, natgw.cmd.Process.Kill())
		<-natgw.done
		natgw = tb.startNatgw(outer, path)
		require.NoError(t, natgw.waitLog("natgw running", 1, 30*time.Second), "natgw log:\n%s", natgw.log.String())
		require.NoError(t, natgw.waitReady(30*time.Second), "natgw never translated a request")
		assert.Contains(t, natgw.log.String(), "intervals left open by the last run")
		for _, q := range past {
			assert.Equal(t, answers[q], who(t, tb, api, q.ap, q.at), "%s at %s", q.ap, q.at)
		}
		// 10.0.1.4's block, announced again at the start: the same
		// holding goes on.
		assert.Equal(t, before4, heldBy(t, tb, api, a4, time.Now(), "10.0.1.4"))
		// A start lays the blocks out afresh: the newcomer's block is
		// 10.0.1.5's now. 10.0.1.6's holding ended at the restart, and
		// so did 10.0.1.7's default-SNAT block, which a restart forgets.
		for _, c := range []struct {
			ap      netip.AddrPort
			private string
		}{{a6, "10.0.1.6"}, {d2, "10.0.1.7"}} {
			h := heldBy(t, tb, api, c.ap, tBefore, c.private)
			assert.Equal(t, "restart", h.EndReason)
			require.NotNil(t, h.End)
			assert.False(t, h.End.Before(tKill), "%s's holding ended at %s, before the kill at %s", c.private, h.End, tKill)
		}
		h5 := heldBy(t, tb, api, a6, time.Now(), "10.0.1.5")
		assert.Equal(t, uint64(1), h5.Generation)
		assert.False(t, h5.Start.Before(tKill))
		assert.Empty(t, who(t, tb, api, d2, time.Now()))
	})

	t.Run("clean stop and restart", func(t *testing.T) {
		tStop := time.Now()
		code, err := natgw.stop(20 * time.Second)
		require.NoError(t, err)
		require.Equal(t, 0, code, "natgw log:\n%s", natgw.log.String())
		natgw = tb.startNatgw(outer, path)
		require.NoError(t, natgw.waitLog("natgw running", 1, 30*time.Second), "natgw log:\n%s", natgw.log.String())
		require.NoError(t, natgw.waitReady(30*time.Second), "natgw never translated a request")
		tStart := time.Now()
		assert.NotContains(t, natgw.log.String(), "intervals left open by the last run")
		old := heldBy(t, tb, api, a4, before4.Start, "10.0.1.4")
		assert.Equal(t, "released", old.EndReason)
		require.NotNil(t, old.End)
		assert.False(t, old.End.Before(tStop) || old.End.After(tStart), "ended at %s, natgw stopped after %s", old.End, tStop)
		cur := heldBy(t, tb, api, a4, time.Now(), "10.0.1.4")
		assert.Nil(t, cur.End)
		assert.False(t, cur.Start.Before(tStop))
		for _, q := range past {
			assert.Equal(t, answers[q], who(t, tb, api, q.ap, q.at), "%s at %s", q.ap, q.at)
		}
		st, body, err := api.do(http.MethodGet, "/metrics")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, st)
		assert.Regexp(t, `natgw_natlog_history_bytes [1-9]`, string(body))
		assert.Regexp(t, `natgw_natlog_history_records_written_total [1-9]`, string(body))
		code, err = natgw.stop(20 * time.Second)
		require.NoError(t, err)
		assert.Equal(t, 0, code)
		assert.Contains(t, natgw.log.String(), "natgw stopped cleanly")
	})
}
