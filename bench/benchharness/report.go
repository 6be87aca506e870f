package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// This file gathers the results of one `make bench` run (natgw's and
// testpmd's JSON results, the Go micro-benchmarks' output) with the
// machine's description into bench/results/report.json and
// bench/results/report.md.

// Targets of issues 4 and 6 (one worker core).
const (
	targetMpps  = 10.0
	targetRatio = 0.15
)

// natgwRun is the result of one natgw subcommand: one flow count, both
// directions.
type natgwRun struct {
	Flows        int      `json:"flows"`
	Sources      int      `json:"sources"`
	PoolMembers  int      `json:"pool_members"`
	FlowCapacity int      `json:"flow_capacity"`
	Burst        int      `json:"burst"`
	Warmup       int      `json:"warmup_s"`
	Duration     int      `json:"duration_s"`
	Mbufs        int      `json:"mempool_mbufs"`
	EALArgs      []string `json:"eal_args"`
	WorkerCPU    int      `json:"worker_cpu"`
	// FlowSetupSeconds is the time from starting the worker until its
	// counters showed every flow created (Establishment has the precise
	// figure).
	FlowSetupSeconds float64       `json:"flow_setup_s"`
	TranslatorBytes  int           `json:"translator_bytes"`
	Pcaps            pcapPaths     `json:"pcaps"`
	Phases           []phaseResult `json:"phases"`
	// Establishment is the connection establishment rate measured on the
	// first pass (nil in results of older harnesses).
	Establishment *establishResult `json:"establishment,omitempty"`
	// Teardown is the connection tear-down rate measured after the
	// inbound phase (nil in results of older harnesses).
	Teardown *teardownResult `json:"teardown,omitempty"`
	// SessionLog is set when the run exported NAT session events
	// (-session-log): compare its establishment rate with a run without.
	SessionLog *sessionLogResult `json:"session_log,omitempty"`
}

// sessionLogResult is what session logging did during a run.
type sessionLogResult struct {
	// Collector is the sink's address.
	Collector string `json:"collector"`
	// Records is natgw_natlog_records_total{format="ipfix"}.
	Records uint64 `json:"records"`
	// WorkerDropped and QueueDropped are natgw_natlog_dropped_total by
	// stage: events a full worker ring or a full exporter queue dropped.
	WorkerDropped uint64 `json:"worker_dropped"`
	QueueDropped  uint64 `json:"queue_dropped"`
	// Errors is natgw_natlog_export_errors_total{format="ipfix"}.
	Errors uint64 `json:"errors"`
	// Datagrams and Bytes are what the sink received.
	Datagrams uint64 `json:"datagrams"`
	Bytes     uint64 `json:"bytes"`
}

// establishResult is the connection establishment rate (RFC 9693): the
// first pass over the outbound pcap, every frame a new flow, offered by a
// pull-based source as fast as the worker takes them.
type establishResult struct {
	// Flows is the number of flows the pass must create; Created what the
	// worker's FlowsCreated counted at the end of the pass.
	Flows   uint64 `json:"flows"`
	Created uint64 `json:"created"`
	// Seconds is the time from the first created flow to the last, from
	// samples of the worker's counter about every millisecond: from the
	// last sample without a flow to the first with all of them.
	Seconds float64 `json:"seconds"`
	// UncertaintySeconds is the most by which Seconds overstates the time
	// (the sampling period at both ends of the pass).
	UncertaintySeconds float64 `json:"uncertainty_s"`
	// Samples is the number of counter samples taken.
	Samples int `json:"samples"`
	// Drops are the drop verdicts during the pass (must be none).
	Drops map[string]uint64 `json:"drops,omitempty"`
	// FlowsPerSecond is Flows / Seconds per worker: a lower bound.
	FlowsPerSecond float64 `json:"flows_per_s"`
	// Error says why there is no valid rate.
	Error string `json:"error,omitempty"`
}

