package nat

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTickFromDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want Tick
	}{
		{0, 0},
		{-time.Second, 0},
		{time.Millisecond, 1},
		{1500 * time.Microsecond, 1},
		{4 * time.Minute, 240_000},
		{50 * 24 * time.Hour, Tick(uint64(50*24*time.Hour/time.Millisecond) % (1 << 32))},
	}
	for _, tc := range tests {
		t.Run(tc.d.String(), func(t *testing.T) {
			assert.Equal(t, tc.want, TickFromDuration(tc.d))
		})
	}
}

func TestTimeout(t *testing.T) {
	to := testTimeouts
	tests := []struct {
		state uint8
		want  Tick
	}{
		{StateFree, 0},
		{StateTCPSynSent, to.TCPTransitory},
		{StateTCPEstablished, to.TCPEstablished},
		{StateTCPClosing, to.TCPClosing},
		{StateUDP, to.UDP},
		{StateICMP, to.ICMP},
		{200, 0},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, Timeout(tc.state, &to), "state %d", tc.state)
	}
}

func TestSetTimeoutsCaps(t *testing.T) {
	ft := NewFlowTable(1, Timeouts{UDP: ^Tick(0), ICMP: 5}, 0)
	got := ft.Timeouts()
	assert.Equal(t, MaxTimeout, got.UDP)
	assert.Equal(t, Tick(5), got.ICMP)
}

func TestExpireReasonString(t *testing.T) {
	want := []string{"idle", "closed", "reset", "reclaimed"}
	require.Len(t, want, int(NumExpireReasons))
	for r, s := range want {
		assert.Equal(t, s, ExpireReason(r).String())
	}
	assert.Equal(t, "unknown", NumExpireReasons.String())
}

// expiry records what Expire reported.
type expiry struct {
	calls map[uint32]ExpireReason
}

func newExpiry() *expiry { return &expiry{calls: map[uint32]ExpireReason{}} }

func (e *expiry) fn(i uint32, f *Flow, r ExpireReason) { e.calls[i] = r }

// expireAll calls Expire until it reports no more work.
func expireAll(t testing.TB, ft *FlowTable, now Tick, budget int, fn func(uint32, *Flow, ExpireReason)) int {
	t.Helper()
	total := 0
	for range 1_000_000 {
		n, more := ft.Expire(now, budget, fn)
		total += n
		if !more {
			return total
		}
	}
	require.Fail(t, "Expire never finished")
	return total
}

func TestExpireAtDeadline(t *testing.T) {
	to := testTimeouts
	to.TCPEstablished = 3_600_000 // beyond the wheel's horizon
	tests := []struct {
		name         string
		proto        uint8
		state, flags uint8 // set after the insert, when state != 0
		timeout      Tick
		reason       ExpireReason
	}{
		{"udp", testUDP, 0, 0, to.UDP, ExpireIdle},
		{"icmp", testICMP, 0, 0, to.ICMP, ExpireIdle},
		{"tcp syn sent", testTCP, 0, 0, to.TCPTransitory, ExpireIdle},
		{"tcp established beyond horizon", testTCP, StateTCPEstablished, 0, to.TCPEstablished, ExpireIdle},
		{"tcp one fin", testTCP, StateTCPEstablished, FlagFinOut, to.TCPEstablished, ExpireIdle},
		{"tcp closed", testTCP, StateTCPClosing, FlagFinOut | FlagFinIn, to.TCPClosing, ExpireClosed},
		{"tcp reset", testTCP, StateTCPClosing, FlagRST, to.TCPClosing, ExpireReset},
	}
	starts := []Tick{0, 12_345, ^Tick(0) - 5_000} // the last one wraps
	steps := []Tick{0, 997, 60_000}               // 0: one jump to the deadline
	for _, tc := range tests {
		for _, start := range starts {
			for _, step := range steps {
				t.Run(tc.name, func(t *testing.T) {
					ft := NewFlowTable(8, to, start)
					f := Flow{Priv: 1, Pub: 2, Remote: 3, PrivPort: 4, PubPort: 5, RemotePort: 6, Proto: tc.proto, State: stateOfProto(tc.proto)}
					i, ok := ft.Insert(&f, start)
					require.True(t, ok)
					if tc.state != 0 {
						ft.SetState(i, tc.state, tc.flags, start)
					}
					deadline := start + tc.timeout
					e := newExpiry()
					if step > 0 {
						for now := start; int32(deadline-1-now) > 0; now += step {
							ft.Expire(now, 100, e.fn)
						}
					}
					n, more := ft.Expire(deadline-1, 100, e.fn)
					assert.Zero(t, n, "one tick before the deadline")
					assert.False(t, more)
					assert.Empty(t, e.calls)
					require.Equal(t, 1, ft.Len())

					n, _ = ft.Expire(deadline+wheelSlotTicks-1, 100, e.fn)
					assert.Equal(t, 1, n, "within one slot after the deadline")
					assert.Equal(t, map[uint32]ExpireReason{i: tc.reason}, e.calls)
					assert.Zero(t, ft.Len())
					k := outKeyOf(&f)
					assert.Zero(t, ft.LookupOut(&k))
				})
			}
		}
	}
}

