package bgp

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// router is a GoBGP server playing a router: it listens on a loopback
// address and accepts natgw's session passively.
type router struct {
	s *server.BgpServer
}

func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newRouter(t *testing.T, addr string, port int, as uint32, peer netip.Addr, peerAS uint32) *router {
	t.Helper()
	s := server.NewBgpServer()
	go s.Serve()
	ctx := context.Background()
	require.NoError(t, s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: as, RouterId: addr, ListenPort: int32(port), ListenAddresses: []string{addr},
	}}))
	require.NoError(t, s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: peer.String(), PeerAsn: peerAS},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: addr},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 3, KeepaliveInterval: 1}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
			Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}},
	}}))
	t.Cleanup(func() { _ = s.StopBgp(context.Background(), &api.StopBgpRequest{}) })
	return &router{s: s}
}

// routes returns what the router learnt: prefix to next hop.
func (r *router) routes() map[string]string {
	out := map[string]string{}
	_ = r.s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(prefix bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				for _, a := range p.Attrs {
					if nh, ok := a.(*bgp.PathAttributeNextHop); ok {
						out[prefix.String()] = nh.Value.String()
					}
				}
			}
		})
	return out
}

// originate makes the router announce a prefix to natgw.
func (r *router) originate(t *testing.T, prefix, nexthop string) {
	t.Helper()
	p, err := path(Route{netip.MustParsePrefix(prefix), netip.MustParseAddr(nexthop)}, false)
	require.NoError(t, err)
	_, err = r.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}})
	require.NoError(t, err)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGoBGPAnnounce runs the GoBGP speaker against two GoBGP routers on
// loopback addresses: each side's routes reach only that side's router
// with the next hop natgw set, withdrawals remove them, peer states are
// reported, and what the routers send is not imported.
func TestGoBGPAnnounce(t *testing.T) {
	src := netip.MustParseAddr("127.0.0.11")
	inPort, outPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.2")
	rin := newRouter(t, "127.0.0.1", inPort, 65001, src, 65010)
	rout := newRouter(t, "127.0.0.2", outPort, 65002, src, 65010)
	rin.originate(t, "198.18.0.0/24", "127.0.0.1")

	g, err := NewGoBGP(SpeakerOptions{
		LocalAS: 65010, RouterID: src, Source: src,
		Peers: [NumSides][]Peer{
			{{Name: "r-in", Address: netip.MustParseAddr("127.0.0.1"), Port: inPort, AS: 65001}},
			{{Name: "r-out", Address: netip.MustParseAddr("127.0.0.2"), Port: outPort, AS: 65002}},
		},
		HoldTime: 3 * time.Second, Keepalive: time.Second,
	}, nil)
	require.NoError(t, err)
	var closeOnce sync.Once
	t.Cleanup(func() { closeOnce.Do(func() { g.Close() }) })

	eventually(t, "both sessions established", func() bool {
		ps := g.Peers()
		return len(ps) == 2 && ps[0].Established && ps[1].Established
	})
	ps := g.Peers()
	assert.Equal(t, "inside", ps[0].Side)
	assert.Equal(t, "r-in", ps[0].Name)
	assert.Equal(t, "established", ps[0].State)
	assert.Equal(t, "outside", ps[1].Side)

	inside := []Route{{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.1.0.11")}}
	outside := []Route{
		{netip.MustParsePrefix("198.19.1.11/32"), netip.MustParseAddr("198.19.0.11")},
		{netip.MustParsePrefix("198.19.2.11/32"), netip.MustParseAddr("198.19.0.11")},
	}
	require.NoError(t, g.Announce(Inside, inside))
	require.NoError(t, g.Announce(Outside, outside))
	eventually(t, "routes at both routers", func() bool {
		return len(rin.routes()) == 2 && len(rout.routes()) == 2
	})
	assert.Equal(t, map[string]string{"0.0.0.0/0": "10.1.0.11", "198.18.0.0/24": "127.0.0.1"}, rin.routes(),
		"the inside router gets the default route via natgw's inside address, and nothing of the outside")
	assert.Equal(t, map[string]string{"198.19.1.11/32": "198.19.0.11", "198.19.2.11/32": "198.19.0.11"}, rout.routes(),
		"the outside router gets the /32s via natgw's outside address, and nothing of the inside")

	// Import nothing: the route the inside router sent is not in natgw's
	// table, and so not passed on to the outside router either.
	n := 0
	_ = g.srv[Inside].ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(prefix bgp.NLRI, paths []*apiutil.Path) {
			if prefix.String() == "198.18.0.0/24" {
				n++
			}
		})
	assert.Zero(t, n, "a received route was imported")

	// Changing the set withdraws what left it.
	require.NoError(t, g.Announce(Outside, outside[:1]))
	eventually(t, "one /32 withdrawn", func() bool { return len(rout.routes()) == 1 })
	require.NoError(t, g.Withdraw(Inside))
	eventually(t, "default route withdrawn", func() bool { _, ok := rin.routes()["0.0.0.0/0"]; return !ok })
	assert.Len(t, rout.routes(), 1, "withdrawing inside leaves the outside alone")

	// Closing the speaker closes the sessions: the routers drop the rest.
	closeOnce.Do(func() { g.Close() })
	eventually(t, "outside routes gone with the session", func() bool { return len(rout.routes()) == 0 })
}
