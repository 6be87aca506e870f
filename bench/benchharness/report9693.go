package main

import (
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// This file writes the report of the RFC 9693 method (issue 20):
// bench/results/rfc9693.md and .json from the rfc9693-*.json results, and
// three SVG charts the report and README show: two-way zero-loss
// throughput against live flows, latency percentiles against load, and
// the connection establishment rate against the table's fill.

// Targets of issue 20 (one worker core).
const (
	target20Mpps1M      = 15e6  // two-way zero-loss frames/s at 1 M flows
	target20Mpps1K      = 20e6  // at 1 K flows
	target20CPS1M       = 2.5e6 // connections/s at 1 M flows
	target20CPS16M      = 2e6   // at 16 M flows
	target20Mpps16M     = 8e6   // established, at 16 M flows
	target20CapBytes    = 128   // bytes per flow of capacity
	target20LiveBytes   = 160   // bytes per live flow
	target20P99At50Us   = 20    // µs, p99 at 50 % load
	target20TeardownRat = 5e6   // tear-downs/s under load
)

// rfcRun is the result of one flow count.
type rfcRun struct {
	Flows        int      `json:"flows"`
	Capacity     int      `json:"flow_capacity"`
	Sources      int      `json:"sources"`
	StepSeconds  float64  `json:"step_s"`
	WorkerCPU    int      `json:"worker_cpu"`
	GeneratorCPU int      `json:"generator_cpu"`
	RingSize     int      `json:"ring_size"`
	EALArgs      []string `json:"eal_args"`
	// Connections is the zero-loss connection establishment rate (CSIT
	// CPS: first packet out, answer back, both translated), per second.
	Connections      uint64       `json:"connections_per_s"`
	ConnectionSteps  []searchStep `json:"connection_steps"`
	Throughput       uint64       `json:"throughput_pps"`
	ThroughputSteps  []searchStep `json:"throughput_steps"`
	GeneratorCeiling uint64       `json:"generator_max_offered_pps"`
	// GeneratorLoopback is the generator's own ceiling, measured over a
	// loopback without natgw before natgw was.
	GeneratorLoopback *genCeiling `json:"generator_loopback,omitempty"`
	// PDR is the highest two-way rate losing at most pdrLoss of the
	// frames (CSIT's partial drop rate), beside the zero-loss Throughput
	// (NDR).
	PDR      uint64       `json:"pdr_pps"`
	PDRSteps []searchStep `json:"pdr_steps,omitempty"`
	Latency  []latencyRow `json:"latency,omitempty"`
	// Teardown is the tear-down rate under load (teardown9693.go).
	Teardown        *rfcTeardown `json:"teardown,omitempty"`
	TranslatorBytes int          `json:"translator_bytes"`
	HeapBytes       uint64       `json:"go_heap_bytes"`
	Seconds         float64      `json:"seconds"`
	Error           string       `json:"error,omitempty"`
	// Mode is "" for the in-process method (gen_dpdk.go) and
	// modeNatgwRun for the run through natgw run (run9693.go), whose
	// view of natgw is Natgw.
	Mode  string        `json:"mode,omitempty"`
	Natgw *natgwRunView `json:"natgw_run,omitempty"`
	// Host is the host settings the run was measured with (hosttune.go).
	Host *hostTuning `json:"host,omitempty"`
}

// genCeiling is the generator's ceiling over the loopback.
type genCeiling struct {
	// Engine is "c" (cEngine, the rfc9693 generator) or "go" (engine.go).
	Engine      string  `json:"engine"`
	Flows       int     `json:"flows"`
	StepSeconds float64 `json:"step_s"`
	// Offered and Received are the frames per second (both directions)
	// offered and received back when told far more than it can do.
	Offered  uint64 `json:"saturated_offered_pps"`
	Received uint64 `json:"saturated_received_pps"`
	// ZeroLoss is the highest rate of a zero-loss binary search over the
	// loopback (steps of StepSeconds), Steps its trials.
	ZeroLoss uint64       `json:"zero_loss_pps"`
	Steps    []searchStep `json:"steps"`
}

// latencyRow is the latency at one load.
type latencyRow struct {
	LoadPercent int     `json:"load_percent"`
	Rate        uint64  `json:"rate_pps"`
	Frames      uint64  `json:"frames"`
	Lost        uint64  `json:"lost"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	P999us      float64 `json:"p99_9_us"`
	MaxUs       float64 `json:"max_us"`
}

// rfcReport is bench/results/rfc9693.json.
type rfcReport struct {
	Date    string      `json:"date"`
	Commit  string      `json:"commit"`
	Machine machine     `json:"machine"`
	Method  string      `json:"method"`
	Runs    []rfcRun    `json:"runs"`
	Targets []rfcTarget `json:"targets"`
	Charts  []string    `json:"charts"`
	Notes   []string    `json:"notes,omitempty"`

	// NatgwRuns are the runs through natgw run (run9693.go).
	NatgwRuns []rfcRun `json:"natgw_run_runs,omitempty"`
}

// rfcTarget is one of issue 20's targets and whether this run met it.
type rfcTarget struct {
	What     string `json:"what"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      string `json:"met"` // "yes", "no", or "not measured"
}

// cmdReport9693 is the "report9693" subcommand.
func cmdReport9693(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report9693", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "work directory holding rfc9693-*.json")
	out := fs.String("out", "bench/results", "directory of rfc9693.md, rfc9693.json and the charts")
	repo := fs.String("repo", ".", "repository (for the commit)")
	var notes multiFlag
	fs.Var(&notes, "note", "a note for the report (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		return errors.New("usage: benchharness report9693 -dir WORK [-out DIR] [-note TEXT (repeatable)]")
	}
	files, _ := filepath.Glob(filepath.Join(*dir, "rfc9693-*.json"))
	r := &rfcReport{Date: time.Now().UTC().Format(time.RFC3339), Commit: gitCommit(*repo), Machine: describeMachine("/proc/cpuinfo"),
		Method: "RFC 9693 two phases through natgw's runtime and DPDK driver, generator on its own CPU over net_ring devices", Notes: notes}
	for _, f := range files {
		var run rfcRun
		if err := readJSON(f, &run); err != nil {
			return err
		}
		if run.Mode == modeNatgwRun {
			r.NatgwRuns = append(r.NatgwRuns, run)
			continue
		}
		r.Runs = append(r.Runs, run)
	}
	slices.SortFunc(r.NatgwRuns, func(a, b rfcRun) int { return a.Flows - b.Flows })
	if len(r.Runs)+len(r.NatgwRuns) == 0 {
		return fmt.Errorf("no rfc9693-*.json in %s", *dir)
	}
	slices.SortFunc(r.Runs, func(a, b rfcRun) int { return a.Flows - b.Flows })
	r.Targets = targets20(r.Runs)
	charts := map[string]string{
		"rfc9693-throughput.svg":    throughputChart(r.Runs),
		"rfc9693-latency.svg":       latencyChart(r.Runs),
		"rfc9693-establishment.svg": establishmentChart(r.Runs),
	}
	if len(r.NatgwRuns) > 0 {
		charts["rfc9693-natgw-run-memory.svg"] = natgwMemoryChart(r.NatgwRuns)
	}
	names := make([]string, 0, len(charts))
	for name, svg := range charts {
		if err := os.WriteFile(filepath.Join(*out, name), []byte(svg), 0o644); err != nil {
			return err
		}
		names = append(names, name)
	}
	slices.Sort(names)
	r.Charts = names
	if err := writeJSON(filepath.Join(*out, "rfc9693.json"), r); err != nil {
		return err
	}
	var b strings.Builder
	writeRFCMarkdown(&b, r)
	if err := os.WriteFile(filepath.Join(*out, "rfc9693.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s/rfc9693.md, rfc9693.json and %d charts\n", *out, len(names))
	return nil
}

func init() { subcommands["report9693"] = cmdReport9693 }

// runFor returns the run of exactly flows live flows.
func runFor(runs []rfcRun, flows int) *rfcRun {
	for i := range runs {
		if runs[i].Flows == flows {
			return &runs[i]
		}
	}
	return nil
}

// latencyAt returns a run's latency row at a load.
func latencyAt(r *rfcRun, pct int) *latencyRow {
	for i := range r.Latency {
		if r.Latency[i].LoadPercent == pct {
			return &r.Latency[i]
		}
	}
	return nil
}

// generatorCeiling returns the lowest rate the generator offered in a
// step it could not keep up with (frames per second, both directions):
// the most it can offer while natgw forwards, its receiving included
// (in a step where most frames are refused it offers more, as refused
// frames cost it less). 0 when it kept up in every step.
func generatorCeiling(r *rfcRun) float64 {
	c := 0.0
	for _, steps := range [][]searchStep{r.ThroughputSteps, r.PDRSteps} {
		for _, s := range steps {
			if !s.Limited || s.Seconds <= 0 {
				continue
			}
			v := float64(s.Offered) / s.Seconds
			if c == 0 || v < c {
				c = v
			}
		}
	}
	return c
}

// forwardingRate returns the most frames per second (both directions)
// natgw forwarded in any throughput or PDR step the generator kept up
// with: offered minus lost over the step's time. In a step offered more
// than natgw can take it is natgw's forwarding rate when overloaded
// (RFC 2889's maximum forwarding rate), the capacity between stalls that
// a zero-loss search on a shared host cannot show; 0 without steps.
func forwardingRate(r *rfcRun) float64 {
	best := 0.0
	for _, steps := range [][]searchStep{r.ThroughputSteps, r.PDRSteps} {
		for _, s := range steps {
			if s.Limited || s.Seconds <= 0 || s.Loss > s.Offered {
				continue
			}
			best = max(best, float64(s.Offered-s.Loss)/s.Seconds)
		}
	}
	return best
}

// loopbackCeiling returns the generator's zero-loss rate over its
// loopback, without natgw (frames per second, both directions), or 0
// when it was not measured.
func loopbackCeiling(r *rfcRun) float64 {
	if r.GeneratorLoopback == nil {
		return 0
	}
	return float64(r.GeneratorLoopback.ZeroLoss)
}

// atGeneratorLimit reports whether rate is within 3 % of either of the
// generator's ceilings: a figure there is the generator's limit, not
// natgw's.
func atGeneratorLimit(r *rfcRun, rate float64) bool {
	for _, g := range []float64{generatorCeiling(r), loopbackCeiling(r)} {
		if g > 0 && rate >= 0.97*g {
			return true
		}
	}
	return false
}

// bytesPer returns the translator's bytes per flow of capacity and per
// live flow.
func bytesPer(r *rfcRun) (capacity, live float64) {
	return float64(r.TranslatorBytes) / float64(r.Capacity), float64(r.TranslatorBytes) / float64(r.Flows)
}

// targets20 compares the runs with issue 20's targets.
func targets20(runs []rfcRun) []rfcTarget {
	var out []rfcTarget
	add := func(what, target string, r *rfcRun, measure func(*rfcRun) (float64, string), ok func(float64) bool) {
		t := rfcTarget{What: what, Target: target, Met: "not measured", Measured: "-"}
		if r != nil && r.Error == "" {
			v, s := measure(r)
			t.Measured = s
			if !math.IsNaN(v) {
				t.Met = yesNo(ok(v))
			}
		}
		out = append(out, t)
	}
	mpps := func(r *rfcRun) (float64, string) {
		s := fmt.Sprintf("%.2f Mpps", float64(r.Throughput)/1e6)
		if atGeneratorLimit(r, float64(r.Throughput)) {
			s += " (at the generator's ceiling)"
		}
		if f := forwardingRate(r); f > 0 {
			s += fmt.Sprintf("; forwarded %.2f Mpps when overloaded", f/1e6)
		}
		return float64(r.Throughput), s
	}
	cps := func(r *rfcRun) (float64, string) {
		return float64(r.Connections), fmt.Sprintf("%.2f M/s", float64(r.Connections)/1e6)
	}
	add("two-way zero-loss throughput, 1 M flows", "≥ 15 Mpps", runFor(runs, 1_000_000), mpps, func(v float64) bool { return v >= target20Mpps1M })
	add("two-way zero-loss throughput, 1 K flows", "≥ 20 Mpps", runFor(runs, 1000), mpps, func(v float64) bool { return v >= target20Mpps1K })
	add("connections/s (create + reply, zero loss), 1 M flows", "≥ 2.5 M/s", runFor(runs, 1_000_000), cps, func(v float64) bool { return v >= target20CPS1M })
	add("connections/s, 16 M flows", "≥ 2 M/s", runFor16M(runs), cps, func(v float64) bool { return v >= target20CPS16M })
	add("established throughput, 16 M flows", "≥ 8 Mpps", runFor16M(runs), mpps, func(v float64) bool { return v >= target20Mpps16M })
	out = append(out, teardownTarget(runs))
	var big *rfcRun
	for i := range runs {
		if runs[i].Error == "" {
			big = &runs[i]
		}
	}
	add("bytes per flow of capacity", "≤ 128", big, func(r *rfcRun) (float64, string) {
		c, _ := bytesPer(r)
		return c, fmt.Sprintf("%.1f (%d-flow table)", c, r.Capacity)
	}, func(v float64) bool { return v <= target20CapBytes })
	add("bytes per live flow", "≤ 160", big, func(r *rfcRun) (float64, string) {
		_, l := bytesPer(r)
		return l, fmt.Sprintf("%.1f (%d live in a %d-flow table)", l, r.Flows, r.Capacity)
	}, func(v float64) bool { return v <= target20LiveBytes })
	add("p99 latency at 50 % load, 1 M flows", "≤ 20 µs", runFor(runs, 1_000_000), func(r *rfcRun) (float64, string) {
		l := latencyAt(r, 50)
		if l == nil {
			return math.NaN(), "-"
		}
		return l.P99us, fmt.Sprintf("%.1f µs", l.P99us)
	}, func(v float64) bool { return v <= target20P99At50Us })
	return out
}

// writeRFCMarkdown writes the report.
func writeRFCMarkdown(w io.Writer, r *rfcReport) {
	m := r.Machine
	fmt.Fprintf(w, "# natgw benchmark, RFC 9693 method (issue 20)\n\n")
	fmt.Fprintf(w, "Run %s, commit %s. %s, %d CPUs, %d GB, kernel %s, DPDK %s, %s.\n\n", r.Date, r.Commit, m.CPUModel, m.Cores, m.MemoryGB, m.Kernel, m.DPDK, m.Go)
	fmt.Fprintf(w, "Method: %s. ", r.Method)
	if len(r.Runs) > 0 {
		x := r.Runs[0]
		fmt.Fprintf(w, "natgw's worker on CPU %d, the generator on CPU %d (each alone on its core; EAL's main lcore, the management loop and the Go runtime share the generator's CPU). "+
			"Rings of %d frames between them. Elementary steps of %.0f s (RFC 9693's reference: 60 s). Frames of 64 bytes, UDP.\n\n",
			x.WorkerCPU, x.GeneratorCPU, x.RingSize, x.StepSeconds)
		fmt.Fprintf(w, "%s\n\n", x.Host.describe())
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "> %s\n\n", n)
	}
	fmt.Fprintf(w, "## Targets\n\n| target | wanted | measured | met |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.What, t.Target, t.Measured, t.Met)
	}
	fmt.Fprintf(w, "\n## Results\n\n")
	fmt.Fprintf(w, "| live flows | table (flow_capacity) | fill | two-way zero-loss throughput (NDR) | PDR (≤ 0.5 %% loss) | forwarding rate when overloaded | generator's ceiling (loopback, zero loss) | generator's ceiling (with natgw) | connections/s (zero loss) | bytes/flow of capacity | bytes/live flow | run time |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i := range r.Runs {
		x := &r.Runs[i]
		if x.Error != "" {
			fmt.Fprintf(w, "| %s | %s | | error: %s | | | | | | | | |\n", countLabel(x.Flows), countLabel(x.Capacity), x.Error)
			continue
		}
		c, l := bytesPer(x)
		loop := "not measured"
		if g := x.GeneratorLoopback; g != nil {
			loop = fmt.Sprintf("%.2f Mpps", float64(g.ZeroLoss)/1e6)
			if len(g.Steps) == 1 && g.ZeroLoss > 0 { // it passed at the highest rate tried
				loop = "≥ " + loop
			}
		}
		fmt.Fprintf(w, "| %s | %s | %.2f %% | %.2f Mpps (%.2f each way) | %.2f Mpps | %.2f Mpps | %s | %.2f Mpps | %.3f M | %.1f | %.1f | %.0f s |\n",
			countLabel(x.Flows), countLabel(x.Capacity), 100*float64(x.Flows)/float64(x.Capacity), float64(x.Throughput)/1e6,
			float64(x.Throughput)/2e6, float64(x.PDR)/1e6, forwardingRate(x)/1e6, loop, generatorCeiling(x)/1e6, float64(x.Connections)/1e6, c, l, x.Seconds)
	}
	fmt.Fprintf(w, "\nA connection trial opens each of the N flows once, from an empty table: at 1 K flows it lasts a fraction of a millisecond, too short for its rate to mean much (CSIT's trials open hundreds of thousands). The generator's ceilings: over a loopback without natgw (its two ports joined back to back, measured before natgw with 1 s steps: the zero-loss rate of its whole per-frame work, ≥ when it passed at the highest rate tried), and with natgw, the lowest rate it offered in a step it fell behind in (0: it kept up in every step). A figure within 3 %% of either is the generator's limit, not natgw's. The forwarding rate when overloaded is the most natgw forwarded (frames offered minus lost, per second) in any step the generator kept up with: in a step offered more than natgw takes, its capacity between stalls (RFC 2889's maximum forwarding rate), which a zero-loss search on a shared host cannot show.\n")
	fmt.Fprintf(w, "\n### Latency (timestamps in the generator's payload, every frame of a step)\n\n")
	fmt.Fprintf(w, "| live flows | load | rate | frames | lost | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|---|---|\n")
	for i := range r.Runs {
		x := &r.Runs[i]
		for _, l := range x.Latency {
			fmt.Fprintf(w, "| %s | %d %% | %.2f Mpps | %d | %d | %.1f µs | %.1f µs | %.1f µs | %.1f µs |\n",
				countLabel(x.Flows), l.LoadPercent, float64(l.Rate)/1e6, l.Frames, l.Lost, l.P50us, l.P99us, l.P999us, l.MaxUs)
		}
	}
	writeTeardownMarkdown(w, r.Runs)
	writeNatgwRunMarkdown(w, r.NatgwRuns)
	fmt.Fprintf(w, "\n## Charts\n\n")
	for _, c := range r.Charts {
		fmt.Fprintf(w, "![%s](%s)\n\n", strings.TrimSuffix(c, ".svg"), c)
	}
	fmt.Fprintf(w, "## Search steps\n\nEvery elementary step of the binary searches (zero loss: not one frame lost; a step the generator could not offer counts as failed).\n\n")
	for i := range r.Runs {
		x := &r.Runs[i]
		fmt.Fprintf(w, "### %s flows\n\n| search | rate | pass | offered | lost | s | generator limited |\n|---|---|---|---|---|---|---|\n", countLabel(x.Flows))
		for _, s := range x.ConnectionSteps {
			fmt.Fprintf(w, "| connections | %.3f M/s | %s | %d | %d | %.3f | %s |\n", float64(s.Rate)/1e6, yesNo(s.Pass && !s.Limited), s.Offered, s.Loss, s.Seconds, yesNo(s.Limited))
		}
		for _, s := range x.PDRSteps {
			fmt.Fprintf(w, "| PDR (≤ 0.5 %% loss) | %.3f Mpps | %s | %d | %d | %.1f | %s |\n", float64(s.Rate)/1e6, yesNo(s.Pass && !s.Limited), s.Offered, s.Loss, s.Seconds, yesNo(s.Limited))
		}
		for _, s := range x.ThroughputSteps {
			fmt.Fprintf(w, "| throughput (zero loss) | %.3f Mpps | %s | %d | %d | %.1f | %s |\n", float64(s.Rate)/1e6, yesNo(s.Pass && !s.Limited), s.Offered, s.Loss, s.Seconds, yesNo(s.Limited))
		}
		fmt.Fprintln(w)
	}
}

// chartSeries is one line of a chart.
type chartSeries struct {
	Name   string
	Values []float64 // NaN: no point
}

// lineChart draws series over categorical x positions as an SVG. logY
// draws the y axis in decades (values must be > 0).
func lineChart(title, xLabel, yLabel string, xs []string, series []chartSeries, logY bool) string {
	const width, height = 640.0, 400.0
	const left, right, top, bottom = 70.0, 150.0, 40.0, 50.0
	pw, ph := width-left-right, height-top-bottom
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, v := range s.Values {
			if math.IsNaN(v) || (logY && v <= 0) {
				continue
			}
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
		if logY {
			lo, hi = 1, 10 // no point: log10(0) would make the ticks endless
		}
	}
	tr := func(v float64) float64 { return v }
	if logY {
		tr = math.Log10
		lo, hi = math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if hi == lo {
			hi++
		}
	} else {
		lo = 0
		hi = niceCeil(hi)
	}
	y := func(v float64) float64 { return top + ph - (tr(v)-lo)/(hi-lo)*ph }
	x := func(i int) float64 {
		if len(xs) == 1 {
			return left + pw/2
		}
		return left + float64(i)*pw/float64(len(xs)-1)
	}
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, e(title))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, top+ph, left+pw, top+ph)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, top, left, top+ph)
	// y ticks
	var ticks []float64
	if logY {
		for d := lo; d <= hi; d++ {
			ticks = append(ticks, math.Pow(10, d))
		}
	} else {
		for i := 0; i <= 5; i++ {
			ticks = append(ticks, hi*float64(i)/5)
		}
	}
	for _, t := range ticks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y(t), left+pw, y(t), left-5, y(t)+4, formatTick(t))
	}
	for i, l := range xs {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(i), top+ph+18, e(l))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", left+pw/2, height-8, e(xLabel))
	fmt.Fprintf(&b, `<text x="15" y="%.1f" text-anchor="middle" transform="rotate(-90 15 %.1f)">%s</text>`+"\n", top+ph/2, top+ph/2, e(yLabel))
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}
	for si, s := range series {
		c := colors[si%len(colors)]
		var pts []string
		for i, v := range s.Values {
			if i >= len(xs) || math.IsNaN(v) || (logY && v <= 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(i), y(v), c)
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		}
		ly := top + 10 + float64(si)*18
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			left+pw+10, ly, left+pw+30, ly, c, left+pw+35, ly+4, e(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// formatTick formats an axis value.
func formatTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

// throughputChart: two-way zero-loss Mpps against live flows.
func throughputChart(runs []rfcRun) string {
	var xs []string
	tp := chartSeries{Name: "natgw, zero loss"}
	pdr := chartSeries{Name: "natgw, ≤ 0.5 % loss"}
	gen := chartSeries{Name: "generator's ceiling"}
	for _, r := range runs {
		xs = append(xs, countLabel(r.Flows))
		v, p, g := math.NaN(), math.NaN(), math.NaN()
		if r.Error == "" {
			v, p, g = float64(r.Throughput)/1e6, float64(r.PDR)/1e6, generatorCeiling(&r)/1e6
		}
		tp.Values, pdr.Values, gen.Values = append(tp.Values, v), append(pdr.Values, p), append(gen.Values, g)
	}
	return lineChart("Two-way zero-loss throughput, one worker", "live flows (table sized "+capacityLabel(runs)+")", "Mpps (both directions)", xs,
		[]chartSeries{tp, pdr, gen}, false)
}

// latencyChart: percentiles against load, one line per percentile and
// flow count.
func latencyChart(runs []rfcRun) string {
	xs := []string{"10 %", "50 %", "90 %"}
	var series []chartSeries
	for _, r := range runs {
		if len(r.Latency) == 0 {
			continue
		}
		for _, p := range []struct {
			name string
			get  func(l *latencyRow) float64
		}{{"p50", func(l *latencyRow) float64 { return l.P50us }}, {"p99", func(l *latencyRow) float64 { return l.P99us }},
			{"p99.9", func(l *latencyRow) float64 { return l.P999us }}} {
			s := chartSeries{Name: p.name + " " + countLabel(r.Flows)}
			for _, pct := range []int{10, 50, 90} {
				v := math.NaN()
				if l := latencyAt(&r, pct); l != nil {
					v = p.get(l)
				}
				s.Values = append(s.Values, v)
			}
			series = append(series, s)
		}
	}
	return lineChart("Latency through natgw (generator timestamps)", "load, % of the zero-loss throughput", "µs (log scale)", xs, series, true)
}

// establishmentChart: zero-loss connections/s against the table's fill.
func establishmentChart(runs []rfcRun) string {
	var xs []string
	s := chartSeries{Name: "connections/s"}
	for _, r := range runs {
		xs = append(xs, fmt.Sprintf("%s (%.2g %%)", countLabel(r.Flows), 100*float64(r.Flows)/float64(r.Capacity)))
		v := math.NaN()
		if r.Error == "" {
			v = float64(r.Connections) / 1e6
		}
		s.Values = append(s.Values, v)
	}
	return lineChart("Connection establishment rate (create + reply, zero loss)", "flows established (fill of the table)", "M connections/s", xs,
		[]chartSeries{s}, false)
}

// countLabel names a flow count: 16Mi for 2^24, else as flowsLabel.
func countLabel(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%dMi", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 && n%1000 != 0 {
		return fmt.Sprintf("%dKi", n>>10)
	}
	return flowsLabel(n)
}

// capacityLabel names the runs' table size(s).
func capacityLabel(runs []rfcRun) string {
	var c []string
	for _, r := range runs {
		l := countLabel(r.Capacity)
		if !slices.Contains(c, l) {
			c = append(c, l)
		}
	}
	return strings.Join(c, ", ")
}
