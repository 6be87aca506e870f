// Package mgmt is natgw's management plane: it applies configuration
// (parse, validate, compile, publish), drives idle reclamation on the
// workers, aggregates their counters into Prometheus metrics and serves the
// HTTP API of SPEC §6. Everything here runs on the management core; workers
// are never locked or written to from here.
//
// # What it owns
//
//   - Server (server.go): the HTTP endpoint on mgmt.listen with its
//     timeouts, body limit and bearer token, and the maintenance loop that
//     runs once a second: busy-ratio sampling and, every ReclaimInterval
//     (or default_snat.reclaim_idle when shorter), default-SNAT block
//     reclamation (portalloc.DefaultSNAT.Reclaim, which only this loop
//     calls).
//   - The handlers (handlers.go): /healthz, /readyz, /v1/status,
//     /v1/mappings/{ip}, /v1/flows, /v1/config/reload, and JSON errors for
//     everything else. Flow and mapping answers come from the workers'
//     query slots (lcore/query.go): a handler never reads a flow table.
//   - The metrics (metrics.go): natgw's own prometheus.Registry with one
//     collector that reads the workers' published atomics at scrape time
//     (MustNewConstMetric), plus the Go runtime and process collectors.
//   - Reloader (reload.go): re-reads the configuration file for SIGHUP and
//     the API alike, serialised, all or nothing.
//   - CompilePolicy (policy.go): the one path from a config.Config to a
//     nat.Policy, for start-up and reloads alike: PolicySpec converts the
//     configuration into nat's plain description, nat.Compile compiles it.
//
// # Threading
//
// HTTP handlers run on net/http's goroutines; they read atomics, the
// immutable policy, and ask workers through lcore.Worker.Query with a
// deadline. Reloads hold the Reloader's mutex. The maintenance loop is one
// goroutine.
package mgmt
