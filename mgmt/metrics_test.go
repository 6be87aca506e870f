package mgmt

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/bgp"
	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/mgmt/config/configtest"
	"github.com/natgw/natgw/natlog"
)

func TestMetricsExposition(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	fams := a.metrics(t)
	// Exactly the table's natgw families, each with the table's labels,
	// and the Go runtime and process collectors'.
	var natgw []string
	for name := range fams {
		if strings.HasPrefix(name, "natgw_") {
			natgw = append(natgw, name)
		}
	}
	var always []string
	for _, m := range metrics {
		always = append(always, m.Name)
	}
	assert.ElementsMatch(t, always, natgw, "without nat_log, the families always exported")
	for _, m := range Metrics() {
		for _, sample := range fams[m.Name].GetMetric() {
			var labels []string
			for _, l := range sample.GetLabel() {
				labels = append(labels, l.GetName())
			}
			assert.ElementsMatch(t, m.Labels, labels, "labels of %s", m.Name)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total"} {
		assert.Contains(t, fams, name)
	}
	assert.Subset(t, MetricNames(), SpecMetricNames())
	for _, r := range DropReasons() {
		_, ok := metricValue(fams, "natgw_drops_total", map[string]string{"reason": r})
		assert.True(t, ok, "natgw_drops_total{reason=%q}", r)
	}
	for _, r := range ExpireReasons() {
		_, ok := metricValue(fams, "natgw_flows_expired_total", map[string]string{"reason": r})
		assert.True(t, ok, "natgw_flows_expired_total{reason=%q}", r)
	}
	// Every poll-gap threshold (values depend on the test machine's load).
	for _, over := range pollGapNames {
		_, ok := metricValue(fams, "natgw_worker_poll_gaps_total", map[string]string{"over": over, "worker": "0"})
		assert.True(t, ok, "natgw_worker_poll_gaps_total{over=%q}", over)
	}
	_, ok := metricValue(fams, "natgw_worker_poll_gap_max_seconds", map[string]string{"worker": "0"})
	assert.True(t, ok, "natgw_worker_poll_gap_max_seconds")

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"every drop reason", "natgw_drops_total", map[string]string{"reason": "tx_full", "worker": "0"}, 0},
		{"expiry reasons", "natgw_flows_expired_total", map[string]string{"reason": "reclaimed", "worker": "0"}, 0},
		{"protocols", "natgw_flows_active", map[string]string{"protocol": "icmp", "worker": "0"}, 0},
		{"directions", "natgw_packets_total", map[string]string{"direction": "in", "worker": "0"}, 0},
		{"pool ports", "natgw_snat_ports_allocated", map[string]string{"pool": "web"}, 16},
		{"default SNAT ports", "natgw_snat_ports_allocated", map[string]string{"pool": "default_snat"}, 0},
		{"generation", "natgw_config_generation", nil, 1},
		{"reloads ok", "natgw_config_reloads_total", map[string]string{"result": "ok"}, 0},
		{"reloads error", "natgw_config_reloads_total", map[string]string{"result": "error"}, 0},
		{"link", "natgw_port_link_up", map[string]string{"port": "outside"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := metricValue(fams, tt.metric, tt.labels)
			require.True(t, ok, "%s%v missing", tt.metric, tt.labels)
			assert.Equal(t, tt.want, v)
		})
	}
	// No label carries an address.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				assert.NotRegexp(t, `^\d+\.\d+\.\d+\.\d+`, l.GetValue(), "%s{%s}", name, l.GetName())
			}
		}
	}
}

// TestPollGapNames: the labels of natgw_worker_poll_gaps_total name
// lcore's thresholds.
func TestPollGapNames(t *testing.T) {
	for i, d := range lcore.PollGapLimits() {
		want := strings.Replace(d.String(), "µs", "us", 1)
		assert.Equal(t, want, pollGapNames[i])
	}
}