// teardownResult is the connection tear-down rate (RFC 9693): the worker
// deletes N idle flows by expiry after a clock jump, T_N, and the same
// procedure on the empty table gives T_0.
type teardownResult struct {
	// Flows is N, the flows in the table before the jump.
	Flows uint64 `json:"flows"`
	// JumpMs is how far the clock jumped (UDP idle timeout + 2 wheel slots).
	JumpMs uint32 `json:"clock_jump_ms"`
	// FullSeconds is T_N: from the management core publishing the jumped
	// expiry tick until the worker published 0 active UDP flows.
	FullSeconds float64 `json:"t_n_s"`
	// EmptySeconds is T_0: the same on the empty table, until the worker
	// published a poll that had seen the jumped tick.
	EmptySeconds float64 `json:"t_0_s"`
	// Polls is the worker's polls during T_N.
	Polls uint64 `json:"polls_t_n"`
	// ExpiredIdle is how much FlowsExpired (reason idle) grew (must be N).
	ExpiredIdle uint64 `json:"flows_expired_idle"`
	// FlowsPerSecond is N / (T_N - T_0) per worker.
	FlowsPerSecond float64 `json:"flows_per_s"`
	// Error says why there is no valid rate.
	Error string `json:"error,omitempty"`
}

// pcapPaths are the pcap files of a run.
type pcapPaths struct {
	Out   string `json:"out"`
	In    string `json:"in"`
	Spare string `json:"spare"`
}

// phaseResult is one direction's measurement.
type phaseResult struct {
	// Direction is "out" (inside to outside) or "in".
	Direction string `json:"direction"`
	// Mpps is translated packets per second over the measured interval,
	// in millions, from the worker's Counters.Packets.
	Mpps    float64   `json:"mpps"`
	Samples []float64 `json:"samples_mpps"`
	// Packets and Seconds are the measured interval's translated packets
	// and length.
	Packets uint64  `json:"packets"`
	Seconds float64 `json:"seconds"`
	// RxPackets are the frames the worker received in the interval.
	RxPackets uint64 `json:"rx_packets"`
	// Drops are the interval's drops by reason (non-zero only).
	Drops map[string]uint64 `json:"drops,omitempty"`
	// FlowsActive is the flow table's size at the end of the phase.
	FlowsActive uint64 `json:"flows_active"`
	// MaxPollGapUs is the worker stall: the longest time between the
	// starts of two successive polls in the measured interval, garbage
	// collector pauses and preemption included, in microseconds.
	MaxPollGapUs float64 `json:"max_poll_gap_us"`
	// PollGapsOver100us, PollGapsOver1ms and PollGapsOver10ms count the
	// gaps between two polls longer than 100 µs, 1 ms and 10 ms in the
	// measured interval (cumulative: a 20 ms gap counts in all three).
	PollGapsOver100us uint64 `json:"poll_gaps_over_100us"`
	PollGapsOver1ms   uint64 `json:"poll_gaps_over_1ms"`
	PollGapsOver10ms  uint64 `json:"poll_gaps_over_10ms"`
}

// goBenchmark is one line of `go test -bench` output.
type goBenchmark struct {
	Package    string             `json:"package"`
	Name       string             `json:"name"`
	Iterations int64              `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics"`
}

// machine describes where the benchmark ran.
type machine struct {
	CPUModel string `json:"cpu_model"`
	Cores    int    `json:"cores"`
	Kernel   string `json:"kernel"`
	MemoryGB int    `json:"memory_gb"`
	DPDK     string `json:"dpdk_version"`
	Go       string `json:"go_version"`
	LoadAvg  string `json:"loadavg_at_report"`
}

// throughputRow pairs natgw's and testpmd's figures for one pcap.
type throughputRow struct {
	Flows       int     `json:"flows"`
	Direction   string  `json:"direction"`
	NatgwMpps   float64 `json:"natgw_mpps"`
	TestpmdMpps float64 `json:"testpmd_mpps"`
	// Ratio is natgw / testpmd macswap on the same devices and frames.
	Ratio float64 `json:"ratio"`
	Unit  string  `json:"unit"`
	// NatgwMedian and TestpmdMedian are the medians of the per-second
	// samples: robust to seconds lost to other jobs on the machine.
	NatgwMedian   float64 `json:"natgw_median_mpps"`
	TestpmdMedian float64 `json:"testpmd_median_mpps"`
	// MedianRatio is NatgwMedian / TestpmdMedian.
	MedianRatio float64 `json:"median_ratio"`
	// Noisy is set when a side's per-second samples spread by more than
	// noiseSpread of their median: the machine was not quiet.
	Noisy bool `json:"noisy"`
	// MeetsTarget: NatgwMpps >= 10 (issue 4, 6).
	MeetsTarget      bool `json:"meets_10mpps"`
	MeetsRatioTarget bool `json:"meets_ratio_0_15"`
}

