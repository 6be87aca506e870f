package mgmt

import (
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/nat"
)

// This file is the Prometheus side of the management core: one collector
// that, at scrape time, reads the counters every worker publishes with
// atomics (lcore.WorkerCounters), the ports' driver counters, the workers'
// utilisation snapshots and the reload results, and turns them into
// const metrics (SPEC §7). Labels are bounded: worker index, port role,
// pool name, fixed reason and protocol names; never an address.

// protocolNames label the per-protocol counters, in nat.ProtoIndex order.
var protocolNames = [3]string{"tcp", "udp", "icmp"}

// pollGapNames label natgw_worker_poll_gaps_total's thresholds, in
// lcore.PollGapLimits order (TestPollGapNames checks them).
var pollGapNames = [lcore.NumPollGapLimits]string{"100us", "1ms", "10ms"}

// directionNames label the per-direction counters (nat.DirOut, nat.DirIn).
var directionNames = [2]string{"out", "in"}

// A Metric is one metric family natgw's collector exports.
type Metric struct {
	// Name is the metric's full name ("natgw_drops_total").
	Name string
	// Help is its HELP text.
	Help string
	// Labels are its variable labels, in the order the collector gives
	// their values.
	Labels []string
	// Spec says whether SPEC §7 names the metric (the deployed dashboard
	// shows each of those); the others are natgw's additions.
	Spec bool
}

// metrics is the one list of natgw's own metric families (SPEC §7 and
// natgw's additions, without the Go runtime and process collectors'): the
// collector's descriptors are built from it, and Metrics, MetricNames and
// SpecMetricNames give it to the tests of the collector, the end-to-end
// suite, the docs and the deployed alerts and dashboard.
var metrics = []Metric{
	{"natgw_packets_total", "Packets translated, by direction (out: private to public) and worker.", []string{"direction", "worker"}, true},
	{"natgw_bytes_total", "IPv4 bytes translated, by direction and worker.", []string{"direction", "worker"}, true},
	{"natgw_drops_total", "Packets dropped, by reason and worker.", []string{"reason", "worker"}, true},
	{"natgw_flows_active", "Flows in the flow tables, by protocol and worker.", []string{"protocol", "worker"}, true},
	{"natgw_flows_created_total", "Flows created, by protocol and worker.", []string{"protocol", "worker"}, true},
	{"natgw_flows_expired_total", "Flows released, by reason (idle, closed, reset, reclaimed) and worker.", []string{"reason", "worker"}, true},
	{"natgw_flows_draining", "Flows draining: kept although a reload took their port from their pool member (reload.reclaim = \"drain\", or their frontend set to drain) until they close, idle out or reload.reclaim_deadline passes, by worker.", []string{"worker"}, false},
	{"natgw_flows_drained_total", "Draining flows that ended, by outcome (closed, idle, deadline: reclaimed at reload.reclaim_deadline, also counted as reclaimed in natgw_flows_expired_total; reclaimed: cut by a later reload) and worker.", []string{"outcome", "worker"}, false},
	{"natgw_snat_ports_allocated", "SNAT ports preallocated to members (default SNAT: to the addresses holding a block), by pool.", []string{"pool"}, true},
	{"natgw_snat_flows", "Flows using a pool's SNAT ports, by pool (from the workers' last utilisation scan, at most a few seconds old).", []string{"pool"}, true},
	{"natgw_snat_port_utilization_max", "Highest ports used / ports allocated ratio over any member and destination, by pool (the higher of the workers' last utilisation scan and their current hot sets).", []string{"pool"}, true},
	{"natgw_snat_port_exhaustion_total", "New flows dropped because the member had no free port towards the destination, by pool.", []string{"pool"}, true},
	{"natgw_snat_exhaustion_eta_seconds", "Smallest estimated time until a member of the pool has no free port towards a destination, from the hot sets' growth over the last 30 s; +Inf when no tracked pair of the pool is growing (see GET /v1/hotspots).", []string{"pool"}, false},
	{"natgw_snat_exhaustion_rejects_total", "New flows refused for lack of a port in pools with on_exhaustion = \"reject\", by result (sent: handed to the management core to be answered with a RST or ICMP administratively prohibited; rate_limited: left unanswered by the worker's limit) and worker.", []string{"result", "worker"}, false},
	{"natgw_handoff_packets_total", "Packets a worker handed over to the worker that owns them.", []string{"worker"}, true},
	{"natgw_drain_redirects_total", "Packets from the inside that matched no flow while the node drained with bgp.cluster_peers, by result (redirected: sent untranslated to a cluster peer, which translates them; no_peer: no peer was resolved, so the packet opened a flow here) and worker.", []string{"result", "worker"}, false},
	{"natgw_fragmented_packets_total", "Packets without DF larger than the egress MTU that a worker cut into fragments after translation (RFC 4787 REQ-13a).", []string{"worker"}, false},
	{"natgw_fragments_sent_total", "Fragments a worker sent for the packets it cut.", []string{"worker"}, false},
	{"natgw_fragments_total", "Fragment table events, by event (held: a later fragment kept until its first arrives; released; timed_out and refused: dropped, also counted as fragment drops) and worker.", []string{"event", "worker"}, false},
	{"natgw_worker_busy_ratio", "Share of a worker's polls that found work, over the last second.", []string{"worker"}, true},
	{"natgw_worker_poll_gaps_total", "Times a worker went longer than over (100us, 1ms, 10ms) between the starts of two polls: while it does, nothing drains its RX queues (a 1024-descriptor ring holds 69 us at 14.88 Mpps). Stalls of milliseconds are the CPU taken from the worker (other threads on a worker CPU that is not isolated, the hypervisor, Go's scheduler).", []string{"over", "worker"}, false},
	{"natgw_worker_poll_gap_max_seconds", "Longest time between the starts of two polls of a worker in the last 30 to 60 s.", []string{"worker"}, false},
	{"natgw_buffers_in_use", "Packet buffers of a worker's queues out of their pools between polls (drivers that count them: AF_PACKET); 0 when idle.", []string{"worker"}, false},
	{"natgw_port_rx_packets_total", "Packets received by the port, as the driver counts them.", []string{"port"}, true},
	{"natgw_port_tx_packets_total", "Packets sent by the port, as the driver counts them.", []string{"port"}, true},
	{"natgw_port_rx_missed_total", "Packets the NIC dropped for lack of room in the RX queues.", []string{"port"}, true},
	{"natgw_port_mtu", "The port's MTU as natgw last read it from the link (polled every second): the egress MTU packets leaving by the port are fragmented for, or answered with ICMP fragmentation needed.", []string{"port"}, false},
	{"natgw_port_link_up", "1 when the port's link is up.", []string{"port"}, true},
	{"natgw_config_generation", "Generation of the running configuration (1 at start, +1 per successful reload).", nil, true},
	{"natgw_config_reloads_total", "Configuration reloads, by result (ok, error).", []string{"result"}, true},
}

