package main

import (
	"fmt"
	"io"
	"time"

	"github.com/natgw/natgw/nat"
)

// This file holds the pure pieces of the tear-down rate under load of
// the RFC 9693 method (issue 20: "tear-down rate while the worker
// forwards at least half its throughput"); teardown9693_dpdk.go runs the
// trial. The trial splits the run's N flows in two halves opened apart
// in time: the tear-down flows [k, N) first, then, after a jump of the
// harness's clock by teardownGap, the load flows [0, k). natgw files a
// flow on its timer wheel at its creation plus the UDP timeout, so the
// two halves lie in different wheel slots. Two-way traffic runs over the
// load flows only (engine.trafficFlows) at teardownLoadPercent of the
// throughput; during it the clock jumps so that the tear-down flows'
// deadlines have passed but not the load flows' slots: the worker
// expires the M = N - k idle flows while it forwards, and examines no
// load flow (a load flow's wheel slot coming due would cost a re-filing,
// which is not a tear-down). The rate is M / (T_N - T_0), as RFC 9693
// §4.6 and the previous method (natgw_dpdk.go, teardown): T_N from the
// management loop publishing the jumped expiry tick until the worker's
// counters show the M flows expired, T_0 the same procedure with nothing
// to expire, both under the same load.

// Parameters of the tear-down trial.
const (
	// teardownGap is how far the clock jumps between opening the
	// tear-down flows and the load flows: it bounds how long the
	// tear-down may take before the load flows' wheel slots come due.
	teardownGap nat.Tick = 60_000
	// teardownMargin is the slots the trigger jump goes past the last
	// tear-down flow's deadline: one for rounding the deadline up to its
	// slot, one for rounding the clock down to the due slot, one spare.
	teardownMargin = 3 * nat.WheelSlotTicks
	// natgwExpireBudget is how many wheel entries natgw's worker
	// examines per poll (lcore.Worker.PollOnce: w.tr.Expire(t, 256)); the
	// management loop only publishes the expiry clock (Manager.Run, each
	// iteration, at most about 1 ms apart), so this per-poll budget is
	// the only pacing of idle expiry.
	natgwExpireBudget = 256
)

// firstFlows returns the flows' order restricted to the flows [0, k)
// (1 <= k <= N): an affine permutation of its own, made as newGenFlows
// makes the full one; k = N gives g itself, so traffic's order is
// unchanged.
func (g genFlows) firstFlows(k uint32) genFlows {
	if int(k) == g.t.Flows {
		return g
	}
	h := g
	n := uint64(k)
	h.t.Flows = int(k)
	h.add = g.add % n
	h.mul = uint64(float64(n)*0.6180339887) | 1
	for gcd(h.mul, n) != 1 {
		h.mul++
	}
	h.step = h.mul % n
	return h
}

// connectFlows opens, at rate per second, the connections of the flows
// [lo, hi) only, forgetting what was learnt of them: the others are
// marked done and are not sent (the tear-down trial opens its two sets
// of flows apart). connectMissing completes what it leaves out.
func (e *engine) connectFlows(rate uint64, lo, hi uint32) connectResult {
	for i := range e.done {
		in := uint32(i) >= lo && uint32(i) < hi
		e.done[i] = !in
		if in {
			e.pub[i] = 0
		}
	}
	return e.connectMissing(rate)
}

// teardownSplit returns the load flows k and the tear-down flows m of a
// run of n flows: half each (the load flows the lower half).
func teardownSplit(n int) (k, m uint32) {
	k = uint32(n / 2)
	return k, uint32(n) - k
}

