package config

import (
	"slices"
	"time"
)

// Default values, applied by Parse to keys the file leaves out (and by
// ApplyDefaults to zero values of a Config built in code).
const (
	// DefaultDriver is the dataplane driver.
	DefaultDriver = "dpdk"
	// DefaultWorkers is the number of worker cores.
	DefaultWorkers = 1
	// DefaultFlowCapacity is the flow table size, split over the workers.
	DefaultFlowCapacity = 1_000_000
	// DefaultDescriptors is dataplane.rx_descriptors and tx_descriptors
	// when left out: 1024 frames per ring.
	DefaultDescriptors = 1024
	// DefaultTCPEstablished is the idle timeout of an established TCP flow [S5].
	DefaultTCPEstablished = 4 * time.Minute
	// DefaultTCPTransitory is the idle timeout of a half-open TCP flow [S5].
	DefaultTCPTransitory = 30 * time.Second
	// DefaultTCPClosing is how long a closed or reset TCP flow lingers [S5].
	DefaultTCPClosing = 10 * time.Second
	// DefaultUDP is the idle timeout of a UDP flow [S5].
	DefaultUDP = 4 * time.Minute
	// DefaultICMP is the idle timeout of an ICMP flow [S5].
	DefaultICMP = 60 * time.Second
	// DefaultSNATPortsPerMember is the block size of default SNAT when the
	// [default_snat] section is present without ports_per_member.
	DefaultSNATPortsPerMember = 1024
	// DefaultSNATReclaimIdle is default_snat.reclaim_idle: a block with
	// no flows for 2 minutes goes back to the free list.
	DefaultSNATReclaimIdle = 2 * time.Minute
	// MinSNATReclaimIdle and MaxSNATReclaimIdle bound
	// default_snat.reclaim_idle.
	MinSNATReclaimIdle = time.Second
	MaxSNATReclaimIdle = 24 * time.Hour
	// DefaultMgmtListen is the management HTTP endpoint's address.
	DefaultMgmtListen = "127.0.0.1:9650"
	// DefaultHostFlowPercent is limits.host_flow_percent: one host may
	// have opened at most a quarter of a worker's flow table.
	DefaultHostFlowPercent = 25
	// DefaultInboundFlowPercent is limits.inbound_flow_percent: flows
	// opened from the outside may take at most half of a worker's table.
	DefaultInboundFlowPercent = 50
	// DefaultHistoryRetention is nat_log.retention: ended holdings are
	// kept 180 days.
	DefaultHistoryRetention = 180 * 24 * time.Hour
	// DefaultHistoryMaxSize is nat_log.history_max_size: 1 GiB.
	DefaultHistoryMaxSize ByteSize = 1 << 30
)

// ApplyDefaults fills in every default of a Config built in code:
//
//	dataplane.driver              "dpdk"
//	dataplane.workers             1
//	dataplane.flow_capacity       1000000
//	timeouts.tcp_established      4m
//	timeouts.tcp_transitory       30s
//	timeouts.tcp_closing          10s
//	timeouts.udp                  4m
//	timeouts.icmp                 60s
//	default_snat.ports_per_member 1024 (only when DefaultSNAT is not nil)
//	default_snat.reclaim_idle     2m   (likewise)
//	mgmt.listen                   "127.0.0.1:9650"
//	limits.host_flow_percent      25
//	limits.inbound_flow_percent   50
//	nat_log.retention             180d
//	nat_log.history_max_size      1GiB
//	reload.reclaim                "immediate"
//	reload.reclaim_deadline       5m
//
// Here a zero number or empty string counts as left out; a timeout counts
// as left out when it is zero and Duration.Set is false, so an explicit
// "0s" stays and is refused by Validate. Values that are present are never
// changed. ApplyDefaults is idempotent.
//
// Parse doesn't go by zero values: it fills exactly the keys the file
// leaves out, so that "workers = 0" in a file is kept and refused by
// Validate rather than silently replaced.
func (c *Config) ApplyDefaults() {
	c.applyDefaults(func(_ string, zero bool) bool { return zero })
}

// applyDefaults sets each default whose key ("dataplane.workers") leftOut
// reports as left out; zero tells leftOut whether the value is now the zero
// value. Timeouts are filled when they are zero and not Set, whatever
// leftOut says: Set is exactly "the file had a valid duration there".
func (c *Config) applyDefaults(leftOut func(key string, zero bool) bool) {
	d := &c.Dataplane
	if leftOut("dataplane.driver", d.Driver == "") {
		d.Driver = DefaultDriver
	}
	if leftOut("dataplane.workers", d.Workers == 0) {
		d.Workers = DefaultWorkers
	}
	if leftOut("dataplane.flow_capacity", d.FlowCapacity == 0) {
		d.FlowCapacity = DefaultFlowCapacity
	}
	defaultDuration(&c.Timeouts.TCPEstablished, DefaultTCPEstablished)
	defaultDuration(&c.Timeouts.TCPTransitory, DefaultTCPTransitory)
	defaultDuration(&c.Timeouts.TCPClosing, DefaultTCPClosing)
	defaultDuration(&c.Timeouts.UDP, DefaultUDP)
	defaultDuration(&c.Timeouts.ICMP, DefaultICMP)
	if s := c.DefaultSNAT; s != nil {
		if leftOut("default_snat.ports_per_member", s.PortsPerMember == 0) {
			s.PortsPerMember = DefaultSNATPortsPerMember
		}
		defaultDuration(&s.ReclaimIdle, DefaultSNATReclaimIdle)
	}
	if leftOut("mgmt.listen", c.Mgmt.Listen == "") {
		c.Mgmt.Listen = DefaultMgmtListen
	}
	if leftOut("limits.host_flow_percent", c.Limits.HostFlowPercent == 0) {
		c.Limits.HostFlowPercent = DefaultHostFlowPercent
	}
	if leftOut("limits.inbound_flow_percent", c.Limits.InboundFlowPercent == 0) {
		c.Limits.InboundFlowPercent = DefaultInboundFlowPercent
	}
	if leftOut("nat_log.events", c.NatLog.Events == nil) {
		c.NatLog.Events = slices.Clone(DefaultNatLogEvents)
	}
	defaultDuration(&c.NatLog.Retention, DefaultHistoryRetention)
	if leftOut("nat_log.history_max_size", c.NatLog.HistoryMaxSize == 0) {
		c.NatLog.HistoryMaxSize = DefaultHistoryMaxSize
	}
	c.BGP.applyDefaults()
	c.Reload.applyDefaults(leftOut)
}

// defaultDuration sets d to v unless the file or the caller set it.
func defaultDuration(d *Duration, v time.Duration) {
	if !d.Set && d.Duration == 0 {
		d.Duration = v
	}
}
