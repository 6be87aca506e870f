package e2e

// Issue 19 parts 2 and 3 on the testbed, with real TCP and UDP flows:
//
// TestE2EReclaimDrain: a tier step up under [reload] reclaim = "drain"
// cuts no connection before reload.reclaim_deadline, although half the
// member's ports went to another member; at the deadline the flows on
// those ports are reclaimed and counted.
//
// TestE2EDrainFrontend: `natgw ctl drain-frontend fe1` moves pool web to
// fe2 for new flows while the flows on fe1 go on; once they ended, a
// reload that removes fe1 cuts nothing.

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
)

// publicOf returns the public endpoint natgw's flow list gives the flow
// of private endpoint priv, protocol proto.
func publicOf(flows []mgmt.FlowEntry, proto string, priv netip.AddrPort) (netip.AddrPort, bool) {
	for _, f := range flows {
		if f.Protocol == proto && f.Private == priv.String() {
			return netip.MustParseAddrPort(f.Public), true
		}
	}
	return netip.AddrPort{}, false
}

// echoAll runs one echo on every TCP connection and returns the errors.
func echoAll(conns []*tcpEcho) []error {
	errs := make([]error, len(conns))
	for i, c := range conns {
		errs[i] = c.echo(5 * time.Second)
	}
	return errs
}

// openDrainFlows opens the flows a drain test watches, from member: nUDP
// UDP flows to the echo server's port 9000 and nTCP TCP echo connections
// to its port 9001, closed when the test ends. It requires one exchange
// on each to work and returns the flows, with the public endpoint each
// UDP flow's exchange came back to.
func openDrainFlows(t *testing.T, tb *testbed, member string, nUDP, nTCP int) ([]*udpFlow, []netip.AddrPort, []*tcpEcho) {
	t.Helper()
	udp := tb.openUDPFlows(t, member, netip.MustParseAddrPort(e2eServer+":9000"), nUDP)
	seen, errs := exchangeAll(udp, 3, time.Second)
	for i, err := range errs {
		require.NoError(t, err, "udp flow %d", i)
	}
	var tcp []*tcpEcho
	for range nTCP {
		c, err := tb.dialEcho(member, e2eServer+":9001")
		require.NoError(t, err)
		t.Cleanup(func() { c.conn.Close() })
		tcp = append(tcp, c)
	}
	for i, err := range echoAll(tcp) {
		require.NoError(t, err, "tcp connection %d", i)
	}
	return udp, seen, tcp
}

func TestE2EReclaimDrain(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	const deadline = 8 * time.Second
	// 18 members: 1024 ports each; growing to 66 halves the blocks.
	cfg := e2eConfig{Driver: "afpacket", Workers: 1, Members: e2ePoolMembers, Reclaim: "drain", ReclaimDeadline: "8s"}
	r := tb.startRun(t, cfg)
	api := tb.api()

	const member = "10.0.1.4"
	udp, _, tcp := openDrainFlows(t, tb, member, 60, 24)
	m := api.mapping(t, member)
	require.NotNil(t, m.Ports)
	require.Equal(t, 1024, int(m.Ports.Last-m.Ports.First)+1)
	cutAt := m.Ports.First + 511 // ports above it go to another member
	flows := api.flows(t, member)
	var cutUDP, cutTCP int
	for _, f := range udp {
		p, ok := publicOf(flows, "udp", f.local())
		require.True(t, ok, "natgw lists udp flow %v", f.local())
		if p.Port() > cutAt {
			cutUDP++
		}
	}
	for _, c := range tcp {
		p, ok := publicOf(flows, "tcp", c.conn.LocalAddr().(*net.TCPAddr).AddrPort())
		require.True(t, ok, "natgw lists tcp connection %v", c.conn.LocalAddr())
		if p.Port() > cutAt {
			cutTCP++
		}
	}
	require.Positive(t, cutUDP, "some UDP flows hold ports of the upper half")
	require.Positive(t, cutTCP, "some TCP connections hold ports of the upper half")
	t.Logf("flows on the ports the step up takes: %d udp, %d tcp", cutUDP, cutTCP)

	m0 := api.scrape(t)
	grown := cfg
	grown.Members = append(append([]string(nil), e2ePoolMembers...), "10.0.4.0/26") // 66 members: 512 ports
	writeConfig(t, r.config, grown)
	reloaded := time.Now()
	st, body := api.reload(t)
	require.Equal(t, http.StatusOK, st, "%s", body)
	m = api.mapping(t, member)
	require.Equal(t, 512, int(m.Ports.Last-m.Ports.First)+1, "the blocks halved")

	// Before the deadline every flow lives, on its own public port.
	rounds := 0
	for time.Since(reloaded) < deadline-3*time.Second {
		seen, errs := exchangeAll(udp, 3, 500*time.Millisecond)
		for i, err := range errs {
			require.NoError(t, err, "udp flow %d after the reload, before the deadline", i)
			p, _ := publicOf(flows, "udp", udp[i].local())
			require.Equal(t, p, seen[i], "udp flow %d keeps its public endpoint", i)
		}
		for i, err := range echoAll(tcp) {
			require.NoError(t, err, "tcp connection %d after the reload, before the deadline", i)
		}
		rounds++
		time.Sleep(200 * time.Millisecond)
	}
	require.Positive(t, rounds)
	m1 := api.scrape(t)
	reclaimed := m1.sum("natgw_flows_expired_total", "reason", "reclaimed") - m0.sum("natgw_flows_expired_total", "reason", "reclaimed")
	assert.Zero(t, reclaimed, "nothing is cut before the deadline")
	draining := m1.sum("natgw_flows_draining")
	assert.GreaterOrEqual(t, draining, float64(cutUDP+cutTCP), "the flows on the taken ports drain")
	t.Logf("%d exchange rounds on every flow before the deadline; %v flows draining", rounds, draining)

	// At the deadline they are reclaimed and counted.
	_, err := api.waitMetric(deadline+10*time.Second, func(v float64) bool { return v == 0 }, "natgw_flows_draining")
	require.NoError(t, err)
	m2 := api.scrape(t)
	// Other flows of the member (the testbed's readiness checks) may
	// have closed meanwhile; the test's own were all open.
	assert.Equal(t, draining, m2.sum("natgw_flows_drained_total")-m1.sum("natgw_flows_drained_total"), "every draining flow ended and was counted")
	assert.GreaterOrEqual(t, m2.sum("natgw_flows_drained_total", "outcome", "deadline"), float64(cutUDP+cutTCP))
	assert.Equal(t, m2.sum("natgw_flows_drained_total", "outcome", "deadline"),
		m2.sum("natgw_flows_expired_total", "reason", "reclaimed")-m0.sum("natgw_flows_expired_total", "reason", "reclaimed"),
		"reclaimed at the deadline, counted as reclaimed as before")
	// The flows on the ports the member kept still go on.
	kept := 0
	for i, f := range udp {
		if p, _ := publicOf(flows, "udp", f.local()); p.Port() <= cutAt {
			_, _, err := f.exchange(3, time.Second)
			assert.NoError(t, err, "udp flow %d on a kept port", i)
			kept++
		}
	}
	t.Logf("%d udp flows on kept ports still echo after the deadline", kept)
}