// teardownBasis chooses the throughput the load is a share of: the
// zero-loss throughput (NDR), unless it is degenerate — 0, at the
// search's lowest rate (floor: nothing above it was tried with success)
// or below half the PDR — and then the PDR. It returns "ndr" or "pdr"
// and the rate, or "" and 0 when neither search found a rate.
func teardownBasis(ndr, pdr, floor uint64) (string, uint64) {
	if ndr > floor && 2*ndr >= pdr {
		return "ndr", ndr
	}
	if pdr > 0 {
		return "pdr", pdr
	}
	if ndr > 0 {
		return "ndr", ndr
	}
	return "", 0
}

// teardownTrigger returns how far the clock must jump at now so that
// every tear-down flow (last seen at or before idleLast) is due, and
// how long the tear-down may then take before the first load flow's
// wheel slot (filed at or after loadFirst + udp) comes due. An error
// says the jump would expire nothing new or reach the load flows.
func teardownTrigger(idleLast, loadFirst, now, udp nat.Tick) (jump nat.Tick, room time.Duration, err error) {
	target := idleLast + udp + teardownMargin
	if int32(target-now) <= 0 {
		return 0, 0, fmt.Errorf("tear-down: the tear-down flows expired before the trigger (now %d, due at %d)", now, target)
	}
	// The load flows' slots start at or after loadFirst + udp; the
	// clock must stay a slot short of it.
	left := int32(loadFirst + udp - nat.WheelSlotTicks - target)
	if left <= 0 {
		return 0, 0, fmt.Errorf("tear-down: the load flows (opened at %d) are not a slot behind the tear-down flows (last seen %d)", loadFirst, idleLast)
	}
	return target - now, time.Duration(left) * time.Millisecond, nil
}

// tdSample is one reading of the worker's counters during a tear-down.
type tdSample struct {
	// At is the time since the jumped expiry tick was seen published.
	At time.Duration
	// Expired is how much FlowsExpired[idle] grew since the trigger.
	Expired uint64
	// Polls is how much Polls grew since the trigger.
	Polls uint64
}

// teardownSpan returns, from samples in time order, the time the worker
// took to expire m flows: the first sample showing them all (an upper
// bound), how much it may overstate it, and the polls up to that
// sample. The worker publishes its counters every 64 busy polls, so a
// sample may show a value published well before it: the last flow
// expired after the publication of the last count below m, which
// happened after the sample before the first showing that count.
func teardownSpan(samples []tdSample, m uint64) (span, uncertainty time.Duration, polls uint64, err error) {
	if m == 0 {
		return 0, 0, 0, errNoFlows
	}
	for j, s := range samples {
		if s.Expired >= m {
			i := j // the first sample showing the last count below m
			for i > 0 && (i == j || samples[i-1].Expired == samples[i].Expired) {
				i--
			}
			prev := time.Duration(0)
			if i > 0 {
				prev = samples[i-1].At
			}
			return s.At, s.At - prev, s.Polls, nil
		}
	}
	last := uint64(0)
	if len(samples) > 0 {
		last = samples[len(samples)-1].Expired
	}
	return 0, 0, 0, fmt.Errorf("tear-down: the worker expired %d of %d flows while sampled", last, m)
}

// steadyFlowsPerPoll returns the flows the worker expired per poll
// between the first published count of at least m/10 and the first of
// at least 9m/10 (both counters come from one publication), free of the
// start's and the end's publication delays; 0 when the samples do not
// show both.
func steadyFlowsPerPoll(samples []tdSample, m uint64) float64 {
	a, b := -1, -1
	for i, s := range samples {
		if a < 0 && s.Expired >= m/10 {
			a = i
		}
		if s.Expired >= m-m/10 {
			b = i
			break
		}
	}
	if a < 0 || b < 0 || samples[b].Polls <= samples[a].Polls {
		return 0
	}
	return float64(samples[b].Expired-samples[a].Expired) / float64(samples[b].Polls-samples[a].Polls)
}

