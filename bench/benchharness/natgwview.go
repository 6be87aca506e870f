package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// This file is the "natgw run" mode's view of natgw (run9693.go): natgw's
// own Prometheus metrics (GET /metrics), read before and after each
// elementary step, summed over workers and differenced, and the memory
// figures read from /proc and sysfs. It is pure Go, tested without DPDK.

// promSample is one sample of the Prometheus text format.
type promSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// parsePrometheus parses the Prometheus text exposition format (what
// natgw's /metrics serves): comments and blank lines are skipped, every
// other line is NAME[{LABELS}] VALUE [TIMESTAMP]. A malformed line is an
// error naming its number.
func parsePrometheus(r io.Reader) ([]promSample, error) {
	var out []promSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parsePromLine(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", n, line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parsePromLine parses one sample line.
func parsePromLine(line string) (promSample, error) {
	s := promSample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return s, fmt.Errorf("no value")
	}
	s.Name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " \t,")
			if rest == "" {
				return s, fmt.Errorf("unterminated labels")
			}
			if rest[0] == '}' {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, fmt.Errorf("bad label")
			}
			name := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest, closed = rest[j+1:], true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return s, fmt.Errorf("unterminated label value")
			}
			s.Labels[name] = v.String()
		}
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.Value = v
	return s, nil
}

// natgwCounters is what the natgw run mode reads from natgw's metrics,
// summed over workers: counters (differenced between two reads by sub)
// and gauges (kept as read last).
type natgwCounters struct {
	// PortRx, PortTx and PortMissed are natgw_port_*_total by port
	// (inside, outside): what the driver counted.
	PortRx     map[string]uint64 `json:"port_rx"`
	PortTx     map[string]uint64 `json:"port_tx"`
	PortMissed map[string]uint64 `json:"port_rx_missed,omitempty"`
	// Translated is natgw_packets_total by direction (out, in).
	Translated map[string]uint64 `json:"translated"`
	// Drops is natgw_drops_total by reason (only reasons that counted).
	Drops        map[string]uint64 `json:"drops,omitempty"`
	FlowsCreated uint64            `json:"flows_created"`
	// FlowsActive (gauge) is natgw_flows_active over every protocol.
	FlowsActive uint64 `json:"flows_active"`
	// RSS and HeapInuse (gauges) are natgw's process_resident_memory_bytes
	// and go_memstats_heap_inuse_bytes.
	RSS       uint64 `json:"resident_bytes,omitempty"`
	HeapInuse uint64 `json:"go_heap_inuse_bytes,omitempty"`
}

// countersFrom sums natgw's samples over workers.
func countersFrom(samples []promSample) natgwCounters {
	c := natgwCounters{PortRx: map[string]uint64{}, PortTx: map[string]uint64{}, PortMissed: map[string]uint64{},
		Translated: map[string]uint64{}, Drops: map[string]uint64{}}
	u := func(v float64) uint64 {
		if v <= 0 || math.IsNaN(v) {
			return 0
		}
		return uint64(v)
	}
	for _, s := range samples {
		switch s.Name {
		case "natgw_port_rx_packets_total":
			c.PortRx[s.Labels["port"]] += u(s.Value)
		case "natgw_port_tx_packets_total":
			c.PortTx[s.Labels["port"]] += u(s.Value)
		case "natgw_port_rx_missed_total":
			c.PortMissed[s.Labels["port"]] += u(s.Value)
		case "natgw_packets_total":
			c.Translated[s.Labels["direction"]] += u(s.Value)
		case "natgw_drops_total":
			c.Drops[s.Labels["reason"]] += u(s.Value)
		case "natgw_flows_created_total":
			c.FlowsCreated += u(s.Value)
		case "natgw_flows_active":
			c.FlowsActive += u(s.Value)
		case "process_resident_memory_bytes":
			c.RSS = u(s.Value)
		case "go_memstats_heap_inuse_bytes":
			c.HeapInuse = u(s.Value)
		}
	}
	return c
}

