package lcore

import (
	"encoding/binary"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/natgw/natgw/nat"
)

// This file is the management core's part of the dataplane: it owns the
// neighbour table (ARP answers, learning, resolution, ageing), originates
// ICMP errors the workers ask for (rate-limited), publishes the expiry clock
// the workers reclaim idle flows by, and transmits on each port's
// management queue. It runs on one goroutine; workers reach it only through
// their ToMgmt rings.

// Neighbour timing.
const (
	neighborRefresh = 30 * time.Second // re-resolve entries older than this
	neighborMaxAge  = 5 * time.Minute  // forget dynamic entries not heard of
	resolveInterval = time.Second      // at most one ARP request per address
	// arpReplyWindow is how long after natgw's request a reply is
	// accepted.
	arpReplyWindow = 5 * time.Second
	// linkPollInterval is how often the management core looks at the
	// ports' link states to announce natgw's addresses when one comes up.
	linkPollInterval = 100 * time.Millisecond
	icmpErrorRate    = 100 // ICMP errors per second, all ports
)

type neighborEntry struct {
	mac     [6]byte
	static  bool
	updated time.Time
	// gleaned: learnt from a frame's source only, not confirmed by ARP
	// (the source check of new flows does not trust it).
	gleaned bool
}

// How a neighbour was heard of (Manager.learn).
const (
	// heardGlean: the source of a frame from the inside.
	heardGlean = iota
	// heardRequest: an ARP request for one of natgw's addresses.
	heardRequest
	// heardReply: a reply to natgw's own ARP request.
	heardReply
)

// StaticNeighbor is a configured neighbour: never aged, never replaced by
// ARP.
type StaticNeighbor struct {
	Addr uint32
	MAC  [6]byte
}

// ManagerStats are counters of the management core.
type ManagerStats struct {
	ARPReplies, ARPRequests, ICMPErrors, ICMPRateLimited, Resolves atomic.Uint64
	// Resets counts RSTs sent for idle TCP flows (tcp_reset_on_idle).
	Resets atomic.Uint64
	// RejectICMP counts the ICMP administratively prohibited answers to
	// flows refused for lack of a port (on_exhaustion = "reject"; also
	// counted in ICMPErrors). The workers send the RSTs for SYNs.
	RejectICMP atomic.Uint64
	// ARPIgnored counts ARP frames natgw did not learn from because they
	// were not addressed to it (natgw_drops_total{reason="arp_ignored"}).
	ARPIgnored atomic.Uint64
	// GratuitousARP counts gratuitous ARP requests natgw sent for its own
	// addresses.
	GratuitousARP atomic.Uint64
}

// Manager is the management core's dataplane loop.
type Manager struct {
	log     *slog.Logger
	workers int
	ports   [NumPorts]Port
	q       [NumPorts]Queue
	mac     [NumPorts][6]byte
	pol     *nat.PolicyHolder
	neigh   *NeighborHolder
	rings   []*Ring
	events  []*eventRing
	exhLog  exhaustLogger
	clock   func() nat.Tick
	// ExpireNow is the tick up to which workers expire idle flows.
	ExpireNow atomic.Uint64
	// MTU is each port's MTU as the management core last read it from
	// the link (pollMTU); workers load it once per poll as the egress
	// MTU of packets leaving by that port.
	MTU [NumPorts]atomic.Int32
	// Redirect is the node's drain switch: while true, workers send new
	// outbound flows to a cluster peer (redirect.go). Any goroutine may
	// set it.
	Redirect atomic.Bool
	// Stats are the management core's counters.
	Stats ManagerStats
	// OnExhausted, when set (before Run), is called on the management
	// core for each port exhaustion it logs, with the same rate limit
	// (NAT event logging's exhaustion events).
	OnExhausted func(p *nat.Policy, e nat.ExhaustEvent, now time.Time)
	// OnSession, when set (before Run), gets the workers' session events
	// on the management core (session.go); the event is valid only
	// during the call.
	OnSession func(e *SessionEvent)
	// sessions are the workers' session event rings (session.go).
	sessions []*SessionRing

	mu       sync.Mutex // guards static (set from the reload path)
	static   map[uint32][6]byte
	table    map[uint32]*neighborEntry
	asked    map[uint32]time.Time
	tokens   float64
	lastTick time.Time
	pool     *PacketPool
	buf      [Burst]*Packet
	txOne    [1]*Packet
	stop     atomic.Bool
	done     chan struct{}

	// Gratuitous ARP state: each port's link state at the last maintain,
	// the addresses announced on it since its link came up, and the
	// policy they were taken from.
	linkUp       [NumPorts]bool
	announced    [NumPorts]map[uint32]bool
	announcedPol [NumPorts]*nat.Policy
	// garpDone says a port's addresses were all announced since its
	// link last came up (read by AddressesAnnounced).
	garpDone [NumPorts]atomic.Bool
	// drainSeen is when maintainPeers first saw Redirect set (zero while
	// it is not).
	drainSeen time.Time
}

