package natlog

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// Addresses of the tracker tests (SPEC §8).
var (
	trFE1       = tip("198.19.1.10")
	trFEDefault = tip("198.19.1.20")
	trFEOther   = tip("198.19.1.30")
)

func tip(s string) uint32 { return nat.U32(netip.MustParseAddr(s)) }

// trackerCase is a policy of the tracker tests: pool "web" on fe1 with
// members (default 10.0.1.4 and 10.0.1.5) and ppm ports each (default
// 1024), default SNAT for 10.0.0.0/8 on defaultFE (default fe-default),
// and instance 10.0.3.7 → 198.19.1.50 when instance is set.
type trackerCase struct {
	members   []string
	instance  bool
	defaultFE uint32
	ppm       int
}

func (c trackerCase) compile(t *testing.T, prev *nat.Policy) *nat.Policy {
	t.Helper()
	if c.members == nil {
		c.members = []string{"10.0.1.4", "10.0.1.5"}
	}
	if c.defaultFE == 0 {
		c.defaultFE = trFEDefault
	}
	if c.ppm == 0 {
		c.ppm = 1024
	}
	members := make([]uint32, len(c.members))
	for i, m := range c.members {
		members[i] = tip(m)
	}
	min := nat.TickFromDuration(time.Minute)
	s := nat.PolicySpec{
		Inside:    nat.Prefix{Addr: tip("10.0.0.1"), Bits: 16},
		Outside:   nat.Prefix{Addr: tip("198.19.0.2"), Bits: 24},
		Gateway:   tip("198.19.0.1"),
		Timeouts:  nat.Timeouts{TCPEstablished: 4 * min, TCPTransitory: min / 2, TCPClosing: min / 6, UDP: 4 * min, ICMP: min},
		Frontends: []uint32{trFE1, trFEDefault, trFEOther},
		Pools:     []nat.PoolSpec{{Name: "web", Frontends: []uint32{trFE1}, Members: members, PortsPerMember: c.ppm}},
		DefaultSNAT: &nat.DefaultSNATSpec{Sources: []nat.Prefix{{Addr: tip("10.0.0.0"), Bits: 8}},
			Frontends: []uint32{c.defaultFE}, PortsPerMember: 1024, Workers: 2},
	}
	if c.instance {
		s.Instances = []nat.InstanceSpec{{Private: tip("10.0.3.7"), Public: tip("198.19.1.50")}}
	}
	p, err := nat.Compile(s, prev)
	require.NoError(t, err)
	return p
}

// recorder is a BlockSink keeping what it got.
type recorder struct {
	mu  sync.Mutex
	evs []BlockEvent
}

func (r *recorder) Block(ev BlockEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

// take returns the events so far and forgets them.
func (r *recorder) take() []BlockEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.evs
	r.evs = nil
	return out
}

func u32(s string) uint32 { return nat.U32(netip.MustParseAddr(s)) }

// ev builds the expected event (Time left zero; compared apart).
func ev(kind BlockKind, scope Scope, name, priv, pub string, first, last uint16, gen uint64) BlockEvent {
	return BlockEvent{Kind: kind, Scope: scope, Name: name, Private: u32(priv), Public: u32(pub),
		First: first, Last: last, Generation: gen}
}