// tdLoad is the load of one traffic run of the tear-down trial.
type tdLoad struct {
	Rate     uint64  `json:"rate_pps"`
	Seconds  float64 `json:"seconds"`
	Offered  uint64  `json:"offered"`
	Lost     uint64  `json:"lost"`
	LossRate float64 `json:"loss_ratio"`
	// Refused is the part of Lost the rings refused (natgw behind).
	Refused uint64  `json:"refused"`
	Bad     uint64  `json:"bad"`
	P99us   float64 `json:"p99_us"`
	MaxUs   float64 `json:"max_us"`
	Limited bool    `json:"generator_limited"`
	// Note is the harness's diagnostics of the run (both directions'
	// counts, natgw's drops, the worker's longest poll gap, the rings).
	Note string `json:"note,omitempty"`
}

// loadOf summarises a traffic run and its latency histogram.
func loadOf(tr trafficResult, h *latencyHist) tdLoad {
	l := tdLoad{Rate: tr.Rate, Seconds: tr.Seconds, Offered: tr.Out.Offered + tr.In.Offered, Lost: tr.lost(),
		Refused: tr.Out.Offered - tr.Out.Accepted + tr.In.Offered - tr.In.Accepted, Bad: tr.Out.Bad + tr.In.Bad, Limited: tr.Limited}
	if l.Offered > 0 {
		l.LossRate = float64(l.Lost) / float64(l.Offered)
	}
	if h != nil && h.total > 0 {
		l.P99us, l.MaxUs = float64(h.percentile(0.99))/1e3, float64(h.max)/1e3
	}
	return l
}

// rfcTeardown is the tear-down rate under load of one run. Its first
// fields are those bench/trex/trex_rfc9693.py writes in its "teardown"
// object, so the report reads both.
type rfcTeardown struct {
	// Flows is M, the flows torn down; ExpiredIdle how much natgw's
	// FlowsExpired[idle] grew (must be M).
	Flows       uint64 `json:"flows"`
	ExpiredIdle uint64 `json:"flows_expired_idle"`
	// Seconds is T_N; FlowsPerSecond M / (T_N - T_0).
	Seconds        float64 `json:"t_n_s"`
	FlowsPerSecond float64 `json:"flows_per_s"`
	// LoadRate is the two-way load during the tear-down (frames/s).
	LoadRate uint64 `json:"load_pps"`
	Error    string `json:"error,omitempty"`

	// EmptySeconds is T_0: the same jump with nothing due, under the
	// same load, until the worker published a poll that had seen it.
	EmptySeconds float64 `json:"t_0_s,omitempty"`
	// UncertaintySeconds is how much T_N may overstate the tear-down
	// (the sampling and publication interval at its start and end).
	UncertaintySeconds float64 `json:"uncertainty_s,omitempty"`
	// LoadFlows is k, the flows carrying the load (none expires).
	LoadFlows uint64 `json:"load_flows,omitempty"`
	// LoadBasis is the throughput the load is LoadPercent of: "ndr"
	// (zero loss) or "pdr" (≤ 0.5 % loss, when the NDR is degenerate),
	// BasisRate its rate.
	LoadBasis   string `json:"load_basis,omitempty"`
	BasisRate   uint64 `json:"basis_pps,omitempty"`
	LoadPercent int    `json:"load_percent,omitempty"`
	// JumpMs is how far the clock jumped at the trigger.
	JumpMs uint32 `json:"clock_jump_ms,omitempty"`
	// Polls is the worker's polls during T_N, FlowsPerPoll M / Polls;
	// PollBudget natgw's per-poll expiry budget and BudgetCeiling the
	// rate that budget allows at the polls per second seen during T_N
	// (FlowsPerSecond at it: the budget, not the expiry work, paced it).
	Polls        uint64  `json:"polls_t_n,omitempty"`
	FlowsPerPoll float64 `json:"flows_per_poll,omitempty"`
	// SteadyFlowsPerPoll is the flows per poll from 10 to 90 % of the
	// tear-down (steadyFlowsPerPoll): at the budget, every poll spent it.
	SteadyFlowsPerPoll float64 `json:"flows_per_poll_steady,omitempty"`
	PollBudget         int     `json:"poll_budget,omitempty"`
	BudgetCeiling      float64 `json:"budget_ceiling_per_s,omitempty"`
	// PollsPerSecond is the worker's poll rate during T_N,
	// LoadPollsPerSecond during the baseline (the load alone): a poll
	// rate during T_N well below the load's says the expiry work, not
	// the budget, sets the pace.
	PollsPerSecond     float64 `json:"polls_per_s_t_n,omitempty"`
	LoadPollsPerSecond float64 `json:"polls_per_s_load,omitempty"`
	// Load is the traffic run the tear-down happened in, Baseline one
	// at the same rate and length just before it, without tear-down.
	Load     *tdLoad `json:"load,omitempty"`
	Baseline *tdLoad `json:"baseline,omitempty"`
	// LoadCovered: the load ran from before the trigger until after
	// the last flow was torn down.
	LoadCovered bool `json:"load_covered,omitempty"`
}