// NewManager returns the management loop for a runtime.
func NewManager(log *slog.Logger, ports [NumPorts]Port, workers int, pol *nat.PolicyHolder,
	neigh *NeighborHolder, rings []*Ring, clock func() nat.Tick) *Manager {
	m := &Manager{
		log: log, workers: workers, ports: ports, pol: pol, neigh: neigh, rings: rings, clock: clock,
		static: map[uint32][6]byte{}, table: map[uint32]*neighborEntry{}, asked: map[uint32]time.Time{},
		pool: NewPacketPool(64, 2048), done: make(chan struct{}),
		exhLog: exhaustLogger{log: log, last: map[exhaustKey]time.Time{}},
	}
	for p := uint8(0); p < NumPorts; p++ {
		m.q[p] = ports[p].Queue(workers)
		m.mac[p] = ports[p].MAC()
		m.MTU[p].Store(1500)
	}
	m.pollMTU()
	return m
}

// minMTU is the smallest MTU natgw accepts from a link: every IPv4 link
// carries 68 bytes (RFC 791).
const minMTU = 68

// pollMTU reads each port's MTU and publishes a change to the workers
// (RFC 4787 REQ-13: the egress MTU follows the link). A port that can't
// tell (0) or reports less than 68 keeps the MTU it had.
func (m *Manager) pollMTU() {
	for p := uint8(0); p < NumPorts; p++ {
		mtu := m.ports[p].MTU()
		if mtu < minMTU || mtu > 0xffff {
			continue
		}
		if old := m.MTU[p].Swap(int32(mtu)); old != int32(mtu) && m.log != nil {
			m.log.Info("port MTU", "port", PortName(p), "mtu", mtu, "was", old)
		}
	}
}

// SetStatic replaces the static neighbours (from the configuration); they
// take effect on the next loop iteration.
func (m *Manager) SetStatic(list []StaticNeighbor) {
	s := make(map[uint32][6]byte, len(list))
	for _, n := range list {
		s[n.Addr] = n.MAC
	}
	m.mu.Lock()
	m.static = s
	m.mu.Unlock()
}