func TestExpireCallbackSeesFlow(t *testing.T) {
	ft := NewFlowTable(4, testTimeouts, 0)
	f := Flow{Priv: 9, Pub: 8, Remote: 7, PrivPort: 6, PubPort: 5, Proto: testUDP, State: StateUDP, Scope: 3}
	i, ok := ft.Insert(&f, 0)
	require.True(t, ok)
	calls := 0
	ft.Expire(testTimeouts.UDP+wheelSlotTicks, 10, func(j uint32, g *Flow, r ExpireReason) {
		calls++
		assert.Equal(t, i, j)
		assert.Equal(t, uint32(9), g.Priv)
		assert.Equal(t, uint16(3), g.Scope)
		k := outKeyOf(&f)
		assert.Equal(t, i, ft.LookupOut(&k), "still indexed while fn runs")
	})
	assert.Equal(t, 1, calls)
	assert.NotPanics(t, func() { ft.Expire(1<<30, 10, nil) }, "nil fn")
}

func TestTouchPostponesExpiry(t *testing.T) {
	tests := []struct {
		name    string
		touches []Tick
	}{
		{"once", []Tick{100_000}},
		{"keepalives", []Tick{50_000, 100_000, 150_000, 200_000, 250_000, 300_000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := NewFlowTable(4, testTimeouts, 0)
			f := Flow{Proto: testUDP, State: StateUDP}
			i, ok := ft.Insert(&f, 0)
			require.True(t, ok)
			e := newExpiry()
			for _, at := range tc.touches {
				expireAll(t, ft, at, 10, e.fn)
				ft.Touch(i, at)
			}
			last := tc.touches[len(tc.touches)-1]
			deadline := last + testTimeouts.UDP
			expireAll(t, ft, deadline-1, 10, e.fn)
			assert.Empty(t, e.calls, "refreshed flow expired early")
			expireAll(t, ft, deadline+wheelSlotTicks-1, 10, e.fn)
			assert.Equal(t, map[uint32]ExpireReason{i: ExpireIdle}, e.calls)
		})
	}
}

func TestSetStateShortensExpiry(t *testing.T) {
	tests := []struct {
		name   string
		flags  uint8
		reason ExpireReason
	}{
		{"fins", FlagFinOut | FlagFinIn, ExpireClosed},
		{"rst", FlagRST, ExpireReset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := NewFlowTable(4, testTimeouts, 0)
			f := Flow{Proto: testTCP, State: StateTCPEstablished}
			i, ok := ft.Insert(&f, 0)
			require.True(t, ok)
			e := newExpiry()
			ft.SetState(i, StateTCPClosing, tc.flags, 5_000)
			deadline := Tick(5_000) + testTimeouts.TCPClosing
			expireAll(t, ft, deadline-1, 10, e.fn)
			assert.Empty(t, e.calls)
			expireAll(t, ft, deadline+wheelSlotTicks-1, 10, e.fn)
			assert.Equal(t, map[uint32]ExpireReason{i: tc.reason}, e.calls)
		})
	}
}

func TestSetStateLongerTimeout(t *testing.T) {
	ft := NewFlowTable(4, testTimeouts, 0)
	f := Flow{Proto: testTCP, State: StateTCPSynSent}
	i, ok := ft.Insert(&f, 0)
	require.True(t, ok)
	ft.SetState(i, StateTCPEstablished, 0, 1_000)
	e := newExpiry()
	deadline := Tick(1_000) + testTimeouts.TCPEstablished
	expireAll(t, ft, testTimeouts.TCPTransitory+wheelSlotTicks, 10, e.fn)
	expireAll(t, ft, deadline-1, 10, e.fn)
	assert.Empty(t, e.calls, "established flow expired at the transitory deadline")
	expireAll(t, ft, deadline+wheelSlotTicks-1, 10, e.fn)
	assert.Len(t, e.calls, 1)
}

