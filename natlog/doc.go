// Package natlog owns NAT event logging: the events natgw reports about
// the public addresses and ports it hands out (port blocks assigned and
// released, instance mappings, sessions, exhaustion), the record formats
// collectors read (IPFIX with the NAT elements of RFC 8158, syslog of RFC
// 5424) and the exporter that sends them.
//
// Events are produced on the management core (block layout at start and
// reload, default-SNAT reclamation) and by workers (default-SNAT
// assignment, sessions), and are encoded and sent on the management core
// over ordinary kernel sockets, so collectors are reached over the host's
// management network with either driver.
//
// # What it owns
//
//   - Tracker (blocks.go): the source of block events, on its own
//     goroutine, delivering to BlockSinks (Fanout for several).
//   - Record (record.go): one NAT event as the exporters encode it, with
//     natEvent values and flowEndReason of the IANA registries.
//   - The encodings: ipfix.go (RFC 7011 messages, RFC 8158 elements),
//     syslog.go (RFC 5424, RFC 6587 octet counting).
//   - Exporter and Output (exporter.go, output.go): the bounded queue, the
//     sending goroutine, reconfiguration on reload, the counters and
//     their Prometheus collector.
//
// Nothing here runs on a worker: workers reach natlog through the
// lcore.SessionRing the management core drains, and through the dates the
// default-SNAT allocator keeps.
package natlog
