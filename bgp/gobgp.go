package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// GoBGP is a Speaker on GoBGP used as a library. It runs one GoBGP
// server per side, each with only that side's peers, so a side's routes
// reach exactly its peers with no export policy to get wrong. Neither
// server listens: natgw connects to its peers from the source address.
// Every received route is rejected on import.
type GoBGP struct {
	log   *slog.Logger
	o     SpeakerOptions
	srv   [NumSides]*server.BgpServer
	mu    sync.Mutex // guards routes
	route [NumSides]map[netip.Prefix]Route
}

// NewGoBGP starts a speaker with the options' peers; sessions come up in
// the background.
func NewGoBGP(o SpeakerOptions, log *slog.Logger) (*GoBGP, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.ConnectRetry <= 0 {
		o.ConnectRetry = DefaultConnectRetry
	}
	g := &GoBGP{log: log, o: o}
	for side := range NumSides {
		g.route[side] = map[netip.Prefix]Route{}
		if len(o.Peers[side]) == 0 {
			continue
		}
		s, err := g.start(side)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("bgp: %s speaker: %w", side, err)
		}
		g.srv[side] = s
	}
	return g, nil
}

// start runs one side's GoBGP server with its peers.
func (g *GoBGP) start(side Side) (*server.BgpServer, error) {
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn) // GoBGP logs every FSM step at info
	s := server.NewBgpServer(server.LoggerOption(g.log.With("bgp", side.String()), lvl))
	go s.Serve()
	ctx := context.Background()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        g.o.LocalAS,
		RouterId:   g.o.RouterID.String(),
		ListenPort: -1, // natgw connects; it does not listen
	}}); err != nil {
		s.Stop()
		return nil, err
	}
	// Import nothing: GoBGP's global import policy sees natgw's own
	// paths too, so only local paths are accepted.
	const policy = "natgw-import-local-only"
	err := s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: policy, Statements: []*api.Statement{{
		Name:       "local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}})
	if err == nil {
		err = s.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
			Policies:      []*api.Policy{{Name: policy}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		}})
	}
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("import policy: %w", err)
	}
	secs := func(d interface{ Seconds() float64 }) uint64 { return uint64(d.Seconds()) }
	for _, p := range g.o.Peers[side] {
		port := uint32(p.Port)
		if port == 0 {
			port = 179
		}
		peer := &api.Peer{
			Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.AS, Description: p.Name},
			Transport: &api.Transport{
				LocalAddress: g.o.Source.String(),
				RemotePort:   port,
			},
			Timers: &api.Timers{Config: &api.TimersConfig{
				HoldTime:               secs(g.o.HoldTime),
				KeepaliveInterval:      secs(g.o.Keepalive),
				ConnectRetry:           max(1, secs(g.o.ConnectRetry)),
				IdleHoldTimeAfterReset: 1,
			}},
			// GoBGP v4 needs the address family named.
			AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
				Family:  &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
				Enabled: true,
			}}},
		}
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
			s.Stop()
			return nil, fmt.Errorf("peer %s (%s): %w", p.Name, p.Address, err)
		}
	}
	return s, nil
}

// path builds the GoBGP path of a route (withdraw: for DeletePath).
func path(r Route, withdraw bool) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, err
	}
	nh, err := bgp.NewPathAttributeNextHop(r.NextHop)
	if err != nil {
		return nil, err
	}
	return &apiutil.Path{
		Family:     bgp.RF_IPv4_UC,
		Nlri:       nlri,
		Attrs:      []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nh},
		Withdrawal: withdraw,
	}, nil
}

// Announce makes routes the side's announced set.
func (g *GoBGP) Announce(side Side, routes []Route) error {
	s := g.srv[side]
	if s == nil {
		return nil // no peers on this side
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	want := map[netip.Prefix]Route{}
	for _, r := range routes {
		want[r.Prefix] = r
	}
	var add, del []*apiutil.Path
	var gone []netip.Prefix
	for pfx, r := range g.route[side] {
		if w, ok := want[pfx]; !ok || w != r {
			p, err := path(r, true)
			if err != nil {
				return err
			}
			del = append(del, p)
			gone = append(gone, pfx)
		}
	}
	for pfx, r := range want {
		if old, ok := g.route[side][pfx]; !ok || old != r {
			p, err := path(r, false)
			if err != nil {
				return err
			}
			add = append(add, p)
		}
	}
	if len(del) > 0 {
		if err := s.DeletePath(apiutil.DeletePathRequest{Paths: del}); err != nil {
			return fmt.Errorf("bgp: withdrawing from %s peers: %w", side, err)
		}
		for _, pfx := range gone {
			delete(g.route[side], pfx)
		}
	}
	if len(add) > 0 {
		if _, err := s.AddPath(apiutil.AddPathRequest{Paths: add}); err != nil {
			return fmt.Errorf("bgp: announcing to %s peers: %w", side, err)
		}
		for pfx, r := range want {
			g.route[side][pfx] = r
		}
	}
	return nil
}

// Withdraw withdraws all of the side's routes.
func (g *GoBGP) Withdraw(side Side) error { return g.Announce(side, nil) }

// Peers returns every peer's state.
func (g *GoBGP) Peers() []PeerState {
	var out []PeerState
	for side := range NumSides {
		s := g.srv[side]
		if s == nil {
			continue
		}
		byAddr := map[string]*api.Peer{}
		_ = s.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
			if p.Conf != nil {
				byAddr[p.Conf.NeighborAddress] = p
			}
		})
		for _, p := range g.o.Peers[side] {
			st := PeerState{Side: side.String(), Name: p.Name, Address: p.Address.String(), AS: p.AS, State: "unknown"}
			if ap, ok := byAddr[st.Address]; ok && ap.State != nil {
				st.State = sessionState(ap.State.SessionState)
				st.Established = ap.State.SessionState == api.PeerState_SESSION_STATE_ESTABLISHED
				st.Flaps = ap.State.Flops
			}
			out = append(out, st)
		}
	}
	return out
}

// sessionState names a GoBGP session state in lower case
// ("established").
func sessionState(s api.PeerState_SessionState) string {
	name := strings.TrimPrefix(s.String(), "SESSION_STATE_")
	return strings.ToLower(name)
}

// Close stops both servers; their sessions close with a notification.
func (g *GoBGP) Close() error {
	var errs []error
	for side, s := range g.srv {
		if s == nil {
			continue
		}
		if err := s.StopBgp(context.Background(), &api.StopBgpRequest{}); err != nil {
			errs = append(errs, err)
		}
		g.srv[side] = nil
	}
	return errors.Join(errs...)
}

// Announced returns the side's announced routes, sorted by prefix (for
// status).
func (g *GoBGP) Announced(side Side) []Route {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Route, 0, len(g.route[side]))
	for _, r := range g.route[side] {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return out
}
