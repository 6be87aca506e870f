package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/natgw/natgw/nat"
)

// This file holds the arithmetic of the connection establishment and
// tear-down rates (RFC 9693) and the harness's dataplane clock. It has no
// DPDK in it, so it is tested without hugepages; natgw_dpdk.go takes the
// measurements. Everything here runs on the harness's sampling goroutine,
// except benchClock.now, which the worker and the management loop call.

// Targets of issue 6 for one worker core.
const (
	targetEstablishRate = 2e6 // new flows per second
	targetTeardownRate  = 2e6 // flows released per second
)

// teardownJump returns how far the tear-down measurement moves the clock:
// past every flow's deadline (last seen at or before the jump, plus the
// UDP idle timeout), with one wheel slot for rounding the deadline up to
// its slot's start and one for rounding the clock down to the due slot.
func teardownJump(udp nat.Tick) nat.Tick { return udp + 2*nat.WheelSlotTicks }

// benchClock is the harness's dataplane clock (lcore.RuntimeConfig.Clock):
// real milliseconds since start, plus an offset the tear-down measurement
// moves forward to make every flow idle at once. now may be called from
// any goroutine; jump from one.
type benchClock struct {
	start  time.Time
	offset atomic.Uint32
}

func newBenchClock() *benchClock { return &benchClock{start: time.Now()} }

// now returns the current tick; never 0, as lcore requires.
func (c *benchClock) now() nat.Tick {
	t := nat.TickFromDuration(time.Since(c.start)) + 1 + nat.Tick(c.offset.Load())
	if t == 0 {
		return 1
	}
	return t
}

// jump moves the clock forward by d and returns the tick it reached: the
// first tick at which every reader sees the jump.
func (c *benchClock) jump(d nat.Tick) nat.Tick {
	c.offset.Add(uint32(d))
	return c.now()
}

// tickReached reports whether tick t is at or after target (signed tick
// difference: ticks wrap).
func tickReached(t, target nat.Tick) bool { return int32(t-target) >= 0 }

// flowSample is one reading of the worker's created-flows counter during
// the first pass over the pcap.
type flowSample struct {
	// At is the time since the pass started.
	At time.Duration
	// Created is the worker's published FlowsCreated, all protocols.
	Created uint64
}

// errNoFlows is returned for rates over no flows.
var errNoFlows = errors.New("no flows to measure")

// establishment computes the connection establishment measurement from the
// samples of a pass that must create want flows with no drop. The time
// from the first flow to the last is bracketed by the samples: the
// returned seconds run from the last sample that saw no flow to the first
// that saw them all (an upper bound, so the rate is a lower bound), and
// uncertainty is how much of that interval lies outside the samples that
// saw the pass under way (the most by which seconds overstates the time).
// samples must be in time order and start before the first flow.
func establishment(samples []flowSample, want uint64, drops map[string]uint64) (establishResult, error) {
	r := establishResult{Flows: want, Samples: len(samples), Drops: drops}
	if want == 0 {
		return r, errNoFlows
	}
	if len(samples) < 2 || samples[0].Created != 0 {
		return r, errors.New("establishment: the samples must start before the first flow and end after the last")
	}
	last := samples[len(samples)-1]
	r.Created = last.Created
	if last.Created != want {
		return r, fmt.Errorf("establishment: the pass created %d flows, want %d", last.Created, want)
	}
	if len(drops) > 0 {
		return r, fmt.Errorf("establishment: drops during the first pass (%s): the rate is not loss-free", formatDrops(drops))
	}
	zero, full := 0, len(samples)-1 // last sample with no flow, first with all
	for i, s := range samples {
		if s.Created == 0 {
			zero = i
		}
	}
	for i := len(samples) - 1; i >= 0 && samples[i].Created >= want; i-- {
		full = i
	}
	if full <= zero {
		return r, errors.New("establishment: the samples are not in time order")
	}
	span := samples[full].At - samples[zero].At
	inside := time.Duration(0) // between the first sample with flows and the last without all
	if full-1 > zero {
		inside = samples[full-1].At - samples[zero+1].At
	}
	r.Seconds = span.Seconds()
	r.UncertaintySeconds = (span - inside).Seconds()
	rate, err := flowRate(want, span)
	if err != nil {
		return r, fmt.Errorf("establishment: %w", err)
	}
	r.FlowsPerSecond = rate
	return r, nil
}

// flowRate returns flows / d in flows per second.
func flowRate(flows uint64, d time.Duration) (float64, error) {
	if flows == 0 {
		return 0, errNoFlows
	}
	if d <= 0 {
		return 0, fmt.Errorf("%d flows in %s: no measurable time", flows, d)
	}
	return float64(flows) / d.Seconds(), nil
}

// teardownRate is RFC 9693's tear-down rate: n / (tN - t0), where tN is
// the time to delete n flows and t0 the same procedure on an empty table.
// tN <= t0 is an error: the deletion of n flows took less than the
// procedure's own jitter, and the rate would be negative or infinite.
func teardownRate(n uint64, tN, t0 time.Duration) (float64, error) {
	if n == 0 {
		return 0, errNoFlows
	}
	if tN <= t0 {
		return 0, fmt.Errorf("T_N %s <= T_0 %s: deleting %d flows took less than the measurement's jitter; measure more flows", tN, t0, n)
	}
	return flowRate(n, tN-t0)
}

// establishVerdict compares an establishment measurement with the target:
// "met" when its lower bound reaches it, "missed" when even the rate over
// the interval without the sampling uncertainty does not, "inconclusive"
// in between (a pass too short for the sampling period).
func establishVerdict(e *establishResult) string {
	if e == nil || e.Error != "" || e.Seconds <= 0 {
		return "n/a"
	}
	if e.FlowsPerSecond >= targetEstablishRate {
		return "met"
	}
	if inner := e.Seconds - e.UncertaintySeconds; inner > 0 && float64(e.Flows)/inner < targetEstablishRate {
		return "**missed**"
	}
	return "inconclusive"
}

// teardownVerdict compares a tear-down measurement with the target.
func teardownVerdict(t *teardownResult) string {
	switch {
	case t == nil || t.Error != "":
		return "n/a"
	case t.FlowsPerSecond >= targetTeardownRate:
		return "met"
	}
	return "**missed**"
}