// report is bench/results/report.json.
type report struct {
	Date       string          `json:"date"`
	Commit     string          `json:"commit"`
	Machine    machine         `json:"machine"`
	Driver     string          `json:"driver"`
	Settings   map[string]any  `json:"settings"`
	Throughput []throughputRow `json:"throughput"`
	Natgw      []natgwRun      `json:"natgw_runs"`
	// SessionLogRuns are natgw runs with NAT session logging on
	// (sessionlog-*.json, benchharness natgw -session-log): their
	// connection rates are shown beside those of the runs without.
	SessionLogRuns []natgwRun      `json:"session_log_runs,omitempty"`
	Testpmd        []testpmdResult `json:"testpmd_runs"`
	GoBench        []goBenchmark   `json:"go_benchmarks"`
	Notes          []string        `json:"notes,omitempty"`
}

// parseGoBench reads `go test -bench` output: "pkg:" lines name the
// package of the benchmark lines that follow.
func parseGoBench(r io.Reader) ([]goBenchmark, error) {
	var out []goBenchmark
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a benchmark's own log line, not a result
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		b := goBenchmark{Package: pkg, Name: f[0], Iterations: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %w", line, err)
			}
			b.Metrics[f[i+1]] = v
		}
		out = append(out, b)
	}
	return out, sc.Err()
}

// describeMachine reads the CPU model and core count from /proc/cpuinfo,
// the kernel from uname, and the DPDK version from pkg-config.
func describeMachine(cpuinfo string) machine {
	m := machine{Go: runtime.Version(), CPUModel: "unknown"}
	if b, err := os.ReadFile(cpuinfo); err == nil {
		m.CPUModel, m.Cores = parseCPUInfo(string(b))
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		m.MemoryGB = int((uint64(si.Totalram)*uint64(si.Unit) + (1 << 29)) >> 30)
	}
	if out, err := exec.Command("pkg-config", "--modversion", "libdpdk").Output(); err == nil {
		m.DPDK = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

// parseCPUInfo returns the first "model name" and the number of
// "processor" entries of /proc/cpuinfo.
func parseCPUInfo(s string) (string, int) {
	model, n := "unknown", 0
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			if model == "unknown" {
				model = strings.TrimSpace(v)
			}
		}
	}
	return model, n
}

// pairThroughput matches natgw's phases with testpmd's runs on the same
// pcap files.
func pairThroughput(runs []natgwRun, pmd []testpmdResult) []throughputRow {
	byPcap := map[string]testpmdResult{}
	for _, t := range pmd {
		byPcap[filepath.Base(t.Pcap)] = t
	}
	var rows []throughputRow
	for _, r := range runs {
		for _, ph := range r.Phases {
			file := r.Pcaps.Out
			if ph.Direction == "in" {
				file = r.Pcaps.In
			}
			t := byPcap[filepath.Base(file)]
			row := throughputRow{Flows: r.Flows, Direction: ph.Direction, NatgwMpps: ph.Mpps,
				TestpmdMpps: t.Mpps, Unit: "Mpps per worker core",
				NatgwMedian: median(ph.Samples), TestpmdMedian: median(t.Samples),
				Noisy: noisy(ph.Samples) || noisy(t.Samples)}
			if row.TestpmdMpps > 0 {
				row.Ratio = row.NatgwMpps / row.TestpmdMpps
			}
			if row.TestpmdMedian > 0 {
				row.MedianRatio = row.NatgwMedian / row.TestpmdMedian
			}
			row.MeetsTarget = row.NatgwMpps >= targetMpps
			row.MeetsRatioTarget = row.Ratio >= targetRatio
			rows = append(rows, row)
		}
	}
	slices.SortStableFunc(rows, func(a, b throughputRow) int {
		if a.Flows != b.Flows {
			return a.Flows - b.Flows
		}
		return strings.Compare(b.Direction, a.Direction) // out first
	})
	return rows
}

