package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metricsText is natgw's /metrics as the Prometheus client writes it,
// cut down to what the natgw run mode reads, with two workers.
const metricsText = `# HELP natgw_port_rx_packets_total Packets received by the port, as the driver counts them.
# TYPE natgw_port_rx_packets_total counter
natgw_port_rx_packets_total{port="inside"} 1000
natgw_port_rx_packets_total{port="outside"} 900
natgw_port_tx_packets_total{port="inside"} 880
natgw_port_tx_packets_total{port="outside"} 990
natgw_port_rx_missed_total{port="inside"} 0
natgw_packets_total{direction="out",worker="0"} 600
natgw_packets_total{direction="out",worker="1"} 400
natgw_packets_total{direction="in",worker="0"} 890
natgw_drops_total{reason="tx_full",worker="0"} 7
natgw_drops_total{reason="tx_full",worker="1"} 3
natgw_drops_total{reason="no_flow",worker="1"} 0
natgw_flows_created_total{protocol="udp",worker="0"} 500
natgw_flows_created_total{protocol="udp",worker="1"} 500
natgw_flows_active{protocol="udp",worker="0"} 499
natgw_flows_active{protocol="udp",worker="1"} 501
natgw_flows_active{protocol="tcp",worker="0"} 2
process_resident_memory_bytes 9.6161792e+07
go_memstats_heap_inuse_bytes 2.145304576e+09
go_gc_duration_seconds{quantile="0.5"} NaN
odd_label{a="x\"y\\z",b="line\nnext"} 1 1700000000000
`

func TestParsePrometheus(t *testing.T) {
	s, err := parsePrometheus(strings.NewReader(metricsText))
	require.NoError(t, err)
	require.Len(t, s, 20, "every sample line, no comment")
	last := s[len(s)-1]
	assert.Equal(t, "odd_label", last.Name)
	assert.Equal(t, `x"y\z`, last.Labels["a"], "escaped quote and backslash")
	assert.Equal(t, "line\nnext", last.Labels["b"], "escaped newline")
	assert.Equal(t, 1.0, last.Value, "the timestamp is not the value")
	assert.Equal(t, 9.6161792e+07, s[16].Value)

	for _, bad := range []string{"natgw_x{port=\"a\" 1", "natgw_x{port=a} 1", "natgw_x", "natgw_x{} one", "natgw_x 1 2 3", "natgw_x{port=\"a} 1"} {
		_, err := parsePrometheus(strings.NewReader("# ok\n" + bad + "\n"))
		assert.Error(t, err, bad)
		if err != nil {
			assert.Contains(t, err.Error(), "line 2", "the error names the line")
		}
	}
}

func TestCountersFromAndSub(t *testing.T) {
	s, err := parsePrometheus(strings.NewReader(metricsText))
	require.NoError(t, err)
	c := countersFrom(s)
	assert.Equal(t, map[string]uint64{"out": 1000, "in": 890}, c.Translated, "summed over workers")
	assert.Equal(t, uint64(10), c.Drops["tx_full"])
	assert.Equal(t, uint64(1002), c.FlowsActive, "every protocol")
	assert.Equal(t, uint64(1000), c.FlowsCreated)
	assert.Equal(t, uint64(96161792), c.RSS)
	assert.Equal(t, uint64(2145304576), c.HeapInuse)
	assert.Equal(t, uint64(900), c.PortRx["outside"])

	later := countersFrom(s)
	later.PortRx = map[string]uint64{"inside": 1500, "outside": 900}
	later.Drops = map[string]uint64{"tx_full": 10, "no_flow": 4}
	later.FlowsCreated = 1200
	later.FlowsActive = 7
	d := later.sub(c)
	assert.Equal(t, map[string]uint64{"inside": 500}, d.PortRx, "only what grew")
	assert.Equal(t, map[string]uint64{"no_flow": 4}, d.Drops)
	assert.Equal(t, uint64(200), d.FlowsCreated)
	assert.Equal(t, uint64(7), d.FlowsActive, "a gauge is the later value")

	restarted := countersFrom(nil)
	restarted.PortRx = map[string]uint64{"inside": 30}
	restarted.FlowsCreated = 5
	d = restarted.sub(c)
	assert.Equal(t, uint64(30), d.PortRx["inside"], "a counter that went back counts from zero (natgw restarted)")
	assert.Equal(t, uint64(5), d.FlowsCreated)
}