// TestReload checks POST /v1/config/reload [S7]: a valid file gives the
// next generation; an invalid one is refused with every error and the
// running configuration keeps serving.
func TestReload(t *testing.T) {
	a := newAppliance(t, applianceOptions{})
	reloads := func(result string) float64 {
		v, _ := metricValue(a.metrics(t), "natgw_config_reloads_total", map[string]string{"result": result})
		return v
	}
	resetOnIdle := applianceConfig("4m", 8)
	resetOnIdle.Timeouts.TCPResetOnIdle = true
	steps := []struct {
		name      string
		file      string
		want      int
		wantGen   float64
		wantOK    float64
		wantError float64
		wantMsgs  []string
		wantPorts float64 // natgw_snat_ports_allocated{pool="web"}
	}{
		{"valid: bigger blocks", configText("4m", 16), 200, 2, 1, 0, nil, 32},
		{"invalid: two errors", strings.Replace(configText("4m", 12), `udp = "4m0s"`, `udp = "soon"`, 1), 400, 2, 1, 1,
			[]string{"timeouts.udp", "pool[0].ports_per_member"}, 32},
		{"unreadable TOML", "[[pool", 400, 2, 1, 2, []string{"natgw.toml"}, 32},
		{"valid again", configText("4m", 8), 200, 3, 2, 2, nil, 16},
		{"tcp_reset_on_idle is honoured", string(configtest.Text(resetOnIdle)), 200, 4, 3, 2, nil, 16},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(a.path, []byte(st.file), 0o600))
			code, b := a.do(t, http.MethodPost, "/v1/config/reload", nil, nil)
			require.Equal(t, st.want, code, "body: %s", b)
			if st.want == 200 {
				var r ReloadResponse
				require.NoError(t, json.Unmarshal(b, &r))
				assert.Equal(t, uint32(st.wantGen), r.Generation)
			} else {
				var e ErrorResponse
				require.NoError(t, json.Unmarshal(b, &e))
				for _, m := range st.wantMsgs {
					assert.Contains(t, e.Error, m)
				}
				assert.Len(t, e.Errors, max(len(st.wantMsgs), 1))
			}
			fams := a.metrics(t)
			gen, _ := metricValue(fams, "natgw_config_generation", nil)
			assert.Equal(t, st.wantGen, gen)
			assert.Equal(t, st.wantOK, reloads("ok"))
			assert.Equal(t, st.wantError, reloads("error"))
			ports, _ := metricValue(fams, "natgw_snat_ports_allocated", map[string]string{"pool": "web"})
			assert.Equal(t, st.wantPorts, ports)
			// The running configuration serves either way.
			var m MappingResponse
			a.getJSON(t, "/v1/mappings/10.0.1.4", http.StatusOK, &m)
			assert.Equal(t, uint16(1024+st.wantPorts/2-1), m.Ports.Last)
		})
	}
}

// TestExhaustion drives [S2][S4] through the fake driver: with 8 ports per
// member, 8 UDP flows from one member to one server port pass, the 9th is
// dropped and counted for the pool, a flow to another destination passes,
// and the mapping shows the 8 ports in use.
func TestExhaustion(t *testing.T) {
	a := newAppliance(t, applianceOptions{ppm: 8})
	sent := 0
	for i := range 8 {
		a.sendUDP("10.0.1.4", "198.18.0.10", uint16(4000+i), 53)
	}
	eventually(t, func() bool { return a.sentUDP(&sent) == 8 }, "8 flows should pass, %d did", sent)

	a.sendUDP("10.0.1.4", "198.18.0.10", 4008, 53)
	exhausted := func() float64 {
		v, _ := metricValue(a.metrics(t), "natgw_snat_port_exhaustion_total", map[string]string{"pool": "web"})
		return v
	}
	eventually(t, func() bool { return exhausted() == 1 }, "exhaustion not counted")
	drops, _ := metricValue(a.metrics(t), "natgw_drops_total", map[string]string{"reason": "port_exhausted"})
	assert.Equal(t, 1.0, drops)
	assert.Equal(t, 8, a.sentUDP(&sent), "the 9th flow must not pass")

	a.sendUDP("10.0.1.4", "198.18.0.11", 4008, 53)
	eventually(t, func() bool { return a.sentUDP(&sent) == 9 }, "a flow to another destination should pass")

	var m MappingResponse
	a.getJSON(t, "/v1/mappings/10.0.1.4", http.StatusOK, &m)
	assert.Equal(t, 9, m.Flows)
	assert.Equal(t, 8, m.PortsInUse)
	assert.Equal(t, "web", m.Pool)

	// The utilisation scan sees the full destination.
	a.clock.advance(6 * time.Second)
	eventually(t, func() bool {
		v, _ := metricValue(a.metrics(t), "natgw_snat_port_utilization_max", map[string]string{"pool": "web"})
		return v == 1
	}, "utilisation should reach 1")
	flows, _ := metricValue(a.metrics(t), "natgw_snat_flows", map[string]string{"pool": "web"})
	assert.Equal(t, 9.0, flows)
}

