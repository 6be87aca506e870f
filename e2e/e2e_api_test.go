package e2e

// This file holds what the management and fault suites share beyond
// e2e_testbed_test.go: natgw's management API reached from the test
// process (a client whose connections are opened inside the gateway
// namespace), Prometheus scrapes, UDP flows and paced UDP streams through
// the NAT, and the start and clean stop of one natgw run.
//
// Threading: an apiClient and a udpFlow may be used from one goroutine at
// a time; runStream owns its flow until it returns.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
)

// e2eMgmtURL is natgw's management endpoint in the gateway namespace (the
// template's mgmt.listen).
const e2eMgmtURL = "http://127.0.0.1:9650"

// apiClient talks to the management API of the natgw in the testbed's
// gateway namespace.
type apiClient struct {
	tb     *testbed
	client *http.Client
}

// api returns a client of the management API. Each request opens its
// connection inside the gateway namespace (no keep-alive, so a restarted
// natgw is met on a fresh connection).
func (tb *testbed) api() *apiClient {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := tb.inNetns("gw", func() error {
			d := net.Dialer{Timeout: 5 * time.Second}
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &apiClient{tb: tb, client: &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
	}}
}

// do sends one request and returns the status and the body.
func (a *apiClient) do(method, path string) (int, []byte, error) {
	req, err := http.NewRequest(method, e2eMgmtURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, body, err
}

// getJSON GETs path, requires status 200 and decodes the body into v.
func (a *apiClient) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	st, body, err := a.do(http.MethodGet, path)
	require.NoError(t, err, "GET %s", path)
	require.Equal(t, http.StatusOK, st, "GET %s: %s", path, body)
	require.NoError(t, json.Unmarshal(body, v), "GET %s: %s", path, body)
}

// mapping returns GET /v1/mappings/{ip}.
func (a *apiClient) mapping(t *testing.T, ip string) mgmt.MappingResponse {
	t.Helper()
	var m mgmt.MappingResponse
	a.getJSON(t, "/v1/mappings/"+ip, &m)
	return m
}

// flows returns GET /v1/flows?private=ip (all flows when ip is empty).
func (a *apiClient) flows(t *testing.T, ip string) []mgmt.FlowEntry {
	t.Helper()
	path := "/v1/flows?limit=100000"
	if ip != "" {
		path += "&private=" + ip
	}
	var f mgmt.FlowsResponse
	a.getJSON(t, path, &f)
	return f.Flows
}

// reload POSTs /v1/config/reload and returns the status and body.
func (a *apiClient) reload(t *testing.T) (int, []byte) {
	t.Helper()
	st, body, err := a.do(http.MethodPost, "/v1/config/reload")
	require.NoError(t, err, "POST /v1/config/reload")
	return st, body
}

// ready reports whether GET /readyz answers 200 (an error: no answer).
func (a *apiClient) ready() (bool, error) {
	st, body, err := a.do(http.MethodGet, "/readyz")
	if err != nil {
		return false, err
	}
	switch st {
	case http.StatusOK:
		return true, nil
	case http.StatusServiceUnavailable:
		return false, nil
	}
	return false, fmt.Errorf("GET /readyz: status %d: %s", st, body)
}

// waitReadyz waits until /readyz answers want (true: 200, false: 503).
func (a *apiClient) waitReadyz(want bool, timeout time.Duration) error {
	return waitFor(timeout, func() error {
		ok, err := a.ready()
		if err != nil {
			return err
		}
		if ok != want {
			return fmt.Errorf("readyz ready=%v, want %v", ok, want)
		}
		return nil
	})
}

// metricSet is one parsed scrape of /metrics.
type metricSet map[string]*dto.MetricFamily

// scrapeE returns one parsed scrape.
func (a *apiClient) scrapeE() (metricSet, error) {
	st, body, err := a.do(http.MethodGet, "/metrics")
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d: %s", st, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics as Prometheus text: %w", err)
	}
	return metricSet(fams), nil
}