// optionalMetrics are the families exported only when what they measure
// is configured: the NAT event log's exporter (natlog's collector, when
// [nat_log] names a collector), the attribution history
// (nat_log.history) and the BGP announcer (bgp's collector, with [bgp]). They belong to the one list all the same.
var optionalMetrics = []Metric{
	{"natgw_natlog_records_total", "NAT event records sent, by format (ipfix, syslog), once per collector.", []string{"format"}, false},
	{"natgw_natlog_export_errors_total", "NAT event records or messages that could not be sent, by format (a failed send or connection).", []string{"format"}, false},
	{"natgw_natlog_dropped_total", "NAT events dropped before encoding, by stage: worker (a worker's session event ring was full), exporter (the exporter's queue was full).", []string{"stage"}, false},
	{"natgw_natlog_history_bytes", "Size of the attribution history's file (nat_log.history).", nil, false},
	{"natgw_natlog_history_open_intervals", "Holdings the attribution history records as going on.", nil, false},
	{"natgw_natlog_history_records_written_total", "Holding records the attribution history committed (begun and ended).", nil, false},
	{"natgw_natlog_history_write_errors_total", "Attribution history transactions that failed (their block events are lost).", nil, false},
	{"natgw_natlog_history_pruned_total", "Ended holdings deleted from the attribution history, by reason (retention: older than nat_log.retention; size: over nat_log.history_max_size).", []string{"reason"}, false},
	{"natgw_natlog_history_dropped_total", "Block events the attribution history dropped because its queue was full.", nil, false},
	{"natgw_bgp_peer_established", "1 while the BGP session with the peer is established.", []string{"side", "peer"}, false},
	{"natgw_bgp_peer_flaps_total", "Times the BGP session with the peer went down.", []string{"side", "peer"}, false},
	{"natgw_bgp_routes_announced", "Routes announced to the side's peers.", []string{"side"}, false},
	{"natgw_bgp_announcements_total", "Times the side's routes were announced after being withdrawn (or at start).", []string{"side"}, false},
	{"natgw_bgp_withdrawals_total", "Times the side's routes were withdrawn, by reason (not_ready, drain, shutdown, error).", []string{"side", "reason"}, false},
	{"natgw_bgp_ready", "1 while the node is ready to carry traffic (what decides the announcement).", nil, false},
	{"natgw_bgp_draining", "1 while the node drains or has drained.", nil, false},
}