func TestNatgwStepWhere(t *testing.T) {
	clean := natgwStep{Out: dirCount{Offered: 10, Accepted: 10, Received: 10}, In: dirCount{Offered: 5, Accepted: 5, Received: 5}}
	assert.Empty(t, clean.where(), "nothing lost, nothing to explain")

	s := natgwStep{
		Out: dirCount{Offered: 100, Accepted: 90, Received: 85},
		In:  dirCount{Offered: 50, Accepted: 50, Received: 47, Bad: 1},
		Natgw: natgwCounters{PortRx: map[string]uint64{"inside": 88, "outside": 50},
			PortTx: map[string]uint64{"outside": 87, "inside": 48}, Drops: map[string]uint64{"tx_full": 2}},
	}
	w := s.where()
	for _, want := range []string{"refused by natgw's full RX rings: 10 inside, 0 outside",
		"not counted received by natgw: 2 inside, 0 outside", "natgw drops: tx_full 2",
		"sent by natgw, not received by the generator: 2", "received mistranslated: 1"} {
		assert.Contains(t, w, want)
	}
	silent := natgwStep{Out: dirCount{Offered: 10, Accepted: 10, Received: 9},
		Natgw: natgwCounters{PortRx: map[string]uint64{"inside": 10}, PortTx: map[string]uint64{"outside": 9}}}
	assert.Equal(t, "1 lost; natgw's counters show no drop", silent.where())
	assert.Contains(t, s.describe(), "port rx inside 88 outside 50")
	limited := clean
	limited.Limited = true
	assert.Equal(t, "the generator could not offer the rate", limited.where(), "a step that lost nothing fails when the generator fell behind")
	silent.Limited = true
	assert.Equal(t, "the generator could not offer the rate; 1 lost; natgw's counters show no drop", silent.where())
}

func TestParseProcStatus(t *testing.T) {
	text := "Name:\tnatgw\nVmPeak:\t 3000000 kB\nVmHWM:\t   96000 kB\nVmRSS:\t   94000 kB\nHugetlbPages:\t   22528 kB\nThreads:\t12\n"
	st, err := parseProcStatus(text)
	require.NoError(t, err)
	assert.Equal(t, procStatus{VmRSS: 94000 << 10, VmHWM: 96000 << 10, Hugetlb: 22528 << 10}, st)

	st, err = parseProcStatus("VmHWM:\t1 kB\nVmRSS:\t2 kB\n")
	require.NoError(t, err, "HugetlbPages is optional")
	assert.Zero(t, st.Hugetlb)
	_, err = parseProcStatus("VmRSS:\t2 kB\n")
	assert.Error(t, err, "VmHWM missing")
	_, err = parseProcStatus("VmHWM:\t1 kB\nVmRSS:\t2 MB\n")
	assert.Error(t, err, "unexpected unit")
	_, err = parseProcStatus("VmHWM:\t1 kB\nVmRSS:\tx kB\n")
	assert.Error(t, err)
}

func TestMemoryFigures(t *testing.T) {
	start := natgwMemory{At: "start", VmRSS: 50 << 20, HeapInuse: 128 << 20}
	end := natgwMemory{At: "end", FlowsActive: 1 << 20, VmRSS: 250 << 20, Hugetlb: 22 << 20}
	f, err := figures(start, end, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, 128.0, f.BytesPerCapacity)
	assert.Equal(t, 250.0, f.BytesPerLive)
	assert.Equal(t, 200.0, f.GrowthPerLive)
	assert.Equal(t, uint64(22<<20), f.HugepagesBytes)

	_, err = figures(start, natgwMemory{VmRSS: 1}, 1<<20)
	assert.Error(t, err, "no live flow: nothing to divide")
	_, err = figures(natgwMemory{}, end, 1<<20)
	assert.Error(t, err, "no heap figure")
}