func TestE2EDrainFrontend(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	cfg := e2eConfig{Driver: "afpacket", Workers: 1, Members: e2ePoolMembers, FE2: true,
		UDP: "4s", TCPClosing: "2s", ReclaimDeadline: "2m"}
	r := tb.startRun(t, cfg)
	api := tb.api()

	const member = "10.0.1.4"
	udp, seen, tcp := openDrainFlows(t, tb, member, 20, 5)
	for i, s := range seen {
		require.Equal(t, "198.19.1.10", s.Addr().String(), "udp flow %d: pool web starts on fe1", i)
	}
	m0 := api.scrape(t)

	out, err := tb.run(20*time.Second, "gw", tb.natgw, "ctl", "--mgmt", e2eMgmtURL, "drain-frontend", "fe1")
	require.NoError(t, err, out)
	t.Logf("natgw ctl drain-frontend fe1: %s", strings.TrimSpace(out))
	assert.Contains(t, out, "frontend fe1 drains")
	m := api.mapping(t, member)
	require.NotNil(t, m.Public)
	assert.Equal(t, e2eFE2, *m.Public, "the member's block moved to fe2")

	// Existing flows go on on fe1; new ones leave from fe2.
	for range 3 {
		seen, errs := exchangeAll(udp, 3, time.Second)
		for i, err := range errs {
			require.NoError(t, err, "udp flow %d after the drain", i)
			assert.Equal(t, "198.19.1.10", seen[i].Addr().String(), "udp flow %d stays on fe1", i)
		}
		for i, err := range echoAll(tcp) {
			require.NoError(t, err, "tcp connection %d after the drain", i)
		}
		time.Sleep(300 * time.Millisecond)
	}
	fresh := tb.openUDPFlows(t, member, netip.MustParseAddrPort(e2eServer+":9000"), 5)
	seen, errs := exchangeAll(fresh, 3, time.Second)
	for i, err := range errs {
		require.NoError(t, err, "new udp flow %d", i)
		assert.Equal(t, e2eFE2, seen[i].Addr().String(), "a new flow leaves from fe2")
	}
	m1 := api.scrape(t)
	assert.GreaterOrEqual(t, m1.sum("natgw_flows_draining"), float64(len(udp)+len(tcp)))
	assert.Equal(t, m0.sum("natgw_flows_expired_total", "reason", "reclaimed"), m1.sum("natgw_flows_expired_total", "reason", "reclaimed"))

	// The flows end: TCP closes, UDP goes quiet and idles out.
	for _, c := range tcp {
		c.conn.Close()
	}
	for _, f := range append(udp, fresh...) {
		f.close()
	}
	_, err = api.waitMetric(60*time.Second, func(v float64) bool { return v == 0 }, "natgw_flows_draining")
	require.NoError(t, err, "the flows on fe1 never ended")
	m2 := api.scrape(t)
	assert.GreaterOrEqual(t, m2.sum("natgw_flows_drained_total", "outcome", "closed"), float64(len(tcp)))
	assert.GreaterOrEqual(t, m2.sum("natgw_flows_drained_total", "outcome", "idle"), float64(len(udp)))

	// A reload that removes fe1 cuts nothing; the pool runs on fe2.
	gone := cfg
	gone.NoFE1 = true
	writeConfig(t, r.config, gone)
	st, body := api.reload(t)
	require.Equal(t, http.StatusOK, st, "%s", body)
	time.Sleep(500 * time.Millisecond) // a sweep pass takes a few ms: let any reclaim show
	m3 := api.scrape(t)
	assert.Equal(t, m2.sum("natgw_flows_expired_total", "reason", "reclaimed"), m3.sum("natgw_flows_expired_total", "reason", "reclaimed"),
		"removing the drained frontend cuts nothing")
	after := tb.openUDPFlows(t, member, netip.MustParseAddrPort(e2eServer+":9000"), 1)
	s, _, err := after[0].exchange(3, time.Second)
	require.NoError(t, err)
	assert.Equal(t, e2eFE2, s.Addr().String())
}
