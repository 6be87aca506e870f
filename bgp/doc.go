// Package bgp announces a natgw node to its routers, so that several
// nodes run behind ECMP (issue 17): towards the inside routers a default
// route (or configured prefixes) with the node's inside address as next
// hop, so they spread outbound flows over the nodes; towards the outside
// routers only the node's own public addresses (frontends, instances) as
// /32s with its outside address as next hop, so return traffic reaches the
// node that owns its mapping. natgw imports nothing.
//
// The package owns two things:
//
//   - Speaker, natgw's own small interface to a BGP implementation
//     (announce a side's routes, withdraw them, report peer states), and
//     GoBGP, its implementation with GoBGP as a library. Sessions run over
//     the host's kernel sockets (the management network), so they work
//     with either dataplane driver. No other package imports GoBGP.
//   - Announcer, which lets the node's health decide what is announced:
//     routes go out only while the node is ready (ports up, gateway
//     resolved, workers polling, gratuitous ARP sent) and after a
//     hold-down since the last withdrawal; they are withdrawn when that
//     stops being true, and a drain withdraws the inside routes first,
//     waits for the node's flows to end or a deadline, then withdraws the
//     outside routes. A crash closes the sessions, so the routers drop the
//     routes by themselves.
//
// Everything here runs on the management side, on its own goroutines; the
// packet path never calls it.
package bgp
