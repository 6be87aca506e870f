//go:build dpdk

package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/natgw/natgw/nat"
)

// tdSampleEvery is how often the harness reads the worker's counters
// during a tear-down. It sleeps in between: it runs on the generator's
// CPU, where spinning would starve the (SCHED_IDLE) generator and so
// lighten the load it measures under.
const tdSampleEvery = 100 * time.Microsecond

// teardownUnderLoad is the tear-down trial (teardown9693.go): it empties
// the table, opens the tear-down flows [k, N) at fill connections per
// second, jumps the clock by teardownGap, opens the load flows [0, k),
// runs the load over them for a step (the baseline), then runs it again
// and, a quarter into it, jumps the clock past the tear-down flows'
// timeout and times their expiry. floor is the throughput search's
// lowest rate (an NDR at it is degenerate). It leaves the table with the
// k load flows.
// teardownLoadPercent is the load during the tear-down, in percent of
// the throughput (issue 20: at least half).
const teardownLoadPercent = 50

// errTeardownLoad is returned when the load flows did not survive the
// tear-down (an expired load flow would be a wrong trial).
var errTeardownLoad = errors.New("tear-down: load flows expired")

func (b *rfcBench) teardownUnderLoad(res *rfcRun, fill, floor uint64, step time.Duration, stdout io.Writer) (*rfcTeardown, error) {
	w := b.rt.Workers[0]
	c := &w.Counters
	k, m := teardownSplit(b.o.Flows)
	basis, base := teardownBasis(res.Throughput, res.PDR, floor)
	td := &rfcTeardown{Flows: uint64(m), LoadFlows: uint64(k), LoadBasis: basis, BasisRate: base, LoadPercent: teardownLoadPercent,
		LoadRate: base * teardownLoadPercent / 100}
	if td.LoadRate == 0 {
		td.Error = "no throughput to load the worker at"
		return td, nil
	}
	timeout := b.policy.Load().Timeouts.UDP

	// The two sets of flows, apart on the clock.
	if err := b.emptyTable(); err != nil {
		return td, err
	}
	if err := b.openFlows(fill, k, uint32(b.o.Flows), stdout); err != nil {
		return td, fmt.Errorf("tear-down: opening the tear-down flows: %w", err)
	}
	idleLast := b.clock.now()
	if got := b.flowsActive(uint64(m)); got != uint64(m) {
		return td, fmt.Errorf("tear-down: %d UDP flows active after opening %d", got, m)
	}
	b.clock.jump(teardownGap)
	loadFirst := b.clock.now()
	if err := b.openFlows(fill, 0, k, stdout); err != nil {
		return td, fmt.Errorf("tear-down: opening the load flows: %w", err)
	}
	if err := b.eng.checkLearnt(); err != nil {
		return td, fmt.Errorf("tear-down: %w", err)
	}
	if got := b.flowsActive(uint64(b.o.Flows)); got != uint64(b.o.Flows) {
		return td, fmt.Errorf("tear-down: %d UDP flows active after opening the load flows, want %d", got, b.o.Flows)
	}

	// The baseline: the load alone.
	var tr trafficResult
	var terr error
	var load tdLoad
	var before [nat.NumVerdicts]uint64
	verdictDrops(w, &before)
	b.worker.maxGap.Store(0)
	polls, t := c.Polls.Load(), time.Now()
	b.onGen(func() {
		tr, terr = b.eng.trafficFlows(td.LoadRate, step, k)
		load = loadOf(tr, &b.eng.hist)
	})
	if terr != nil {
		return td, terr
	}
	td.LoadPollsPerSecond = float64(c.Polls.Load()-polls) / time.Since(t).Seconds()
	load.Note = fmt.Sprintf("out %+v, in %+v, natgw drops %s, %s", tr.Out, tr.In, formatDrops(verdictDrops(w, &before)), b.diag())
	td.Baseline = &load
	fmt.Fprintf(stdout, "rfc9693 %d flows: tear-down baseline, load %s pps over %d flows: lost %d of %d (%s)\n", b.o.Flows,
		formatRate(float64(td.LoadRate)), k, load.Lost, load.Offered, load.Note)

	// The load again, with the tear-down a quarter into it.
	expired0 := c.FlowsExpired[nat.ExpireIdle].Load()
	var during tdLoad
	b.worker.maxGap.Store(0)
	genStart := time.Now()
	b.gen <- func() {
		tr, terr = b.eng.trafficFlows(td.LoadRate, step, k)
		during = loadOf(tr, &b.eng.hist)
	}
	genEnd := genStart.Add(step)
	time.Sleep(step / 4)
	jump, room, err := teardownTrigger(idleLast, loadFirst, b.clock.now(), timeout)
	if err == nil {
		td.JumpMs = uint32(jump)
		err = b.timeTeardown(td, jump, room, expired0, genEnd)
	}
	<-b.genDone // the generator has finished the load
	if terr != nil {
		return td, errors.Join(err, terr)
	}
	during.Note = fmt.Sprintf("out %+v, in %+v, natgw drops %s, %s", tr.Out, tr.In, formatDrops(verdictDrops(w, &before)), b.diag())
	td.Load = &during
	if err != nil {
		return td, err
	}
	td.ExpiredIdle = c.FlowsExpired[nat.ExpireIdle].Load() - expired0
	if got := b.flowsActive(uint64(k)); got != uint64(k) || td.ExpiredIdle != uint64(m) {
		return td, fmt.Errorf("%w: %d UDP flows active after the tear-down, want the %d load flows; %d expired idle, want %d",
			errTeardownLoad, got, k, td.ExpiredIdle, m)
	}
	ended := ""
	if !td.LoadCovered {
		ended = " (the load ended first)"
	}
	fmt.Fprintf(stdout, "rfc9693 %d flows: tear-down of %d flows under %s pps over %d flows: T_N %.6f s, T_0 %.6f s, %s/s, %.1f flows/poll, load lost %d of %d (baseline %d of %d)%s (%s)\n",
		b.o.Flows, m, formatRate(float64(td.LoadRate)), k, td.Seconds, td.EmptySeconds, formatRate(td.FlowsPerSecond), td.FlowsPerPoll,
		during.Lost, during.Offered, load.Lost, load.Offered, ended, during.Note)
	return td, nil
}

