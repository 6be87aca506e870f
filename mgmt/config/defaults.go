package config

import "time"

// Default values, applied by ApplyDefaults to keys the file leaves out (or
// sets to their zero value).
const (
	// DefaultDriver is the dataplane driver.
	DefaultDriver = "dpdk"
	// DefaultWorkers is the number of worker cores.
	DefaultWorkers = 1
	// DefaultFlowCapacity is the flow table size, split over the workers.
	DefaultFlowCapacity = 1_000_000
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
	// DefaultMgmtListen is the management HTTP endpoint's address.
	DefaultMgmtListen = "127.0.0.1:9650"
)

// ApplyDefaults fills in every key the file left out:
//
//	dataplane.driver              "dpdk"
//	dataplane.workers             1
//	dataplane.flow_capacity       1000000
//	timeouts.tcp_established      4m
//	timeouts.tcp_transitory       30s
//	timeouts.tcp_closing          10s
//	timeouts.udp                  4m
//	timeouts.icmp                 60s
//	default_snat.ports_per_member 1024 (only when [default_snat] is present)
//	mgmt.listen                   "127.0.0.1:9650"
//
// A zero number or empty string counts as left out; a timeout counts as left
// out when it is zero and Duration.Set is false, so an explicit "0s" stays
// and is refused by Validate, and Set keeps saying whether the file had the
// key. Values that are present are never changed. ApplyDefaults is
// idempotent.
func (c *Config) ApplyDefaults() {
	if c.Dataplane.Driver == "" {
		c.Dataplane.Driver = DefaultDriver
	}
	if c.Dataplane.Workers == 0 {
		c.Dataplane.Workers = DefaultWorkers
	}
	if c.Dataplane.FlowCapacity == 0 {
		c.Dataplane.FlowCapacity = DefaultFlowCapacity
	}
	defaultDuration(&c.Timeouts.TCPEstablished, DefaultTCPEstablished)
	defaultDuration(&c.Timeouts.TCPTransitory, DefaultTCPTransitory)
	defaultDuration(&c.Timeouts.TCPClosing, DefaultTCPClosing)
	defaultDuration(&c.Timeouts.UDP, DefaultUDP)
	defaultDuration(&c.Timeouts.ICMP, DefaultICMP)
	if c.DefaultSNAT != nil && c.DefaultSNAT.PortsPerMember == 0 {
		c.DefaultSNAT.PortsPerMember = DefaultSNATPortsPerMember
	}
	if c.Mgmt.Listen == "" {
		c.Mgmt.Listen = DefaultMgmtListen
	}
}

// defaultDuration sets d to v unless the file or the caller set it.
func defaultDuration(d *Duration, v time.Duration) {
	if !d.Set && d.Duration == 0 {
		d.Duration = v
	}
}
