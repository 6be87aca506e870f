package nat

// Idle expiry of the flow table: a timer wheel of wheelSlots slots of
// wheelSlotTicks milliseconds, with doubly linked lists threaded through the
// flow records (Flow.next, Flow.prev, Flow.slot). The wheel belongs to its
// FlowTable and runs on the worker that owns the table; Expire is called by
// that worker when the management core asks it to (see docs/DESIGN.md).
//
// Filing rule: a flow whose deadline is D is filed in the first slot that
// starts at or after D, so a slot whose start time has passed holds only
// flows that are due, unless they were refreshed by Touch since they were
// filed. Processing a slot re-checks each flow's real deadline
// (LastSeen + Timeout(State)) and re-files the refreshed ones. A deadline
// beyond the horizon is filed in the farthest slot and re-filed when that
// slot comes up. Nothing here allocates.

import "time"

// Tick is a time in milliseconds from an arbitrary epoch. It wraps every
// 49.7 days; compare two ticks with a signed difference (int32(a-b) < 0
// means a is before b), never with < on the raw values.
type Tick uint32

// MaxTimeout is the longest idle timeout the flow table honours (24 h, see
// docs/DESIGN.md); longer timeouts are cut to it so that signed tick
// differences stay meaningful.
const MaxTimeout Tick = 24 * 60 * 60 * 1000

// TickFromDuration converts d to whole milliseconds modulo 2^32, so it
// serves both for timeouts and for a clock reading taken as the time elapsed
// since an epoch. A negative d gives 0.
func TickFromDuration(d time.Duration) Tick {
	if d < 0 {
		return 0
	}
	return Tick(uint64(d / time.Millisecond))
}

// Timeouts are the idle timeouts of each flow state class [S5], in ticks.
type Timeouts struct {
	// TCPEstablished applies to established TCP flows, including those that
	// have seen a FIN in one direction only.
	TCPEstablished Tick
	// TCPTransitory applies to half-open TCP flows (SYN seen, no reply yet).
	TCPTransitory Tick
	// TCPClosing is the linger after FINs in both directions or a RST.
	TCPClosing Tick
	// UDP applies to UDP flows.
	UDP Tick
	// ICMP applies to ICMP echo flows.
	ICMP Tick
}

// Timeout returns the idle timeout of a flow in state, per to. StateFree and
// unknown states have a zero timeout.
func Timeout(state uint8, to *Timeouts) Tick {
	switch state {
	case StateTCPSynSent:
		return to.TCPTransitory
	case StateTCPEstablished:
		return to.TCPEstablished
	case StateTCPClosing:
		return to.TCPClosing
	case StateUDP:
		return to.UDP
	case StateICMP:
		return to.ICMP
	}
	return 0
}

// ExpireReason says why a flow left the table (the reason label of
// natgw_flows_expired_total).
type ExpireReason uint8

// Expiry reasons.
const (
	// ExpireIdle is an idle timeout.
	ExpireIdle ExpireReason = iota
	// ExpireClosed is the end of the linger after FINs in both directions.
	ExpireClosed
	// ExpireReset is the end of the linger after a RST.
	ExpireReset
	// ExpireReclaimed is a flow whose port was taken back by a reload [S7];
	// the flow table never reports it itself, the translator does.
	ExpireReclaimed
	// NumExpireReasons is the number of reasons, for arrays of counters.
	NumExpireReasons
)

var expireReasonNames = [NumExpireReasons]string{"idle", "closed", "reset", "reclaimed"}

// String returns the metric label of r ("idle", "closed", "reset",
// "reclaimed"). It is not for the packet path.
func (r ExpireReason) String() string {
	if r < NumExpireReasons {
		return expireReasonNames[r]
	}
	return "unknown"
}

// expireReason returns the reason an expiring flow in state with flags is
// reported with.
func expireReason(state, flags uint8) ExpireReason {
	if state == StateTCPClosing {
		if flags&FlagRST != 0 {
			return ExpireReset
		}
		return ExpireClosed
	}
	return ExpireIdle
}

// Wheel geometry: wheelSlots slots of wheelSlotTicks ticks, a horizon of
// about 8.7 minutes. wheelSlots divides 2^32/wheelSlotTicks, so slot numbers
// stay consistent when Tick wraps.
const (
	wheelSlotShift = 7
	wheelSlotTicks = 1 << wheelSlotShift
	wheelSlots     = 4096
	wheelMask      = wheelSlots - 1
	// wheelFarthest is the distance from the cursor to the farthest slot.
	wheelFarthest = (wheelSlots - 1) * wheelSlotTicks
)

// WheelSlotTicks is the granularity of idle expiry: a flow expires within
// one slot (128 ms) after its deadline, when its wheel slot comes up.
const WheelSlotTicks Tick = wheelSlotTicks

