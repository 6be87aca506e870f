package config

import (
	"net"
	"slices"
	"strings"
)

// NatLog is the [nat_log] section: NAT event logging and the attribution
// history (issue 16). Events
// are exported when at least one collector is set; a reload changes the
// collectors and the events.
type NatLog struct {
	// IPFIX are IPFIX collectors, "host:port" each, reached over UDP.
	IPFIX []string `toml:"ipfix,omitempty"`
	// Syslog is a syslog collector, "udp://host:port" or
	// "tcp://host:port" (RFC 5424 messages; octet-counted over TCP).
	Syslog string `toml:"syslog,omitempty"`
	// Events are the kinds of events exported: "blocks" (port blocks
	// and instance mappings assigned and released; the default),
	// "sessions" (every flow created and deleted) and "exhaustion"
	// (ports exhausted, flow table full).
	Events []string `toml:"events,omitempty"`
	// History is the path of the attribution history's store (a bbolt
	// file, created if missing); empty: no history is kept. Changing it
	// needs a restart.
	History string `toml:"history,omitempty"`
	// Retention is how long the history keeps an ended holding
	// ("180d", "720h"); a reload changes it.
	Retention Duration `toml:"retention,omitempty"`
	// HistoryMaxSize bounds the history's data in bytes ("1GiB", "500MB",
	// or a number of bytes); past it the holdings that ended first are
	// deleted. A reload changes it.
	HistoryMaxSize ByteSize `toml:"history_max_size,omitzero"`
}

// NatLogEvents are the values nat_log.events accepts.
var NatLogEvents = []string{"blocks", "sessions", "exhaustion"}

// DefaultNatLogEvents is nat_log.events when the file leaves it out.
var DefaultNatLogEvents = []string{"blocks"}

// Has reports whether events lists the event kind name.
func (n *NatLog) Has(name string) bool { return slices.Contains(n.Events, name) }

// Exports reports whether events of kind name are exported: listed in
// events, with a collector to send them to.
func (n *NatLog) Exports(name string) bool {
	return (len(n.IPFIX) != 0 || n.Syslog != "") && n.Has(name)
}

// natLog checks [nat_log]: collector addresses and event names.
func (v *validator) natLog() {
	n := &v.c.NatLog
	seen := map[string]bool{}
	for i, a := range n.IPFIX {
		key := index("nat_log.ipfix", i)
		if msg := collectorAddr(a); msg != "" {
			v.addf(key, "%q: %s", a, msg)
		} else if seen[a] {
			v.addf(key, "%q is listed twice", a)
		}
		seen[a] = true
	}
	if n.Syslog != "" {
		scheme, addr, ok := strings.Cut(n.Syslog, "://")
		switch {
		case !ok || (scheme != "udp" && scheme != "tcp"):
			v.addf("nat_log.syslog", "%q: want udp://host:port or tcp://host:port", n.Syslog)
		case collectorAddr(addr) != "":
			v.addf("nat_log.syslog", "%q: %s", n.Syslog, collectorAddr(addr))
		}
	}
	if len(n.Events) == 0 {
		v.addf("nat_log.events", "empty: list at least one of %q (or leave the key out for %q)", NatLogEvents, DefaultNatLogEvents)
	}
	for i, e := range n.Events {
		key := index("nat_log.events", i)
		switch {
		case !slices.Contains(NatLogEvents, e):
			v.addf(key, "%q: must be one of %q", e, NatLogEvents)
		case slices.Index(n.Events, e) != i:
			v.addf(key, "%q is listed twice", e)
		}
	}
	v.natLogHistory()
}

// collectorAddr checks "host:port" with a host (name or address) and a
// numeric port; it returns what is wrong, or "".
func collectorAddr(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "not host:port, like \"192.0.2.10:4739\""
	}
	if host == "" {
		return "no host"
	}
	if strings.ContainsAny(host, " /") {
		return "the host is not a name or an address"
	}
	if _, err := parsePort(port); err != nil {
		return "port " + err.Error()
	}
	return ""
}
