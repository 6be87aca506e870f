package bgp

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSpeaker records what is announced to each side.
type fakeSpeaker struct {
	mu     sync.Mutex
	routes [NumSides][]Route
	calls  int
}

func (f *fakeSpeaker) Announce(side Side, routes []Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[side] = routes
	f.calls++
	return nil
}
func (f *fakeSpeaker) Withdraw(side Side) error { return f.Announce(side, nil) }
func (f *fakeSpeaker) Peers() []PeerState {
	return []PeerState{{Side: "inside", Name: "r1", State: "established", Established: true}}
}
func (f *fakeSpeaker) Close() error { return nil }

func (f *fakeSpeaker) announced(side Side) []Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.routes[side]
}

// node is a fake node whose health, routes and flows a test sets.
type node struct {
	mu     sync.Mutex
	reason []string
	routes [NumSides][]Route
	flows  uint64
}

func (n *node) set(f func(n *node)) { n.mu.Lock(); f(n); n.mu.Unlock() }

func newTestAnnouncer(t *testing.T) (*Announcer, *fakeSpeaker, *node) {
	t.Helper()
	sp := &fakeSpeaker{}
	n := &node{reason: []string{"outside gateway not resolved"}}
	n.routes[Inside] = []Route{{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.1.0.11")}}
	n.routes[Outside] = []Route{{netip.MustParsePrefix("198.19.1.11/32"), netip.MustParseAddr("198.19.0.11")}}
	a := NewAnnouncer(AnnouncerOptions{
		Speaker: sp, HoldDown: 5 * time.Second, DrainDeadline: 30 * time.Second,
		Health: func() []string { n.mu.Lock(); defer n.mu.Unlock(); return n.reason },
		Routes: func() [NumSides][]Route { n.mu.Lock(); defer n.mu.Unlock(); return n.routes },
		Flows:  func() uint64 { n.mu.Lock(); defer n.mu.Unlock(); return n.flows },
	})
	return a, sp, n
}

// TestAnnouncerHealth checks that routes go out only while the node is
// ready, are withdrawn when it stops being ready, and come back only
// after the hold-down.
func TestAnnouncerHealth(t *testing.T) {
	a, sp, n := newTestAnnouncer(t)
	t0 := time.Unix(1000, 0)
	a.Step(t0)
	assert.Empty(t, sp.announced(Inside), "not ready: nothing announced")
	assert.Zero(t, sp.calls)

	n.set(func(n *node) { n.reason = nil })
	a.Step(t0.Add(100 * time.Millisecond))
	assert.Equal(t, n.routes[Inside], sp.announced(Inside), "ready: announced at once (no hold-down at start)")
	assert.Equal(t, n.routes[Outside], sp.announced(Outside))
	calls := sp.calls
	a.Step(t0.Add(200 * time.Millisecond))
	assert.Equal(t, calls, sp.calls, "nothing changed: the speaker is not asked again")

	n.set(func(n *node) { n.reason = []string{"inside port veth0: link down"} })
	a.Step(t0.Add(time.Second))
	assert.Empty(t, sp.announced(Inside), "not ready: withdrawn")
	assert.Empty(t, sp.announced(Outside))
	st := a.Status()
	assert.False(t, st.Ready)
	assert.Equal(t, []string{"inside port veth0: link down"}, st.NotReady)
	assert.Equal(t, uint64(1), st.Withdrawals["inside/not_ready"])
	assert.Equal(t, "not_ready", st.LastWithdrawal)

	n.set(func(n *node) { n.reason = nil })
	a.Step(t0.Add(2 * time.Second))
	a.Step(t0.Add(6 * time.Second))
	assert.Empty(t, sp.announced(Inside), "within the hold-down: still withdrawn")
	a.Step(t0.Add(7 * time.Second))
	assert.Equal(t, n.routes[Inside], sp.announced(Inside), "ready for the hold-down: announced again")

	// A reload that adds a public address is announced.
	more := append([]Route{}, n.routes[Outside]...)
	more = append(more, Route{netip.MustParsePrefix("198.19.1.12/32"), netip.MustParseAddr("198.19.0.11")})
	n.set(func(n *node) { n.routes[Outside] = more })
	a.Step(t0.Add(8 * time.Second))
	assert.Equal(t, more, sp.announced(Outside))

	count, err := testutil.GatherAndCount(registryOf(t, a), "natgw_bgp_withdrawals_total")
	require.NoError(t, err)
	assert.Equal(t, 8, count, "2 sides x 4 reasons")
}

// TestAnnouncerDrain checks the drain order: inside routes withdrawn at
// once, outside routes only when the flows have ended (or the deadline
// passed), then never announced again.
func TestAnnouncerDrain(t *testing.T) {
	for _, tt := range []struct {
		name     string
		endFlows bool
	}{{"flows end", true}, {"deadline", false}} {
		t.Run(tt.name, func(t *testing.T) {
			a, sp, n := newTestAnnouncer(t)
			n.set(func(n *node) { n.reason, n.flows = nil, 7 })
			t0 := time.Now()
			a.Step(t0)
			require.NotEmpty(t, sp.announced(Inside))
			done := a.Drain()
			assert.Empty(t, sp.announced(Inside), "drain withdraws the inside routes at once")
			assert.NotEmpty(t, sp.announced(Outside), "the outside routes stay while flows last")
			a.Step(t0.Add(time.Second))
			assert.NotEmpty(t, sp.announced(Outside))
			assert.Equal(t, "waiting", a.Status().Draining)
			select {
			case <-done:
				t.Fatal("drain done with flows left before the deadline")
			default:
			}
			when := t0.Add(2 * time.Second)
			if tt.endFlows {
				n.set(func(n *node) { n.flows = 0 })
			} else {
				when = t0.Add(31 * time.Second)
			}
			a.Step(when)
			assert.Empty(t, sp.announced(Outside), "then the outside routes go")
			select {
			case <-done:
			default:
				t.Fatal("drain not done")
			}
			assert.Equal(t, "done", a.Status().Draining)
			a.Step(when.Add(time.Minute))
			assert.Empty(t, sp.announced(Inside), "a drained node never announces again")
			assert.Equal(t, uint64(1), a.Status().Withdrawals["outside/drain"])
			assert.Equal(t, done, a.Drain(), "a second drain is the same drain")
		})
	}
}

// TestAnnouncerDrainRedirect checks a drain with cluster peers: when
// Redirect starts, every route stays announced while the node's flows
// end (or until the deadline), then the inside routes go, DrainSettle
// later the outside routes; when Redirect finds no peer, the drain
// withdraws the inside routes at once as without peers.
func TestAnnouncerDrainRedirect(t *testing.T) {
	for _, tt := range []struct {
		name     string
		endFlows bool
	}{{"flows end", true}, {"deadline", false}} {
		t.Run(tt.name, func(t *testing.T) {
			a, sp, n := newTestAnnouncer(t)
			redirects := 0
			a.o.Redirect = func() bool { redirects++; return true }
			n.set(func(n *node) { n.reason, n.flows = nil, 7 })
			t0 := time.Now()
			a.Step(t0)
			done := a.Drain()
			assert.Equal(t, 1, redirects)
			assert.NotEmpty(t, sp.announced(Inside), "redirecting: the inside routes stay")
			assert.NotEmpty(t, sp.announced(Outside))
			assert.Equal(t, "redirecting", a.Status().Draining)
			a.Step(t0.Add(10 * time.Second))
			assert.NotEmpty(t, sp.announced(Inside), "flows left before the deadline: routes stay")
			when := t0.Add(11 * time.Second)
			if tt.endFlows {
				n.set(func(n *node) { n.flows = 0 })
			} else {
				when = t0.Add(31 * time.Second)
			}
			a.Step(when)
			assert.Empty(t, sp.announced(Inside), "then the inside routes go")
			assert.NotEmpty(t, sp.announced(Outside), "the outside routes wait for the routers to settle")
			assert.Equal(t, "settling", a.Status().Draining)
			a.Step(when.Add(DefaultDrainSettle / 2))
			assert.NotEmpty(t, sp.announced(Outside))
			select {
			case <-done:
				t.Fatal("drain done before the outside routes went")
			default:
			}
			a.Step(when.Add(DefaultDrainSettle))
			assert.Empty(t, sp.announced(Outside))
			select {
			case <-done:
			default:
				t.Fatal("drain not done")
			}
			assert.Equal(t, "done", a.Status().Draining)
			assert.Equal(t, uint64(1), a.Status().Withdrawals["inside/drain"])
			assert.Equal(t, uint64(1), a.Status().Withdrawals["outside/drain"])
			assert.Equal(t, done, a.Drain())
			assert.Equal(t, 1, redirects, "a second drain starts nothing")
		})
	}
	t.Run("no peer resolved", func(t *testing.T) {
		a, sp, n := newTestAnnouncer(t)
		a.o.Redirect = func() bool { return false }
		n.set(func(n *node) { n.reason, n.flows = nil, 7 })
		a.Step(time.Now())
		a.Drain()
		assert.Empty(t, sp.announced(Inside), "no peer: the inside routes go first")
		assert.Equal(t, "waiting", a.Status().Draining)
	})
}

func registryOf(t *testing.T, a *Announcer) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(a.Collector()))
	return reg
}