// optionalDesc returns the descriptor of an optional metric of the table.
func optionalDesc(name string) *prometheus.Desc {
	for _, m := range optionalMetrics {
		if m.Name == name {
			return prometheus.NewDesc(m.Name, m.Help, m.Labels, nil)
		}
	}
	panic("mgmt: metric " + name + " is not in the metrics table")
}

// Metrics returns the metric families natgw's collector exports (without
// the Go runtime and process collectors'), in the collector's order.
// The families exported only when configured follow the others.
func Metrics() []Metric {
	out := make([]Metric, 0, len(metrics)+len(optionalMetrics))
	for _, m := range append(slices.Clone(metrics), optionalMetrics...) {
		m.Labels = slices.Clone(m.Labels)
		out = append(out, m)
	}
	return out
}

// MetricNames returns the names of Metrics.
func MetricNames() []string {
	var names []string
	for _, m := range Metrics() {
		names = append(names, m.Name)
	}
	return names
}

// SpecMetricNames returns the names of the metrics SPEC §7 names.
func SpecMetricNames() []string {
	var names []string
	for _, m := range metrics {
		if m.Spec {
			names = append(names, m.Name)
		}
	}
	return names
}

// DropReasons returns the reason label values natgw_drops_total has: the
// names of nat's drop verdicts.
func DropReasons() []string {
	var out []string
	for v := nat.DropDenied; v < nat.NumVerdicts; v++ {
		out = append(out, v.String())
	}
	return out
}

// ExpireReasons returns the reason label values natgw_flows_expired_total
// has: the names of nat's expiry reasons.
func ExpireReasons() []string {
	var out []string
	for r := nat.ExpireReason(0); r < nat.NumExpireReasons; r++ {
		out = append(out, r.String())
	}
	return out
}

// collector exports the dataplane's counters; see the file comment.
type collector struct {
	s *Server

	packets, bytes, drops                     *prometheus.Desc
	flowsActive, flowsCreated, flowsExpired   *prometheus.Desc
	flowsDraining, flowsDrained               *prometheus.Desc
	portsAllocated, snatFlows, utilMax, exhst *prometheus.Desc
	eta, rejects                              *prometheus.Desc
	handoff, busy, buffers, frags             *prometheus.Desc
	pollGaps, pollGapMax                      *prometheus.Desc
	redirects                                 *prometheus.Desc
	fragmented, fragments                     *prometheus.Desc
	portRx, portTx, portMissed, portLink      *prometheus.Desc
	portMTU                                   *prometheus.Desc
	generation, reloads                       *prometheus.Desc
	// all are every descriptor, in the table's order.
	all []*prometheus.Desc
}

