package e2e

// TestE2EFaults is the fault suite of issue 7 on the testbed, with every
// driver of e2eDrivers: natgw must survive link loss on either port, a
// reload under load, a full flow table, a flood of malformed frames at
// full speed while it translates, and SIGTERM under load followed by an
// immediate restart. The soak is TestSoak (e2e_soak_test.go).

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2EFaults runs natgw twice per driver: two workers through link
// flaps, a reload under load, the malformed flood and SIGTERM with a
// restart; one worker with a 64-flow table.
func TestE2EFaults(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	for _, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) {
			t.Run("faults under traffic", func(t *testing.T) { faultsUnderTraffic(t, tb, driver) })
			t.Run("flow table full", func(t *testing.T) { faultTableFull(t, tb, driver) })
		})
	}
}

// faultsUnderTraffic runs the fault checks against one natgw with two
// workers; the restart check comes last.
func faultsUnderTraffic(t *testing.T, tb *testbed, driver string) {
	cfg := e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers}
	r := tb.startRun(t, cfg)
	api := tb.api()
	checks := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"inside link down and up", func(t *testing.T) { checkLinkFlap(t, r, api, e2eLinks[0]) }},
		{"outside link down and up", func(t *testing.T) { checkLinkFlap(t, r, api, e2eLinks[1]) }},
		{"reload under load loses no packet", func(t *testing.T) { checkReloadUnderLoad(t, r, api) }},
		{"malformed frames at full speed while translating", func(t *testing.T) { checkFullSpeedFlood(t, r, api) }},
		// Last: it ends with the restarted natgw's clean stop.
		{"SIGTERM under load and immediate restart", func(t *testing.T) { checkRestartUnderLoad(t, r, api) }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			require.True(t, r.natgw.alive(), "natgw is not running: %v", r.natgw.waitErr)
			c.run(t)
		})
	}
}

// linkEnd is the far end of one of natgw's links, which a test takes down.
type linkEnd struct {
	// port is natgw's port on the link.
	port string
	// ns and dev name the far end.
	ns, dev string
	// routes are the testbed's routes through dev, which the kernel drops
	// with the link and which are put back after it (ip route replace
	// arguments).
	routes [][]string
}

// e2eLinks are natgw's two links, seen from the far end.
var e2eLinks = []linkEnd{
	{port: "inside", ns: "in", dev: "eth0", routes: [][]string{{"default", "via", "10.0.0.1", "dev", "eth0", "src", "10.0.9.9"}}},
	{port: "outside", ns: "rt", dev: "to-gw", routes: [][]string{{"198.19.1.0/24", "via", "198.19.0.2", "dev", "to-gw"}}},
}

// setLink brings the link end up or down; up also puts its routes back.
func (tb *testbed) setLink(l linkEnd, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if out, err := tb.run(5*time.Second, l.ns, "ip", "link", "set", "dev", l.dev, state); err != nil {
		return fmt.Errorf("ip link set %s %s: %w: %s", l.dev, state, err, out)
	}
	if !up {
		return nil
	}
	for _, rt := range l.routes {
		if out, err := tb.run(5*time.Second, l.ns, append([]string{"ip", "route", "replace"}, rt...)...); err != nil {
			return fmt.Errorf("ip route replace %v: %w: %s", rt, err, out)
		}
	}
	return nil
}

// backgroundStream runs a paced UDP stream (one datagram every 10 ms) from
// src to the echo server until the returned stop function is called;
// stop returns what the stream saw.
func backgroundStream(t *testing.T, tb *testbed, src string) (stop func() streamResult) {
	t.Helper()
	f := tb.openUDPFlows(t, src, netip.MustParseAddrPort(e2eServer+":9000"), 1)[0]
	_, _, err := f.exchange(3, time.Second)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan streamResult, 1)
	go func() {
		res, _ := runStream(ctx, f, 100000, 10*time.Millisecond, nil)
		done <- res
	}()
	var once sync.Once
	var res streamResult
	stop = func() streamResult {
		once.Do(func() {
			cancel()
			res = <-done
		})
		return res
	}
	t.Cleanup(func() { stop() })
	return stop
}

