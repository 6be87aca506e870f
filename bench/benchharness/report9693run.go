package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// This file is the report's section of the runs through natgw run
// (run9693.go): the figures an operator sees, natgw's memory, and each
// elementary step with natgw's own counters beside the generator's.

// modeNatgwRun is rfcRun.Mode of a run through natgw run.
const modeNatgwRun = "natgw run"

// mib formats bytes in MiB.
func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// memoryAt returns a run's memory point at, or nil.
func memoryAt(v *natgwRunView, at string) *natgwMemory {
	for i := range v.Memory {
		if v.Memory[i].At == at {
			return &v.Memory[i]
		}
	}
	return nil
}

// writeNatgwRunMarkdown writes the section of the runs through natgw run
// (nothing when there are none).
func writeNatgwRunMarkdown(w io.Writer, runs []rfcRun) {
	if len(runs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Through `natgw run` (what an operator sees)\n\n")
	fmt.Fprintf(w, "natgw is the product binary, `natgw run --config` with a deployment-style configuration "+
		"(one worker pinned with `worker_cpus`, `flow_capacity` sized for the peak, the management endpoint on the loopback), "+
		"joined to the generator's process by two `net_memif` devices (natgw the client). "+
		"Each connection trial starts a fresh natgw (an empty table). Before and after every step the harness reads natgw's `/metrics`. "+
		"Resident memory is `/proc/PID/status` VmRSS (hugepages not included: they are HugetlbPages); "+
		"bytes per flow of capacity are natgw's Go heap in use just after start (the table allocated, no flow) over `flow_capacity`.")
	for _, x := range runs {
		if x.RingSize > 0 {
			fmt.Fprintf(w, " Rings of %d frames (memif `rsize`, natgw's `rx_descriptors` and `tx_descriptors`).", x.RingSize)
			break
		}
	}
	fmt.Fprintf(w, "\n\n")
	fmt.Fprintf(w, "%s\n\n", runs[0].Host.describe())
	fmt.Fprintf(w, "| live flows | table | two-way zero-loss (NDR) | PDR (≤ 0.5 %% loss) | connections/s (zero loss) | resident: start / filled / end | hugepages | heap bytes/flow of capacity | resident bytes/live flow (growth from start) | natgw starts | run time |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i := range runs {
		x := &runs[i]
		if x.Error != "" {
			fmt.Fprintf(w, "| %s | %s | error: %s | | | | | | | | %.0f s |\n", countLabel(x.Flows), countLabel(x.Capacity), x.Error, x.Seconds)
			continue
		}
		v := x.Natgw
		if v == nil {
			fmt.Fprintf(w, "| %s | %s | no natgw view | | | | | | | | |\n", countLabel(x.Flows), countLabel(x.Capacity))
			continue
		}
		res := make([]string, 0, 3)
		for _, at := range []string{"start", "fill", "end"} {
			if m := memoryAt(v, at); m != nil {
				res = append(res, mib(m.VmRSS))
			} else {
				res = append(res, "-")
			}
		}
		fmt.Fprintf(w, "| %s | %s | %.2f Mpps | %.2f Mpps | %.3f M | %s | %s | %.1f | %.1f (%.1f) | %d | %.0f s |\n",
			countLabel(x.Flows), countLabel(x.Capacity), float64(x.Throughput)/1e6, float64(x.PDR)/1e6, float64(x.Connections)/1e6,
			strings.Join(res, " / "), mib(v.Figures.HugepagesBytes), v.Figures.BytesPerCapacity, v.Figures.BytesPerLive,
			v.Figures.GrowthPerLive, v.Restarts+1, x.Seconds)
	}
	fmt.Fprintf(w, "\nResident bytes per live flow divide all of natgw's resident memory (the Go runtime, the management side, "+
		"the table's touched pages) by the live flows at the fill the throughput was measured at; the growth from start is the part the flows made resident.\n")
	for i := range runs {
		x := &runs[i]
		if x.Natgw == nil || len(x.Natgw.Steps) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n### natgw run, %s flows: every step, natgw's counters beside the generator's\n\n", countLabel(x.Flows))
		fmt.Fprintf(w, "| search | rate | pass | generator offered (out + in) | lost | natgw rx inside / outside | translated out / in | natgw tx outside / inside | natgw drops | where the lost frames went |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range x.Natgw.Steps {
			n := s.Natgw
			fmt.Fprintf(w, "| %s | %.3f M | %s | %d + %d | %d | %d / %d | %d / %d | %d / %d | %s | %s |\n",
				s.Search, float64(s.Rate)/1e6, yesNo(s.Pass), s.Out.Offered, s.In.Offered, s.Out.lost()+s.In.lost(),
				n.PortRx["inside"], n.PortRx["outside"], n.Translated["out"], n.Translated["in"], n.PortTx["outside"], n.PortTx["inside"],
				formatDrops(n.Drops), s.Where)
		}
	}
}

// runFor16M returns the run of issue 20's 16 M flows: 16,000,000 (what
// bench.sh runs: 16 M live flows in a 16,777,216-flow table, not a full
// one) or 16 Mi.
func runFor16M(runs []rfcRun) *rfcRun {
	if r := runFor(runs, 16_000_000); r != nil {
		return r
	}
	return runFor(runs, 16<<20)
}

// natgwMemoryChart: natgw run's memory per live flow (resident, at the
// fill the throughput was measured at) and per flow of capacity (Go
// heap at start) against live flows, log scale.
func natgwMemoryChart(runs []rfcRun) string {
	var xs []string
	live := chartSeries{Name: "resident / live flow"}
	growth := chartSeries{Name: "growth / live flow"}
	capa := chartSeries{Name: "heap / flow of capacity"}
	for _, r := range runs {
		xs = append(xs, countLabel(r.Flows))
		l, g, c := math.NaN(), math.NaN(), math.NaN()
		if r.Error == "" && r.Natgw != nil {
			l, g, c = r.Natgw.Figures.BytesPerLive, r.Natgw.Figures.GrowthPerLive, r.Natgw.Figures.BytesPerCapacity
		}
		live.Values, growth.Values, capa.Values = append(live.Values, l), append(growth.Values, g), append(capa.Values, c)
	}
	return lineChart("natgw run: memory per flow", "live flows (table sized "+capacityLabel(runs)+")", "bytes (log scale)", xs,
		[]chartSeries{live, growth, capa}, true)
}