// scrape returns one parsed scrape and requires it to succeed.
func (a *apiClient) scrape(t *testing.T) metricSet {
	t.Helper()
	m, err := a.scrapeE()
	require.NoError(t, err)
	return m
}

// sum adds up the samples of family name whose labels include the given
// pairs ("reason", "idle", ...): a counter summed over workers, say.
func (m metricSet) sum(name string, labelPairs ...string) float64 {
	f, ok := m[name]
	if !ok {
		return 0
	}
	total := 0.0
next:
	for _, s := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labelPairs); i += 2 {
			if have[labelPairs[i]] != labelPairs[i+1] {
				continue next
			}
		}
		switch {
		case s.Counter != nil:
			total += s.GetCounter().GetValue()
		case s.Gauge != nil:
			total += s.GetGauge().GetValue()
		case s.Untyped != nil:
			total += s.GetUntyped().GetValue()
		}
	}
	return total
}

// waitMetric waits until the sum of a metric (see metricSet.sum)
// satisfies ok, and returns the last value seen.
func (a *apiClient) waitMetric(timeout time.Duration, ok func(float64) bool, name string, labelPairs ...string) (float64, error) {
	var last float64
	err := waitFor(timeout, func() error {
		m, err := a.scrapeE()
		if err != nil {
			return err
		}
		last = m.sum(name, labelPairs...)
		if !ok(last) {
			return fmt.Errorf("%s%v = %v", name, labelPairs, last)
		}
		return nil
	})
	return last, err
}

// udpFlow is one UDP socket in the inside namespace talking to one server
// endpoint: one flow through natgw.
type udpFlow struct {
	conn *net.UDPConn
	dst  netip.AddrPort
	// seq makes each exchange's payload unique, so a late echo of an
	// earlier try is never taken for the answer.
	seq int
	buf []byte
}

// openUDP opens a UDP socket bound to src (port 0: any) in the inside
// namespace, for datagrams to dst.
func (tb *testbed) openUDP(src, dst netip.AddrPort) (*udpFlow, error) {
	var conn *net.UDPConn
	err := tb.inNetns("in", func() error {
		var err error
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(src))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &udpFlow{conn: conn, dst: dst, buf: make([]byte, 2048)}, nil
}

// openUDPFlows opens n flows from private address src (any port) to dst;
// t's cleanup closes them.
func (tb *testbed) openUDPFlows(t *testing.T, src string, dst netip.AddrPort, n int) []*udpFlow {
	t.Helper()
	flows := make([]*udpFlow, 0, n)
	t.Cleanup(func() {
		for _, f := range flows {
			f.close()
		}
	})
	for range n {
		f, err := tb.openUDP(netip.AddrPortFrom(netip.MustParseAddr(src), 0), dst)
		require.NoError(t, err)
		flows = append(flows, f)
	}
	return flows
}

// close closes the socket; a closed flow's exchanges fail.
func (f *udpFlow) close() { f.conn.Close() }

// local returns the socket's private endpoint.
func (f *udpFlow) local() netip.AddrPort { return f.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// send sends payload once.
func (f *udpFlow) send(payload string) error {
	_, err := f.conn.WriteToUDPAddrPort([]byte(payload), f.dst)
	return err
}

// await waits up to wait for the echo of payload and returns the public
// endpoint the server saw and the echo's source address.
func (f *udpFlow) await(payload string, wait time.Duration) (seen, from netip.AddrPort, err error) {
	if err := f.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return seen, from, err
	}
	for {
		n, src, err := f.conn.ReadFromUDPAddrPort(f.buf)
		if err != nil {
			return seen, from, err
		}
		addr, got, ok := strings.Cut(string(f.buf[:n]), " ")
		if !ok || got != payload {
			continue // a late echo of an earlier try
		}
		seen, err = netip.ParseAddrPort(addr)
		if err != nil {
			return seen, from, fmt.Errorf("echo %q: %w", f.buf[:n], err)
		}
		return seen, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), nil
	}
}

