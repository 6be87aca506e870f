package main

import (
	"log/slog"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
	"github.com/natgw/natgw/natlog"
)

// This file wires NAT event logging (issue 16): the block-event source
// (natlog.Tracker) and the sinks it feeds, on the management side.

// natLog is the appliance's NAT event logging.
type natLog struct {
	tracker *natlog.Tracker
	sinks   natlog.Fanout
}

// startNatLog starts the block-event source for the first policy p,
// delivering to the configured sinks.
func startNatLog(c *config.Config, p *nat.Policy, log *slog.Logger) (*natLog, error) {
	n := &natLog{}
	// The sinks, in delivery order. Each must return quickly: they run
	// on the tracker's goroutine.
	n.tracker = natlog.NewTracker(natlog.TrackerOptions{Sink: n.sinks})
	n.tracker.Policy(p)
	n.tracker.Start()
	return n, nil
}

// apply is called after a reload published p.
func (n *natLog) apply(p *nat.Policy) {
	if n != nil {
		n.tracker.Policy(p)
	}
}

// close releases every block (natgw translates no more) and stops.
func (n *natLog) close() {
	if n != nil {
		n.tracker.Close()
	}
}