// checkLinkFlap: [§2] one of natgw's links goes down for about 2 s while
// traffic runs and a TCP connection is open (with a line written during
// the outage); after the link comes back /readyz answers 200 again, new
// flows work, and the connection carries on.
func checkLinkFlap(t *testing.T, r *e2eRun, api *apiClient, l linkEnd) {
	echo, err := r.tb.dialEcho("10.0.1.5", e2eServer+":9001")
	require.NoError(t, err)
	t.Cleanup(func() { echo.conn.Close() })
	require.NoError(t, echo.echo(5*time.Second), "echo before the outage")
	stopStream := backgroundStream(t, r.tb, "10.0.2.2")
	time.Sleep(300 * time.Millisecond)

	t.Cleanup(func() { r.tb.setLink(l, true) })
	require.NoError(t, r.tb.setLink(l, false))
	down := time.Now()
	// A line written during the outage: TCP retransmits it once the link
	// is back.
	during := make(chan error, 1)
	go func() { during <- echo.echo(30 * time.Second) }()
	notReady := api.waitReadyz(false, 1500*time.Millisecond)
	if r.cfg.Driver == "afpacket" {
		assert.NoError(t, notReady, "/readyz while the %s link is down", l.port)
	} else if notReady != nil {
		// DPDK's net_af_packet reports the link state it had at start.
		t.Logf("%s driver: /readyz did not report the %s link down: %v", r.cfg.Driver, l.port, notReady)
	}
	time.Sleep(time.Until(down.Add(2 * time.Second)))
	require.NoError(t, r.tb.setLink(l, true))
	up := time.Now()

	require.NoError(t, api.waitReadyz(true, 20*time.Second), "/readyz after the %s link came back", l.port)
	t.Logf("ready again %v after the link came up", time.Since(up).Round(time.Millisecond))
	err = waitFor(20*time.Second, func() error {
		out, err := r.tb.curl(5*time.Second, "10.0.1.4", "http://"+e2eServer+":8080/", "-m", "2")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		expectFor(t, "10.0.1.4", 0).check(t, out)
		return nil
	})
	assert.NoError(t, err, "a new flow after the outage")
	f := r.tb.openUDPFlows(t, "10.0.2.4", netip.MustParseAddrPort("198.18.0.11:9000"), 1)[0]
	_, _, err = f.exchange(3, time.Second)
	assert.NoError(t, err, "a new UDP flow after the outage")

	select {
	case err := <-during:
		assert.NoError(t, err, "the line written during the outage came back")
	case <-time.After(40 * time.Second):
		t.Error("the line written during the outage never came back")
	}
	assert.NoError(t, echo.echo(10*time.Second), "the connection opened before the outage echoes after it")
	res := stopStream()
	t.Logf("background stream: %d sent, %d lost (the outage lasted %v)", res.sent, res.lost(), up.Sub(down).Round(time.Millisecond))
	assert.Len(t, res.ports, 1, "the background flow kept one public port across the outage: %v", res.ports)
}