// untimed drops the times, checking each is at.
func untimed(t *testing.T, evs []BlockEvent, at time.Time) []BlockEvent {
	t.Helper()
	out := make([]BlockEvent, len(evs))
	for i, e := range evs {
		assert.True(t, e.Time.Equal(at), "event %d at %v, want %v", i, e.Time, at)
		e.Time = time.Time{}
		out[i] = e
	}
	return out
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestTrackerPoolBlocksAcrossReloads(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	rec := &recorder{}
	tr := NewTracker(TrackerOptions{Sink: rec, Now: clock.now})

	p1 := trackerCase{instance: true}.compile(t, nil)
	tr.Policy(p1)
	tr.Step()
	assert.Equal(t, []BlockEvent{
		ev(BlockAssigned, ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, 1),
		ev(BlockAssigned, ScopePool, "web", "10.0.1.5", "198.19.1.10", 2048, 3071, 1),
		ev(BlockAssigned, ScopeInstance, "", "10.0.3.7", "198.19.1.50", 0, 65535, 1),
	}, untimed(t, rec.take(), clock.now()), "everything in force at start is assigned")

	tr.Step()
	assert.Empty(t, rec.take(), "nothing changed, nothing said")

	// A tier step up [S7]: blocks shrink to 512 ports, the reclaimed
	// halves are released with the old blocks.
	t2 := clock.now().Add(time.Minute)
	clock.set(t2)
	p2 := trackerCase{instance: true, ppm: 512}.compile(t, p1)
	tr.Policy(p2)
	tr.Step()
	assert.Equal(t, []BlockEvent{
		ev(BlockReleased, ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, 2),
		ev(BlockReleased, ScopePool, "web", "10.0.1.5", "198.19.1.10", 2048, 3071, 2),
		ev(BlockAssigned, ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 1535, 2),
		ev(BlockAssigned, ScopePool, "web", "10.0.1.5", "198.19.1.10", 2048, 2559, 2),
	}, untimed(t, rec.take(), t2))

	// 10.0.1.5 leaves, so does the instance: all they held is released.
	t3 := t2.Add(time.Minute)
	clock.set(t3)
	p3 := trackerCase{members: []string{"10.0.1.4"}, ppm: 512}.compile(t, p2)
	tr.Policy(p3)
	tr.Step()
	assert.Equal(t, []BlockEvent{
		ev(BlockReleased, ScopePool, "web", "10.0.1.5", "198.19.1.10", 2048, 2559, 3),
		ev(BlockReleased, ScopeInstance, "", "10.0.3.7", "198.19.1.50", 0, 65535, 3),
	}, untimed(t, rec.take(), t3))
}

// A tier step down whose larger block doesn't contain a member's old one
// leaves the old one as the member's grace block [S7]: still held, so
// not released, until the member leaves.
func TestTrackerGraceBlocks(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	rec := &recorder{}
	tr := NewTracker(TrackerOptions{Sink: rec, Now: clock.now})
	three := []string{"10.0.1.4", "10.0.1.5", "10.0.1.6"}
	p1 := trackerCase{members: three, ppm: 512}.compile(t, nil)
	tr.Policy(p1)
	tr.Step()
	assert.Len(t, rec.take(), 3)

	p2 := trackerCase{members: three, ppm: 1024}.compile(t, p1)
	m5, _ := p2.Classify(u32("10.0.1.5"))
	require.Equal(t, uint16(1536), m5.Grace.First, "the layout this test relies on")
	tr.Policy(p2)
	tr.Step()
	assert.Equal(t, []BlockEvent{
		ev(BlockReleased, ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 1535, 2),
		ev(BlockReleased, ScopePool, "web", "10.0.1.6", "198.19.1.10", 2048, 2559, 2),
		ev(BlockAssigned, ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, 2),
		ev(BlockAssigned, ScopePool, "web", "10.0.1.5", "198.19.1.10", 3072, 4095, 2),
		ev(BlockAssigned, ScopePool, "web", "10.0.1.6", "198.19.1.10", 2048, 3071, 2),
	}, untimed(t, rec.take(), clock.now()), "10.0.1.5 keeps 1536-2047 as its grace")

	p3 := trackerCase{members: []string{"10.0.1.4", "10.0.1.6"}, ppm: 1024}.compile(t, p2)
	tr.Policy(p3)
	tr.Step()
	assert.Equal(t, []BlockEvent{
		ev(BlockReleased, ScopePool, "web", "10.0.1.5", "198.19.1.10", 1536, 2047, 3),
		ev(BlockReleased, ScopePool, "web", "10.0.1.5", "198.19.1.10", 3072, 4095, 3),
	}, untimed(t, rec.take(), clock.now()))
}

func TestTrackerDefaultSNAT(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	rec := &recorder{}
	tr := NewTracker(TrackerOptions{Sink: rec, Now: clock.now})
	p1 := trackerCase{}.compile(t, nil)
	tr.Policy(p1)
	tr.Step()
	rec.take()
	d := p1.DefaultSNAT()
	require.NotNil(t, d)

	// A worker assigns on first use: the event is dated by the
	// assignment, not by the scan that finds it.
	before := time.Now()
	blk, ok := d.Acquire(1, u32("10.0.7.7"))
	require.True(t, ok)
	after := time.Now()
	clock.set(after.Add(400 * time.Millisecond)) // the scan runs late
	tr.Step()
	got := rec.take()
	require.Len(t, got, 1)
	e := got[0]
	assert.False(t, e.Time.Before(before), "dated %v, assigned after %v", e.Time, before)
	assert.False(t, e.Time.After(after), "dated %v, assigned before %v", e.Time, after)
	e.Time = time.Time{}
	assert.Equal(t, BlockEvent{Kind: BlockAssigned, Scope: ScopeDefaultSNAT, Private: u32("10.0.7.7"),
		Public: blk.Public, First: blk.First, Last: blk.Last, Generation: 1}, e)

	// Flows and a second scan change nothing.
	d.Release(1, u32("10.0.7.7"))
	tr.Step()
	assert.Empty(t, rec.take())

	// Reclaimed, then given to another host: released by the first
	// before the second gets it, each at its own time.
	t0 := time.Now().Add(-time.Hour)
	d.Reclaim(t0, time.Second)
	d.Reclaim(t0.Add(time.Second), time.Second)
	require.Equal(t, 1, d.Reclaim(t0.Add(2*time.Second), time.Second))
	other, ok := d.Acquire(0, u32("10.0.8.8"))
	require.True(t, ok)
	require.Equal(t, blk, other)
	tr.Step()
	got = rec.take()
	require.Len(t, got, 2)
	assert.Equal(t, BlockReleased, got[0].Kind)
	assert.Equal(t, u32("10.0.7.7"), got[0].Private)
	assert.True(t, got[0].Time.Equal(t0.Add(2*time.Second)), "dated by the reclamation: %v", got[0].Time)
	assert.Equal(t, BlockAssigned, got[1].Kind)
	assert.Equal(t, u32("10.0.8.8"), got[1].Private)
	assert.Equal(t, blk.First, got[1].First)
	assert.True(t, got[1].Time.After(got[0].Time))

	// A reload that keeps default_snat keeps its assignments: nothing.
	clock.set(time.Now())
	p2 := trackerCase{ppm: 512}.compile(t, p1)
	require.Same(t, d, p2.DefaultSNAT())
	tr.Policy(p2)
	tr.Step()
	for _, e := range rec.take() {
		assert.NotEqual(t, ScopeDefaultSNAT, e.Scope, "%+v", e)
	}

	// One that changes it starts a new allocator: what the old one
	// handed out is released at the reload.
	t3 := time.Now()
	clock.set(t3)
	p3 := trackerCase{ppm: 512, defaultFE: trFEOther}.compile(t, p2)
	require.NotSame(t, d, p3.DefaultSNAT())
	tr.Policy(p3)
	tr.Step()
	got = untimed(t, rec.take(), t3)
	assert.Equal(t, []BlockEvent{{Kind: BlockReleased, Scope: ScopeDefaultSNAT, Private: u32("10.0.8.8"),
		Public: blk.Public, First: blk.First, Last: blk.Last, Generation: 3}}, got)
	nb, ok := p3.DefaultSNAT().Acquire(0, u32("10.0.8.8"))
	require.True(t, ok)
	tr.Step()
	got = rec.take()
	require.Len(t, got, 1)
	assert.Equal(t, BlockAssigned, got[0].Kind)
	assert.Equal(t, nb.Public, got[0].Public)
	assert.Equal(t, u32("198.19.1.30"), got[0].Public)
}

func TestTrackerCloseReleasesAll(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	rec := &recorder{}
	tr := NewTracker(TrackerOptions{Sink: rec, Now: clock.now})
	p := trackerCase{instance: true}.compile(t, nil)
	_, ok := p.DefaultSNAT().Acquire(0, u32("10.0.9.9"))
	require.True(t, ok)
	tr.Policy(p)
	tr.Step()
	held := rec.take()
	require.Len(t, held, 4)
	t1 := clock.now().Add(time.Hour)
	clock.set(t1)
	tr.Close()
	released := untimed(t, rec.take(), t1)
	require.Len(t, released, len(held))
	for i := range held {
		held[i].Time, held[i].Kind = time.Time{}, BlockReleased
	}
	assert.ElementsMatch(t, held, released)
}

// Started, the Tracker delivers a publication at once and a worker's
// assignment within a few intervals, on its own goroutine.
func TestTrackerRuns(t *testing.T) {
	rec := &recorder{}
	tr := NewTracker(TrackerOptions{Sink: rec, Interval: 5 * time.Millisecond})
	tr.Start()
	p := trackerCase{}.compile(t, nil)
	tr.Policy(p)
	_, ok := p.DefaultSNAT().Acquire(0, u32("10.0.9.9"))
	require.True(t, ok)
	var got []BlockEvent
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		got = append(got, rec.take()...)
	}
	assert.Len(t, got, 3, "two pool blocks and a default-SNAT block")
	tr.Close()
	assert.Len(t, rec.take(), 3, "all released at close")
}

func TestFanout(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	f := Fanout{a, b}
	e := BlockEvent{Kind: BlockAssigned, Private: 1}
	f.Block(e)
	assert.Equal(t, []BlockEvent{e}, a.take())
	assert.Equal(t, []BlockEvent{e}, b.take())
	Fanout(nil).Block(e) // no sink: nothing to do
}
