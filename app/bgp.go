package main

import (
	"context"
	"errors"
	"net/netip"

	"github.com/natgw/natgw/bgp"
	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// This file wires [bgp] (issue 17) into the appliance: the speaker, the
// announcer fed by the node's health, the drain, and their place in the
// status and metrics.

// bgpNode is the appliance's BGP side (nil without [bgp]).
type bgpNode struct {
	conf    *config.BGP
	speaker bgp.Speaker
	ann     *bgp.Announcer
	cancel  context.CancelFunc
	done    chan struct{}
}

// startBGP starts the speaker and the announcer; the management server
// must be running (the health is what /readyz answers, and more).
func (a *appliance) startBGP(c *config.Config) error {
	b := c.BGP
	var peers [bgp.NumSides][]bgp.Peer
	for _, p := range b.InsidePeers {
		peers[bgp.Inside] = append(peers[bgp.Inside], bgp.Peer{Name: p.Name, Address: p.Addr(), AS: p.AS})
	}
	for _, p := range b.OutsidePeers {
		peers[bgp.Outside] = append(peers[bgp.Outside], bgp.Peer{Name: p.Name, Address: p.Addr(), AS: p.AS})
	}
	sp, err := bgp.NewGoBGP(bgp.SpeakerOptions{
		LocalAS: b.LocalAS, RouterID: b.ID(), Source: b.Source(), Peers: peers,
		HoldTime: b.HoldTime.Duration, Keepalive: b.KeepaliveInterval.Duration,
	}, a.log)
	if err != nil {
		return err
	}
	ann := bgp.NewAnnouncer(bgp.AnnouncerOptions{
		Speaker: sp, Health: a.bgpHealth, Routes: a.bgpRoutes, Flows: a.activeFlows,
		HoldDown: b.HoldDown.Duration, DrainDeadline: b.DrainDeadline.Duration, Log: a.log,
		Redirect: a.startRedirect,
	})
	if err := a.api.Registry().Register(ann.Collector()); err != nil {
		sp.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &bgpNode{conf: b, speaker: sp, ann: ann, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		ann.Run(ctx)
	}()
	a.bgp.Store(n)
	a.log.Info("bgp started", "local_as", b.LocalAS, "router_id", b.ID(), "source", b.Source(),
		"inside_peers", len(b.InsidePeers), "outside_peers", len(b.OutsidePeers))
	return nil
}

// stopBGP withdraws everything and closes the sessions.
func (a *appliance) stopBGP() {
	n := a.bgp.Load()
	if n == nil {
		return
	}
	n.cancel()
	<-n.done
	n.speaker.Close()
}

// bgpHealth says why the node must not be announced: what /readyz
// checks (ports up, workers polling), the gateway and the inside routers
// of routed prefixes resolved (the source check drops a routed host's
// packets until ARP confirmed its router), and its addresses announced by
// gratuitous ARP on both ports.
func (a *appliance) bgpHealth() []string {
	reasons := a.api.NotReady()
	if !a.rt.Manager.GatewayResolved() {
		reasons = append(reasons, "outside gateway not resolved")
	}
	if !a.rt.Manager.InsideRoutersResolved() {
		reasons = append(reasons, "inside routers of [[inside.routed]] not confirmed by ARP yet")
	}
	if !a.rt.Manager.AddressesAnnounced(lcore.PortInside) {
		reasons = append(reasons, "inside address not announced by gratuitous ARP yet")
	}
	if !a.rt.Manager.AddressesAnnounced(lcore.PortOutside) {
		reasons = append(reasons, "outside addresses not announced by gratuitous ARP yet")
	}
	return reasons
}

// bgpRoutes returns what to announce under the running policy: inside,
// the configured prefixes via the inside address; outside, every
// frontend and instance address as a /32 via the outside address.
func (a *appliance) bgpRoutes() [bgp.NumSides][]bgp.Route {
	var out [bgp.NumSides][]bgp.Route
	n := a.bgp.Load()
	if n == nil {
		return out
	}
	pol := a.policy.Load()
	inside, outside := nat.AddrFrom(pol.Inside), nat.AddrFrom(pol.Outside)
	for _, p := range n.conf.Prefixes() {
		out[bgp.Inside] = append(out[bgp.Inside], bgp.Route{Prefix: p, NextHop: inside})
	}
	for _, pub := range pol.PublicAddrs() {
		if pub == pol.Outside {
			continue
		}
		out[bgp.Outside] = append(out[bgp.Outside], bgp.Route{Prefix: netip.PrefixFrom(nat.AddrFrom(pub), 32), NextHop: outside})
	}
	return out
}

// activeFlows is the node's flow count (a drain waits for 0).
func (a *appliance) activeFlows() uint64 {
	var n uint64
	for _, w := range a.rt.Workers {
		for i := range w.Counters.FlowsActive {
			n += w.Counters.FlowsActive[i].Load()
		}
	}
	return n
}

// startRedirect starts the dataplane's redirection of new flows to the
// cluster peers (bgp.cluster_peers) when a drain starts, if ARP resolved
// one of them; it reports whether it did.
func (a *appliance) startRedirect() bool {
	n := a.bgp.Load()
	if n == nil || len(n.conf.ClusterPeers) == 0 {
		return false
	}
	if k := a.rt.Manager.ClusterPeersResolved(); k == 0 {
		a.log.Warn("drain: no cluster peer resolved by ARP: withdrawing the inside route first, the node's flows move with it",
			"cluster_peers", n.conf.ClusterPeers)
		return false
	}
	a.rt.Manager.Redirect.Store(true)
	return true
}

// startDrain starts draining (natgw ctl drain, SIGTERM with
// drain_on_sigterm); runAppliance exits when it is done.
func (a *appliance) startDrain() error {
	n := a.bgp.Load()
	if n == nil {
		return errors.New("bgp is not running yet")
	}
	drained := n.ann.Drain()
	a.drainOnce.Do(func() {
		go func() {
			<-drained
			close(a.drained)
		}()
	})
	return nil
}

// bgpStatus is the bgp part of /v1/status.
func (a *appliance) bgpStatus() any {
	n := a.bgp.Load()
	if n == nil {
		return nil
	}
	return n.ann.Status()
}
