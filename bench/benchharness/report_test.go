package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const goBenchOutput = `goos: linux
goarch: amd64
pkg: github.com/natgw/natgw/nat
cpu: AMD EPYC
BenchmarkTranslateEstablished/flows=1024/out-2   	 1000000	        25.10 ns/op	        25.10 ns/pkt	       0 B/op	       0 allocs/op
some log line from a benchmark
BenchmarkChecksum-2	123	4.5 ns/op
PASS
ok  	github.com/natgw/natgw/nat	12.3s
pkg: github.com/natgw/natgw/portalloc
BenchmarkPick/free-2                          	31205661	         4.018 ns/op	       0 B/op	       0 allocs/op
`

func TestParseGoBench(t *testing.T) {
	got, err := parseGoBench(strings.NewReader(goBenchOutput))
	require.NoError(t, err)
	require.Len(t, got, 3)
	tests := []struct {
		i       int
		pkg     string
		name    string
		metrics map[string]float64
	}{
		{0, "github.com/natgw/natgw/nat", "BenchmarkTranslateEstablished/flows=1024/out-2",
			map[string]float64{"ns/op": 25.10, "ns/pkt": 25.10, "B/op": 0, "allocs/op": 0}},
		{1, "github.com/natgw/natgw/nat", "BenchmarkChecksum-2", map[string]float64{"ns/op": 4.5}},
		{2, "github.com/natgw/natgw/portalloc", "BenchmarkPick/free-2", map[string]float64{"ns/op": 4.018, "B/op": 0, "allocs/op": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.pkg, got[tt.i].Package)
			assert.Equal(t, tt.name, got[tt.i].Name)
			assert.Equal(t, tt.metrics, got[tt.i].Metrics)
		})
	}
	_, err = parseGoBench(strings.NewReader("BenchmarkX-2 10 abc ns/op\n"))
	assert.Error(t, err, "a malformed value is an error, not a silent zero")
}

func TestParseCPUInfo(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantModel string
		wantCores int
	}{
		{"empty", "", "unknown", 0},
		{"two", "processor\t: 0\nmodel name\t: AMD EPYC\nflags: x\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n", "AMD EPYC", 2},
		{"no model", "processor : 0\n", "unknown", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, n := parseCPUInfo(tt.in)
			assert.Equal(t, tt.wantModel, m)
			assert.Equal(t, tt.wantCores, n)
		})
	}
}

func testRuns() ([]natgwRun, []testpmdResult) {
	runs := []natgwRun{
		{Flows: 1_000_000, Pcaps: pcapPaths{Out: "/w/out-1000000.pcap", In: "/w/in-1000000.pcap"},
			Phases: []phaseResult{
				{Direction: "out", Mpps: 7, MaxPollGapUs: 12000, PollGapsOver100us: 41, PollGapsOver1ms: 7, PollGapsOver10ms: 1},
				{Direction: "in", Mpps: 8, Drops: map[string]uint64{"no_flow": 3}},
			},
			Establishment: &establishResult{Flows: 1_000_000, Created: 1_000_000, Seconds: 0.4, UncertaintySeconds: 0.0021,
				Samples: 380, FlowsPerSecond: 2.5e6},
			Teardown: &teardownResult{Flows: 1_000_000, JumpMs: 300_256, FullSeconds: 0.61, EmptySeconds: 0.01, Polls: 3907,
				ExpiredIdle: 1_000_000, FlowsPerSecond: 1_000_000 / 0.6}},
		{Flows: 1000, Pcaps: pcapPaths{Out: "/w/out-1000.pcap", In: "/w/in-1000.pcap"},
			Phases: []phaseResult{{Direction: "out", Mpps: 14}, {Direction: "in", Mpps: 12}},
			Establishment: &establishResult{Flows: 1000, Created: 1000, Seconds: 0.0011, UncertaintySeconds: 0.0011,
				Samples: 2, FlowsPerSecond: 1000 / 0.0011},
			Teardown: &teardownResult{Flows: 1000, JumpMs: 300_256, FullSeconds: 0.00001, EmptySeconds: 0.00002,
				ExpiredIdle: 1000, Error: "T_N 10µs <= T_0 20µs: deleting 1000 flows took less than the measurement's jitter; measure more flows"}},
	}
	pmd := []testpmdResult{
		{Pcap: "/other/out-1000000.pcap", Mpps: 40},
		{Pcap: "/w/in-1000000.pcap", Mpps: 32},
		{Pcap: "/w/out-1000.pcap", Mpps: 80},
	}
	return runs, pmd
}

