package main

import (
	"fmt"
	"log/slog"

	"github.com/natgw/natgw/attrib"
	"github.com/natgw/natgw/mgmt/config"
)

// This file wires the attribution history (package attrib,
// nat_log.history): opened at start, fed block events by the NAT log's
// Tracker (app/natlog.go), read by GET /v1/attribution, closed after the
// Tracker's last events at a clean stop.

// openHistory opens the attribution history of c, or returns nil when
// nat_log.history is empty.
func openHistory(c *config.Config, log *slog.Logger) (*attrib.Store, error) {
	n := &c.NatLog
	if n.History == "" {
		return nil, nil
	}
	h, err := attrib.Open(attrib.Options{Path: n.History, Retention: n.Retention.Duration,
		MaxSize: int64(n.HistoryMaxSize), Log: log})
	if err != nil {
		return nil, fmt.Errorf("nat_log.history: %w", err)
	}
	log.Info("attribution history open", "path", n.History, "retention", n.Retention.Duration.String(),
		"history_max_size", n.HistoryMaxSize.String())
	return h, nil
}

// applyHistory applies a reloaded configuration's retention and size
// bound (a new path is refused by restartNeeded).
func (a *appliance) applyHistory(c *config.Config) {
	if a.history == nil || c == nil {
		return
	}
	if err := a.history.SetLimits(c.NatLog.Retention.Duration, int64(c.NatLog.HistoryMaxSize)); err != nil {
		a.log.Error("nat_log: the new retention or size bound can't be used; the running ones are kept", "error", err)
	}
}

// closeHistory writes what is queued and closes the history.
func (a *appliance) closeHistory() {
	if a.history == nil {
		return
	}
	if err := a.history.Close(); err != nil {
		a.log.Error("attribution history: closing failed", "path", a.history.Path(), "error", err)
	}
	a.history = nil
}