func TestRunConfigTOML(t *testing.T) {
	tr, err := newTraffic(1000)
	require.NoError(t, err)
	tr.Capacity = 1 << 24
	rc := runConfig{WorkerCPU: 1, MainLcore: "0", SocketDir: "/run/x", MgmtListen: "127.0.0.1:19693"}
	text, c, err := rc.configTOML(tr)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, c.Dataplane.WorkerCPUs)
	assert.Equal(t, 1<<24, c.Dataplane.FlowCapacity, "sized for the peak, not the live flows")
	assert.Equal(t, "127.0.0.1:19693", c.Mgmt.Listen)
	assert.Equal(t, "dpdk", c.Dataplane.Driver)
	assert.Equal(t, "net_memif0", c.Inside.Port)
	assert.Equal(t, "net_memif1", c.Outside.Port)
	assert.Contains(t, c.Dataplane.EALArgs, "--vdev=net_memif0,role=client,socket=/run/x/in.sock,socket-abstract=no,id=0,rsize=10,mac=02:00:00:00:00:fe")
	assert.Contains(t, c.Dataplane.EALArgs, "--vdev=net_memif1,role=client,socket=/run/x/out.sock,socket-abstract=no,id=0,rsize=10,mac=02:00:00:00:00:fe")
	assert.True(t, strings.HasPrefix(text, "# natgw configuration of the RFC 9693 method through natgw run"))
	same, err := tr.config("a", "b", nil)
	require.NoError(t, err)
	assert.Equal(t, len(same.Pools), len(c.Pools), "the in-process method's pool")
	assert.Equal(t, same.Pools[0].Members, c.Pools[0].Members)
	assert.Equal(t, len(same.Neighbors), len(c.Neighbors))

	assert.Equal(t, "--vdev=net_memif1,role=server,socket=/s,socket-abstract=no,id=0,rsize=10", memifVdev(1, "server", "/s", 1024), "the server's device has no MAC of natgw's")
	assert.Equal(t, 1024, c.Dataplane.RxDesc(), "natgw's rings match the memif rings")
	assert.Contains(t, memifVdev(0, "client", "/s", 16384), ",rsize=14,")
	rc.Ring = 4096
	_, c4, err := rc.configTOML(tr)
	require.NoError(t, err)
	assert.Equal(t, 4096, c4.Dataplane.RxDesc())
	assert.Equal(t, 4096, c4.Dataplane.TxDesc())
	assert.Contains(t, c4.Dataplane.EALArgs, "--vdev=net_memif1,role=client,socket=/run/x/out.sock,socket-abstract=no,id=0,rsize=12,mac=02:00:00:00:00:fe")
	rc.Ring = 0

	assert.Zero(t, c.Dataplane.WorkerPriority, "no worker_priority unless asked")
	rc.WorkerPriority = 1
	text, c, err = rc.configTOML(tr)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Dataplane.WorkerPriority, "the worker real-time through natgw's own key")
	assert.Contains(t, text, "worker_cpus = [1]\nworker_priority = 1\n")
	rc.WorkerPriority = 0

	rc.WorkerCPU = -1
	_, _, err = rc.configTOML(tr)
	assert.Error(t, err, "natgw's own validation refuses the CPU")
}

