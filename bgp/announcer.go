package bgp

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Withdrawal reasons, the reason label of natgw_bgp_withdrawals_total.
const (
	// ReasonNotReady: the node stopped being ready (a port down, the
	// gateway unresolved, a worker stuck).
	ReasonNotReady = "not_ready"
	// ReasonDrain: natgw ctl drain or SIGTERM with drain_on_sigterm.
	ReasonDrain = "drain"
	// ReasonShutdown: natgw stopped (SIGINT, or SIGTERM without drain).
	ReasonShutdown = "shutdown"
	// ReasonError: the speaker refused an announcement; natgw withdraws
	// and tries again after the hold-down.
	ReasonError = "error"
)

// DefaultCheckInterval is how often the announcer asks the node's health.
const DefaultCheckInterval = 100 * time.Millisecond

// DefaultDrainSettle is how long a redirecting drain keeps the node
// working after it withdrew its inside routes, while the inside routers
// take the withdrawal in (AnnouncerOptions.DrainSettle).
const DefaultDrainSettle = time.Second

// AnnouncerOptions configure an Announcer.
type AnnouncerOptions struct {
	// Speaker carries the announcements.
	Speaker Speaker
	// Health returns why the node is not ready (nothing: ready). It is
	// what /readyz checks, plus the gateway resolved and gratuitous ARP
	// sent.
	Health func() []string
	// Routes returns what each side should announce now (the policy may
	// have changed by a reload).
	Routes func() [NumSides][]Route
	// Flows returns the node's active flows (a drain waits for 0).
	Flows func() uint64
	// HoldDown is how long the node must be ready again after a
	// withdrawal before it announces again.
	HoldDown time.Duration
	// DrainDeadline bounds how long a drain waits for flows to end.
	DrainDeadline time.Duration
	// Redirect, when set, is called when a drain starts: it starts the
	// dataplane's redirection of new flows to the cluster's other nodes
	// and reports whether it did (a peer is resolved). Then the inside
	// routes stay announced while the node's own flows end, and are
	// withdrawn last; otherwise the drain withdraws them first.
	Redirect func() bool
	// DrainSettle is how long a redirecting drain waits between
	// withdrawing the inside routes and the outside routes, while the
	// inside routers stop sending the node packets (DefaultDrainSettle
	// when 0).
	DrainSettle time.Duration
	// CheckInterval is how often Run checks (DefaultCheckInterval when 0).
	CheckInterval time.Duration
	// Log receives announcements and withdrawals.
	Log *slog.Logger
}

// Drain phases.
const (
	drainNone = iota
	// drainWaiting: inside routes withdrawn, the node's flows ending.
	drainWaiting
	// drainRedirecting: routes kept, new flows redirected to the
	// cluster peers, the node's flows ending.
	drainRedirecting
	// drainSettling: a redirecting drain withdrew its inside routes and
	// waits DrainSettle before the outside routes.
	drainSettling
	drainDone
)

// Announcer lets the node's health decide what the speaker announces. Run
// calls Step on a ticker; Drain and Status may be called from any
// goroutine.
type Announcer struct {
	o AnnouncerOptions

	mu         sync.Mutex
	announced  [NumSides][]Route
	up         [NumSides]bool // the side's routes are announced
	ready      bool
	readySince time.Time
	withdrawn  bool // a withdrawal happened: the hold-down applies
	reasons    []string
	lastWhy    string
	lastAt     time.Time
	drain      int
	drainStart time.Time
	settleAt   time.Time // drainSettling: when the inside routes went
	drainDone  chan struct{}
	// counters for the metrics
	announcements [NumSides]uint64
	withdrawals   map[withdrawKey]uint64
}

type withdrawKey struct {
	side   Side
	reason string
}

// NewAnnouncer returns an announcer; nothing is announced before Step.
func NewAnnouncer(o AnnouncerOptions) *Announcer {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.DrainSettle <= 0 {
		o.DrainSettle = DefaultDrainSettle
	}
	if o.Flows == nil {
		o.Flows = func() uint64 { return 0 }
	}
	return &Announcer{o: o, drainDone: make(chan struct{}), withdrawals: map[withdrawKey]uint64{}}
}

// Run checks the node every CheckInterval until ctx is done, then
// withdraws everything (ReasonShutdown).
func (a *Announcer) Run(ctx context.Context) {
	t := time.NewTicker(a.o.CheckInterval)
	defer t.Stop()
	a.Step(time.Now())
	for {
		select {
		case <-ctx.Done():
			a.Shutdown()
			return
		case now := <-t.C:
			a.Step(now)
		}
	}
}

// Shutdown withdraws every route (ReasonShutdown).
func (a *Announcer) Shutdown() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for side := range NumSides {
		a.withdrawLocked(side, ReasonShutdown, time.Now())
	}
}