func TestExpireBudget(t *testing.T) {
	tests := []struct {
		name   string
		flows  int
		budget int
		calls  int // Expire calls until more is false
	}{
		{"exact multiple", 90, 30, 3},
		{"remainder", 100, 30, 4},
		{"one by one", 5, 1, 5},
		{"budget larger than work", 10, 100, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(11, uint64(tc.flows)))
			ft := NewFlowTable(tc.flows, testTimeouts, 0)
			for range tc.flows {
				f := randomFlow(r)
				f.Proto, f.State = testUDP, StateUDP
				_, ok := ft.Insert(&f, Tick(r.IntN(5000)))
				require.True(t, ok)
			}
			e := newExpiry()
			now := testTimeouts.UDP + 10_000
			calls, total := 0, 0
			for more := true; more; {
				n, m := ft.Expire(now, tc.budget, e.fn)
				assert.LessOrEqual(t, n, tc.budget)
				total += n
				calls++
				more = m
				require.Less(t, calls, 1000)
			}
			assert.Equal(t, tc.calls, calls)
			assert.Equal(t, tc.flows, total)
			assert.Len(t, e.calls, tc.flows)
			assert.Zero(t, ft.Len())
		})
	}

	t.Run("zero budget", func(t *testing.T) {
		ft := NewFlowTable(4, testTimeouts, 0)
		f := Flow{Proto: testUDP, State: StateUDP}
		_, ok := ft.Insert(&f, 0)
		require.True(t, ok)
		n, more := ft.Expire(testTimeouts.UDP+wheelSlotTicks, 0, nil)
		assert.Zero(t, n)
		assert.True(t, more)
		assert.Equal(t, 1, ft.Len())
	})
	t.Run("re-filing counts against the budget", func(t *testing.T) {
		ft := NewFlowTable(50, testTimeouts, 0)
		r := rand.New(rand.NewPCG(12, 12))
		var idx []uint32
		for range 50 {
			f := randomFlow(r)
			f.Proto, f.State = testUDP, StateUDP
			i, ok := ft.Insert(&f, 0)
			require.True(t, ok)
			idx = append(idx, i)
		}
		for _, i := range idx {
			ft.Touch(i, 100_000)
		}
		n, more := ft.Expire(testTimeouts.UDP+wheelSlotTicks, 10, nil)
		assert.Zero(t, n)
		assert.True(t, more)
		assert.Zero(t, expireAll(t, ft, testTimeouts.UDP+wheelSlotTicks, 10, nil))
		assert.Equal(t, 50, ft.Len())
	})
}

func TestExpireTimeJump(t *testing.T) {
	tests := []struct {
		name   string
		jump   Tick
		budget int
	}{
		{"just over the horizon", wheelSlots*wheelSlotTicks + 1000, 1000},
		{"an hour", 3_600_000, 1000},
		{"a day, small budget", 86_400_000, 7},
		{"twenty days", 20 * 86_400_000, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(13, uint64(tc.jump)))
			ft := NewFlowTable(300, testTimeouts, 0)
			var stale, fresh []uint32
			for j := range 300 {
				f := randomFlow(r)
				i, ok := ft.Insert(&f, Tick(r.IntN(100_000)))
				require.True(t, ok)
				if j%3 == 0 {
					fresh = append(fresh, i)
				} else {
					stale = append(stale, i)
				}
			}
			now := tc.jump
			for _, i := range fresh {
				ft.Touch(i, now-1)
			}
			e := newExpiry()
			// However far now jumped, the cursor first moves to within one
			// horizon of it, so the walk over empty slots is bounded.
			ft.Expire(now-1000, 0, e.fn)
			assert.LessOrEqual(t, int32(now-1000-ft.cursor), int32(wheelFarthest))
			// A partial pass, a further jump, then the rest.
			ft.Expire(now-500, tc.budget, e.fn)
			expireAll(t, ft, now, tc.budget, e.fn)
			for _, i := range stale {
				assert.Contains(t, e.calls, i)
			}
			for _, i := range fresh {
				assert.NotContains(t, e.calls, i, "refreshed flow expired")
			}
			assert.Equal(t, len(fresh), ft.Len())

			// The survivors still expire on time after the jump.
			expireAll(t, ft, now-1+testTimeouts.TCPTransitory-1, tc.budget, e.fn)
			for _, i := range fresh {
				if ft.Flow(i).State == StateTCPSynSent {
					assert.NotContains(t, e.calls, i)
				}
			}
			expireAll(t, ft, now+testTimeouts.TCPEstablished+wheelSlotTicks, tc.budget, e.fn)
			assert.Zero(t, ft.Len())
		})
	}
}

