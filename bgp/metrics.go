package bgp

import "github.com/prometheus/client_golang/prometheus"

// MetricNames lists the metrics of Collector.
var MetricNames = []string{
	"natgw_bgp_peer_established", "natgw_bgp_peer_flaps_total", "natgw_bgp_routes_announced",
	"natgw_bgp_announcements_total", "natgw_bgp_withdrawals_total", "natgw_bgp_ready", "natgw_bgp_draining",
}

// collector reads the announcer's state at scrape time. Labels are the
// side, the peer's configured name and a fixed reason: never an address.
type collector struct {
	a                                 *Announcer
	established, flaps, routes        *prometheus.Desc
	announcements, withdrawals, ready *prometheus.Desc
	draining                          *prometheus.Desc
}

// Collector returns a Prometheus collector of the announcer's peers,
// routes, announcements and withdrawals.
func (a *Announcer) Collector() prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("natgw_bgp_"+name, help, labels, nil)
	}
	return &collector{
		a:             a,
		established:   d("peer_established", "1 while the BGP session with the peer is established.", "side", "peer"),
		flaps:         d("peer_flaps_total", "Times the BGP session with the peer went down.", "side", "peer"),
		routes:        d("routes_announced", "Routes announced to the side's peers.", "side"),
		announcements: d("announcements_total", "Times the side's routes were announced after being withdrawn (or at start).", "side"),
		withdrawals:   d("withdrawals_total", "Times the side's routes were withdrawn, by reason (not_ready, drain, shutdown, error).", "side", "reason"),
		ready:         d("ready", "1 while the node is ready to carry traffic (what decides the announcement)."),
		draining:      d("draining", "1 while the node drains or has drained."),
	}
}

// Describe sends the descriptors.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.established, c.flaps, c.routes, c.announcements, c.withdrawals, c.ready, c.draining} {
		ch <- d
	}
}

// Collect sends the current values.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.Status()
	for _, p := range st.Peers {
		up := 0.0
		if p.Established {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.established, prometheus.GaugeValue, up, p.Side, p.Name)
		ch <- prometheus.MustNewConstMetric(c.flaps, prometheus.CounterValue, float64(p.Flaps), p.Side, p.Name)
	}
	c.a.mu.Lock()
	defer c.a.mu.Unlock()
	for side := range NumSides {
		ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(len(c.a.announced[side])), side.String())
		ch <- prometheus.MustNewConstMetric(c.announcements, prometheus.CounterValue, float64(c.a.announcements[side]), side.String())
		for _, reason := range []string{ReasonNotReady, ReasonDrain, ReasonShutdown, ReasonError} {
			ch <- prometheus.MustNewConstMetric(c.withdrawals, prometheus.CounterValue,
				float64(c.a.withdrawals[withdrawKey{side, reason}]), side.String(), reason)
		}
	}
	ready, draining := 0.0, 0.0
	if c.a.ready {
		ready = 1
	}
	if c.a.drain != drainNone {
		draining = 1
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, ready)
	ch <- prometheus.MustNewConstMetric(c.draining, prometheus.GaugeValue, draining)
}