// writeMarkdown renders the report for people.
func writeMarkdown(w io.Writer, r *report) error {
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	p("# natgw benchmark report\n\n")
	p("Generated by `make bench` (bench/bench.sh) on %s, commit `%s`.\n\n", r.Date, r.Commit)
	p("| machine | |\n|---|---|\n")
	p("| CPU | %s |\n| cores | %d |\n| memory | %d GB |\n| kernel | %s |\n| DPDK | %s |\n| Go | %s |\n| driver | %s |\n| load average (1/5/15 min) at the end | %s |\n\n",
		r.Machine.CPUModel, r.Machine.Cores, r.Machine.MemoryGB, r.Machine.Kernel, r.Machine.DPDK, r.Machine.Go, r.Driver, r.Machine.LoadAvg)
	p("## DPDK throughput (one worker core)\n\n")
	p("Established 64-byte UDP flows (60 bytes + FCS) replayed by a `net_pcap` vdev (`infinite_rx=1`) into natgw's real runtime with one worker, translated and sent to a `net_null` sink; next to `dpdk-testpmd --forward-mode=macswap` (one forwarding core) on the same vdevs and the same pcap files in the same run. Mpps = packets translated (natgw: the worker's `Counters.Packets`) or forwarded (testpmd: the sink's Tx-pps) per second, mean over the measured seconds.\n\n")
	p("| flows | direction | natgw Mpps | testpmd macswap Mpps | natgw / testpmd | ≥ 10 Mpps | ≥ 0.15 | medians: natgw, testpmd, ratio | quiet machine |\n|---:|---|---:|---:|---:|---|---|---|---|\n")
	noise := false
	for _, t := range r.Throughput {
		p("| %s | %s | %.2f | %.2f | %.3f | %s | %s | %.2f, %.2f, %.3f | %s |\n", flowsLabel(t.Flows), t.Direction, t.NatgwMpps, t.TestpmdMpps, t.Ratio,
			yesNo(t.MeetsTarget), yesNo(t.MeetsRatioTarget), t.NatgwMedian, t.TestpmdMedian, t.MedianRatio, quiet(t.Noisy))
		noise = noise || t.Noisy
	}
	if noise {
		p("\n**Noisy run**: the per-second samples of at least one measurement spread by more than %.0f%% of their median — other jobs competed for the measured core. The medians are the better figures; rerun on a quiet machine for reference numbers.\n", noiseSpread*100)
	}
	p("\nSettings:")
	keys := make([]string, 0, len(r.Settings))
	for k := range r.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p(" %s=%v;", k, r.Settings[k])
	}
	p("\n\n")
	for _, run := range r.Natgw {
		p("- %s flows: %d sources (%d pool members, %d default SNAT), flow table capacity %d (%d bytes, %.0f bytes/flow of capacity), mempool %d mbufs, first pass created every flow in %.3f s; EAL `%s`.\n",
			flowsLabel(run.Flows), run.Sources, run.PoolMembers, run.Sources-run.PoolMembers, run.FlowCapacity,
			run.TranslatorBytes, float64(run.TranslatorBytes)/float64(max(1, run.FlowCapacity)), run.Mbufs, run.FlowSetupSeconds,
			strings.Join(run.EALArgs, " "))
		for _, ph := range run.Phases {
			p("  - %s: %.2f Mpps (%d packets in %.2f s; per second: %s); drops in the interval: %s; longest gap between two polls (worker stall): %.0f µs; gaps over 100 µs / 1 ms / 10 ms: %d / %d / %d.\n",
				ph.Direction, ph.Mpps, ph.Packets, ph.Seconds, formatSamples(ph.Samples), formatDrops(ph.Drops), ph.MaxPollGapUs,
				ph.PollGapsOver100us, ph.PollGapsOver1ms, ph.PollGapsOver10ms)
		}
	}
	for _, t := range r.Testpmd {
		p("- testpmd on %s (%d frames): %.2f Mpps (per second: %s).\n", filepath.Base(t.Pcap), t.Frames, t.Mpps, formatSamples(t.Samples))
	}
	if len(r.Notes) > 0 {
		p("\nNotes:\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
	}
	rates := append(slices.Clone(r.Natgw), r.SessionLogRuns...)
	slices.SortStableFunc(rates, func(a, b natgwRun) int { return a.Flows - b.Flows })
	writeConnectionRates(bw, rates)
	p("\n## Go micro-benchmarks\n\n`go test -run '^$' -bench . -benchmem` of nat and portalloc.\n\n")
	p("| package | benchmark | ns/op | other metrics | B/op | allocs/op |\n|---|---|---:|---|---:|---:|\n")
	for _, b := range r.GoBench {
		var other []string
		for k, v := range b.Metrics {
			if k != "ns/op" && k != "B/op" && k != "allocs/op" {
				other = append(other, fmt.Sprintf("%s %s", strconv.FormatFloat(v, 'g', 4, 64), k))
			}
		}
		slices.Sort(other)
		p("| %s | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(b.Package, "github.com/natgw/natgw/"), b.Name,
			metric(b.Metrics, "ns/op"), strings.Join(other, ", "), metric(b.Metrics, "B/op"), metric(b.Metrics, "allocs/op"))
	}
	return bw.Flush()
}