// Step does one check: announce, withdraw or move a drain on.
func (a *Announcer) Step(now time.Time) {
	reasons := a.o.Health()
	a.mu.Lock()
	defer a.mu.Unlock()
	ready := len(reasons) == 0
	if ready && !a.ready {
		a.readySince = now
	}
	if !ready && !slices.Equal(reasons, a.reasons) {
		a.o.Log.Info("bgp: node not ready", "reasons", strings.Join(reasons, "; "))
	}
	a.ready, a.reasons = ready, reasons
	if !ready {
		for side := range NumSides {
			a.withdrawLocked(side, ReasonNotReady, now)
		}
	}
	switch a.drain {
	case drainWaiting:
		flows := a.o.Flows()
		if flows == 0 || now.Sub(a.drainStart) >= a.o.DrainDeadline {
			a.o.Log.Info("bgp: drain: withdrawing the outside routes", "flows_left", flows,
				"waited", now.Sub(a.drainStart).Round(time.Millisecond).String())
			a.withdrawLocked(Outside, ReasonDrain, now)
			a.drain = drainDone
			close(a.drainDone)
		}
		return
	case drainRedirecting:
		flows := a.o.Flows()
		if flows == 0 || now.Sub(a.drainStart) >= a.o.DrainDeadline {
			a.o.Log.Info("bgp: drain: withdrawing the inside routes", "flows_left", flows,
				"waited", now.Sub(a.drainStart).Round(time.Millisecond).String())
			a.withdrawLocked(Inside, ReasonDrain, now)
			a.drain, a.settleAt = drainSettling, now
		}
		return
	case drainSettling:
		if now.Sub(a.settleAt) >= a.o.DrainSettle {
			a.o.Log.Info("bgp: drain: withdrawing the outside routes", "flows_left", a.o.Flows())
			a.withdrawLocked(Outside, ReasonDrain, now)
			a.drain = drainDone
			close(a.drainDone)
		}
		return
	case drainDone:
		return
	}
	if !ready {
		return
	}
	if a.withdrawn && now.Sub(a.readySince) < a.o.HoldDown {
		return // hold-down: stay ready a while before coming back
	}
	routes := a.o.Routes()
	for side := range NumSides {
		if a.up[side] && slices.Equal(routes[side], a.announced[side]) {
			continue
		}
		if err := a.o.Speaker.Announce(side, routes[side]); err != nil {
			a.o.Log.Error("bgp: announcing", "side", side.String(), "error", err)
			a.withdrawLocked(side, ReasonError, now)
			continue
		}
		if !a.up[side] {
			a.announcements[side]++
			a.o.Log.Info("bgp: announced", "side", side.String(), "routes", len(routes[side]))
		}
		a.up[side], a.announced[side] = true, routes[side]
	}
}

// withdrawLocked withdraws a side's routes if they are announced.
func (a *Announcer) withdrawLocked(side Side, reason string, now time.Time) {
	if !a.up[side] {
		return
	}
	if err := a.o.Speaker.Withdraw(side); err != nil {
		a.o.Log.Error("bgp: withdrawing", "side", side.String(), "error", err)
	}
	a.up[side], a.announced[side] = false, nil
	a.withdrawn = true
	a.withdrawals[withdrawKey{side, reason}]++
	a.lastWhy, a.lastAt = reason, now
	a.o.Log.Info("bgp: withdrawn", "side", side.String(), "reason", reason)
}

// Drain starts draining the node, once. When Redirect starts the
// redirection of new flows to the cluster's other nodes, every route
// stays announced while the node's own flows end (or DrainDeadline
// passes); then the inside routes are withdrawn, DrainSettle later the
// outside routes, and the returned channel is closed. Otherwise the
// inside routes are withdrawn at once, so the inside routers send new
// flows to the other nodes (the node's flows move with them); when its
// flows have ended, or DrainDeadline passed, the outside routes are
// withdrawn and the channel closed. The node never announces again.
func (a *Announcer) Drain() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.drain == drainNone {
		now := time.Now()
		a.drainStart = now
		if a.o.Redirect != nil && a.o.Redirect() {
			a.o.Log.Info("bgp: draining: new flows go to the cluster peers, routes kept while this node's flows end",
				"deadline", a.o.DrainDeadline.String(), "flows", a.o.Flows())
			a.drain = drainRedirecting
			return a.drainDone
		}
		a.o.Log.Info("bgp: draining", "deadline", a.o.DrainDeadline.String(), "flows", a.o.Flows())
		a.withdrawLocked(Inside, ReasonDrain, now)
		a.drain = drainWaiting
	}
	return a.drainDone
}

// Status is the announcer's state for /v1/status.
type Status struct {
	// Ready is the node's health at the last check; NotReady says why not.
	Ready    bool     `json:"ready"`
	NotReady []string `json:"not_ready,omitempty"`
	// Draining is "", "waiting" (inside routes withdrawn, flows
	// ending), "redirecting" (routes kept, new flows sent to the
	// cluster peers, flows ending), "settling" (a redirecting drain's
	// inside routes withdrawn, the outside routes next) or "done".
	Draining string `json:"draining,omitempty"`
	// Announced lists the routes announced per side.
	Announced map[string][]string `json:"announced"`
	// Peers are the sessions.
	Peers []PeerState `json:"peers"`
	// Withdrawals counts withdrawals by "side/reason".
	Withdrawals map[string]uint64 `json:"withdrawals"`
	// LastWithdrawal is the reason of the last one and when it was.
	LastWithdrawal   string    `json:"last_withdrawal,omitempty"`
	LastWithdrawalAt time.Time `json:"last_withdrawal_at,omitzero"`
}

// Status returns the announcer's state and the peers'.
func (a *Announcer) Status() Status {
	peers := a.o.Speaker.Peers()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Status{
		Ready: a.ready, NotReady: slices.Clone(a.reasons), Peers: peers,
		Announced: map[string][]string{}, Withdrawals: map[string]uint64{},
		LastWithdrawal: a.lastWhy, LastWithdrawalAt: a.lastAt,
	}
	switch a.drain {
	case drainWaiting:
		st.Draining = "waiting"
	case drainRedirecting:
		st.Draining = "redirecting"
	case drainSettling:
		st.Draining = "settling"
	case drainDone:
		st.Draining = "done"
	}
	for side := range NumSides {
		list := []string{}
		for _, r := range a.announced[side] {
			list = append(list, r.Prefix.String()+" via "+r.NextHop.String())
		}
		st.Announced[side.String()] = list
	}
	for k, n := range a.withdrawals {
		st.Withdrawals[k.side.String()+"/"+k.reason] = n
	}
	return st
}