func TestPairThroughput(t *testing.T) {
	runs, pmd := testRuns()
	rows := pairThroughput(runs, pmd)
	want := []throughputRow{
		{Flows: 1000, Direction: "out", NatgwMpps: 14, TestpmdMpps: 80, Ratio: 14.0 / 80, MeetsTarget: true, MeetsRatioTarget: true},
		{Flows: 1000, Direction: "in", NatgwMpps: 12, MeetsTarget: true}, // no testpmd run: no ratio
		{Flows: 1_000_000, Direction: "out", NatgwMpps: 7, TestpmdMpps: 40, Ratio: 7.0 / 40, MeetsRatioTarget: true},
		{Flows: 1_000_000, Direction: "in", NatgwMpps: 8, TestpmdMpps: 32, Ratio: 8.0 / 32, MeetsRatioTarget: true},
	}
	require.Len(t, rows, len(want))
	for i := range want {
		want[i].Unit = "Mpps per worker core"
		assert.Equal(t, want[i], rows[i], "row %d", i)
	}
}

func TestWriteMarkdown(t *testing.T) {
	runs, pmd := testRuns()
	r := &report{Date: "2026-01-02T03:04:05Z", Commit: "abc123", Machine: machine{CPUModel: "AMD EPYC", Cores: 2},
		Throughput: pairThroughput(runs, pmd), Natgw: runs, Testpmd: pmd, Settings: map[string]any{"burst": 32},
		Notes: []string{"a note"}}
	r.GoBench, _ = parseGoBench(strings.NewReader(goBenchOutput))
	var b bytes.Buffer
	require.NoError(t, writeMarkdown(&b, r))
	md := b.String()
	for _, want := range []string{
		"| CPU | AMD EPYC |", "| cores | 2 |", "commit `abc123`",
		"| 1K | out | 14.00 | 80.00 | 0.175 | yes | yes |",
		"| 1M | out | 7.00 | 40.00 | 0.175 | **no** | yes |",
		"no_flow 3", "burst=32", "- a note",
		"| nat | BenchmarkTranslateEstablished/flows=1024/out-2 | 25.1 | 25.1 ns/pkt | 0 | 0 |",
		"worker stall): 12000 µs; gaps over 100 µs / 1 ms / 10 ms: 41 / 7 / 1.",
		"## Connection establishment and tear-down rates (one worker core)",
		"pull-based", "RFC 9693 §4", "256 flows per poll",
		"| 1K | ≥ 0.909 M | inconclusive | **error** | n/a |",
		"| 1M | ≥ 2.500 M | met | 1.667 M | **missed** |",
		"- 1M flows, establishment: 1000000 of 1000000 flows created in 0.400000 s (up to 0.002100 s of it sampling uncertainty, 380 samples); drops in the pass: none.",
		"- 1M flows, tear-down: clock jump 300256 ms; T_N 0.610000 s (3907 polls), T_0 0.010000 s; idle expiries 1000000 of 1000000.",
		"**Error**: T_N 10µs <= T_0 20µs",
	} {
		assert.Contains(t, md, want)
	}
}

func TestResultJSONNames(t *testing.T) {
	runs, _ := testRuns()
	b, err := json.Marshal(runs[0])
	require.NoError(t, err)
	for _, key := range []string{
		`"establishment":{`, `"uncertainty_s":0.0021`, `"flows_per_s":2500000`,
		`"teardown":{`, `"t_n_s":0.61`, `"t_0_s":0.01`, `"clock_jump_ms":300256`, `"polls_t_n":3907`, `"flows_expired_idle":1000000`,
		`"poll_gaps_over_100us":41`, `"poll_gaps_over_1ms":7`, `"poll_gaps_over_10ms":1`,
	} {
		t.Run(key, func(t *testing.T) { assert.Contains(t, string(b), key) })
	}
}