// sub returns the counters' growth since before (a counter that went
// back, natgw having restarted, counts from zero) and c's gauges. Maps
// keep only keys that grew.
func (c natgwCounters) sub(before natgwCounters) natgwCounters {
	d := func(now, then map[string]uint64) map[string]uint64 {
		out := map[string]uint64{}
		for k, v := range now {
			w := then[k]
			if v < w {
				w = 0
			}
			if v > w {
				out[k] = v - w
			}
		}
		return out
	}
	created := c.FlowsCreated - before.FlowsCreated
	if c.FlowsCreated < before.FlowsCreated {
		created = c.FlowsCreated
	}
	return natgwCounters{PortRx: d(c.PortRx, before.PortRx), PortTx: d(c.PortTx, before.PortTx),
		PortMissed: d(c.PortMissed, before.PortMissed), Translated: d(c.Translated, before.Translated),
		Drops: d(c.Drops, before.Drops), FlowsCreated: created, FlowsActive: c.FlowsActive, RSS: c.RSS, HeapInuse: c.HeapInuse}
}

// natgwStep is one elementary step of the natgw run mode: the
// generator's count and natgw's, side by side.
type natgwStep struct {
	Search string `json:"search"`
	Rate   uint64 `json:"rate"`
	Pass   bool   `json:"pass"`
	// Limited: the generator could not offer the rate (the step fails
	// whatever natgw did).
	Limited bool     `json:"generator_limited,omitempty"`
	Out     dirCount `json:"generator_out"`
	In      dirCount `json:"generator_in"`
	// Natgw is the growth of natgw's counters over the step.
	Natgw natgwCounters `json:"natgw"`
	// Where says where the generator's lost frames went, by natgw's
	// counters.
	Where string `json:"where,omitempty"`
}

// where explains a step's loss with natgw's counters: frames natgw's RX
// rings refused (the generator's device did not take them: natgw did
// not drain its ring in time), frames natgw received and dropped (by
// reason), frames it sent that the generator did not receive, and what
// is left unexplained. "" when nothing was lost.
func (s natgwStep) where() string {
	lost := s.Out.lost() + s.In.lost()
	var parts []string
	if s.Limited {
		parts = append(parts, "the generator could not offer the rate")
	}
	if lost == 0 && s.Out.Bad == 0 && s.In.Bad == 0 {
		return strings.Join(parts, "")
	}
	refusedOut, refusedIn := s.Out.Offered-min(s.Out.Offered, s.Out.Accepted), s.In.Offered-min(s.In.Offered, s.In.Accepted)
	if refusedOut+refusedIn > 0 {
		parts = append(parts, fmt.Sprintf("refused by natgw's full RX rings: %d inside, %d outside", refusedOut, refusedIn))
	}
	rxIn, rxOut := s.Natgw.PortRx["inside"], s.Natgw.PortRx["outside"]
	if s.Out.Accepted > rxIn || s.In.Accepted > rxOut {
		parts = append(parts, fmt.Sprintf("taken by the rings, not counted received by natgw: %d inside, %d outside",
			s.Out.Accepted-min(s.Out.Accepted, rxIn), s.In.Accepted-min(s.In.Accepted, rxOut)))
	}
	if len(s.Natgw.Drops) > 0 {
		parts = append(parts, "natgw drops: "+formatDrops(s.Natgw.Drops))
	}
	txOut, txIn := s.Natgw.PortTx["outside"], s.Natgw.PortTx["inside"]
	got := s.Out.Received + s.Out.Bad + s.In.Received + s.In.Bad
	if txOut+txIn > got {
		parts = append(parts, fmt.Sprintf("sent by natgw, not received by the generator: %d", txOut+txIn-got))
	}
	if s.Out.Bad+s.In.Bad > 0 {
		parts = append(parts, fmt.Sprintf("received mistranslated: %d", s.Out.Bad+s.In.Bad))
	}
	if len(parts) == 0 || len(parts) == 1 && s.Limited {
		parts = append(parts, fmt.Sprintf("%d lost; natgw's counters show no drop", lost))
	}
	return strings.Join(parts, "; ")
}

// natgwMemory is natgw's memory at one point of a run.
type natgwMemory struct {
	// At says when: "start" (table allocated, no flow), "fill" (after
	// phase 1), "end" (after phase 2, the fill the throughput was
	// measured at).
	At          string `json:"at"`
	FlowsActive uint64 `json:"flows_active"`
	// VmRSS and VmHWM are /proc/PID/status's (bytes).
	VmRSS uint64 `json:"vm_rss_bytes"`
	VmHWM uint64 `json:"vm_hwm_bytes"`
	// Hugetlb is the hugepage memory natgw maps (/proc/PID/status
	// HugetlbPages: DPDK's mempool, rings and tables); SystemHugepagesUsed
	// is how many 2 MB hugepages fewer were free system-wide after natgw
	// started than before (a cross-check; other processes can move it).
	Hugetlb             uint64 `json:"hugetlb_bytes"`
	SystemHugepagesUsed int    `json:"system_hugepages_2mb_taken"`
	// HeapInuse and RSS are natgw's own metrics
	// (go_memstats_heap_inuse_bytes, process_resident_memory_bytes).
	HeapInuse uint64 `json:"go_heap_inuse_bytes"`
	RSS       uint64 `json:"metrics_resident_bytes"`
}

