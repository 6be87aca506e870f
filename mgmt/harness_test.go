package mgmt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	dto "github.com/prometheus/client_model/go"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// testConfig is the appliance of the API tests: a pool "web" whose members
// get ports_per_member ports, an instance, default SNAT for the rest of
// 10.0.0.0/16, and a static gateway so translated frames leave the fake
// outside port.
const testConfig = `
[dataplane]
driver = "afpacket"
workers = 1
flow_capacity = 10000
[inside]
port = "fake-in"
address = "10.0.0.1/16"
[outside]
port = "fake-out"
address = "198.19.0.2/24"
gateway = "198.19.0.1"
[[neighbor]]
address = "198.19.0.1"
mac = "02:00:00:00:02:09"
# The default-SNAT host, confirmed for inside.source_check (it never
# answers ARP here, so it would get no block).
[[neighbor]]
address = "10.0.9.9"
mac = "02:00:00:00:01:09"
[timeouts]
udp = "{{udp}}"
[[frontend]]
name = "fe1"
address = "198.19.1.10"
[[frontend]]
name = "fe-default"
address = "198.19.1.20"
[[pool]]
name = "web"
frontends = ["fe1"]
members = ["10.0.1.4", "10.0.1.5"]
ports_per_member = {{ppm}}
[[instance]]
private = "10.0.3.7"
public = "198.19.1.50"
[default_snat]
sources = ["10.0.0.0/16"]
frontends = ["fe-default"]
ports_per_member = 1024
`

// configText returns testConfig with its placeholders filled.
func configText(udp string, ppm int) string {
	return strings.NewReplacer("{{udp}}", udp, "{{ppm}}", fmt.Sprint(ppm)).Replace(testConfig)
}

var (
	macIn   = [6]byte{2, 0, 0, 0, 1, 1}
	macOut  = [6]byte{2, 0, 0, 0, 2, 2}
	macHost = [6]byte{2, 0, 0, 0, 1, 9}
)

// fakeClock is the dataplane clock of a test appliance.
type fakeClock struct{ ms atomic.Uint32 }

func (c *fakeClock) now() nat.Tick           { return nat.Tick(c.ms.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ms.Add(uint32(d / time.Millisecond)) }

// appliance is a running natgw on fake ports with an API test server.
type appliance struct {
	path    string
	clock   *fakeClock
	policy  *nat.PolicyHolder
	in, out *lcore.FakePort
	rt      *lcore.Runtime
	srv     *Server
	http    *httptest.Server
	token   string
}

type applianceOptions struct {
	udp     string
	ppm     int
	token   string
	noStart bool // leave the dataplane stopped (workers never poll)
}

// newAppliance starts a test appliance; it is stopped when the test ends.
func newAppliance(t *testing.T, o applianceOptions) *appliance {
	t.Helper()
	if o.udp == "" {
		o.udp = "4m"
	}
	if o.ppm == 0 {
		o.ppm = 8
	}
	a := &appliance{clock: &fakeClock{}, policy: &nat.PolicyHolder{}, token: o.token}
	a.clock.ms.Store(1)
	a.path = filepath.Join(t.TempDir(), "natgw.toml")
	require.NoError(t, os.WriteFile(a.path, []byte(configText(o.udp, o.ppm)), 0o600))
	c, err := config.Load(a.path)
	require.NoError(t, err)
	p, err := CompilePolicy(c, nil)
	require.NoError(t, err)
	a.policy.Store(p)
	a.in = lcore.NewFakePort("fake-in", macIn, 2)
	a.out = lcore.NewFakePort("fake-out", macOut, 2)
	ports := [lcore.NumPorts]lcore.Port{a.in, a.out}
	log := slog.New(slog.DiscardHandler)
	a.rt, err = lcore.NewRuntime(lcore.RuntimeConfig{Workers: 1, Ports: ports, Policy: a.policy,
		FlowCapacity: c.Dataplane.FlowCapacity, Log: log, Clock: a.clock.now,
		Static: staticNeighbors(c)})
	require.NoError(t, err)
	rel := NewReloader(ReloadOptions{Path: a.path, Policy: a.policy, Config: c, Log: log})
	a.srv, err = NewServer(Options{Token: o.token, Runtime: a.rt, Ports: ports, Policy: a.policy,
		Reloader: rel, Version: "test", Driver: "fake", Log: log, QueryTimeout: 10 * time.Second})
	require.NoError(t, err)
	if !o.noStart {
		a.rt.Start()
		t.Cleanup(a.rt.Stop)
		gw := c.GatewayAddr()
		eventually(t, func() bool { _, ok := a.rt.Manager.Neighbors()[gw]; return ok }, "static gateway never published")
		// Ready means every worker has polled: tests that expect /readyz
		// to answer 200 must not race the workers' first poll.
		for i, w := range a.rt.Workers {
			eventually(t, func() bool { return w.Counters.LastPoll.Load() != 0 }, "worker %d never polled", i)
		}
	}
	a.http = httptest.NewServer(a.srv.Handler())
	t.Cleanup(a.http.Close)
	return a
}

// do sends a request and returns the status and body; the body must be
// JSON for every path but /metrics.
func (a *appliance) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, a.http.URL+path, body)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.http.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if path != "/metrics" && method != http.MethodHead {
		require.True(t, json.Valid(b), "%s %s: body is not JSON: %q", method, path, b)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, b
}

// getJSON GETs path, requires status want and decodes the body into v.
func (a *appliance) getJSON(t *testing.T, path string, want int, v any) {
	t.Helper()
	st, b := a.do(t, http.MethodGet, path, nil, nil)
	require.Equal(t, want, st, "GET %s: %s", path, b)
	require.NoError(t, json.Unmarshal(b, v))
}

// metrics scrapes /metrics and parses it.
func (a *appliance) metrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	st, b := a.do(t, http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, st)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	require.NoError(t, err)
	return fams
}

// metricValue returns the value of the sample of family name whose labels
// include labels (summed when several match), and whether any matched.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, found
}

// sendUDP injects a UDP datagram from an inside host.
// staticNeighbors returns the configuration's [[neighbor]] entries.
func staticNeighbors(c *config.Config) []lcore.StaticNeighbor {
	var s []lcore.StaticNeighbor
	for _, n := range c.Neighbors {
		s = append(s, lcore.StaticNeighbor{Addr: nat.U32(n.Addr()), MAC: n.HardwareAddr()})
	}
	return s
}

func (a *appliance) sendUDP(src, dst string, sport, dport uint16) {
	frame := make([]byte, 128)
	n := nat.BuildUDP(frame[nat.EthernetLen:], nat.U32(netip.MustParseAddr(src)), nat.U32(netip.MustParseAddr(dst)),
		sport, dport, 64, []byte("natgw"))
	nat.WriteEthernet(frame, macIn, macHost, nat.EtherTypeIPv4)
	a.in.Inject(0, frame[:nat.EthernetLen+n])
}

// eventually waits (generously) for cond; it fails the test with msg if
// cond never holds. It synchronises with the running workers, it does not
// assert on time.
func eventually(t *testing.T, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(msg, args...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sentUDP counts the UDP frames the fake outside port transmitted since the
// last call, adding them to *total.
func (a *appliance) sentUDP(total *int) int {
	for _, f := range a.out.Sent() {
		if len(f) > nat.EthernetLen+9 && f[nat.EthernetLen+9] == nat.ProtoUDP {
			*total++
		}
	}
	return *total
}
