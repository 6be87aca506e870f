package lcore

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// sessionsOn and sessionsOff are the policy's session logging switch.
const (
	sessionsOn  = true
	sessionsOff = false
)

// newSessionRuntime is newTestRuntime with session logging on or off.
func newSessionRuntime(t testing.TB, sessions bool) *testRuntime {
	t.Helper()
	tr := &testRuntime{clock: &testClock{}, policy: &nat.PolicyHolder{}}
	tr.clock.t.Store(1)
	tr.policy.Store(compileSession(t, sessions, nil))
	var ports [NumPorts]Port
	for i := range ports {
		tr.ports[i] = NewFakePort(PortName(uint8(i)), [6]byte{2, 0, 0, 0, 0, byte(i + 1)}, 2)
		ports[i] = tr.ports[i]
	}
	var err error
	tr.Runtime, err = NewRuntime(RuntimeConfig{Workers: 1, Ports: ports, Policy: tr.policy,
		FlowCapacity: 1000, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: tr.clock.Now})
	require.NoError(t, err)
	return tr
}

func compileSession(t testing.TB, sessions bool, prev *nat.Policy) *nat.Policy {
	t.Helper()
	s := queryTestSpec(1, 1000, 4*time.Minute)
	s.SessionEvents = sessions
	return compileSpec(t, s, prev)
}

// drained returns the session events waiting in the rings.
func drained(tr *testRuntime) []SessionEvent {
	var out []SessionEvent
	tr.Manager.OnSession = func(e *SessionEvent) { out = append(out, *e) }
	tr.Manager.drainSessions()
	return out
}

func TestSessionEvents(t *testing.T) {
	tr := newSessionRuntime(t, sessionsOn)
	tr.clock.Advance(5 * time.Second)
	tr.addFlow(t, qMember, qServer1, 5000, 53)
	got := drained(tr)
	require.Len(t, got, 1)
	e := got[0]
	assert.Equal(t, nat.SessionCreated, e.Reason)
	assert.Equal(t, qMember, e.Priv)
	assert.Equal(t, uint16(5000), e.PrivPort)
	assert.Equal(t, nat.U32(qAddr("198.19.1.10")), e.Pub)
	assert.NotZero(t, e.PubPort)
	assert.Equal(t, qServer1, e.Remote)
	assert.Equal(t, uint16(53), e.RemotePort)
	assert.Equal(t, uint8(nat.ProtoUDP), e.Proto)
	assert.Equal(t, tr.clock.Now(), e.Time)

	// The flow idles out: a delete with the reason and the same
	// endpoints.
	tr.clock.Advance(5 * time.Minute)
	tr.Workers[0].Translator().Expire(tr.clock.Now(), 100)
	got = drained(tr)
	require.Len(t, got, 1)
	del := got[0]
	assert.Equal(t, nat.ExpireIdle, del.Reason)
	assert.Equal(t, tr.clock.Now(), del.Time)
	del.Reason, del.Time, e.Reason, e.Time = 0, 0, 0, 0
	assert.Equal(t, e, del)
}

// Without session events in the policy (mgmt.PolicySpec asks for them
// only when [nat_log] lists sessions and a collector) the worker reports
// nothing; a reload turns them on and off on the worker.
func TestSessionEventsFollowReloads(t *testing.T) {
	tr := newSessionRuntime(t, sessionsOff)
	tr.addFlow(t, qMember, qServer1, 5000, 53)
	assert.Empty(t, drained(tr), "off by default")

	p2 := compileSession(t, sessionsOff, tr.policy.Load())
	tr.policy.Store(p2)
	tr.Workers[0].PollOnce()
	tr.addFlow(t, qMember, qServer1, 5001, 53)
	assert.Empty(t, drained(tr), "off after a reload that leaves it off")

	p3 := compileSession(t, sessionsOn, p2)
	tr.policy.Store(p3)
	tr.Workers[0].PollOnce()
	tr.addFlow(t, qMember, qServer1, 5002, 53)
	assert.Len(t, drained(tr), 1, "on after the reload")

	tr.policy.Store(compileSession(t, sessionsOff, p3))
	tr.Workers[0].PollOnce()
	tr.addFlow(t, qMember, qServer1, 5003, 53)
	assert.Empty(t, drained(tr), "off again")
}

func TestSessionRingFull(t *testing.T) {
	r := &SessionRing{}
	for i := range SessionRingSize + 5 {
		ok := r.Push(&SessionEvent{Priv: uint32(i)})
		assert.Equal(t, i < SessionRingSize, ok)
	}
	assert.Equal(t, uint64(5), r.Dropped.Load())
	var first, n uint32
	got := r.Drain(SessionRingSize, func(e *SessionEvent) {
		if n == 0 {
			first = e.Priv
		}
		n++
	})
	assert.Equal(t, SessionRingSize, got)
	assert.Zero(t, first, "oldest first; the newest were dropped")
	assert.True(t, r.Push(&SessionEvent{}), "room again")
	assert.Equal(t, 1, r.Drain(10, func(*SessionEvent) {}))
}

// Session events cost the worker no allocation, ring full or not.
func TestSessionEventsNoAllocs(t *testing.T) {
	tr := newSessionRuntime(t, sessionsOn)
	w := tr.Workers[0]
	var buf [64]byte
	sport := uint16(10000)
	allocs := testing.AllocsPerRun(SessionRingSize, func() {
		sport++
		n := nat.BuildUDP(buf[:], qMember, qServer1, sport, 53, 64, nil)
		w.Translator().Outbound(buf[:n], tr.clock.Now())
		tr.clock.Advance(5 * time.Minute)
		w.Translator().Expire(tr.clock.Now(), 10)
	})
	assert.Zero(t, allocs)
	assert.Positive(t, tr.SessionsDropped(), "the ring filled up: drops counted")
	assert.Len(t, drained(tr), SessionRingSize)
}

// The exhaustion hook gets what the exhaustion log logs, with its rate
// limit: once per member and destination per 10 s.
func TestOnExhaustedRateLimited(t *testing.T) {
	tr := newSessionRuntime(t, sessionsOn)
	var got []nat.ExhaustEvent
	tr.Manager.OnExhausted = func(p *nat.Policy, e nat.ExhaustEvent, now time.Time) {
		assert.Same(t, tr.policy.Load(), p)
		got = append(got, e)
	}
	e1 := nat.ExhaustEvent{Private: qMember, Remote: qServer1, RemotePort: 53, Proto: nat.ProtoUDP}
	e2 := e1
	e2.Remote = qServer2
	now := time.Unix(1_700_000_000, 0)
	for range 3 {
		tr.Manager.events[0].push(e1)
	}
	tr.Manager.events[0].push(e2)
	tr.Manager.drain(now)
	assert.Equal(t, []nat.ExhaustEvent{e1, e2}, got, "one per member and destination")
	tr.Manager.events[0].push(e1)
	tr.Manager.drain(now.Add(5 * time.Second))
	assert.Len(t, got, 2, "within 10 s: not again")
	tr.Manager.events[0].push(e1)
	tr.Manager.drain(now.Add(11 * time.Second))
	assert.Len(t, got, 3, "after 10 s: again")
}