// procStatus is what natgw's /proc/PID/status says of its memory, in
// bytes: VmRSS (resident, hugetlb pages not included), VmHWM (its peak)
// and HugetlbPages (the hugepages it maps: DPDK's memory).
type procStatus struct {
	VmRSS, VmHWM, Hugetlb uint64
}

// parseProcStatus parses a /proc/PID/status text. VmRSS and VmHWM must be
// there; HugetlbPages is 0 when absent (kernels before 4.4).
func parseProcStatus(text string) (procStatus, error) {
	var st procStatus
	found := 0
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch k {
		case "VmRSS":
			dst = &st.VmRSS
		case "VmHWM":
			dst = &st.VmHWM
		case "HugetlbPages":
			dst = &st.Hugetlb
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return procStatus{}, fmt.Errorf("%s: unexpected %q", k, v)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return procStatus{}, fmt.Errorf("%s: %w", k, err)
		}
		*dst = n << 10
		if k != "HugetlbPages" {
			found++
		}
	}
	if found != 2 {
		return procStatus{}, fmt.Errorf("VmRSS or VmHWM missing")
	}
	return st, nil
}

// memoryFigures are the memory figures of a natgw run run: the table's
// bytes per flow of capacity (natgw's Go heap in use just after start,
// the table allocated and no flow created, over flow_capacity: an upper
// bound, the heap also holds the rest of natgw) and the resident bytes
// per live flow at the fill the throughput was measured at (natgw's
// resident memory, all of it, over its live flows), with the growth of
// resident memory from start per live flow.
type memoryFigures struct {
	BytesPerCapacity float64 `json:"heap_bytes_per_flow_of_capacity"`
	BytesPerLive     float64 `json:"resident_bytes_per_live_flow"`
	GrowthPerLive    float64 `json:"resident_growth_bytes_per_live_flow"`
	HugepagesBytes   uint64  `json:"hugepages_bytes"`
}

// figures computes memoryFigures from the start and end points.
func figures(start, end natgwMemory, capacity int) (memoryFigures, error) {
	if capacity <= 0 || end.FlowsActive == 0 || start.HeapInuse == 0 || end.VmRSS == 0 {
		return memoryFigures{}, fmt.Errorf("memory: capacity %d, %d live flows, heap %d, resident %d: nothing to divide",
			capacity, end.FlowsActive, start.HeapInuse, end.VmRSS)
	}
	f := memoryFigures{
		BytesPerCapacity: float64(start.HeapInuse) / float64(capacity),
		BytesPerLive:     float64(end.VmRSS) / float64(end.FlowsActive),
		HugepagesBytes:   end.Hugetlb,
	}
	if end.VmRSS > start.VmRSS {
		f.GrowthPerLive = float64(end.VmRSS-start.VmRSS) / float64(end.FlowsActive)
	}
	return f, nil
}

// natgwRunView is what the natgw run mode adds to a run's result.
type natgwRunView struct {
	Binary   string   `json:"binary"`
	Config   string   `json:"config"`
	Restarts int      `json:"restarts"`
	EALArgs  []string `json:"natgw_eal_args"`
	// StartSeconds is how long natgw took from exec to /readyz, at the
	// last start.
	StartSeconds float64       `json:"start_s"`
	Memory       []natgwMemory `json:"memory"`
	Figures      memoryFigures `json:"memory_figures"`
	Steps        []natgwStep   `json:"steps"`
}

// describe summarises natgw's counters of a step in one line.
func (s natgwStep) describe() string {
	n := s.Natgw
	return fmt.Sprintf("port rx inside %d outside %d, translated out %d in %d, port tx outside %d inside %d, drops %s, flows active %d",
		n.PortRx["inside"], n.PortRx["outside"], n.Translated["out"], n.Translated["in"], n.PortTx["outside"], n.PortTx["inside"],
		formatDrops(n.Drops), n.FlowsActive)
}
