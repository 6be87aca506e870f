package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2EHairpin runs natgw per driver with two workers and 8-port pool
// blocks and checks hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8) with real
// clients in the inside namespace: inside hosts reach each other through
// public addresses, see each other's public address and port, and nothing
// goes out of natgw's outside port on the way.
func TestE2EHairpin(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	for _, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) {
			cfg := e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers, PortsPerMember: 8}
			r := tb.startRun(t, cfg)
			api := tb.api()
			checks := []struct {
				name string
				run  func(t *testing.T)
			}{
				{"pool member to the instance's public address over TCP", func(t *testing.T) { hairpinCurl(t, tb, "10.0.1.4") }},
				{"default-SNAT host to the instance's public address over TCP", func(t *testing.T) { hairpinCurl(t, tb, "") }},
				{"pool member to the instance over UDP, and the reply", func(t *testing.T) { hairpinUDPInstance(t, tb) }},
				{"pool member to pool member, filtered like the outside", func(t *testing.T) { hairpinPoolToPool(t, tb, api) }},
			}
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) {
					require.True(t, r.natgw.alive(), "natgw is not running: %v", r.natgw.waitErr)
					c.run(t)
				})
			}
			t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
		})
	}
}

// noneOutside runs probe and asserts that no packet to a public address of
// natgw arrived at the router from natgw meanwhile.
func noneOutside(t *testing.T, tb *testbed, probe func()) {
	t.Helper()
	got := tb.captureOn(t, "rt", "to-gw", "dst net 198.19.1.0/24", probe)
	assert.Empty(t, got, "a hairpinned packet left natgw")
}

// hairpinCurl: curl from src (empty: the default source, default SNAT) to
// the instance's public address reaches the echo server on 10.0.3.7,
// which sees src's own public address and a port of its block.
func hairpinCurl(t *testing.T, tb *testbed, src string) {
	want := expectedPublic{addr: e2eDefaultPublic, first: 1024, last: 65535}
	if src != "" {
		first, last := smallBlock(t, src)
		want = expectedPublic{addr: e2ePoolPublic, first: first, last: last}
	}
	noneOutside(t, tb, func() {
		out, err := tb.curl(10*time.Second, src, "http://"+e2eInstancePublic+":8080/")
		require.NoError(t, err, out)
		want.check(t, out)
	})
}

// hairpinUDPInstance: a UDP exchange between a pool member and the
// instance's public address; the reply comes from that public address.
func hairpinUDPInstance(t *testing.T, tb *testbed) {
	noneOutside(t, tb, func() {
		src := netip.MustParseAddrPort("10.0.1.5:0")
		dst := netip.MustParseAddrPort(e2eInstancePublic + ":9000")
		reply, from, err := tb.udpExchange("in", src, dst, "hello-hairpin")
		require.NoError(t, err)
		assert.Equal(t, dst, from, "reply source")
		seen, _, ok := strings.Cut(reply, " ")
		require.True(t, ok, "reply %q", reply)
		first, last := smallBlock(t, "10.0.1.5")
		expectedPublic{addr: e2ePoolPublic, first: first, last: last}.check(t, seen)
	})
}

// hairpinPoolToPool: member B (10.0.1.5) sends to member A's (10.0.1.4)
// public endpoint 198.19.1.10:P, which A has no flow for: natgw drops it
// (no_flow), as it would from the outside. Then A sends to B's public
// endpoint from 8 sockets: its 8-port block gives each another public
// port, and only the one whose public port is P matches B's flow and
// reaches B, from 198.19.1.10:P; B's reply reaches that socket from B's
// public endpoint. The 7 others are dropped as no_flow.
func hairpinPoolToPool(t *testing.T, tb *testbed, api *apiClient) {
	aFirst, _ := smallBlock(t, "10.0.1.4")
	aPub := netip.AddrPortFrom(netip.MustParseAddr(e2ePoolPublic), uint16(aFirst))
	b, err := tb.openUDP(netip.MustParseAddrPort("10.0.1.5:0"), aPub)
	require.NoError(t, err)
	defer b.close()
	m0 := api.scrape(t)
	require.NoError(t, b.send("punch"))
	var bPub netip.AddrPort
	require.NoError(t, waitFor(10*time.Second, func() error {
		for _, f := range api.flows(t, "10.0.1.5") {
			if f.Remote == aPub.String() && f.Protocol == "udp" && f.Private == b.local().String() {
				bPub, err = netip.ParseAddrPort(f.Public)
				return err
			}
		}
		return fmt.Errorf("no flow of %s towards %s yet", b.local(), aPub)
	}))

	var as []*udpFlow
	for range 8 {
		a, err := tb.openUDP(netip.MustParseAddrPort("10.0.1.4:0"), bPub)
		require.NoError(t, err)
		defer a.close()
		as = append(as, a)
	}
	noneOutside(t, tb, func() {
		for i, a := range as {
			require.NoError(t, a.send(fmt.Sprintf("from-a-%d", i)))
		}
		buf := make([]byte, 2048)
		require.NoError(t, b.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		n, from, err := b.conn.ReadFromUDPAddrPort(buf)
		require.NoError(t, err, "nothing of A's reached B")
		assert.Equal(t, aPub, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), "A's own public endpoint")
		var i int
		_, err = fmt.Sscanf(string(buf[:n]), "from-a-%d", &i)
		require.NoError(t, err, "datagram %q", buf[:n])
		require.NoError(t, b.send("reply"))
		require.NoError(t, as[i].conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		n, from, err = as[i].conn.ReadFromUDPAddrPort(buf)
		require.NoError(t, err, "B's reply never reached A")
		assert.Equal(t, "reply", string(buf[:n]))
		assert.Equal(t, bPub, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), "B's own public endpoint")
		// Exactly one of A's datagrams was B's.
		require.NoError(t, b.conn.SetReadDeadline(time.Now().Add(time.Second)))
		_, _, err = b.conn.ReadFromUDPAddrPort(buf)
		assert.Error(t, err, "a second datagram of A's reached B")
	})
	got, err := api.waitMetric(10*time.Second, func(v float64) bool {
		return v >= m0.sum("natgw_drops_total", "reason", "no_flow")+8
	}, "natgw_drops_total", "reason", "no_flow")
	assert.NoError(t, err, "no_flow drops %v, want B's punch and A's 7 others counted", got)
}
