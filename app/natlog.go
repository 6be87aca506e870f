package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/natgw/natgw/attrib"
	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
	"github.com/natgw/natgw/natlog"
)

// This file wires NAT event logging (issue 16) on the management side:
// the block-event source (natlog.Tracker), the sinks it feeds (the
// exporters behind natlog.Output), the exhaustion events of the
// management core and the flow-table-full watch.

// tableFullInterval is the shortest interval between two flow-table-full
// events, like the exhaustion log lines' [S4].
const tableFullInterval = 10 * time.Second

// natLog is the appliance's NAT event logging.
type natLog struct {
	log      *slog.Logger
	hostname string
	rt       *lcore.Runtime
	capacity int
	tracker  *natlog.Tracker
	out      *natlog.Output
	stop     chan struct{}
	done     chan struct{}
}

// startNatLog starts NAT event logging for the first configuration c
// and its policy p, before the runtime starts (it sets the management
// core's exhaustion hook). history, when not nil, is the attribution
// history: a sink of block events too.
func startNatLog(c *config.Config, p *nat.Policy, rt *lcore.Runtime, log *slog.Logger, history *attrib.Store) (*natLog, error) {
	n := &natLog{log: log, rt: rt, capacity: c.Dataplane.FlowCapacity, out: natlog.NewOutput(log),
		stop: make(chan struct{}), done: make(chan struct{})}
	n.hostname, _ = os.Hostname()
	if err := n.out.Apply(natlog.ConfigFrom(c.NatLog, n.hostname)); err != nil {
		return nil, err
	}
	// The sinks of block events, in delivery order. Each must return
	// quickly: they run on the tracker's goroutine.
	sinks := natlog.Fanout{n.out}
	if history != nil {
		sinks = append(sinks, history)
	}
	n.tracker = natlog.NewTracker(natlog.TrackerOptions{Sink: sinks})
	n.tracker.Policy(p)
	if history != nil {
		// Deliver the start's holdings before the Tracker's goroutine
		// runs (one Step, on this goroutine, before Start: never both
		// at once), then let the history close what a crash left open
		// and this start did not announce again.
		n.tracker.Step()
		if err := history.Started(); err != nil {
			n.out.Close()
			return nil, fmt.Errorf("nat_log.history: %w", err)
		}
	}
	n.tracker.Start()
	rt.Manager.OnExhausted = n.exhausted
	rt.Manager.OnSession = n.session
	n.out.WorkerDropped = rt.SessionsDropped
	go n.watch()
	return n, nil
}

// apply is called after a reload published p.
func (n *natLog) apply(c *config.Config, p *nat.Policy) {
	if n == nil {
		return
	}
	n.tracker.Policy(p)
	if err := n.out.Apply(natlog.ConfigFrom(c.NatLog, n.hostname)); err != nil {
		n.log.Error("nat_log: the new collectors can't be used; the running ones are kept", "error", err)
	}
}

// exhausted exports a port exhaustion the management core logged.
func (n *natLog) exhausted(p *nat.Policy, e nat.ExhaustEvent, now time.Time) {
	m, _ := p.Classify(e.Private) // the public address whose ports ran out
	n.out.Record(natlog.Record{Time: now, Event: natlog.EventPortsExhausted, Proto: e.Proto,
		Private: e.Private, Public: m.Block.Public, Remote: e.Remote, RemotePort: e.RemotePort, Pool: p.PoolName(e.Scope)})
}

// session exports a worker's session event (on the management core).
func (n *natLog) session(e *lcore.SessionEvent) {
	n.out.Record(natlog.SessionRecord(e, n.rt.WallTime(e.Time)))
}

// watch exports a flow-table-full event when the workers' flow_table_full
// drops grew, at most once per tableFullInterval.
func (n *natLog) watch() {
	defer close(n.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var w tableFullWatch
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			var full uint64
			for _, wk := range n.rt.Workers {
				full += wk.Counters.Verdicts[nat.DropFlowTableFull].Load()
			}
			if w.check(now, full) {
				n.out.Record(natlog.Record{Time: now, Event: natlog.EventQuotaExceeded, MaxEntries: uint32(n.capacity)})
			}
		}
	}
}

// tableFullWatch decides when flow_table_full drops make an event.
type tableFullWatch struct {
	seen uint64
	last time.Time
}

// check takes the flow_table_full count at now and reports whether it
// grew since the last check and no event was sent in tableFullInterval.
func (w *tableFullWatch) check(now time.Time, full uint64) bool {
	grew := full > w.seen
	w.seen = full
	if !grew || (!w.last.IsZero() && now.Sub(w.last) < tableFullInterval) {
		return false
	}
	w.last = now
	return true
}

// close releases every block (natgw translates no more), sends what is
// queued and stops. Call it after the runtime stopped.
func (n *natLog) close() {
	if n == nil {
		return
	}
	close(n.stop)
	<-n.done
	n.tracker.Close()
	n.out.Close()
}