func TestReportNatgwRun(t *testing.T) {
	dir := t.TempDir()
	for _, r := range sampleRuns() {
		require.NoError(t, writeJSON(filepath.Join(dir, "rfc9693-"+strconv.Itoa(r.Flows)+".json"), r))
	}
	run := rfcRun{Flows: 1_000_000, Capacity: 1 << 24, Throughput: 2_500_000, PDR: 2_600_000, Connections: 400_000, Mode: modeNatgwRun, Seconds: 200, RingSize: 4096,
		Natgw: &natgwRunView{Restarts: 9,
			Memory:  []natgwMemory{{At: "start", VmRSS: 50 << 20}, {At: "fill", VmRSS: 300 << 20}, {At: "end", VmRSS: 310 << 20}},
			Figures: memoryFigures{BytesPerCapacity: 127.9, BytesPerLive: 325.1, GrowthPerLive: 272.6, HugepagesBytes: 22 << 20},
			Steps: []natgwStep{{Search: "throughput", Rate: 4_000_000, Out: dirCount{Offered: 10, Accepted: 8, Received: 8},
				Natgw: natgwCounters{PortRx: map[string]uint64{"inside": 8}, PortTx: map[string]uint64{"outside": 8}}, Where: "refused by natgw's full RX rings: 2 inside, 0 outside"}}}}
	require.NoError(t, writeJSON(filepath.Join(dir, "rfc9693-run-1000000.json"), run))
	failed := rfcRun{Flows: 1000, Capacity: 1 << 24, Mode: modeNatgwRun, Error: "natgw exited"}
	require.NoError(t, writeJSON(filepath.Join(dir, "rfc9693-run-1000.json"), failed))
	var out bytes.Buffer
	require.NoError(t, cmdReport9693([]string{"-dir", dir, "-out", dir, "-repo", dir}, &out, &out))
	var r rfcReport
	require.NoError(t, readJSON(filepath.Join(dir, "rfc9693.json"), &r))
	assert.Len(t, r.Runs, 3, "the in-process runs only: targets and charts stay theirs")
	require.Len(t, r.NatgwRuns, 2)
	assert.Equal(t, 1000, r.NatgwRuns[0].Flows, "sorted by flows")
	md, err := os.ReadFile(filepath.Join(dir, "rfc9693.md"))
	require.NoError(t, err)
	s := string(md)
	for _, want := range []string{"## Through `natgw run`", "Rings of 4096 frames (memif `rsize`",
		"| 1M | 16Mi | 2.50 Mpps | 2.60 Mpps | 0.400 M | 50.0 MiB / 300.0 MiB / 310.0 MiB | 22.0 MiB | 127.9 | 325.1 (272.6) | 10 | 200 s |",
		"| 1K | 16Mi | error: natgw exited |",
		"| throughput | 4.000 M | **no** | 10 + 0 | 2 | 8 / 0 | 0 / 0 | 8 / 0 | none | refused by natgw's full RX rings: 2 inside, 0 outside |"} {
		assert.Contains(t, s, want)
	}
	assert.Less(t, strings.Index(s, "## Through `natgw run`"), strings.Index(s, "## Charts"))
	assert.Contains(t, s, "![rfc9693-natgw-run-memory](rfc9693-natgw-run-memory.svg)")
	svg, err := os.ReadFile(filepath.Join(dir, "rfc9693-natgw-run-memory.svg"))
	require.NoError(t, err)
	assert.Len(t, svgPoints(t, string(svg)), 3, "three series, one run without error")
}

func TestTargets16M(t *testing.T) {
	runs := []rfcRun{{Flows: 16_000_000, Capacity: 1 << 24, Throughput: 9_000_000, Connections: 1_000_000, TranslatorBytes: 127 << 24}}
	got := map[string]rfcTarget{}
	for _, x := range targets20(runs) {
		got[x.What] = x
	}
	assert.Equal(t, "yes", got["established throughput, 16 M flows"].Met, "bench.sh's 16,000,000 flows are the 16 M of the targets")
	assert.Equal(t, "**no**", got["connections/s, 16 M flows"].Met)
}

func TestFillMore(t *testing.T) {
	done := connectResult{Flows: 5, Established: 5, First: dirCount{Offered: 5, Received: 5}, Answer: dirCount{Offered: 5, Received: 5}}
	assert.False(t, fillMore(0, done), "nothing missing")
	missing := connectResult{Flows: 5, Established: 3, First: dirCount{Offered: 5, Received: 3}, Answer: dirCount{Offered: 3, Received: 3}}
	assert.True(t, fillMore(0, missing), "the first pass left some out")
	assert.True(t, fillMore(7, missing), "more than five rounds while they make progress")
	assert.False(t, fillMore(fillRounds, missing), "bounded")
	stuck := connectResult{Flows: 5, First: dirCount{Offered: 5}}
	assert.False(t, fillMore(3, stuck), "a round that established nothing ends it")
}

func TestLineChartLogNoPoint(t *testing.T) {
	// A log chart with no point (no run measured latency) must still
	// draw its axes: it once looped over ticks from log10(0) = -Inf.
	svg := lineChart("l", "x", "y", []string{"a"}, []chartSeries{{Name: "p", Values: []float64{math.NaN()}}}, true)
	assert.Empty(t, svgPoints(t, svg))
	assert.Contains(t, svg, ">10</text>")
}