// finish computes the rates from T_N (with its polls and uncertainty)
// and T_0; a rate that cannot be computed is the result's Error.
func (t *rfcTeardown) finish(tN, t0, uncertainty time.Duration, polls uint64) {
	t.Seconds, t.EmptySeconds, t.UncertaintySeconds, t.Polls = tN.Seconds(), t0.Seconds(), uncertainty.Seconds(), polls
	t.PollBudget = natgwExpireBudget
	if polls > 0 {
		t.FlowsPerPoll = float64(t.Flows) / float64(polls)
	}
	if tN > 0 {
		t.PollsPerSecond = float64(polls) / tN.Seconds()
		t.BudgetCeiling = natgwExpireBudget * t.PollsPerSecond
	}
	r, err := teardownRate(t.Flows, tN, t0)
	if err != nil {
		t.Error = err.Error()
		return
	}
	t.FlowsPerSecond = r
}

// budgetBound reports whether the per-poll budget paced the tear-down:
// the worker expired at least 95 % of the budget per poll and still
// polled at least half as often as with the load alone (were the polls
// much slower, the expiry work would set the pace, and a larger budget
// would not make it faster).
func (t *rfcTeardown) budgetBound() bool {
	return t.fullBudget() && t.LoadPollsPerSecond > 0 && t.PollsPerSecond >= 0.5*t.LoadPollsPerSecond
}

// fullBudget reports whether the worker spent (nearly) its whole budget
// per poll: in the steady part of the tear-down when the samples show
// it, else over T_N.
func (t *rfcTeardown) fullBudget() bool {
	per := t.FlowsPerPoll
	if t.SteadyFlowsPerPoll > 0 {
		per = t.SteadyFlowsPerPoll
	}
	return t.PollBudget > 0 && per >= 0.95*float64(t.PollBudget)
}

// pace says what set the tear-down's pace, for the report.
func (t *rfcTeardown) pace() string {
	switch {
	case t.FlowsPerSecond <= 0:
		return ""
	case t.budgetBound():
		return "paced by the per-poll budget"
	case t.fullBudget():
		return "the expiry work: full budget per poll, polls slowed"
	}
	return ""
}

// teardownRun returns the run whose tear-down the targets quote: the
// one with the most flows and a rate.
func teardownRun(runs []rfcRun) *rfcRun {
	var best *rfcRun
	for i := range runs {
		r := &runs[i]
		if r.Teardown != nil && r.Teardown.Error == "" && r.Teardown.FlowsPerSecond > 0 {
			best = r
		}
	}
	return best
}