// checkReloadUnderLoad: a reload that touches no running flow (a deny rule
// for TCP to another server) published in the middle of two paced UDP
// streams: neither loses a datagram or changes its public port, and no
// flow is reclaimed.
func checkReloadUnderLoad(t *testing.T, r *e2eRun, api *apiClient) {
	const count, interval = 2000, 2 * time.Millisecond
	m0 := api.scrape(t)
	k0 := r.tb.kernelDrops(t)
	reclaimed0 := m0.sum("natgw_flows_expired_total", "reason", "reclaimed")
	gen0 := m0.sum("natgw_config_generation")

	streams := []struct{ src, dst string }{
		{"10.0.2.3", e2eServer + ":9000"},
		{"10.0.1.5", "198.18.0.11:9000"},
	}
	results := make([]streamResult, len(streams))
	errs := make([]error, len(streams))
	type reloadResult struct {
		status int
		body   []byte
		err    error
		at     int
	}
	// The file changes now; natgw reads it when the reload is posted.
	changed := r.cfg
	changed.DenyTCP = []string{"198.18.0.11"}
	writeConfig(t, r.config, changed)
	t.Cleanup(func() {
		writeConfig(t, r.config, r.cfg)
		api.reload(t)
	})
	reloaded := make(chan reloadResult, 1)
	var wg sync.WaitGroup
	for i, s := range streams {
		f := r.tb.openUDPFlows(t, s.src, netip.MustParseAddrPort(s.dst), 1)[0]
		// The flow exists before the streams start: a new inside host's
		// first reply may meet natgw before its gleaned MAC is published
		// (a no_neighbor drop), which is not what this check is about.
		_, _, err := f.exchange(3, time.Second)
		require.NoError(t, err, "flow %s -> %s", s.src, s.dst)
		var onSent func(int)
		if i == 0 {
			onSent = func(seq int) {
				if seq != count/2 {
					return
				}
				go func() {
					st, body, err := api.do(http.MethodPost, "/v1/config/reload")
					reloaded <- reloadResult{st, body, err, seq}
				}()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = runStream(context.Background(), f, count, interval, onSent)
		}()
	}
	wg.Wait()
	var rel reloadResult
	select {
	case rel = <-reloaded:
	case <-time.After(20 * time.Second):
		t.Fatal("the reload never answered")
	}
	m1 := api.scrape(t)
	// Every datagram lost must be accounted for by a counter: natgw's
	// drops and the frames its ports' RX rings had no room for
	// (port_rx_missed: on a loaded machine natgw may not be scheduled for
	// tens of ms), or the kernel's own drops in the testbed's namespaces
	// (veth backlogs, socket buffers), which natgw can't see.
	accounted := m1.sum("natgw_port_rx_missed_total") - m0.sum("natgw_port_rx_missed_total")
	if accounted != 0 {
		t.Logf("natgw_port_rx_missed_total +%v during the streams", accounted)
	}
	for _, reason := range e2eDropReasons {
		if d := m1.sum("natgw_drops_total", "reason", reason) - m0.sum("natgw_drops_total", "reason", reason); d != 0 {
			t.Logf("natgw_drops_total{reason=%q} +%v during the streams", reason, d)
			accounted += d
		}
	}
	for name, n := range r.tb.kernelDrops(t) {
		if d := n - k0[name]; d != 0 {
			t.Logf("kernel %s +%d during the streams", name, d)
			accounted += float64(d)
		}
	}
	require.NoError(t, rel.err, "POST /v1/config/reload")
	require.Equal(t, http.StatusOK, rel.status, "reload: %s", rel.body)
	assert.Equal(t, gen0+1, api.scrape(t).sum("natgw_config_generation"), "generation after the reload")
	lost := 0
	for i, s := range streams {
		res := results[i]
		lost += res.lost()
		assert.NoError(t, errs[i], "stream %s -> %s", s.src, s.dst)
		assert.Equal(t, count, res.sent, "stream %s -> %s sent", s.src, s.dst)
		if res.lost() != 0 {
			t.Logf("stream %s -> %s lost %d datagrams (first missing: %v)", s.src, s.dst, res.lost(), res.missing)
		}
		assert.Len(t, res.ports, 1, "stream %s -> %s public ports: %v", s.src, s.dst, res.ports)
		t.Logf("stream %s -> %s: %d sent, %d echoed, reload sent after datagram %d", s.src, s.dst, res.sent, res.received, rel.at)
	}
	assert.LessOrEqual(t, float64(lost), accounted, "datagrams lost that no counter accounts for")
	assert.Equal(t, reclaimed0, api.scrape(t).sum("natgw_flows_expired_total", "reason", "reclaimed"), "flows reclaimed by an unrelated change")
	r.assertDenied(t, "10.0.1.4", "198.18.0.11")
}

// e2eMalformedReasons are the drop reasons malformed frames are counted
// under.
var e2eMalformedReasons = []string{"malformed", "unsupported", "fragment", "ttl_exceeded", "no_flow", "no_scenario"}

// checkFullSpeedFlood: [§2] 100,000 malformed, truncated and oversized
// frames sent as fast as the kernel takes them, on both ports at once,
// while a paced UDP stream runs: natgw keeps translating during the flood
// (the stream is echoed), counts the frames as drops, and translates a
// fresh stream without loss afterwards.
func checkFullSpeedFlood(t *testing.T, r *e2eRun, api *apiClient) {
	const perPort = 50000
	seed := uint64(time.Now().UnixNano())
	t.Logf("flood seed %d", seed)
	m0 := api.scrape(t)
	rx0 := r.tb.rxPackets(t)

	f := r.tb.openUDPFlows(t, "10.0.2.4", netip.MustParseAddrPort(e2eServer+":9000"), 1)[0]
	_, _, err := f.exchange(3, time.Second)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var floodStart, floodEnd sync.Once
	var startSeq, endSeq int
	started := make(chan struct{})
	floodDone := make(chan struct{})
	streamDone := make(chan streamResult, 1)
	go func() {
		res, _ := runStream(ctx, f, 100000, 2*time.Millisecond, func(seq int) {
			if seq == 100 {
				floodStart.Do(func() { startSeq = seq; close(started) })
			}
			select {
			case <-floodDone:
				floodEnd.Do(func() { endSeq = seq })
			default:
			}
		})
		streamDone <- res
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream never started")
	}
	begin := time.Now()
	var wg sync.WaitGroup
	results := make([]floodResult, len(e2eFloodPorts))
	errs := make([]error, len(e2eFloodPorts))
	for i := range e2eFloodPorts {
		p := &e2eFloodPorts[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.tb.inNetns(p.ns, func() error {
				var err error
				results[i], err = floodPaced(p, perPort, seed+uint64(i), 0)
				return err
			})
		}()
	}
	wg.Wait()
	took := time.Since(begin)
	close(floodDone)
	time.Sleep(500 * time.Millisecond)
	cancel()
	res := <-streamDone
	rx1 := r.tb.rxPackets(t)

	require.True(t, r.natgw.alive(), "natgw died in the flood: %v", r.natgw.waitErr)
	for i, p := range e2eFloodPorts {
		assert.NoError(t, errs[i], "flood on %s", p.name)
		t.Logf("%s: %d frames sent in %v (%d refused by the kernel); natgw's interface received %d",
			p.name, results[i].sent, took.Round(time.Millisecond), results[i].rejected, rx1[p.name]-rx0[p.name])
	}
	var during, duringGot int
	for seq := startSeq; seq < endSeq && seq < len(res.got); seq++ {
		during++
		if res.got[seq] {
			duringGot++
		}
	}
	t.Logf("stream during the flood: %d of %d echoed; overall %d sent, %d lost", duringGot, during, res.sent, res.lost())
	assert.Positive(t, duringGot, "natgw translated nothing during the flood")
	assert.Len(t, res.ports, 1, "the stream kept its public port: %v", res.ports)

	m1 := api.scrape(t)
	var deltas []string
	for _, reason := range e2eMalformedReasons {
		d := m1.sum("natgw_drops_total", "reason", reason) - m0.sum("natgw_drops_total", "reason", reason)
		deltas = append(deltas, fmt.Sprintf("%s +%v", reason, d))
	}
	missed := m1.sum("natgw_port_rx_missed_total") - m0.sum("natgw_port_rx_missed_total")
	t.Logf("drops: %s; NIC/ring misses +%v", strings.Join(deltas, ", "), missed)
	assert.Greater(t, m1.sum("natgw_drops_total", "reason", "malformed"), m0.sum("natgw_drops_total", "reason", "malformed"), "malformed drops")
	assert.Greater(t, m1.sum("natgw_drops_total", "reason", "unsupported"), m0.sum("natgw_drops_total", "reason", "unsupported"), "unsupported drops")

	after := r.tb.openUDPFlows(t, "10.0.2.4", netip.MustParseAddrPort("198.18.0.11:9000"), 1)[0]
	m2, k2 := api.scrape(t), r.tb.kernelDrops(t)
	res2, err := runStream(context.Background(), after, 500, 2*time.Millisecond, nil)
	require.NoError(t, err)
	if lost := res2.lost(); lost != 0 {
		// As in checkReloadUnderLoad: a loss must show in a counter.
		m3 := api.scrape(t)
		accounted := m3.sum("natgw_port_rx_missed_total") - m2.sum("natgw_port_rx_missed_total") +
			m3.sum("natgw_drops_total") - m2.sum("natgw_drops_total")
		for name, n := range r.tb.kernelDrops(t) {
			accounted += float64(n - k2[name])
		}
		t.Logf("a stream after the flood lost %d datagrams (first missing: %v); counted: %v", lost, res2.missing, accounted)
		assert.LessOrEqual(t, float64(lost), accounted, "datagrams lost after the flood that no counter accounts for")
	}
}

// checkRestartUnderLoad: natgw gets SIGTERM while iperf3 pushes TCP
// through it: it exits with status 0 within 20 s and logs a clean stop;
// started again at once (for DPDK: a fresh EAL after the old one was
// cleaned up), it translates again, and stops cleanly in turn.
func checkRestartUnderLoad(t *testing.T, r *e2eRun, api *apiClient) {
	port := fmt.Sprint(5300 + len(r.cfg.Driver)) // one-off server of this check
	srvCtx, srvCancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer srvCancel()
	srv := r.tb.command(srvCtx, "srv", "iperf3", "-s", "-1", "-p", port)
	srvOut := &syncBuffer{}
	srv.Stdout, srv.Stderr = srvOut, srvOut
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		srvCancel()
		srv.Wait()
	})
	require.NoError(t, waitFor(10*time.Second, func() error {
		out, err := r.tb.run(5*time.Second, "srv", "ss", "-Hltn", "sport = :"+port)
		if err != nil || !strings.Contains(out, ":"+port) {
			return fmt.Errorf("iperf3 not listening yet: %v %s", err, out)
		}
		return nil
	}))

	out0 := api.scrape(t).sum("natgw_packets_total", "direction", "out")
	cliCtx, cliCancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cliCancel()
	cli := r.tb.command(cliCtx, "in", "iperf3", "-c", e2eServer, "-p", port, "-B", "10.0.2.2",
		"-t", "8", "--connect-timeout", "3000")
	cliOut := &syncBuffer{}
	cli.Stdout, cli.Stderr = cliOut, cliOut
	require.NoError(t, cli.Start())
	cliDone := make(chan error, 1)
	go func() { cliDone <- cli.Wait() }()
	_, err := api.waitMetric(15*time.Second, func(v float64) bool { return v >= out0+2000 }, "natgw_packets_total", "direction", "out")
	require.NoError(t, err, "iperf3 never loaded natgw: %s", cliOut.String())

	begin := time.Now()
	code, err := r.natgw.stop(20 * time.Second)
	took := time.Since(begin)
	require.NoError(t, err)
	assert.Equal(t, 0, code, "exit status")
	assert.Contains(t, r.natgw.log.String(), "natgw stopped cleanly")
	assert.NotContains(t, r.natgw.log.String(), "panic")
	t.Logf("natgw exited %v after SIGTERM under load", took.Round(time.Millisecond))

	begin = time.Now()
	r.natgw = r.tb.startNatgw(t, r.config)
	require.NoError(t, r.natgw.waitLog("natgw running", 1, 30*time.Second), "restart: %s", r.natgw.log.String())
	require.NoError(t, r.natgw.waitReady(30*time.Second), "natgw never translated after the restart")
	require.NoError(t, api.waitReadyz(true, 20*time.Second))
	t.Logf("translating again %v after the restart", time.Since(begin).Round(time.Millisecond))
	f := r.tb.openUDPFlows(t, "10.0.2.1", netip.MustParseAddrPort(e2eServer+":9000"), 1)[0]
	seen, _, err := f.exchange(3, time.Second)
	require.NoError(t, err)
	expectFor(t, "10.0.2.1", 0).check(t, seen.String())

	select {
	case err := <-cliDone:
		t.Logf("iperf3 client (its connection crossed the restart): %v\n%s", err, lastLines(cliOut.String(), 4))
	case <-time.After(50 * time.Second):
		t.Error("iperf3 client never ended")
	}
	t.Run("the restarted natgw stops cleanly", r.stopCleanly)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// faultTableFull: a 64-flow table (one worker) and udp = 3s: of 80 new
