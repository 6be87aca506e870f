package main

import (
	"bytes"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleRuns() []rfcRun {
	return []rfcRun{
		{Flows: 1000, Capacity: 1 << 24, Throughput: 21_000_000, Connections: 3_000_000,
			ThroughputSteps: []searchStep{{Rate: 40e6, Offered: 60e6, Seconds: 2, Limited: true}, {Rate: 30e6, Offered: 59e6, Seconds: 2, Limited: true},
				{Rate: 21e6, Offered: 42e6, Seconds: 2, Pass: true}},
			TranslatorBytes: 100 << 24, StepSeconds: 3, RingSize: 1024, WorkerCPU: 1,
			Latency: []latencyRow{{LoadPercent: 10, P50us: 2, P99us: 5, P999us: 9}, {LoadPercent: 50, P50us: 3, P99us: 8, P999us: 30},
				{LoadPercent: 90, P50us: 6, P99us: 40, P999us: 200}}},
		{Flows: 1_000_000, Capacity: 1 << 24, Throughput: 9_000_000, Connections: 1_500_000,
			PDRSteps:          []searchStep{{Rate: 12e6, Offered: 27.3e6, Seconds: 3, Limited: true}},
			GeneratorLoopback: &genCeiling{ZeroLoss: 40e6, Steps: []searchStep{{Rate: 40e6, Pass: true}}},
			TranslatorBytes:   150 << 24, StepSeconds: 3,
			Latency: []latencyRow{{LoadPercent: 50, P50us: 4, P99us: 25, P999us: 90}}},
		{Flows: 16 << 20, Capacity: 1 << 24, Error: "out of memory"},
	}
}

func TestTargets20(t *testing.T) {
	got := map[string]rfcTarget{}
	for _, x := range targets20(sampleRuns()) {
		got[x.What] = x
	}
	assert.Equal(t, "yes", got["two-way zero-loss throughput, 1 K flows"].Met)
	assert.Equal(t, "**no**", got["two-way zero-loss throughput, 1 M flows"].Met)
	assert.Contains(t, got["two-way zero-loss throughput, 1 M flows"].Measured, "generator's ceiling",
		"a result at the generator's ceiling says so: natgw may do more")
	assert.Equal(t, "**no**", got["connections/s (create + reply, zero loss), 1 M flows"].Met)
	assert.Equal(t, "not measured", got["connections/s, 16 M flows"].Met, "a failed run is not a figure")
	assert.Equal(t, "not measured", got["tear-downs/s under ≥ 50 % load"].Met)
	assert.Equal(t, "**no**", got["bytes per flow of capacity"].Met, "150 bytes per flow of capacity")
	assert.Contains(t, got["bytes per flow of capacity"].Measured, "150.0")
	assert.Equal(t, "**no**", got["p99 latency at 50 % load, 1 M flows"].Met)
	assert.Equal(t, "25.0 µs", got["p99 latency at 50 % load, 1 M flows"].Measured)
}

// svgPoints returns the circles' coordinates of a chart.
func svgPoints(t *testing.T, svg string) [][2]float64 {
	t.Helper()
	require.NoError(t, xml.Unmarshal([]byte(svg), new(struct{})), "well-formed XML")
	var out [][2]float64
	for _, m := range regexp.MustCompile(`<circle cx="([0-9.]+)" cy="([0-9.]+)"`).FindAllStringSubmatch(svg, -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		out = append(out, [2]float64{x, y})
	}
	return out
}

func TestGeneratorCeiling(t *testing.T) {
	runs := sampleRuns()
	assert.InDelta(t, 29.5e6, generatorCeiling(&runs[0]), 1, "the lowest rate of the steps it fell behind in")
	assert.InDelta(t, 9.1e6, generatorCeiling(&runs[1]), 1, "PDR steps count too")
	assert.Zero(t, generatorCeiling(&runs[2]))
}

func TestForwardingRate(t *testing.T) {
	r := rfcRun{ThroughputSteps: []searchStep{
		{Rate: 40e6, Offered: 120e6, Loss: 100e6, Seconds: 3},           // overloaded: 20e6 forwarded in 3 s
		{Rate: 1e6, Offered: 3e6, Loss: 0, Seconds: 3, Pass: true},      // 1e6
		{Rate: 80e6, Offered: 90e6, Loss: 0, Seconds: 3, Limited: true}, // the generator's limit: not natgw's
		{Rate: 2e6, Offered: 6e6, Loss: 7e6, Seconds: 3},                // inconsistent: skipped
	}}
	assert.InDelta(t, 20e6/3, forwardingRate(&r), 1, "offered minus lost over the step's time, the best step")
	r.PDRSteps = []searchStep{{Rate: 10e6, Offered: 30e6, Loss: 3e6, Seconds: 2}}
	assert.InDelta(t, 13.5e6, forwardingRate(&r), 1, "PDR steps count too")
	assert.Zero(t, forwardingRate(&rfcRun{}))
}

func TestLoopbackCeiling(t *testing.T) {
	r := rfcRun{Flows: 1000, Capacity: 2048, Throughput: 20e6, TranslatorBytes: 1 << 20,
		GeneratorLoopback: &genCeiling{ZeroLoss: 20.4e6, Steps: make([]searchStep, 8)}}
	assert.True(t, atGeneratorLimit(&r, 20e6), "within 3 % of the loopback's zero-loss rate")
	got := targets20([]rfcRun{r})[1]
	require.Equal(t, "two-way zero-loss throughput, 1 K flows", got.What)
	assert.Contains(t, got.Measured, "generator's ceiling", "a throughput at the loopback ceiling says so")
	r.GeneratorLoopback.ZeroLoss = 40e6
	assert.False(t, atGeneratorLimit(&r, 20e6))
	assert.NotContains(t, targets20([]rfcRun{r})[1].Measured, "ceiling")
	r.GeneratorLoopback = nil
	assert.Zero(t, loopbackCeiling(&r))
	assert.False(t, atGeneratorLimit(&r, 20e6), "not measured is no ceiling")
}

func TestLineChart(t *testing.T) {
	svg := lineChart("t <&>", "x", "y", []string{"a", "b", "c"}, []chartSeries{{Name: "s", Values: []float64{10, 20, math.NaN()}}}, false)
	assert.Contains(t, svg, "t &lt;&amp;&gt;", "text is escaped")
	pts := svgPoints(t, svg)
	require.Len(t, pts, 2, "NaN draws no point")
	assert.Less(t, pts[0][0], pts[1][0], "x grows left to right")
	assert.InDelta(t, 40, pts[1][1], 0.1, "20 is the top of a 0-20 axis (top margin 40)")
	assert.InDelta(t, (40+350)/2.0, pts[0][1], 0.1, "10 is half-way up")
	assert.Equal(t, 20.0, niceCeil(17))
	assert.Equal(t, 50.0, niceCeil(21))
	assert.Equal(t, 1.0, niceCeil(1))

	log := lineChart("l", "x", "y", []string{"a", "b"}, []chartSeries{{Name: "p", Values: []float64{1, 100}}}, true)
	pts = svgPoints(t, log)
	require.Len(t, pts, 2)
	assert.InDelta(t, 350, pts[0][1], 0.1, "1 at the bottom of 1..100")
	assert.InDelta(t, 40, pts[1][1], 0.1, "100 at the top")
}

func TestCharts(t *testing.T) {
	runs := sampleRuns()
	tp := throughputChart(runs)
	assert.Len(t, svgPoints(t, tp), 6, "three series, two runs without error")
	assert.Contains(t, tp, "16Mi")
	lat := latencyChart(runs)
	assert.Len(t, svgPoints(t, lat), 3*3+3*1, "three percentiles of 1K at 3 loads, of 1M at one")
	est := establishmentChart(runs)
	assert.Len(t, svgPoints(t, est), 2)
	assert.Contains(t, est, "1M (6 %)", "the fill of the table")
}

func TestReport9693(t *testing.T) {
	dir := t.TempDir()
	for _, r := range sampleRuns() {
		require.NoError(t, writeJSON(filepath.Join(dir, "rfc9693-"+strconv.Itoa(r.Flows)+".json"), r))
	}
	var out bytes.Buffer
	require.NoError(t, cmdReport9693([]string{"-dir", dir, "-out", dir, "-repo", dir, "-note", "quick run"}, &out, &out))
	md, err := os.ReadFile(filepath.Join(dir, "rfc9693.md"))
	require.NoError(t, err)
	s := string(md)
	for _, want := range []string{"> quick run", "| 1K | 16Mi | 0.01 % | 21.00 Mpps (10.50 each way) | 0.00 Mpps | 21.00 Mpps | not measured | 29.50 Mpps |",
		"| 1M | 16Mi | 5.96 % | 9.00 Mpps (4.50 each way) | 0.00 Mpps | 0.00 Mpps | ≥ 40.00 Mpps | 9.10 Mpps |", "error: out of memory",
		"![rfc9693-throughput](rfc9693-throughput.svg)", "p99.9", "3 s (RFC 9693's reference: 60 s)"} {
		assert.Contains(t, s, want)
	}
	for _, c := range []string{"rfc9693-throughput.svg", "rfc9693-latency.svg", "rfc9693-establishment.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, c))
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(b), "<svg"), c)
	}
	var r rfcReport
	require.NoError(t, readJSON(filepath.Join(dir, "rfc9693.json"), &r))
	assert.Len(t, r.Runs, 3)
	assert.Equal(t, 1000, r.Runs[0].Flows, "sorted by flows")
	assert.Error(t, cmdReport9693([]string{"-dir", t.TempDir(), "-out", dir}, &out, &out), "no results is an error")
}
