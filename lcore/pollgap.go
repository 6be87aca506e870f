package lcore

import "time"

// This file measures how long a worker goes without polling: the gap
// between the starts of two successive polls. A busy-polling worker
// polls every few microseconds; a gap of milliseconds means something
// took its CPU (another thread the kernel preferred, the hypervisor,
// Go's scheduler handing the worker's processor around after its 10 ms
// preemption) or one poll did that much work. While it lasts nothing
// drains the worker's RX queues: a NIC ring of 1024 descriptors holds
// 69 µs of traffic at 14.88 Mpps, so such stalls are what makes a
// worker lose frames below its throughput (BENCHMARKS.md, "Worker
// stalls"). The worker reads a monotonic clock once per poll (one vDSO
// call, never per packet), keeps the counts and the longest gap in its
// own fields and publishes them with its other counters.

// NumPollGapLimits is the number of poll-gap thresholds counted.
const NumPollGapLimits = 3

// pollGapLimits are the thresholds of WorkerCounters.PollGaps, in ns.
var pollGapLimits = [NumPollGapLimits]int64{100_000, 1_000_000, 10_000_000}

// PollGapLimits returns the thresholds WorkerCounters.PollGaps counts
// gaps over: 100 µs, 1 ms and 10 ms.
func PollGapLimits() [NumPollGapLimits]time.Duration {
	var d [NumPollGapLimits]time.Duration
	for i, l := range pollGapLimits {
		d[i] = time.Duration(l)
	}
	return d
}

// PollGapWindow is the length of the windows WorkerCounters.PollGapMax
// is the maximum over: it holds the longest gap of the current and the
// previous window, so any scrape interval up to PollGapWindow sees every
// long gap.
const PollGapWindow = 30 * time.Second

// pollGaps is a worker's own poll-gap state.
type pollGaps struct {
	// nanos is the monotonic clock, ns (tests replace it).
	nanos func() int64
	// last is the start of the previous poll, 0 when the next poll
	// follows a deliberate wait (Run's idle wait) or is the first.
	last int64
	// cur and prev are the longest gaps of the current and the previous
	// window; winStart is when the current window began.
	cur, prev, winStart int64
	over                [NumPollGapLimits]uint64
}

// init starts the clock.
func (g *pollGaps) init() {
	epoch := time.Now()
	g.nanos = func() int64 { return int64(time.Since(epoch)) + 1 }
}

// note is called at the start of every poll.
func (g *pollGaps) note() {
	t := g.nanos()
	if g.last != 0 {
		gap := t - g.last
		g.cur = max(g.cur, gap)
		if gap > pollGapLimits[0] {
			for i, l := range pollGapLimits {
				if gap > l {
					g.over[i]++
				}
			}
		}
	}
	if t-g.winStart >= int64(PollGapWindow) {
		g.prev, g.cur, g.winStart = g.cur, 0, t
	}
	g.last = t
}

// skip makes the next poll's gap uncounted: the worker waited on
// purpose (an idle worker blocking in its driver).
func (g *pollGaps) skip() { g.last = 0 }

// publish copies the counts and the longest gap to c.
func (g *pollGaps) publish(c *WorkerCounters) {
	for i := range g.over {
		c.PollGaps[i].Store(g.over[i])
	}
	c.PollGapMax.Store(max(g.cur, g.prev))
}