// UDP flows, 64 are admitted and the rest dropped as flow_table_full;
// admitted flows keep working while the table is full and new ones are
// still refused; once the flows idle out, new flows are admitted again.
func faultTableFull(t *testing.T, tb *testbed, driver string) {
	const capacity, attempts = 64, 80
	// One host fills the table: no per-host limit here (see TestE2ELimits).
	cfg := e2eConfig{Driver: driver, Workers: 1, Members: e2ePoolMembers, FlowCapacity: capacity, UDP: "3s", TCPClosing: "2s",
		HostFlowPercent: 100}
	r := tb.startRun(t, cfg)
	api := tb.api()
	dst := netip.MustParseAddrPort(e2eServer + ":9000")
	_, err := api.waitMetric(20*time.Second, func(v float64) bool { return v == 0 }, "natgw_flows_active")
	require.NoError(t, err, "the readiness probe's flows never expired")
	full0 := api.scrape(t).sum("natgw_drops_total", "reason", "flow_table_full")

	flows := tb.openUDPFlows(t, "10.0.1.4", dst, attempts)
	_, errs := exchangeAll(flows, 1, 700*time.Millisecond)
	admitted := make([]bool, attempts)
	n := 0
	for i := range flows {
		if errs[i] == nil {
			admitted[i] = true
			n++
		}
	}
	// At once, while the admitted flows are fresh: they still work, the
	// others are still refused.
	_, errs = exchangeAll(flows, 1, 700*time.Millisecond)
	m := api.scrape(t)
	assert.Equal(t, capacity, n, "flows admitted into a %d-flow table", capacity)
	assert.Equal(t, float64(capacity), m.sum("natgw_flows_active"), "natgw_flows_active")
	assert.GreaterOrEqual(t, m.sum("natgw_drops_total", "reason", "flow_table_full")-full0, float64(2*(attempts-capacity)),
		"natgw_drops_total{reason=flow_table_full}")
	var kept, refused int
	for i := range flows {
		switch {
		case admitted[i] && errs[i] == nil:
			kept++
		case !admitted[i] && errs[i] != nil:
			refused++
		}
	}
	assert.Equal(t, n, kept, "admitted flows that still work with the table full")
	assert.Equal(t, attempts-n, refused, "refused flows still refused")
	require.True(t, r.natgw.alive())
	assert.Equal(t, http.StatusOK, func() int { st, _, _ := api.do(http.MethodGet, "/readyz"); return st }(), "ready with a full table")

	t.Run("recovery once the flows idle out", func(t *testing.T) {
		for _, f := range flows {
			f.close()
		}
		_, err := api.waitMetric(20*time.Second, func(v float64) bool { return v == 0 }, "natgw_flows_active")
		require.NoError(t, err, "the flows never idled out")
		fresh := tb.openUDPFlows(t, "10.0.1.5", dst, capacity)
		_, errs := exchangeAll(fresh, 3, time.Second)
		for i := range fresh {
			assert.NoError(t, errs[i], "new flow %d of %d", i+1, capacity)
		}
	})
	t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
}

