package nat

// Verdict is what the packet path decided for one packet: forward it
// (translated), hand it to natgw itself, or drop it for a counted reason.
type Verdict uint8

// Verdicts. The drop reasons are the `reason` label values of
// natgw_drops_total (SPEC §7).
const (
	// VerdictForward: the packet was translated in place; send it out of
	// the other port.
	VerdictForward Verdict = iota
	// VerdictLocal: the packet is for natgw itself (echo request to one of
	// its addresses); the worker answers it.
	VerdictLocal
	// VerdictHairpin: the packet was translated outbound and is for a
	// public address of natgw (a hairpin flow, RFC 4787 REQ-9): the
	// runtime translates it inbound, as if it came from the outside, and
	// sends it to the inside host that mapping belongs to.
	VerdictHairpin
	// VerdictHandoff: the packet matched no flow here and belongs to an
	// endpoint-independent mapping another worker owns (eim.go,
	// HandoffOwner); it is untouched, and the runtime hands it to that
	// worker.
	VerdictHandoff
	// VerdictRedirect: the packet, from the inside, matched no flow while
	// the translator redirects new flows (SetRedirect: the node is
	// draining, issue 17): it was not translated, its IP header is
	// untouched; the runtime sends it to a cluster peer, which translates
	// it as its own new flow.
	VerdictRedirect
	DropDenied
	DropNoScenario
	DropPortExhausted
	DropNoFlow
	DropMalformed
	DropUnsupported
	DropTTLExceeded
	DropNoNeighbor
	DropFragment
	DropFlowTableFull
	DropHandoffFull
	DropTxFull
	// DropNotForUs: a frame whose destination MAC is not the receiving
	// port's own (another host's unicast, multicast, or a broadcast other
	// than ARP); both drivers receive promiscuously.
	DropNotForUs
	// DropMartian: an outbound packet whose destination must never be
	// translated to the internet (broadcast, multicast, loopback,
	// 0.0.0.0/8, link-local, 240.0.0.0/4, the inside network), or an
	// inbound packet from such a source that would open an instance flow.
	DropMartian
	// DropARPIgnored: an ARP frame not addressed to natgw (a request for
	// another host's address, a reply to no request of natgw's, a
	// gratuitous ARP for another address than the gateway's) that natgw
	// did not learn from. The management core counts it (worker "mgmt").
	DropARPIgnored
	// DropTCPInvalidRST: a TCP RST whose sequence number is outside the
	// receiver's window, or that answers a SYN without acknowledging it
	// (a blind reset, RFC 5961 §3); see tcpseq.go.
	DropTCPInvalidRST
	// DropHostLimit: a new flow whose opener (an inside host, or an
	// outside host through an instance's inbound rules) already holds
	// limits.host_flow_percent of the worker's flow table.
	DropHostLimit
	// DropInboundLimit: a new flow from the outside while flows opened
	// from the outside hold limits.inbound_flow_percent of the worker's
	// flow table.
	DropInboundLimit
	// DropSpoofed: a new outbound flow whose source failed the inside
	// source check (inside.source_check): not on the inside link nor in
	// a routed prefix, from another MAC than ARP confirmed for it (or
	// for its router), or a host ARP never confirmed asking for a new
	// default-SNAT block.
	DropSpoofed
	// NumVerdicts sizes arrays indexed by Verdict.
	NumVerdicts
)

var verdictNames = [NumVerdicts]string{
	VerdictForward:    "forward",
	VerdictLocal:      "local",
	VerdictHairpin:    "hairpin",
	VerdictHandoff:    "handoff",
	VerdictRedirect:   "redirect",
	DropDenied:        "denied",
	DropNoScenario:    "no_scenario",
	DropPortExhausted: "port_exhausted",
	DropNoFlow:        "no_flow",
	DropMalformed:     "malformed",
	DropUnsupported:   "unsupported",
	DropTTLExceeded:   "ttl_exceeded",
	DropNoNeighbor:    "no_neighbor",
	DropFragment:      "fragment",
	DropFlowTableFull: "flow_table_full",
	DropHandoffFull:   "handoff_full",
	DropTxFull:        "tx_full",
	DropNotForUs:      "not_for_us",
	DropMartian:       "martian",
	DropARPIgnored:    "arp_ignored",
	DropTCPInvalidRST: "tcp_invalid_rst",
	DropHostLimit:     "host_limit",
	DropInboundLimit:  "inbound_limit",
	DropSpoofed:       "spoofed",
}

// IsDrop reports whether the verdict drops the packet.
func (v Verdict) IsDrop() bool { return v >= DropDenied }

// String returns the verdict's name; for drops, the metric reason label.
func (v Verdict) String() string {
	if v < NumVerdicts {
		return verdictNames[v]
	}
	return "invalid"
}