// TestExpireProperty drives random inserts, refreshes, state changes,
// removals and clock steps (some beyond the horizon) and checks after every
// full Expire pass that no flow expired before its deadline and none is
// left one slot after it.
func TestExpireProperty(t *testing.T) {
	to := Timeouts{TCPEstablished: 600_000, TCPTransitory: 2_000, TCPClosing: 1_000, UDP: 5_000, ICMP: 3_000}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run("", func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			start := Tick(r.Uint32())
			ft := NewFlowTable(256, to, start)
			now := start
			deadlines := map[uint32]Tick{}
			var live []uint32
			fn := func(i uint32, f *Flow, _ ExpireReason) {
				d, ok := deadlines[i]
				require.True(t, ok, "expired an unknown flow")
				require.GreaterOrEqual(t, int32(now-d), int32(0), "expired %d ms early", int32(d-now))
				require.Equal(t, d, f.LastSeen+Timeout(f.State, &to))
				delete(deadlines, i)
			}
			for range 20_000 {
				switch x := r.IntN(100); {
				case x < 1:
					now += Tick(r.IntN(2_000_000))
				case x < 40:
					now += Tick(r.IntN(700))
				}
				live = live[:0]
				for i := range deadlines {
					live = append(live, i)
				}
				switch x := r.IntN(10); {
				case x < 4 || len(live) == 0:
					f := randomFlow(r)
					if i, ok := ft.Insert(&f, now); ok {
						deadlines[i] = now + Timeout(f.State, &to)
					}
				case x < 6:
					i := live[r.IntN(len(live))]
					ft.Touch(i, now)
					deadlines[i] = now + Timeout(ft.Flow(i).State, &to)
				case x < 8:
					i := live[r.IntN(len(live))]
					f := ft.Flow(i)
					if f.Proto == testTCP {
						states := [...]uint8{StateTCPSynSent, StateTCPEstablished, StateTCPClosing}
						s := states[r.IntN(len(states))]
						ft.SetState(i, s, f.Flags, now)
						deadlines[i] = now + Timeout(s, &to)
					}
				case x < 9:
					i := live[r.IntN(len(live))]
					ft.Remove(i)
					delete(deadlines, i)
				default:
					expireAll(t, ft, now, 1+r.IntN(40), fn)
					for i, d := range deadlines {
						require.Less(t, int32(now-d), int32(wheelSlotTicks-1), "flow %d overdue", i)
					}
				}
				require.Equal(t, len(deadlines), ft.Len())
			}
		})
	}
}

// Expire takes due flows off the wheel in batches (expireBatch) and
// removes their index entries afterwards: at every budget, across batch
// boundaries and with refreshed flows in between, an expired flow is gone
// from both indexes and the record array, and every other flow is still
// found by both keys.
func TestExpireBatchesUnindex(t *testing.T) {
	for _, budget := range []int{1, expireBatch - 1, expireBatch, expireBatch + 1, 3*expireBatch + 5, 1000} {
		t.Run(strconv.Itoa(budget), func(t *testing.T) {
			r := rand.New(rand.NewPCG(31, uint64(budget)))
			ft := NewFlowTable(300, testTimeouts, 0)
			flows := map[uint32]Flow{}
			for range 300 {
				f := randomFlow(r)
				f.Proto, f.State = testUDP, StateUDP
				i, ok := ft.Insert(&f, Tick(r.IntN(4*int(wheelSlotTicks))))
				require.True(t, ok)
				flows[i] = *ft.Flow(i)
			}
			// Every third flow is refreshed: it goes back on the wheel
			// in the middle of the due slots' lists.
			for i := range flows {
				if i%3 == 0 {
					ft.Touch(i, 50_000)
				}
			}
			expired := map[uint32]bool{}
			fn := func(i uint32, f *Flow, _ ExpireReason) {
				require.Equal(t, flows[i].Priv, f.Priv, "reported a record that is not the flow's")
				expired[i] = true
			}
			now := testTimeouts.UDP + 6*wheelSlotTicks
			expireAll(t, ft, now, budget, fn)
			for i, f := range flows {
				out, in := outKeyOf(&f), inKeyOf(&f)
				if expired[i] {
					assert.Zero(t, ft.LookupOut(&out), "expired flow %d still in the out index", i)
					assert.Zero(t, ft.LookupIn(&in), "expired flow %d still in the in index", i)
					assert.Equal(t, StateFree, ft.Flow(i).State)
					continue
				}
				assert.True(t, i%3 == 0, "flow %d not refreshed, not expired", i)
				assert.Equal(t, i, ft.LookupOut(&out), "live flow %d lost from the out index", i)
				assert.Equal(t, i, ft.LookupIn(&in), "live flow %d lost from the in index", i)
			}
			assert.Equal(t, len(flows)-len(expired), ft.Len())
		})
	}
}
