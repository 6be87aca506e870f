// Package mgmt is natgw's management plane: it applies configuration
// (parse, validate, compile, publish), drives idle reclamation on the
// workers, aggregates their counters into Prometheus metrics and serves the
// HTTP API of SPEC §6. Everything here runs on the management core; workers
// are never locked or written to from here.
package mgmt