// writeConnectionRates renders the connection establishment and
// tear-down rates of RFC 9693, one row per flow count.
func writeConnectionRates(w io.Writer, runs []natgwRun) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("\n## Connection establishment and tear-down rates (one worker core)\n\n")
	p("**Establishment**: the first pass over the outbound pcap, every frame a new UDP flow; flows/s = N / (time from the first created flow to the last), from the worker's `FlowsCreated` sampled about every millisecond, with the check that all N flows were created and no frame was dropped. The `net_pcap` source is pull-based: frames are offered exactly as fast as the worker takes them, so this is the rate natgw takes new connections at, loss-free by construction, not a rate found by offering traffic; on real NICs RFC 9693 §4 binary-searches the offered rate instead. The figure is a lower bound: the sampling period can overstate the time by up to the uncertainty shown; \"inconclusive\" means the pass was too short for the sampling to tell.\n\n")
	p("**Tear-down**: RFC 9693's N / (T_N − T_0). With N flows in the table and no traffic, the harness's clock jumps past the UDP idle timeout; T_N runs from the management core publishing the jumped expiry tick until the worker publishes 0 active UDP flows, T_0 is the same jump on the empty table (the fixed overhead). It measures the worker's idle-expiry path (`Translator.Expire`, 256 flows per poll) while polling an idle port.\n\n")
	p("| flows | establishment flows/s | ≥ 2 M/s | tear-down flows/s | ≥ 2 M/s |\n|---:|---:|---|---:|---|\n")
	for _, run := range runs {
		label := flowsLabel(run.Flows)
		if run.SessionLog != nil {
			label += ", session logging on"
		}
		p("| %s | %s | %s | %s | %s |\n", label, establishFigure(run.Establishment), establishVerdict(run.Establishment),
			teardownFigure(run.Teardown), teardownVerdict(run.Teardown))
	}
	p("\n")
	for _, run := range runs {
		if e := run.Establishment; e != nil {
			p("- %s flows, establishment: %d of %d flows created in %.6f s (up to %.6f s of it sampling uncertainty, %d samples); drops in the pass: %s.",
				flowsLabel(run.Flows), e.Created, e.Flows, e.Seconds, e.UncertaintySeconds, e.Samples, formatDrops(e.Drops))
			if e.Error != "" {
				p(" **Error**: %s.", e.Error)
			}
			p("\n")
		}
		if sl := run.SessionLog; sl != nil {
			p("- %s flows, session logging on (IPFIX to %s): %d records exported in %d datagrams (%d bytes); dropped: %d by the worker ring, %d by the exporter queue; %d send errors.\n",
				flowsLabel(run.Flows), sl.Collector, sl.Records, sl.Datagrams, sl.Bytes, sl.WorkerDropped, sl.QueueDropped, sl.Errors)
		}
		if t := run.Teardown; t != nil {
			p("- %s flows, tear-down: clock jump %d ms; T_N %.6f s (%d polls), T_0 %.6f s; idle expiries %d of %d.",
				flowsLabel(run.Flows), t.JumpMs, t.FullSeconds, t.Polls, t.EmptySeconds, t.ExpiredIdle, t.Flows)
			if t.Error != "" {
				p(" **Error**: %s.", t.Error)
			}
			p("\n")
		}
	}
}

// establishFigure formats an establishment rate for the table.
func establishFigure(e *establishResult) string {
	switch {
	case e == nil:
		return "not measured"
	case e.Error != "":
		return "**error**"
	}
	return fmt.Sprintf("≥ %s", formatRate(e.FlowsPerSecond))
}

// teardownFigure formats a tear-down rate for the table.
func teardownFigure(t *teardownResult) string {
	switch {
	case t == nil:
		return "not measured"
	case t.Error != "":
		return "**error**"
	}
	return formatRate(t.FlowsPerSecond)
}

// formatRate formats flows per second in millions.
func formatRate(v float64) string { return fmt.Sprintf("%.3f M", v/1e6) }