// kernelDrops returns the kernel's drop counters in the testbed's
// namespaces, by "namespace counter": the UDP receive errors (a socket
// buffer full) and every interface's rx_dropped and tx_dropped (a veth
// backlog full).
func (tb *testbed) kernelDrops(t *testing.T) map[string]uint64 {
	t.Helper()
	drops := map[string]uint64{}
	for _, ns := range []string{"in", "gw", "srv"} {
		out, err := tb.run(5*time.Second, ns, "cat", "/proc/net/snmp")
		require.NoError(t, err, out)
		var head []string
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "Udp:" {
				continue
			}
			if head == nil {
				head = f
				continue
			}
			for i, name := range head {
				if (name == "InErrors" || name == "RcvbufErrors") && i < len(f) {
					var n uint64
					fmt.Sscan(f[i], &n)
					drops[ns+" udp "+name] = n
				}
			}
		}
		out, err = tb.run(5*time.Second, ns, "sh", "-c",
			"for d in /sys/class/net/*; do echo ${d##*/} $(cat $d/statistics/rx_dropped) $(cat $d/statistics/tx_dropped); done")
		require.NoError(t, err, out)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var name string
			var rx, tx uint64
			if n, _ := fmt.Sscan(line, &name, &rx, &tx); n == 3 {
				drops[ns+" "+name+" rx_dropped"] = rx
				drops[ns+" "+name+" tx_dropped"] = tx
			}
		}
	}
	return drops
}
