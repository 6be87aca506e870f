// Package nat is natgw's translation core: packet header views and writers,
// checksums, the compiled outbound policy, the per-worker flow table with its
// timer wheel and TCP state tracking, and the translation of packets
// outbound (private to public) and inbound (public to private), ICMP
// included (SPEC [S1]-[S8]).
//
// Which core runs what:
//   - Compile (policy.go) runs on the management core. It takes a
//     PolicySpec (policyspec.go), a plain description built by mgmt from
//     the configuration file, which nat never sees. A *Policy is
//     immutable once published; workers receive it through an atomic
//     pointer (PolicyHolder) and pick it up between bursts. Before it
//     publishes a policy, PolicyHolder.Store (management core) prepares
//     what each attached translator's switch to it needs, so the switch
//     allocates nothing (prepare.go).
//   - Everything else runs on exactly one worker lcore: a FlowTable and a
//     Translator are owned by one worker and are not safe for concurrent
//     use. The flow table (flowtable*.go), its timer wheel (wheel.go) and
//     TCP tracking (tcpstate.go) run on the worker that owns the table;
//     Expire is called by that worker up to the tick the management core
//     publishes. Nothing here locks or allocates per packet; the packet
//     path returns a Verdict, never an error.
//
// Header views follow gVisor's netstack: a header is a typed byte slice
// (IPv4, TCP, UDP, ICMP, Ethernet, ARP), validated once by its Parse
// function and then accessed without further checks. Checksums are updated
// incrementally (RFC 1624).
package nat