func metric(m map[string]float64, k string) string {
	v, ok := m[k]
	if !ok {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 5, 64)
}

func flowsLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dK", n/1000)
	case n == 1024:
		return "1K (1024)"
	}
	return strconv.Itoa(n)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func formatSamples(s []float64) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strings.Join(parts, " ")
}

func formatDrops(d map[string]uint64) string {
	if len(d) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, d[k])
	}
	return strings.Join(parts, ", ")
}

// writeJSON writes v as indented JSON to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readJSON reads path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// gitCommit returns the commit of the working tree, with "-dirty" when it
// has changes (read-only git commands).
func gitCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "-dirty"
	}
	return c
}

// cmdReport is the "report" subcommand.
func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "work directory holding natgw-*.json and testpmd-*.json")
	gobench := fs.String("gobench", "", "output of go test -bench (optional)")
	md := fs.String("md", "bench/results/report.md", "Markdown report to write")
	js := fs.String("json", "bench/results/report.json", "JSON report to write")
	repo := fs.String("repo", ".", "repository (for the commit)")
	var notes multiFlag
	fs.Var(&notes, "note", "a note for the report (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		return errors.New("usage: benchharness report -dir WORK [-gobench FILE] [-md FILE] [-json FILE]")
	}
	r := &report{Date: time.Now().UTC().Format(time.RFC3339), Commit: gitCommit(*repo),
		Machine: describeMachine("/proc/cpuinfo"), Driver: "dpdk (lcore/dpdk: net_pcap source, net_null sink)", Notes: notes}
	natgwFiles, _ := filepath.Glob(filepath.Join(*dir, "natgw-*.json"))
	pmdFiles, _ := filepath.Glob(filepath.Join(*dir, "testpmd-*.json"))
	for _, f := range natgwFiles {
		var run natgwRun
		if err := readJSON(f, &run); err != nil {
			return err
		}
		r.Natgw = append(r.Natgw, run)
	}
	slices.SortFunc(r.Natgw, func(a, b natgwRun) int { return a.Flows - b.Flows })
	sessionFiles, _ := filepath.Glob(filepath.Join(*dir, "sessionlog-*.json"))
	for _, f := range sessionFiles {
		var run natgwRun
		if err := readJSON(f, &run); err != nil {
			return err
		}
		r.SessionLogRuns = append(r.SessionLogRuns, run)
	}
	slices.SortFunc(r.SessionLogRuns, func(a, b natgwRun) int { return a.Flows - b.Flows })
	for _, f := range pmdFiles {
		var t testpmdResult
		if err := readJSON(f, &t); err != nil {
			return err
		}
		r.Testpmd = append(r.Testpmd, t)
	}
	slices.SortFunc(r.Testpmd, func(a, b testpmdResult) int { return strings.Compare(a.Pcap, b.Pcap) })
	r.Throughput = pairThroughput(r.Natgw, r.Testpmd)
	if len(r.Natgw) > 0 {
		n := r.Natgw[0]
		r.Settings = map[string]any{"burst": n.Burst, "warmup_s": n.Warmup, "duration_s": n.Duration,
			"workers": 1, "worker_cpu": n.WorkerCPU, "frame_bytes": frameLen + 4}
		var flows []int
		for _, run := range r.Natgw {
			flows = append(flows, run.Flows)
		}
		r.Settings["flows"] = flows
	}
	if *gobench != "" {
		f, err := os.Open(*gobench)
		if err != nil {
			return err
		}
		r.GoBench, err = parseGoBench(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := writeJSON(*js, r); err != nil {
		return err
	}
	f, err := os.Create(*md)
	if err != nil {
		return err
	}
	if err := writeMarkdown(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", *md, *js)
	return nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

// String returns the values joined.
func (m *multiFlag) String() string { return strings.Join(*m, "; ") }

// Set appends a value.
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// noiseSpread is the (max-min)/median spread of per-second samples above
// which a measurement is flagged as disturbed.
const noiseSpread = 0.2

// median returns the median of v (0 for none).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// noisy reports whether samples spread by more than noiseSpread of their
// median.
func noisy(v []float64) bool {
	m := median(v)
	if m <= 0 {
		return false
	}
	return (slices.Max(v)-slices.Min(v))/m > noiseSpread
}

func quiet(noisy bool) string {
	if noisy {
		return "**no**"
	}
	return "yes"
}