// TestIdleExpiry checks [S5] with udp = "2s" on the dataplane clock: idle
// flows are counted as expired for idleness and their ports are free again.
func TestIdleExpiry(t *testing.T) {
	a := newAppliance(t, applianceOptions{udp: "2s", ppm: 8})
	sent := 0
	for i := range 8 {
		a.sendUDP("10.0.1.4", "198.18.0.10", uint16(4000+i), 53)
	}
	eventually(t, func() bool { return a.sentUDP(&sent) == 8 }, "8 flows should pass")
	idle := func() float64 {
		v, _ := metricValue(a.metrics(t), "natgw_flows_expired_total", map[string]string{"reason": "idle"})
		return v
	}
	a.clock.advance(time.Second)
	assert.Zero(t, idle(), "nothing expires before the timeout")

	a.clock.advance(1500 * time.Millisecond)
	eventually(t, func() bool { return idle() == 8 }, "8 idle expiries expected, have %v", idle())
	var m MappingResponse
	a.getJSON(t, "/v1/mappings/10.0.1.4", http.StatusOK, &m)
	assert.Zero(t, m.Flows)
	assert.Zero(t, m.PortsInUse)
	active, _ := metricValue(a.metrics(t), "natgw_flows_active", map[string]string{"protocol": "udp"})
	assert.Zero(t, active)

	// The ports are free again: 8 new flows to the same destination pass.
	for i := range 8 {
		a.sendUDP("10.0.1.4", "198.18.0.10", uint16(5000+i), 53)
	}
	eventually(t, func() bool { return a.sentUDP(&sent) == 16 }, "the freed ports should serve new flows")
}

// TestMaintainReclaimsDefaultSNAT: a default-SNAT block with no flows for
// default_snat.reclaim_idle is reclaimed within two passes after that,
// passes every ReclaimInterval or every reclaim_idle when shorter (a
// reload sets it).
func TestMaintainReclaimsDefaultSNAT(t *testing.T) {
	for _, c := range []struct {
		name string
		idle string // default_snat.reclaim_idle; empty: left out
		want time.Duration
	}{
		{"default", "", config.DefaultSNATReclaimIdle},
		{"reclaim_idle 3s", "3s", 3 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) { maintainReclaims(t, c.idle, c.want) })
	}
}