func TestWriteMarkdownOldResults(t *testing.T) {
	// Results of a harness without the connection rates still render.
	runs := []natgwRun{{Flows: 1000, Phases: []phaseResult{{Direction: "out", Mpps: 14}}}}
	var b bytes.Buffer
	require.NoError(t, writeMarkdown(&b, &report{Natgw: runs}))
	assert.Contains(t, b.String(), "| 1K | not measured | n/a | not measured | n/a |")
}

func TestCmdReport(t *testing.T) {
	dir := t.TempDir()
	runs, pmd := testRuns()
	require.NoError(t, writeJSON(filepath.Join(dir, "natgw-1000.json"), runs[1]))
	require.NoError(t, writeJSON(filepath.Join(dir, "testpmd-out-1000.json"), pmd[2]))
	gb := filepath.Join(dir, "gobench.txt")
	require.NoError(t, os.WriteFile(gb, []byte(goBenchOutput), 0o644))
	md, js := filepath.Join(dir, "r.md"), filepath.Join(dir, "r.json")
	var out, errb bytes.Buffer
	code := run([]string{"report", "-dir", dir, "-gobench", gb, "-md", md, "-json", js, "-note", "n1"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	var r report
	require.NoError(t, readJSON(js, &r))
	require.Len(t, r.Throughput, 2)
	assert.InDelta(t, 14.0/80, r.Throughput[0].Ratio, 1e-12)
	assert.Len(t, r.GoBench, 3)
	assert.Equal(t, []string{"n1"}, r.Notes)
	assert.NotEmpty(t, r.Machine.CPUModel)
	assert.Positive(t, r.Machine.Cores)
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	assert.Contains(t, string(b), "| 1K | out | 14.00 | 80.00 |")
	require.Len(t, r.Natgw, 1)
	require.NotNil(t, r.Natgw[0].Establishment, "the establishment result goes through report.json")
	require.NotNil(t, r.Natgw[0].Teardown)
	assert.Equal(t, uint64(1000), r.Natgw[0].Establishment.Created)
	assert.Contains(t, r.Natgw[0].Teardown.Error, "T_N")
}

func TestFlowsLabel(t *testing.T) {
	tests := map[int]string{1000: "1K", 1_000_000: "1M", 1024: "1K (1024)", 1500: "1500", 2: "2", 10_000_000: "10M"}
	for n, want := range tests {
		t.Run(want, func(t *testing.T) { assert.Equal(t, want, flowsLabel(n)) })
	}
}

func TestMedianAndNoise(t *testing.T) {
	tests := []struct {
		name       string
		samples    []float64
		wantMedian float64
		wantNoisy  bool
	}{
		{"none", nil, 0, false},
		{"odd", []float64{3, 1, 2}, 2, true},
		{"even", []float64{10, 10.5, 11, 10.2}, 10.35, false},
		{"steady", []float64{85.1, 87.4, 86.0}, 86.0, false},
		{"disturbed", []float64{14, 18, 7, 87, 83}, 18, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.wantMedian, median(tt.samples), 1e-9)
			assert.Equal(t, tt.wantNoisy, noisy(tt.samples))
		})
	}
}

// A run with session logging on is labelled in the connection rates and
// says what the exporter did.
func TestConnectionRatesSessionLog(t *testing.T) {
	var b strings.Builder
	runs := []natgwRun{
		{Flows: 1000},
		{Flows: 1000, SessionLog: &sessionLogResult{Collector: "127.0.0.1:4739", Records: 2000, Datagrams: 40, Bytes: 56000, WorkerDropped: 3}},
	}
	writeConnectionRates(&b, runs)
	out := b.String()
	assert.Contains(t, out, "| 1K | ")
	assert.Contains(t, out, "| 1K, session logging on | ")
	assert.Contains(t, out, "1K flows, session logging on (IPFIX to 127.0.0.1:4739): 2000 records exported in 40 datagrams (56000 bytes); dropped: 3 by the worker ring, 0 by the exporter queue; 0 send errors.")
}