// teardownTarget is issue 20's tear-down row of the targets: met when
// the rate reaches the target under at least 50 % load.
func teardownTarget(runs []rfcRun) rfcTarget {
	t := rfcTarget{What: "tear-downs/s under ≥ 50 % load", Target: "≥ 5 M/s", Measured: "-", Met: "not measured"}
	r := teardownRun(runs)
	if r == nil {
		return t
	}
	td := r.Teardown
	t.Measured = fmt.Sprintf("%.2f M/s (%s flows, load %.2f Mpps", td.FlowsPerSecond/1e6, countLabel(r.Flows), float64(td.LoadRate)/1e6)
	if td.LoadBasis != "" {
		t.Measured += fmt.Sprintf(", %d %% of the %s", td.LoadPercent, basisName(td.LoadBasis))
	}
	t.Measured += ")"
	loaded := td.LoadBasis == "" || td.LoadPercent >= 50 // TRex's files load at half the throughput
	t.Met = yesNo(loaded && td.FlowsPerSecond >= target20TeardownRat)
	return t
}

// basisName names a load basis for the report.
func basisName(b string) string {
	switch b {
	case "ndr":
		return "zero-loss throughput"
	case "pdr":
		return "PDR (zero-loss throughput degenerate)"
	}
	return b
}

// writeTeardownMarkdown writes the report's tear-down section.
func writeTeardownMarkdown(w io.Writer, runs []rfcRun) {
	fmt.Fprintf(w, "\n### Tear-down under load\n\n")
	fmt.Fprintf(w, "The run's flows in two halves opened %d s apart on the harness's clock: two-way traffic over one half (the load) while the clock jumps past the other half's UDP timeout, not the load's; "+
		"rate M / (T_N − T_0): T_N from natgw publishing the jumped expiry tick until the worker's counters show the M flows expired, T_0 the same with nothing to expire. "+
		"The worker examines at most %d flows per poll (natgw's budget); the budget ceiling is what it allows at the polls per second seen. The whole budget spent per poll (steady: from 10 to 90 %% of M) with polls about as frequent as with the load alone: the budget paces the rate; with polls much slower: the expiry work does. "+
		"Load loss: the traffic run the tear-down fell in, beside one just before at the same rate and length.\n\n", teardownGap/1000, natgwExpireBudget)
	fmt.Fprintf(w, "| live flows | torn down (M) | load flows | load | T_N | T_0 | tear-downs/s | flows/poll (steady) | polls/s (T_N / load alone) | budget ceiling | load lost (with tear-down) | load lost (baseline) | load p99 / max | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i := range runs {
		x := &runs[i]
		td := x.Teardown
		if td == nil {
			continue
		}
		load := fmt.Sprintf("%.3f Mpps", float64(td.LoadRate)/1e6)
		if td.LoadBasis != "" {
			load += fmt.Sprintf(" (%d %% of %s %.3f)", td.LoadPercent, td.LoadBasis, float64(td.BasisRate)/1e6)
		}
		lost := func(l *tdLoad) string {
			if l == nil {
				return "-"
			}
			return fmt.Sprintf("%d of %d (%.3f %%)", l.Lost, l.Offered, 100*l.LossRate)
		}
		lat := "-"
		if td.Load != nil {
			lat = fmt.Sprintf("%.1f / %.1f µs", td.Load.P99us, td.Load.MaxUs)
		}
		note := td.Error
		if note == "" {
			note = td.pace()
		}
		if td.Load != nil && !td.LoadCovered && td.Error == "" {
			note += "; the load ended before the tear-down"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %.6f s (± %.6f) | %.6f s | %.3f M | %.1f (%.1f) | %.0f / %.0f | %.3f M/s | %s | %s | %s | %s |\n",
			countLabel(x.Flows), td.Flows, td.LoadFlows, load, td.Seconds, td.UncertaintySeconds, td.EmptySeconds,
			td.FlowsPerSecond/1e6, td.FlowsPerPoll, td.SteadyFlowsPerPoll, td.PollsPerSecond, td.LoadPollsPerSecond, td.BudgetCeiling/1e6,
			lost(td.Load), lost(td.Baseline), lat, note)
	}
}