// exchange sends a fresh payload and waits for its echo, up to tries
// times, waiting wait each time. It returns the public endpoint the server
// saw and the echo's source.
func (f *udpFlow) exchange(tries int, wait time.Duration) (seen, from netip.AddrPort, err error) {
	for range tries {
		f.seq++
		payload := "x" + strconv.Itoa(f.seq)
		if err = f.send(payload); err != nil {
			return seen, from, err
		}
		seen, from, err = f.await(payload, wait)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return seen, from, err
		}
	}
	return seen, from, fmt.Errorf("no echo from %s after %d tries of %v: %w", f.dst, tries, wait, err)
}

// exchangeAll runs exchange on every flow concurrently and returns each
// flow's public endpoint (zero where it failed) and error.
func exchangeAll(flows []*udpFlow, tries int, wait time.Duration) ([]netip.AddrPort, []error) {
	seen := make([]netip.AddrPort, len(flows))
	errs := make([]error, len(flows))
	var wg sync.WaitGroup
	for i, f := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen[i], _, errs[i] = f.exchange(tries, wait)
		}()
	}
	wg.Wait()
	return seen, errs
}

// streamResult is what a paced UDP stream saw.
type streamResult struct {
	// sent and received count datagrams and their echoes.
	sent, received int
	// missing are the sequence numbers never echoed (the first 20).
	missing []int
	// ports are the public ports the server saw.
	ports map[uint16]int
	// got[i] says whether datagram i was echoed.
	got []bool
}

// lost returns the number of datagrams never echoed.
func (r streamResult) lost() int { return r.sent - r.received }

// runStream sends count datagrams on f, one every interval, numbered, and
// counts their echoes, waiting up to 3 s after the last for stragglers. A
// send the host refuses counts as a lost datagram and is reported in the
// error; the stream goes on.
// onSent, when not nil, is called after datagram i was sent (from the
// sending goroutine). ctx ends the stream early.
func runStream(ctx context.Context, f *udpFlow, count int, interval time.Duration, onSent func(i int)) (streamResult, error) {
	res := streamResult{ports: map[uint16]int{}}
	got := make([]bool, count)
	recvDone := make(chan error, 1)
	var mu sync.Mutex
	sendDone := make(chan struct{})
	go func() {
		buf := make([]byte, 2048)
		var drainUntil time.Time
		for {
			if drainUntil.IsZero() {
				select {
				case <-sendDone:
					// The sender finished: stragglers get 3 s.
					drainUntil = time.Now().Add(3 * time.Second)
				default:
				}
			}
			deadline := drainUntil
			if deadline.IsZero() {
				deadline = time.Now().Add(200 * time.Millisecond)
			}
			f.conn.SetReadDeadline(deadline)
			n, _, err := f.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if drainUntil.IsZero() {
						continue
					}
					recvDone <- nil
					return
				}
				recvDone <- err
				return
			}
			addr, payload, ok := strings.Cut(string(buf[:n]), " ")
			seq, err := strconv.Atoi(strings.TrimPrefix(payload, "s"))
			if !ok || err != nil || seq < 0 || seq >= count {
				continue
			}
			mu.Lock()
			if !got[seq] {
				got[seq] = true
				res.received++
				if ap, err := netip.ParseAddrPort(addr); err == nil {
					res.ports[ap.Port()]++
				}
			}
			done := res.received == res.sent && res.sent == count
			mu.Unlock()
			if done {
				recvDone <- nil
				return
			}
		}
	}()
	start := time.Now()
	var sendErr error
	failed := 0
	for i := 0; i < count && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if err := f.send("s" + strconv.Itoa(i)); err != nil {
			// Counted as sent and lost (a link down makes the host
			// refuse sends); the stream goes on.
			if failed++; sendErr == nil {
				sendErr = fmt.Errorf("datagram %d: %w", i, err)
			}
		}
		mu.Lock()
		res.sent++
		mu.Unlock()
		if onSent != nil {
			onSent(i)
		}
	}
	close(sendDone)
	recvErr := <-recvDone
	mu.Lock()
	defer mu.Unlock()
	res.got = got[:res.sent]
	for i := 0; i < res.sent && len(res.missing) < 20; i++ {
		if !got[i] {
			res.missing = append(res.missing, i)
		}
	}
	if sendErr != nil {
		sendErr = fmt.Errorf("%d sends failed, the first: %w", failed, sendErr)
	}
	return res, errors.Join(sendErr, recvErr)
}

