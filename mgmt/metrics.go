package mgmt

import (
	"math"
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

// namespace prefixes every natgw metric.
const namespace = "natgw"

// protocolNames label the per-protocol counters, in nat.ProtoIndex order.
var protocolNames = [3]string{"tcp", "udp", "icmp"}

// directionNames label the per-direction counters (nat.DirOut, nat.DirIn).
var directionNames = [2]string{"out", "in"}

// MetricNames lists every natgw metric the collector exports (SPEC §7),
// without the Go runtime and process collectors' metrics.
var MetricNames = []string{
	"natgw_packets_total", "natgw_bytes_total", "natgw_drops_total",
	"natgw_flows_active", "natgw_flows_created_total", "natgw_flows_expired_total",
	"natgw_snat_ports_allocated", "natgw_snat_flows", "natgw_snat_port_utilization_max",
	"natgw_snat_port_exhaustion_total",
	"natgw_handoff_packets_total", "natgw_worker_busy_ratio", "natgw_fragments_total",
	"natgw_port_rx_packets_total", "natgw_port_tx_packets_total", "natgw_port_rx_missed_total",
	"natgw_port_link_up",
	"natgw_config_generation", "natgw_config_reloads_total",
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

// collector exports the dataplane's counters; see the file comment.
type collector struct {
	s *Server

	packets, bytes, drops                     *prometheus.Desc
	flowsActive, flowsCreated, flowsExpired   *prometheus.Desc
	portsAllocated, snatFlows, utilMax, exhst *prometheus.Desc
	eta, rejects                              *prometheus.Desc
	handoff, busy, buffers, frags             *prometheus.Desc
	fragmented, fragments                     *prometheus.Desc
	portRx, portTx, portMissed, portLink      *prometheus.Desc
	portMTU                                   *prometheus.Desc
	generation, reloads                       *prometheus.Desc
}

func newCollector(s *Server) *collector {
	return &collector{
		s:              s,
		packets:        desc("packets_total", "Packets translated, by direction (out: private to public) and worker.", "direction", "worker"),
		bytes:          desc("bytes_total", "IPv4 bytes translated, by direction and worker.", "direction", "worker"),
		drops:          desc("drops_total", "Packets dropped, by reason and worker.", "reason", "worker"),
		flowsActive:    desc("flows_active", "Flows in the flow tables, by protocol and worker.", "protocol", "worker"),
		flowsCreated:   desc("flows_created_total", "Flows created, by protocol and worker.", "protocol", "worker"),
		flowsExpired:   desc("flows_expired_total", "Flows released, by reason (idle, closed, reset, reclaimed) and worker.", "reason", "worker"),
		portsAllocated: desc("snat_ports_allocated", "SNAT ports preallocated to members (default SNAT: to the addresses holding a block), by pool.", "pool"),
		snatFlows:      desc("snat_flows", "Flows using a pool's SNAT ports, by pool (from the workers' last utilisation scan, at most a few seconds old).", "pool"),
		utilMax:        desc("snat_port_utilization_max", "Highest ports used / ports allocated ratio over any member and destination, by pool (the higher of the workers' last utilisation scan and their current hot sets).", "pool"),
		eta:            desc("snat_exhaustion_eta_seconds", "Smallest estimated time until a member of the pool has no free port towards a destination, from the hot sets' growth over the last 30 s; +Inf when no tracked pair of the pool is growing (see GET /v1/hotspots).", "pool"),
		rejects:        desc("snat_exhaustion_rejects_total", "New flows refused for lack of a port in pools with on_exhaustion = \"reject\", by result (sent: handed to the management core to be answered with a RST or ICMP administratively prohibited; rate_limited: left unanswered by the worker's limit) and worker.", "result", "worker"),
		exhst:          desc("snat_port_exhaustion_total", "New flows dropped because the member had no free port towards the destination, by pool.", "pool"),
		handoff:        desc("handoff_packets_total", "Packets a worker handed over to the worker that owns them.", "worker"),
		fragmented:     desc("fragmented_packets_total", "Packets without DF larger than the egress MTU that a worker cut into fragments after translation (RFC 4787 REQ-13a).", "worker"),
		fragments:      desc("fragments_sent_total", "Fragments a worker sent for the packets it cut.", "worker"),
		frags:          desc("fragments_total", "Fragment table events, by event (held: a later fragment kept until its first arrives; released; timed_out and refused: dropped, also counted as fragment drops) and worker.", "event", "worker"),
		busy:           desc("worker_busy_ratio", "Share of a worker's polls that found work, over the last second.", "worker"),
		buffers:        desc("buffers_in_use", "Packet buffers of a worker's queues out of their pools between polls (drivers that count them: AF_PACKET); 0 when idle.", "worker"),
		portRx:         desc("port_rx_packets_total", "Packets received by the port, as the driver counts them.", "port"),
		portTx:         desc("port_tx_packets_total", "Packets sent by the port, as the driver counts them.", "port"),
		portMissed:     desc("port_rx_missed_total", "Packets the NIC dropped for lack of room in the RX queues.", "port"),
		portMTU:        desc("port_mtu", "The port's MTU as natgw last read it from the link (polled every second): the egress MTU packets leaving by the port are fragmented for, or answered with ICMP fragmentation needed.", "port"),
		portLink:       desc("port_link_up", "1 when the port's link is up.", "port"),
		generation:     desc("config_generation", "Generation of the running configuration (1 at start, +1 per successful reload)."),
		reloads:        desc("config_reloads_total", "Configuration reloads, by result (ok, error).", "result"),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.bytes, c.drops, c.flowsActive, c.flowsCreated,
		c.flowsExpired, c.portsAllocated, c.snatFlows, c.utilMax, c.exhst, c.eta, c.rejects, c.handoff, c.busy, c.buffers,
		c.fragmented, c.fragments,
		c.frags, c.portRx, c.portTx, c.portMissed, c.portLink, c.portMTU, c.generation, c.reloads} {
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
			counter(c.handoff, wc.HandoffPackets.Load(), id)
			counter(c.rejects, wc.Rejects.Load(), "sent", id)
			counter(c.rejects, wc.RejectsLimited.Load(), "rate_limited", id)
			counter(c.fragmented, wc.Fragmented.Load(), id)
			counter(c.fragments, wc.Fragments.Load(), id)
			for e, name := range lcore.FragCounterNames {
				counter(c.frags, wc.Frag[e].Load(), name, id)
			}
			gauge(c.busy, busy[i], id)
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
			if p := w.Counters.Exhausted.Load(); p != nil {
				gn := c.s.history.names(uint32(w.Counters.ExhaustedGen.Load()))
				for j, v := range *p {
					if j < len(gn) && stats[gn[j]] != nil {
						stats[gn[j]].exhausted += v
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
	return reg
}