// Run loops until Stop.
func (m *Manager) Run() {
	defer close(m.done)
	var lastSecond, lastLink time.Time
	m.applyStatic()
	for !m.stop.Load() {
		now := time.Now()
		m.ExpireNow.Store(uint64(m.clock()))
		work := m.drain(now)
		if now.Sub(lastSecond) >= time.Second {
			lastSecond, lastLink = now, now
			m.applyStatic()
			m.maintain(now)
			m.pollMTU()
		} else if now.Sub(lastLink) >= linkPollInterval {
			lastLink = now
			m.announce() // a short link flap must not go unannounced
		}
		if work == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// Stop ends Run and waits for it.
func (m *Manager) Stop() {
	m.stop.Store(true)
	<-m.done
}

// drain handles the frames the workers sent.
func (m *Manager) drain(now time.Time) int {
	work := 0
	for _, r := range m.rings {
		n := r.Peek(m.buf[:])
		for _, p := range m.buf[:n] {
			switch {
			case p.Flags&MsgARP != 0:
				m.handleARP(p, now)
			case p.Flags&MsgResolve != 0:
				if len(p.Data) >= 4 {
					m.resolve(binary.BigEndian.Uint32(p.Data), now)
				}
			case p.Flags&MsgGlean != 0:
				if len(p.Data) >= 10 {
					addr := binary.BigEndian.Uint32(p.Data)
					var mac [6]byte
					copy(mac[:], p.Data[4:10])
					if m.onLink(PortInside, addr) && !m.ownAddress(PortInside, addr) && mac[0]&1 == 0 {
						m.learn(addr, mac, now, heardGlean)
					}
				}
			case p.Flags&MsgReset != 0:
				m.reset(p.Data, now)
			case p.Flags&MsgTimeExceeded != 0:
				m.icmpError(p, nat.ICMPTimeExceeded, 0, 0, now)
			case p.Flags&MsgFragNeeded != 0:
				m.icmpError(p, nat.ICMPDestUnreachable, nat.ICMPCodeFragNeeded, p.FragSport, now)
			case p.Flags&MsgReject != 0:
				m.rejectExhausted(p, now)
			}
		}
		r.Release(n)
		work += n
	}
	pol := m.pol.Load()
	for _, e := range m.events {
		e.drain(func(ev nat.ExhaustEvent) {
			if m.exhLog.event(pol, ev, now) && m.OnExhausted != nil {
				m.OnExhausted(pol, ev, now)
			}
		})
	}
	return work + m.drainSessions()
}

// reset sends a RST to each end of an idle TCP flow whose acknowledgement
// number is known (tcp_reset_on_idle, [S5]): to the private host as if from
// the remote, to the remote from the public endpoint, each with the
// sequence number that end expects next, so neither keeps a dead
// connection.
func (m *Manager) reset(b []byte, now time.Time) {
	if len(b) < resetLen {
		return
	}
	priv, pub, remote := binary.BigEndian.Uint32(b[0:]), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
	privPort, pubPort, remotePort := binary.BigEndian.Uint16(b[12:]), binary.BigEndian.Uint16(b[14:]), binary.BigEndian.Uint16(b[16:])
	ackPriv, ackRemote := binary.BigEndian.Uint32(b[18:]), binary.BigEndian.Uint32(b[22:])
	neigh := m.neigh.Load()
	if ackPriv != 0 {
		if mac, ok := neigh.Lookup(priv); ok {
			m.sendRST(PortInside, mac, remote, priv, remotePort, privPort, ackPriv)
		} else {
			m.resolve(priv, now)
		}
	}
	if ackRemote != 0 {
		if mac, ok := neigh.Lookup(neigh.Gateway); ok {
			m.sendRST(PortOutside, mac, pub, remote, pubPort, remotePort, ackRemote)
		}
	}
}

func (m *Manager) sendRST(port uint8, dstMAC [6]byte, src, dst uint32, sport, dport uint16, seq uint32) {
	out := m.pool.Get()
	if out == nil {
		return
	}
	buf := out.Data[:cap(out.Data)]
	n := nat.BuildTCP(buf[nat.EthernetLen:], nat.TCPSegment{Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Seq: seq, Flags: nat.TCPFlagRST, TTL: 64})
	if n == 0 {
		m.pool.Put(out)
		return
	}
	nat.WriteEthernet(buf, dstMAC, m.mac[port], nat.EtherTypeIPv4)
	out.Data = buf[:nat.EthernetLen+n]
	m.send(port, out)
	m.Stats.Resets.Add(1)
}

// ownAddress reports whether natgw answers ARP for addr on port.
func (m *Manager) ownAddress(port uint8, addr uint32) bool {
	p := m.pol.Load()
	if port == PortInside {
		return addr == p.Inside
	}
	return p.IsPublic(addr)
}

// sourceFor returns natgw's own address on a port.
func (m *Manager) sourceFor(port uint8) uint32 {
	p := m.pol.Load()
	if port == PortInside {
		return p.Inside
	}
	return p.Outside
}

// onLink reports whether addr is in the subnet of port.
func (m *Manager) onLink(port uint8, addr uint32) bool {
	p := m.pol.Load()
	pf := p.InsidePrefix
	if port == PortOutside {
		pf = p.OutsidePrefix
	}
	return pf.Masked().Contains(nat.AddrFrom(addr))
}

func (m *Manager) handleARP(p *Packet, now time.Time) {
	if len(p.Data) < nat.EthernetLen+nat.ARPLen {
		return
	}
	arp := nat.ARP(p.Data[nat.EthernetLen:])
	if !arp.IsValid() {
		return
	}
	sender, target := arp.SenderIP(), arp.TargetIP()
	var senderMAC [6]byte
	copy(senderMAC[:], arp.SenderMAC())
	// Learn the sender when it is on the port's subnet, unless it is
	// static, and only from ARP addressed to natgw (issue 14 item 8).
	if sender != 0 && m.onLink(p.Port, sender) && !m.ownAddress(p.Port, sender) {
		if m.arpForUs(p.Port, arp.Op(), sender, target, now) {
			how := heardRequest
			if arp.Op() == nat.ARPReply {
				how = heardReply
			}
			m.learn(sender, senderMAC, now, how)
		} else {
			m.Stats.ARPIgnored.Add(1)
		}
	}
	if arp.Op() == nat.ARPRequest && m.ownAddress(p.Port, target) {
		out := m.pool.Get()
		if out == nil {
			return
		}
		out.Data = out.Data[:nat.EthernetLen+nat.ARPLen]
		nat.WriteEthernet(out.Data, senderMAC, m.mac[p.Port], nat.EtherTypeARP)
		nat.WriteARP(out.Data[nat.EthernetLen:], nat.ARPReply, m.mac[p.Port], target, senderMAC, sender)
		m.send(p.Port, out)
		m.Stats.ARPReplies.Add(1)
	}
}

// arpForUs reports whether natgw may learn the sender of an ARP frame: a
// request for one of natgw's addresses on the port, a reply to natgw's
// own request for the sender (within arpReplyWindow), or a gratuitous ARP
// (sender and target the same) for the gateway, which a VRRP fail-over
// sends. ARP between third parties, unsolicited replies and gratuitous ARP
// for other addresses change nothing: anyone on the link could send them
// to redirect another host's traffic through itself.
func (m *Manager) arpForUs(port uint8, op uint16, sender, target uint32, now time.Time) bool {
	switch {
	case op == nat.ARPRequest && m.ownAddress(port, target):
		return true
	case op == nat.ARPReply && target == m.sourceFor(port):
		t, ok := m.asked[sender]
		return ok && now.Sub(t) <= arpReplyWindow
	case sender == target && port == PortOutside && sender == m.pol.Load().Gateway:
		return true
	}
	return false
}

// announce sends gratuitous ARP for natgw's own addresses on each port
// whose link is up: all of them when the link came up (at start too),
// else those a new policy added (a reload with new public addresses).
// Run calls it every linkPollInterval; a flap shorter than that may go
// unseen.
func (m *Manager) announce() {
	pol := m.pol.Load()
	for port := uint8(0); port < NumPorts; port++ {
		up := m.ports[port].LinkUp()
		if up && !m.linkUp[port] || !up {
			m.garpDone[port].Store(false)
		}
		if up && !m.linkUp[port] {
			m.announced[port] = nil
		}
		m.linkUp[port] = up
		if !up || (m.announced[port] != nil && m.announcedPol[port] == pol) {
			continue
		}
		if m.announced[port] == nil {
			m.announced[port] = map[uint32]bool{}
		}
		addrs := []uint32{pol.Inside}
		if port == PortOutside {
			addrs = pol.PublicAddrs()
		}
		for _, a := range addrs {
			if a == 0 || m.announced[port][a] {
				continue
			}
			if !m.gratuitous(port, a) {
				return // no buffer: try again at the next maintain
			}
			m.announced[port][a] = true
		}
		m.announcedPol[port] = pol
		m.garpDone[port].Store(true)
	}
}

// AddressesAnnounced reports whether natgw has announced its addresses on
// port with gratuitous ARP since the port's link last came up. A node
// behind ECMP is announced by BGP only after that: without it a router
// that knew another MAC for an address never sends the node traffic.
// Safe from any goroutine.
func (m *Manager) AddressesAnnounced(port uint8) bool { return m.garpDone[port].Load() }

// InsideRoutersResolved reports whether ARP confirmed every router of
// the [[inside.routed]] prefixes. Safe from any goroutine.
func (m *Manager) InsideRoutersResolved() bool {
	n := m.neigh.Load()
	for _, via := range m.pol.Load().RoutedVias() {
		if _, confirmed, ok := n.Binding(via); !ok || !confirmed {
			return false
		}
	}
	return true
}

// peerSilence is how long a cluster peer may leave natgw's ARP requests
// unanswered during a drain before natgw stops redirecting flows to it.
const peerSilence = 3 * time.Second

// maintainPeers resolves the cluster peers, which a drain redirects new
// flows to, and reports whether it forgot one. While the node drains
// (Redirect) it asks them every second and forgets a peer silent for
// peerSilence, so flows are not redirected to a dead node (with no peer
// left the workers translate new flows themselves); otherwise it
// refreshes them like the inside routers. Silence counts from the
// drain's start at the earliest: before it, peers were asked only every
// neighborRefresh.
func (m *Manager) maintainPeers(now time.Time) bool {
	draining, forgot := m.Redirect.Load(), false
	switch {
	case !draining:
		m.drainSeen = time.Time{}
	case m.drainSeen.IsZero():
		m.drainSeen = now
	}
	for _, peer := range m.pol.Load().ClusterPeers {
		e, ok := m.table[peer]
		switch {
		case draining && ok && !e.static && now.Sub(e.updated) > peerSilence && now.Sub(m.drainSeen) > peerSilence:
			m.log.Warn("drain: cluster peer stopped answering ARP: no longer redirecting to it", "peer", nat.AddrFrom(peer))
			delete(m.table, peer)
			forgot = true
			m.resolve(peer, now)
		case draining, !ok || e.gleaned || now.Sub(e.updated) > neighborRefresh:
			m.resolve(peer, now)
		}
	}
	return forgot
}

// ClusterPeersResolved returns how many of the cluster peers
// (bgp.cluster_peers) ARP confirmed: a drain redirects new flows to them.
// Safe from any goroutine.
func (m *Manager) ClusterPeersResolved() int {
	n := m.neigh.Load()
	k := 0
	for _, peer := range m.pol.Load().ClusterPeers {
		if _, confirmed, ok := n.Binding(peer); ok && confirmed {
			k++
		}
	}
	return k
}

// GatewayResolved reports whether the outside gateway's MAC is known to
// the workers. Safe from any goroutine.
func (m *Manager) GatewayResolved() bool {
	_, ok := m.neigh.Load().GatewayMAC()
	return ok
}

// gratuitous sends a gratuitous ARP request for addr (sender and target
// addr, to the broadcast MAC) on port; false when no buffer was free.
func (m *Manager) gratuitous(port uint8, addr uint32) bool {
	out := m.pool.Get()
	if out == nil {
		return false
	}
	out.Data = out.Data[:nat.EthernetLen+nat.ARPLen]
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	nat.WriteEthernet(out.Data, bcast, m.mac[port], nat.EtherTypeARP)
	nat.WriteARP(out.Data[nat.EthernetLen:], nat.ARPRequest, m.mac[port], addr, [6]byte{}, addr)
	m.send(port, out)
	m.Stats.GratuitousARP.Add(1)
	return true
}

// learn records that addr is at mac, heard of as how says.
//
// With inside.source_check on, the table is also the IP-to-MAC binding the
// source check of new flows reads, and only ARP confirms it. A frame's
// source (heardGlean) fills in an unknown address, unconfirmed, and natgw
// asks by ARP to confirm it; it never changes a known entry. An ARP
// request for natgw's address confirms an address first heard of, but
// does not move a confirmed address to another MAC: natgw asks instead.
// The first reply to natgw's request decides (the request is then
// answered: later replies within the window change nothing). Without the
// check, every way of hearing updates the entry, as before.
func (m *Manager) learn(addr uint32, mac [6]byte, now time.Time, how int) {
	e, ok := m.table[addr]
	if ok && e.static {
		return
	}
	check := m.pol.Load().SourceCheck
	if check {
		switch {
		case how == heardGlean && ok:
			return
		case how == heardGlean:
			m.table[addr] = &neighborEntry{mac: mac, updated: now, gleaned: true}
			m.publish()
			m.resolve(addr, now)
			return
		case how == heardRequest && ok && !e.gleaned && e.mac != mac:
			m.resolve(addr, now) // confirm by natgw's own request
			return
		case how == heardReply:
			delete(m.asked, addr) // the first reply decides
		}
	}
	if ok && e.mac == mac && (how == heardGlean || !e.gleaned) {
		e.updated = now
		return
	}
	m.table[addr] = &neighborEntry{mac: mac, updated: now, gleaned: how == heardGlean}
	delete(m.asked, addr)
	m.publish()
}

// resolve sends an ARP request for addr, at most once per resolveInterval.
func (m *Manager) resolve(addr uint32, now time.Time) {
	if e, ok := m.table[addr]; ok && e.static {
		return
	}
	if t, ok := m.asked[addr]; ok && now.Sub(t) < resolveInterval {
		return
	}
	port := PortOutside
	if !m.onLink(PortOutside, addr) {
		if !m.onLink(PortInside, addr) {
			return
		}
		port = PortInside
	}
	out := m.pool.Get()
	if out == nil {
		return
	}
	m.asked[addr] = now
	out.Data = out.Data[:nat.EthernetLen+nat.ARPLen]
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	nat.WriteEthernet(out.Data, bcast, m.mac[port], nat.EtherTypeARP)
	nat.WriteARP(out.Data[nat.EthernetLen:], nat.ARPRequest, m.mac[port], m.sourceFor(port), [6]byte{}, addr)
	m.send(port, out)
	m.Stats.ARPRequests.Add(1)
	m.Stats.Resolves.Add(1)
}

// maintain refreshes the gateway, ages dynamic entries and announces
// natgw's addresses, once a second.
func (m *Manager) maintain(now time.Time) {
	m.announce()
	gw := m.pol.Load().Gateway
	if e, ok := m.table[gw]; !ok || now.Sub(e.updated) > neighborRefresh {
		m.resolve(gw, now)
	}
	// The routers of routed prefixes too, before their hosts' first
	// packets need them (the source check wants them confirmed).
	for _, via := range m.pol.Load().RoutedVias() {
		if e, ok := m.table[via]; !ok || e.gleaned || now.Sub(e.updated) > neighborRefresh {
			m.resolve(via, now)
		}
	}
	changed := false
	for addr, e := range m.table {
		if e.static {
			continue
		}
		age := now.Sub(e.updated)
		switch {
		case age > neighborMaxAge:
			delete(m.table, addr)
			changed = true
		case age > neighborRefresh:
			m.resolve(addr, now)
		}
	}
	for addr, t := range m.asked {
		if now.Sub(t) > neighborMaxAge {
			delete(m.asked, addr)
		}
	}
	changed = m.maintainPeers(now) || changed
	if changed || m.neigh.Load().Gateway != gw {
		m.publish()
	}
}

func (m *Manager) applyStatic() {
	m.mu.Lock()
	s := m.static
	m.mu.Unlock()
	changed := false
	for addr, mac := range s {
		if e, ok := m.table[addr]; !ok || !e.static || e.mac != mac {
			m.table[addr] = &neighborEntry{mac: mac, static: true}
			changed = true
		}
	}
	for addr, e := range m.table {
		if _, ok := s[addr]; e.static && !ok {
			delete(m.table, addr)
			changed = true
		}
	}
	if changed {
		m.publish()
	}
}

// publish gives the workers a new snapshot of the table.
func (m *Manager) publish() {
	macs := make(map[uint32][6]byte, len(m.table))
	var gleaned map[uint32]bool
	for addr, e := range m.table {
		macs[addr] = e.mac
		if e.gleaned {
			if gleaned == nil {
				gleaned = map[uint32]bool{}
			}
			gleaned[addr] = true
		}
	}
	m.neigh.Store(newNeighbors(m.pol.Load().Gateway, macs, gleaned))
}

// Neighbors returns a copy of the neighbour table for the API: address,
// MAC, static.
func (m *Manager) Neighbors() map[netip.Addr][6]byte {
	return maps.Collect(func(yield func(netip.Addr, [6]byte) bool) {
		n := m.neigh.Load()
		n.Range(func(a uint32, mac [6]byte) bool { return yield(nat.AddrFrom(a), mac) })
	})
}

// icmpError answers an IPv4 packet from a port with an ICMP error sent back
// out of the same port, rate-limited. It never answers an ICMP error or a
// later fragment (RFC 1812 4.3.2.7).
func (m *Manager) icmpError(p *Packet, typ, code uint8, mtu uint16, now time.Time) {
	if len(p.Data) < nat.EthernetLen+nat.IPv4MinLen {
		return
	}
	orig, ok := nat.ParseIPv4(p.Data[nat.EthernetLen:])
	if !ok || orig.FragOffset() != 0 {
		return
	}
	if orig.Protocol() == nat.ProtoICMP {
		if ic, ok := nat.ParseICMP(orig.Payload()); !ok || nat.IsICMPError(ic.Type()) {
			return
		}
	}
	if !m.take(now) {
		m.Stats.ICMPRateLimited.Add(1)
		return
	}
	out := m.pool.Get()
	if out == nil {
		return
	}
	var dstMAC [6]byte
	copy(dstMAC[:], nat.Ethernet(p.Data).SrcMAC())
	buf := out.Data[:cap(out.Data)]
	n := nat.BuildICMPError(buf[nat.EthernetLen:], m.sourceFor(p.Port), orig.Src(), typ, code, mtu, orig, 64)
	if n == 0 {
		m.pool.Put(out)
		return
	}
	nat.WriteEthernet(buf, dstMAC, m.mac[p.Port], nat.EtherTypeIPv4)
	out.Data = buf[:nat.EthernetLen+n]
	m.send(p.Port, out)
	m.Stats.ICMPErrors.Add(1)
}

// take spends one token of the ICMP error budget.
func (m *Manager) take(now time.Time) bool {
	if m.lastTick.IsZero() {
		m.tokens = icmpErrorRate // start with a full bucket
	} else {
		m.tokens += now.Sub(m.lastTick).Seconds() * icmpErrorRate
	}
	m.lastTick = now
	m.tokens = min(m.tokens, icmpErrorRate)
	if m.tokens < 1 {
		return false
	}
	m.tokens--
	return true
}

func (m *Manager) send(port uint8, p *Packet) {
	m.txOne[0] = p
	if m.q[port].TxBurst(m.txOne[:]) == 0 {
		m.q[port].Free(m.txOne[:])
	}
}