func maintainReclaims(t *testing.T, idleText string, idle time.Duration) {
	a := newAppliance(t, applianceOptions{udp: "2s"})
	if idleText != "" {
		cfg := applianceConfig("2s", 8)
		cfg.DefaultSNAT.ReclaimIdle = configtest.Duration(idleText)
		a.reloadTo(t, string(configtest.Text(cfg)))
	}
	require.Equal(t, idle, a.policy.Load().DefaultSNATReclaimIdle())
	every := min(ReclaimInterval, idle)
	a.sendUDP("10.0.9.9", "198.18.0.10", 4000, 53)
	var m MappingResponse
	eventually(t, func() bool {
		a.getJSON(t, "/v1/mappings/10.0.9.9", http.StatusOK, &m)
		return m.Public != nil
	}, "default-SNAT block not assigned")
	a.clock.advance(3 * time.Second)
	eventually(t, func() bool { return a.rt.Workers[0].Counters.FlowsActive[1].Load() == 0 }, "flow not expired")
	d := a.policy.Load().DefaultSNAT()
	require.Equal(t, 1, d.Stats().Assigned)
	now := time.Now()
	a.srv.Maintain(now)                              // sees the block idle
	a.srv.Maintain(now.Add(idle - time.Second))      // too early: idle for less than idle
	a.srv.Maintain(now.Add(idle - time.Millisecond)) // likewise
	assert.Equal(t, 1, d.Stats().Assigned)
	a.srv.Maintain(now.Add(idle + every))   // marks it draining
	a.srv.Maintain(now.Add(idle + 2*every)) // frees it
	assert.Equal(t, 0, d.Stats().Assigned)
	a.getJSON(t, "/v1/mappings/10.0.9.9", http.StatusOK, &m)
	assert.Nil(t, m.Public)
}

// TestMetricsDocumented: docs/OPERATIONS.md describes every metric of the
// table, and every natgw metric the README and the docs name is one the
// collector exports (a renamed or removed metric leaves no stale text).
func TestMetricsDocumented(t *testing.T) {
	// A metric name; "natgw_stl.py" is a file, not a metric.
	metricName := regexp.MustCompile(`natgw_[a-z_]*[a-z](\.[a-z]+)?`)
	documented := map[string]bool{}
	for _, doc := range []string{"../README.md", "../docs/OPERATIONS.md", "../docs/DESIGN.md", "../BENCHMARKS.md"} {
		b, err := os.ReadFile(doc)
		require.NoError(t, err)
		for _, m := range metricName.FindAllSubmatch(b, -1) {
			if len(m[1]) > 0 {
				continue
			}
			name := string(m[0])
			assert.Contains(t, MetricNames(), name, "%s names %s, which natgw does not export", doc, name)
			if doc == "../docs/OPERATIONS.md" {
				documented[name] = true
			}
		}
	}
	for _, name := range MetricNames() {
		assert.True(t, documented[name], "docs/OPERATIONS.md does not describe %s", name)
	}
}

// TestNatlogMetricsInTable: the NAT event log's collector (package natlog,
// which can't import mgmt) exports exactly the table's natlog families.
func TestNatlogMetricsInTable(t *testing.T) {
	for _, name := range natlog.MetricNames {
		assert.Contains(t, MetricNames(), name)
	}
	out := natlog.NewOutput(slog.New(slog.DiscardHandler))
	ch := make(chan *prometheus.Desc, 16)
	out.Describe(ch)
	close(ch)
	var described []string
	for d := range ch {
		for _, m := range optionalMetrics {
			if strings.Contains(d.String(), `"`+m.Name+`"`) {
				described = append(described, m.Name)
				assert.Contains(t, d.String(), `help: "`+m.Help+`"`, "natlog's help of %s is the table's", m.Name)
			}
		}
	}
	assert.ElementsMatch(t, natlog.MetricNames, described)
}

// TestBGPMetricsInTable: the BGP announcer's collector (package bgp)
// exports exactly the table's bgp families, with the table's help.
func TestBGPMetricsInTable(t *testing.T) {
	a := bgp.NewAnnouncer(bgp.AnnouncerOptions{})
	ch := make(chan *prometheus.Desc, 16)
	a.Collector().Describe(ch)
	close(ch)
	var described []string
	for d := range ch {
		for _, m := range optionalMetrics {
			if strings.Contains(d.String(), `"`+m.Name+`"`) {
				described = append(described, m.Name)
				assert.Contains(t, d.String(), `help: "`+m.Help+`"`, "bgp's help of %s is the table's", m.Name)
			}
		}
	}
	assert.ElementsMatch(t, bgp.MetricNames, described)
}