// wheelFile puts flow i, whose deadline is deadline, on the wheel. The flow
// must not be on the wheel.
func (t *FlowTable) wheelFile(i uint32, deadline Tick) {
	start := (deadline + wheelSlotTicks - 1) &^ (wheelSlotTicks - 1)
	d := int32(start - t.cursor)
	if d < 0 {
		start = t.cursor
	} else if d > wheelFarthest {
		start = t.cursor + wheelFarthest
	}
	w := uint32(start>>wheelSlotShift) & wheelMask
	f := &t.flows[i]
	next := t.heads[w]
	f.slot = uint16(w)
	f.prev = 0
	f.next = next
	if next != 0 {
		t.flows[next].prev = i
	}
	t.heads[w] = i
}

// wheelUnfile takes flow i off the wheel.
func (t *FlowTable) wheelUnfile(i uint32) {
	f := &t.flows[i]
	if f.prev == 0 {
		t.heads[f.slot&wheelMask] = f.next
	} else {
		t.flows[f.prev].next = f.next
	}
	if f.next != 0 {
		t.flows[f.next].prev = f.prev
	}
	f.next, f.prev = 0, 0
}

// Expire processes the wheel slots that are due at now, in time order,
// examining at most budget flows. Each flow whose deadline (LastSeen +
// Timeout(State)) has passed is reported to fn and then removed; fn runs
// before the removal, so f and its indexes are still valid, and fn must not
// modify the table. The reason is ExpireClosed for StateTCPClosing without
// FlagRST, ExpireReset for StateTCPClosing with FlagRST and ExpireIdle
// otherwise. Flows refreshed since they were filed go back on the wheel.
//
// Expire keeps a cursor: when the budget runs out it returns more = true and
// the next call resumes where this one stopped. more is false when every
// slot due at now has been processed. A now that jumped ahead by more than
// the wheel's horizon costs at most one pass over the wheel; now must not
// move more than 24 days (2^31 ticks) between calls. Expire does not
// allocate (fn is a func value the caller builds once).
func (t *FlowTable) Expire(now Tick, budget int, fn func(i uint32, f *Flow, r ExpireReason)) (expired int, more bool) {
	return t.expire(now, budget, fn, nil)
}

// expireBatch is the number of due flows expire takes off the wheel
// before it reports and removes them. Removing a flow reads lines no
// earlier step brought into cache: its home slots in both indexes and,
// in fn, the translator's usage and per-host counts. One at a time, each
// of those misses waits for the one before it; for a batch they are all
// prefetched at once, so the batch pays about one memory latency for
// them instead of four per flow (the tear-down rate at 1 M flows).
const expireBatch = 8

// expireHint names, for a due flow, up to two more lines its removal
// will read (0 = none): the translator's usage and per-host count slots.
type expireHint func(f *Flow) (a, b uintptr)

// expire is Expire with hint, which, when not nil, is asked for each
// due flow's lines before the flows of a batch are reported to fn.
func (t *FlowTable) expire(now Tick, budget int, fn func(i uint32, f *Flow, r ExpireReason), hint expireHint) (expired int, more bool) {
	due := now &^ (wheelSlotTicks - 1) // start of the last slot that is due
	if int32(due-t.cursor) > wheelFarthest {
		// Every filed flow is due: look at the wheel as ending at due.
		t.cursor = due - wheelFarthest
	}
	var (
		batch   [expireBatch]uint32
		outTags [expireBatch]uint32
		inTags  [expireBatch]uint32
		addrs   [4 * expireBatch]uintptr
	)
	examined := 0
	for {
		// Take up to expireBatch due flows off the wheel.
		n := 0
		for n < expireBatch && int32(due-t.cursor) >= 0 {
			w := uint32(t.cursor>>wheelSlotShift) & wheelMask
			i := t.heads[w]
			if i == 0 {
				t.cursor += wheelSlotTicks
				continue
			}
			if examined >= budget {
				more = true
				break
			}
			examined++
			t.wheelUnfile(i)
			f := &t.flows[i]
			deadline := f.LastSeen + t.timeouts[f.State&7]
			if int32(now-deadline) < 0 {
				t.wheelFile(i, deadline)
				continue
			}
			batch[n] = i
			n++
		}
		if n == 0 {
			return expired, more
		}
		// Prefetch what removing them reads.
		m := 0
		for j, i := range batch[:n] {
			f := &t.flows[i]
			outTags[j] = t.out.tag(f.Priv, f.Remote, f.PrivPort, f.RemotePort, f.Proto)
			inTags[j] = t.in.tag(f.Pub, f.Remote, f.PubPort, f.RemotePort, f.Proto)
			addrs[m], addrs[m+1] = t.out.homeAddr(outTags[j]), t.in.homeAddr(inTags[j])
			m += 2
			if hint != nil {
				if a, b := hint(f); a != 0 || b != 0 {
					addrs[m], addrs[m+1] = a, b
					m += 2
				}
			}
		}
		prefetchAddrs(&addrs[0], m)
		for j, i := range batch[:n] {
			f := &t.flows[i]
			if fn != nil {
				fn(i, f, expireReason(f.State, f.Flags))
				if f.State == StateFree {
					// fn removed the flow against the rules; don't free it twice.
					expired++
					continue
				}
			}
			t.out.remove(outTags[j], i)
			t.in.remove(inTags[j], i)
			t.release(i)
			expired++
		}
		if more {
			return expired, true
		}
	}
}