// openFlows opens the connections of the flows [lo, hi) at rate per
// second, re-sending the ones lost (up to five rounds, as the filling of
// the table for phase 2).
func (b *rfcBench) openFlows(rate uint64, lo, hi uint32, stdout io.Writer) error {
	var r connectResult
	b.onGen(func() { r = b.eng.connectFlows(rate, lo, hi) })
	for round := 0; round < 5 && !r.pass(); round++ {
		b.onGen(func() { r = b.eng.connectMissing(max(1000, rate/4)) })
		fmt.Fprintf(stdout, "rfc9693 %d flows: tear-down, opening flows [%d, %d), round %d: %d missing connections established\n",
			b.o.Flows, lo, hi, round+2, r.Established)
	}
	if !r.pass() {
		return fmt.Errorf("flows [%d, %d) at %d/s: %+v", lo, hi, rate, r)
	}
	return nil
}

// timeTeardown jumps the clock by jump and times the worker's expiry of
// td.Flows flows (T_N, at most room), then T_0: the same with nothing
// due. genEnd is when the load ends.
func (b *rfcBench) timeTeardown(td *rfcTeardown, jump nat.Tick, room time.Duration, expired0 uint64, genEnd time.Time) error {
	c := &b.rt.Workers[0].Counters
	samples := make([]tdSample, 0, 1<<16)
	start, startUnc, err := b.jumpSeen(jump)
	if err != nil {
		return err
	}
	polls0 := c.Polls.Load()
	deadline := start.Add(room / 2)
	for {
		now := time.Now()
		s := tdSample{At: now.Sub(start), Expired: c.FlowsExpired[nat.ExpireIdle].Load() - expired0, Polls: c.Polls.Load() - polls0}
		if len(samples) == cap(samples) { // keep the last one: the span needs it
			samples = append(samples[:0], samples[len(samples)-1])
		}
		samples = append(samples, s)
		if s.Expired >= td.Flows {
			break
		}
		if now.After(deadline) {
			return fmt.Errorf("tear-down: %d of %d flows expired %s after the clock jump", s.Expired, td.Flows, room/2)
		}
		time.Sleep(tdSampleEvery)
	}
	tN, endUnc, polls, err := teardownSpan(samples, td.Flows)
	if err != nil {
		return err
	}
	td.SteadyFlowsPerPoll = steadyFlowsPerPoll(samples, td.Flows)
	td.LoadCovered = start.Add(tN).Before(genEnd)
	// T_0: a jump of one slot, with nothing left to expire; until the
	// worker publishes a poll that started after it was seen.
	start0, _, err := b.jumpSeen(nat.WheelSlotTicks)
	if err != nil {
		return err
	}
	p0 := c.Polls.Load()
	for c.Polls.Load() < p0+2 {
		if time.Since(start0) > 10*time.Second {
			return errors.New("tear-down: the worker published no poll in 10 s after the T_0 jump")
		}
		time.Sleep(tdSampleEvery)
	}
	t0 := time.Since(start0)
	td.finish(tN, t0, startUnc+endUnc, polls)
	return nil
}

// jumpSeen jumps the clock by jump and returns the last time the
// management loop was seen not to have published the jumped expiry tick
// yet (so a span from it is an upper bound), and the time from then
// until it was seen published (the most by which that span overstates).
func (b *rfcBench) jumpSeen(jump nat.Tick) (time.Time, time.Duration, error) {
	prev := time.Now()
	target := b.clock.jump(jump)
	deadline := prev.Add(10 * time.Second)
	for {
		now := time.Now()
		if tickReached(nat.Tick(b.rt.Manager.ExpireNow.Load()), target) {
			return prev, now.Sub(prev), nil
		}
		if now.After(deadline) {
			return now, 0, errors.New("the management loop did not publish the jumped expiry tick in 10 s")
		}
		prev = now
		time.Sleep(tdSampleEvery)
	}
}