func newCollector(s *Server) *collector {
	c := &collector{s: s}
	byName := make(map[string]*prometheus.Desc, len(metrics))
	for _, m := range metrics {
		d := prometheus.NewDesc(m.Name, m.Help, m.Labels, nil)
		byName[m.Name] = d
		c.all = append(c.all, d)
	}
	desc := func(name string) *prometheus.Desc {
		d, ok := byName[name]
		if !ok {
			panic("mgmt: metric " + name + " is not in the metrics table")
		}
		return d
	}
	c.packets = desc("natgw_packets_total")
	c.bytes = desc("natgw_bytes_total")
	c.drops = desc("natgw_drops_total")
	c.flowsActive = desc("natgw_flows_active")
	c.flowsCreated = desc("natgw_flows_created_total")
	c.flowsExpired = desc("natgw_flows_expired_total")
	c.flowsDraining = desc("natgw_flows_draining")
	c.flowsDrained = desc("natgw_flows_drained_total")
	c.portsAllocated = desc("natgw_snat_ports_allocated")
	c.snatFlows = desc("natgw_snat_flows")
	c.utilMax = desc("natgw_snat_port_utilization_max")
	c.exhst = desc("natgw_snat_port_exhaustion_total")
	c.eta = desc("natgw_snat_exhaustion_eta_seconds")
	c.rejects = desc("natgw_snat_exhaustion_rejects_total")
	c.handoff = desc("natgw_handoff_packets_total")
	c.redirects = desc("natgw_drain_redirects_total")
	c.fragmented = desc("natgw_fragmented_packets_total")
	c.fragments = desc("natgw_fragments_sent_total")
	c.frags = desc("natgw_fragments_total")
	c.busy = desc("natgw_worker_busy_ratio")
	c.buffers = desc("natgw_buffers_in_use")
	c.pollGaps = desc("natgw_worker_poll_gaps_total")
	c.pollGapMax = desc("natgw_worker_poll_gap_max_seconds")
	c.portRx = desc("natgw_port_rx_packets_total")
	c.portTx = desc("natgw_port_tx_packets_total")
	c.portMissed = desc("natgw_port_rx_missed_total")
	c.portMTU = desc("natgw_port_mtu")
	c.portLink = desc("natgw_port_link_up")
	c.generation = desc("natgw_config_generation")
	c.reloads = desc("natgw_config_reloads_total")
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.all {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	pol := s.o.Policy.Load()
	s.history.note(pol)
	if rt := s.o.Runtime; rt != nil {
		busy := s.busyRatios()
		for i, w := range rt.Workers {
			wc := &w.Counters
			id := strconv.Itoa(i)
			for d := range directionNames {
				counter(c.packets, wc.Packets[d].Load(), directionNames[d], id)
				counter(c.bytes, wc.Bytes[d].Load(), directionNames[d], id)
			}
			for v := nat.DropDenied; v < nat.NumVerdicts; v++ {
				counter(c.drops, wc.Verdicts[v].Load(), v.String(), id)
			}
			for p := range protocolNames {
				gauge(c.flowsActive, float64(wc.FlowsActive[p].Load()), protocolNames[p], id)
				counter(c.flowsCreated, wc.FlowsCreated[p].Load(), protocolNames[p], id)
			}
			for r := nat.ExpireReason(0); r < nat.NumExpireReasons; r++ {
				counter(c.flowsExpired, wc.FlowsExpired[r].Load(), r.String(), id)
			}
			gauge(c.flowsDraining, float64(wc.FlowsDraining.Load()), id)
			for o := nat.DrainOutcome(0); o < nat.NumDrainOutcomes; o++ {
				counter(c.flowsDrained, wc.FlowsDrained[o].Load(), o.String(), id)
			}
			counter(c.handoff, wc.HandoffPackets.Load(), id)
			counter(c.redirects, wc.Verdicts[nat.VerdictRedirect].Load(), "redirected", id)
			counter(c.redirects, wc.RedirectNoPeer.Load(), "no_peer", id)
			counter(c.rejects, wc.Rejects.Load(), "sent", id)
			counter(c.rejects, wc.RejectsLimited.Load(), "rate_limited", id)
			counter(c.fragmented, wc.Fragmented.Load(), id)
			counter(c.fragments, wc.Fragments.Load(), id)
			for e, name := range lcore.FragCounterNames {
				counter(c.frags, wc.Frag[e].Load(), name, id)
			}
			gauge(c.busy, busy[i], id)
			for j := range wc.PollGaps {
				counter(c.pollGaps, wc.PollGaps[j].Load(), pollGapNames[j], id)
			}
			gauge(c.pollGapMax, float64(wc.PollGapMax.Load())/1e9, id)
			if n := wc.BuffersInUse.Load(); n >= 0 {
				gauge(c.buffers, float64(n), id)
			}
		}
		if m := rt.Manager; m != nil {
			// ARP is the management core's: its drops carry worker "mgmt".
			counter(c.drops, m.Stats.ARPIgnored.Load(), nat.DropARPIgnored.String(), "mgmt")
		}
	}
	if pol != nil {
		c.collectPools(ch, pol)
	}
	for i, p := range s.o.Ports {
		if p == nil {
			continue
		}
		role := lcore.PortName(uint8(i))
		st := p.Stats()
		counter(c.portRx, st.RxPackets, role)
		counter(c.portTx, st.TxPackets, role)
		counter(c.portMissed, st.RxMissed, role)
		link := 0.0
		if p.LinkUp() {
			link = 1
		}
		gauge(c.portLink, link, role)
		if rt := s.o.Runtime; rt != nil {
			gauge(c.portMTU, float64(rt.Manager.MTU[i].Load()), role)
		}
	}
	if pol != nil {
		gauge(c.generation, float64(pol.Gen))
	}
	var ok, failed uint64
	if s.o.Reloader != nil {
		ok, failed = s.o.Reloader.Results()
	}
	counter(c.reloads, ok, "ok")
	counter(c.reloads, failed, "error")
}

// poolStats are the per-pool figures summed over workers.
type poolStats struct {
	exhausted uint64
	flows     uint64
	utilMax   float64
}

// collectPools exports the natgw_snat_* metrics of the running policy's
// pools and of default SNAT. Worker snapshots taken under an older policy
// generation are mapped to pools by name through the policy history.
func (c *collector) collectPools(ch chan<- prometheus.Metric, pol *nat.Policy) {
	names := poolNames(pol)
	hasDefault := pol.DefaultSNAT() != nil
	stats := make(map[string]*poolStats, len(names))
	for _, n := range names {
		stats[n] = &poolStats{}
	}
	if rt := c.s.o.Runtime; rt != nil {
		for _, w := range rt.Workers {
			if e := w.Counters.Exhausted.Load(); e != nil {
				gn := c.s.history.names(e.Gen)
				for j := range e.Counts {
					if j < len(gn) && stats[gn[j]] != nil {
						stats[gn[j]].exhausted += e.Counts[j].Load()
					}
				}
			}
			if u := w.Utilization(); u != nil {
				gn := c.s.history.names(u.Gen)
				for j := range u.Max {
					if j < len(gn) && stats[gn[j]] != nil {
						st := stats[gn[j]]
						st.flows += u.Flows[j]
						st.utilMax = max(st.utilMax, u.Max[j])
					}
				}
			}
		}
	}
	eta, hotUtil := c.s.poolHotspots(pol)
	for i, n := range names {
		if i == len(pol.Pools) && !hasDefault {
			break
		}
		var allocated float64
		if i < len(pol.Pools) {
			pi := &pol.Pools[i]
			allocated = float64(len(pi.Members) * pi.PortsPerMember)
		} else if d := pol.DefaultSNAT(); d != nil {
			allocated = float64(d.Stats().Assigned * pol.DefaultSNATPortsPerMember())
		}
		st := stats[n]
		ch <- prometheus.MustNewConstMetric(c.portsAllocated, prometheus.GaugeValue, allocated, n)
		ch <- prometheus.MustNewConstMetric(c.snatFlows, prometheus.GaugeValue, float64(st.flows), n)
		// The hot sets are current where the scan is up to a pass old.
		ch <- prometheus.MustNewConstMetric(c.utilMax, prometheus.GaugeValue, max(st.utilMax, hotUtil[n]), n)
		e, ok := eta[n]
		if !ok {
			e = math.Inf(1)
		}
		ch <- prometheus.MustNewConstMetric(c.eta, prometheus.GaugeValue, e, n)
		ch <- prometheus.MustNewConstMetric(c.exhst, prometheus.CounterValue, float64(st.exhausted), n)
	}
}

// poolNames returns the pool labels of a policy in scope order: its pools,
// then default SNAT (the layout of nat.Stats.Exhausted).
func poolNames(p *nat.Policy) []string {
	names := make([]string, 0, len(p.Pools)+1)
	for i := range p.Pools {
		names = append(names, p.Pools[i].Name)
	}
	return append(names, nat.DefaultSNATPoolName)
}

// policyHistory remembers the pool names of recent policy generations, so
// counters published by a worker still on an older generation are labelled
// right.
type policyHistory struct {
	mu    sync.Mutex
	byGen map[uint32][]string
}

// historyLen is the number of generations remembered.
const historyLen = 16

// note records p's pool names.
func (h *policyHistory) note(p *nat.Policy) {
	if p == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byGen == nil {
		h.byGen = map[uint32][]string{}
	}
	if _, ok := h.byGen[p.Gen]; ok {
		return
	}
	h.byGen[p.Gen] = poolNames(p)
	for g := range h.byGen {
		if p.Gen-g >= historyLen && g != p.Gen {
			delete(h.byGen, g)
		}
	}
}

// names returns the pool names of generation gen, or nil if forgotten.
func (h *policyHistory) names(gen uint32) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byGen[gen]
}

// newRegistry returns natgw's own registry with the collector and the Go
// runtime and process collectors.
func newRegistry(s *Server) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if s.o.History != nil {
		reg.MustRegister(newHistoryCollector(s.o.History))
	}
	return reg
}
