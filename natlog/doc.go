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
package natlog
