package lcore

import (
	"sync/atomic"
	"time"

	"github.com/natgw/natgw/nat"
)

// This file carries NAT session events (issue 16: flows created and
// deleted, for the exporters) from each worker to the management core:
// the translator's session hook copies the flow's endpoints into the
// worker's SessionRing, a bounded SPSC ring; the management core drains
// it. A full ring drops the event and counts it; the worker never waits
// and never allocates. The hook is set only while the running policy's
// [nat_log] exports sessions: otherwise a flow costs the translator one
// nil test.

// SessionRingSize is the number of events a worker's ring holds: at a
// million new flows a second (two events each), 4 ms of them, several of
// the management core's 1 ms loop.
const SessionRingSize = 8192

// SessionEvent is a flow created or released, as a worker reports it.
type SessionEvent struct {
	Priv, Pub, Remote             uint32
	PrivPort, PubPort, RemotePort uint16
	Proto                         uint8
	// Reason is nat.SessionCreated for a new flow, else why it ended.
	Reason nat.ExpireReason
	// Time is the worker's clock when it happened.
	Time nat.Tick
}

// SessionRing is a bounded single-producer (a worker) single-consumer
// (the management core) ring of session events.
type SessionRing struct {
	_    [64]byte
	head atomic.Uint64 // written by the producer
	_    [56]byte
	tail atomic.Uint64 // written by the consumer
	_    [56]byte
	// Dropped counts events refused because the ring was full; written
	// by the producer only.
	Dropped atomic.Uint64
	_       [56]byte
	// cachedTail is the producer's copy of tail.
	cachedTail uint64
	ev         [SessionRingSize]SessionEvent
}

// Push adds e, or drops and counts it when the ring is full.
func (r *SessionRing) Push(e *SessionEvent) bool {
	h := r.head.Load()
	if h-r.cachedTail >= SessionRingSize {
		r.cachedTail = r.tail.Load()
		if h-r.cachedTail >= SessionRingSize {
			r.Dropped.Add(1)
			return false
		}
	}
	r.ev[h%SessionRingSize] = *e
	r.head.Store(h + 1)
	return true
}

// Drain calls fn for up to max events in order and removes them; it
// returns how many it took.
func (r *SessionRing) Drain(max int, fn func(*SessionEvent)) int {
	t, h := r.tail.Load(), r.head.Load()
	n := 0
	for ; t != h && n < max; t, n = t+1, n+1 {
		fn(&r.ev[t%SessionRingSize])
	}
	r.tail.Store(t)
	return n
}

// sessionHook is the translator's session hook of a worker: it copies
// the flow into the worker's ring.
func (w *Worker) sessionHook(f *nat.Flow, reason nat.ExpireReason) {
	e := SessionEvent{Priv: f.Priv, Pub: f.Pub, Remote: f.Remote, PrivPort: f.PrivPort, PubPort: f.PubPort,
		RemotePort: f.RemotePort, Proto: f.Proto, Reason: reason, Time: w.clock()}
	w.sessions.Push(&e)
}

// applySessions sets or clears the translator's session hook for
// policy p (on the worker, when it takes a new policy).
func (w *Worker) applySessions(p *nat.Policy) {
	if w.sessions != nil && p != nil && p.Config != nil && p.Config.NatLog.Exports("sessions") {
		w.tr.SetSessionHook(w.sessHook)
	} else {
		w.tr.SetSessionHook(nil)
	}
}

// sessionDrainMax bounds the events the management core takes from one
// worker's ring per loop.
const sessionDrainMax = SessionRingSize

// drainSessions hands the workers' session events to OnSession.
func (m *Manager) drainSessions() int {
	n := 0
	for _, r := range m.sessions {
		if m.OnSession != nil {
			n += r.Drain(sessionDrainMax, m.OnSession)
		} else {
			n += r.Drain(sessionDrainMax, func(*SessionEvent) {})
		}
	}
	return n
}

// SessionsDropped returns the session events the workers' rings dropped.
func (r *Runtime) SessionsDropped() uint64 {
	var n uint64
	for _, s := range r.Manager.sessions {
		n += s.Dropped.Load()
	}
	return n
}

// WallTime converts a tick of the dataplane clock (Now) to wall-clock
// time.
func (r *Runtime) WallTime(t nat.Tick) time.Time {
	return r.start.Add(time.Duration(t-1) * time.Millisecond)
}