// tcpEcho is a TCP connection from the inside to a server's TCP echo
// port (:9001).
type tcpEcho struct {
	conn net.Conn
	n    int
}

// dialEcho opens a TCP connection from private address src to dst in the
// inside namespace.
func (tb *testbed) dialEcho(src, dst string) (*tcpEcho, error) {
	conns, err := tb.dialMany("in", src, dst, 1)
	if err != nil {
		return nil, err
	}
	return &tcpEcho{conn: conns[0]}, nil
}

// echo writes a fresh line and reads it back within timeout.
func (e *tcpEcho) echo(timeout time.Duration) error {
	e.n++
	line := fmt.Sprintf("line %d\n", e.n)
	if err := e.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(e.conn, line); err != nil {
		return err
	}
	buf := make([]byte, len(line))
	if _, err := io.ReadFull(e.conn, buf); err != nil {
		return err
	}
	if string(buf) != line {
		return fmt.Errorf("echo %q, want %q", buf, line)
	}
	return nil
}

// startRun writes cfg to a file of t's and runs natgw with it until it
// translates and /readyz answers 200.
func (tb *testbed) startRun(t *testing.T, cfg e2eConfig) *e2eRun {
	t.Helper()
	r := &e2eRun{tb: tb, workers: cfg.Workers, cfg: cfg, config: filepath.Join(t.TempDir(), "natgw.toml")}
	writeConfig(t, r.config, cfg)
	r.natgw = tb.startNatgw(t, r.config)
	require.NoError(t, r.natgw.waitLog("natgw running", 1, 30*time.Second), "natgw log:\n%s", r.natgw.log.String())
	require.NoError(t, r.natgw.waitReady(30*time.Second), "natgw never translated a request")
	// A link just brought up may report its carrier a moment late (the
	// kernel's link watch): ready means both links up too.
	require.NoError(t, tb.api().waitReadyz(true, 20*time.Second), "natgw never became ready")
	return r
}

// stopCleanly sends SIGTERM and checks that natgw exits with status 0
// within 20 s, logs "natgw stopped cleanly" and never panicked.
func (r *e2eRun) stopCleanly(t *testing.T) {
	t.Helper()
	code, err := r.natgw.stop(20 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, 0, code, "exit status")
	log := r.natgw.log.String()
	assert.Contains(t, log, "natgw stopped cleanly")
	assert.NotContains(t, log, "panic")
}

// inAddr adds address a (/16, on eth0) to the inside namespace for the
// rest of t.
func (tb *testbed) inAddr(t *testing.T, a string) {
	t.Helper()
	out, err := tb.run(5*time.Second, "in", "ip", "addr", "add", a+"/16", "dev", "eth0")
	require.NoError(t, err, out)
	t.Cleanup(func() { tb.run(5*time.Second, "in", "ip", "addr", "del", a+"/16", "dev", "eth0") })
}

// httpGet10 opens a TCP connection from private address src to dst in the
// inside namespace and sends one HTTP/1.0 request (the server closes the
// connection after its answer, then the client closes too); it returns
// the client address the server saw.
func (tb *testbed) httpGet10(src, dst string) (netip.AddrPort, error) {
	conns, err := tb.dialMany("in", src, dst, 1)
	if err != nil {
		return netip.AddrPort{}, err
	}
	seen, err := httpGet(conns[0])
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.ParseAddrPort(seen)
}
