package e2e

// This file is the end-to-end test of several natgw nodes behind ECMP
// (issue 17): scripts/testbed-cluster.sh with two nodes (one AF_PACKET
// worker each) announced by BGP to two real FRR routers, driven by real
// TCP and UDP clients in the inside namespace. Subtests follow the
// issue's "Done when" list; figures (shares, times to withdraw) are
// measured and logged, not asserted tightly: only the 35-65 %
// share is asserted, waits are bounded with generous deadlines.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
)

// clusterNodes are the node names; their frontends and inside addresses.
var (
	clusterNodes    = []string{"a", "b"}
	clusterFrontend = map[string]string{"a": "198.19.1.11", "b": "198.19.1.12"}
	clusterInside   = map[string]string{"a": "10.1.0.11", "b": "10.1.0.12"}
	clusterHosts    = []string{"10.2.0.10", "10.2.0.11", "10.2.0.12", "10.2.0.13", "10.2.0.14", "10.2.0.15", "10.2.0.16", "10.2.0.17"}
)

// clusterbed is a running cluster testbed and the natgw nodes in it.
type clusterbed struct {
	*testbed
	mu    sync.Mutex
	nodes map[string]*exec.Cmd
	logs  map[string]*syncBuffer
	// port is the client port of the next connection: every connection
	// gets its own, so each is a new 5-tuple (a reused port would meet
	// its predecessor's flow, still closing, and count no new flow).
	port int
}

// newClusterbed builds natgw and the echo server, brings the cluster
// testbed up with FRR and the servers, and tears it all down when t ends
// (or on SIGINT/SIGTERM, or before the test binary's deadline).
func newClusterbed(t *testing.T) *clusterbed {
	t.Helper()
	for _, f := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh"} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("NATGW_REQUIRE_E2E") == "1" {
				t.Fatalf("%s: FRR not installed: run scripts/install-deps.sh", f)
			}
			t.Skipf("%s: FRR not installed: run scripts/install-deps.sh", f)
		}
	}
	repo, err := filepath.Abs("..")
	require.NoError(t, err)
	tb := &testbed{prefix: fmt.Sprintf("ngce%d", os.Getpid()%10000000), repo: repo, dir: t.TempDir()}
	tb.natgw = filepath.Join(tb.dir, "natgw")
	tb.echoserver = filepath.Join(tb.dir, "echoserver")
	tb.build(t, tb.natgw, "./app")
	tb.build(t, tb.echoserver, "./scripts/echoserver")
	cb := &clusterbed{testbed: tb, nodes: map[string]*exec.Cmd{}, logs: map[string]*syncBuffer{}}
	var once sync.Once
	down := func() {
		once.Do(func() {
			cb.mu.Lock()
			for _, c := range cb.nodes {
				if c.Process != nil {
					c.Process.Kill()
				}
			}
			cb.mu.Unlock()
			if out, err := cb.script(2*time.Minute, "down"); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: testbed-cluster.sh down: %v: %s\n", err, out)
			}
			os.Remove("/run/lock/natgw-testbed-" + tb.prefix + ".lock")
		})
	}
	if deadline, ok := t.Deadline(); ok {
		w := time.AfterFunc(time.Until(deadline)-20*time.Second, down)
		t.Cleanup(func() { w.Stop() })
	}
	t.Cleanup(func() {
		if t.Failed() {
			for n, l := range cb.logs {
				t.Logf("natgw node %s log:\n%s", n, l.String())
			}
			out, _ := cb.script(30*time.Second, "status")
			t.Logf("testbed status:\n%s", out)
		}
		down()
	})
	for _, args := range [][]string{{"up"}, {"routers", "start"}, {"servers", "start"}} {
		out, err := cb.script(2*time.Minute, args...)
		require.NoError(t, err, "testbed-cluster.sh %s: %s", strings.Join(args, " "), out)
	}
	return cb
}

// script runs scripts/testbed-cluster.sh with this testbed's prefix.
func (cb *clusterbed) script(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(cb.repo, "scripts", "testbed-cluster.sh"), args...)
	cmd.Env = append(os.Environ(), "NATGW_TB="+cb.prefix, "NATGW_ECHOSERVER="+cb.echoserver)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return string(out), err
}

// config is node n's configuration file.
func (cb *clusterbed) config(n string) string { return "/run/" + cb.prefix + "/node-" + n + ".toml" }

// start runs natgw node n.
func (cb *clusterbed) start(t *testing.T, n string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", cb.ns(n), cb.natgw, "run", "--config", cb.config(n))
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	cb.mu.Lock()
	cb.nodes[n], cb.logs[n] = cmd, log
	cb.mu.Unlock()
}

// wait waits for node n's process to end and returns its exit error.
func (cb *clusterbed) wait(n string, timeout time.Duration) error {
	cb.mu.Lock()
	cmd := cb.nodes[n]
	cb.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("node %s still running after %v", n, timeout)
	}
}

// api returns a client of node n's management API (in its namespace).
func (cb *clusterbed) api(n string) *apiClient {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := cb.inNetns(n, func() error {
			d := net.Dialer{Timeout: 5 * time.Second}
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &apiClient{tb: cb.testbed, client: &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
	}}
}

// nexthops returns the inside router's default route next hops.
func (cb *clusterbed) nexthops() (map[string]bool, error) {
	out, err := cb.run(5*time.Second, "ir", "ip", "route", "show", "default")
	if err != nil {
		return nil, err
	}
	hops := map[string]bool{}
	for _, f := range strings.Fields(out) {
		for n, a := range clusterInside {
			if f == a {
				hops[n] = true
			}
		}
	}
	return hops, nil
}

// outsideRoutes returns which nodes' frontends the outside router routes.
func (cb *clusterbed) outsideRoutes() (map[string]bool, error) {
	out, err := cb.run(5*time.Second, "or", "ip", "route", "show", "proto", "bgp")
	if err != nil {
		return nil, err
	}
	routes := map[string]bool{}
	for n, fe := range clusterFrontend {
		if strings.Contains(out, fe+" ") {
			routes[n] = true
		}
	}
	return routes, nil
}

// waitRoutes waits until the inside router's next hops and the outside
// router's routes are exactly the nodes in want, and returns how long
// that took.
func (cb *clusterbed) waitRoutes(timeout time.Duration, want ...string) (time.Duration, error) {
	start := time.Now()
	err := waitForEvery(timeout, 10*time.Millisecond, func() error {
		in, err := cb.nexthops()
		if err != nil {
			return err
		}
		out, err := cb.outsideRoutes()
		if err != nil {
			return err
		}
		for _, n := range clusterNodes {
			w := contains(want, n)
			if in[n] != w || out[n] != w {
				return fmt.Errorf("node %s: inside route %v, outside route %v, want %v", n, in[n], out[n], w)
			}
		}
		return nil
	})
	return time.Since(start), err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// waitForEvery is waitFor with its own pause between attempts.
func waitForEvery(timeout, pause time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(pause)
	}
}

// nodeOf says which node a public address belongs to ("" when none).
func nodeOf(public string) string {
	for n, fe := range clusterFrontend {
		if public == fe {
			return n
		}
	}
	return ""
}

// connect opens count TCP connections from the inside hosts in turn to
// the HTTP echo, each asking which address the server saw, and returns
// per node how many the server saw from it, and the failures.
func (cb *clusterbed) connect(count int) (map[string]int, []error) {
	seen := map[string]int{}
	var errs []error
	err := cb.inNetns("in", func() error {
		for i := range count {
			host := clusterHosts[i%len(clusterHosts)]
			cb.port++
			port := 20000 + cb.port%40000
			d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(host), Port: port}}
			c, err := d.Dial("tcp", "198.18.0.10:8080")
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			_, err = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
			var body []byte
			if err == nil {
				body, err = io.ReadAll(c)
			}
			c.Close()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			text := string(body)
			_, after, ok := strings.Cut(text, "\r\n\r\n")
			addr, _, _ := strings.Cut(strings.TrimSpace(after), ":")
			if n := nodeOf(addr); ok && n != "" {
				seen[n]++
			} else {
				errs = append(errs, fmt.Errorf("unexpected answer %q", text))
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return seen, errs
}

// clusterFlow is a long UDP flow from one inside host to the UDP echo: it
// sends a datagram every interval and records the answers.
type clusterFlow struct {
	host   string
	conn   *net.UDPConn
	mu     sync.Mutex
	sent   int
	got    int
	public map[string]int // public endpoint the server saw -> answers
	last   time.Time
	maxGap time.Duration
	stop   chan struct{}
	done   sync.WaitGroup
}

// startUDPFlows starts one long UDP flow per inside host.
func (cb *clusterbed) startUDPFlows(t *testing.T, interval time.Duration) []*clusterFlow {
	t.Helper()
	var flows []*clusterFlow
	for _, h := range clusterHosts {
		f := &clusterFlow{host: h, public: map[string]int{}, stop: make(chan struct{})}
		err := cb.inNetns("in", func() error {
			var err error
			f.conn, err = net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(h)}, &net.UDPAddr{IP: net.ParseIP("198.18.0.11"), Port: 9000})
			return err
		})
		require.NoError(t, err)
		f.done.Add(2)
		go func() { // receiver
			defer f.done.Done()
			buf := make([]byte, 2048)
			for {
				f.conn.SetReadDeadline(time.Now().Add(time.Second))
				n, err := f.conn.Read(buf)
				select {
				case <-f.stop:
					return
				default:
				}
				if err != nil {
					continue
				}
				pub, _, _ := strings.Cut(string(buf[:n]), " ")
				now := time.Now()
				f.mu.Lock()
				f.got++
				f.public[pub]++
				if !f.last.IsZero() && now.Sub(f.last) > f.maxGap {
					f.maxGap = now.Sub(f.last)
				}
				f.last = now
				f.mu.Unlock()
			}
		}()
		go func() { // sender
			defer f.done.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-f.stop:
					return
				case <-tick.C:
				}
				f.conn.Write([]byte("flow " + h + " " + strconv.Itoa(i)))
				f.mu.Lock()
				f.sent++
				f.mu.Unlock()
			}
		}()
		flows = append(flows, f)
	}
	t.Cleanup(func() { stopUDPFlows(flows) })
	return flows
}

func stopUDPFlows(flows []*clusterFlow) {
	for _, f := range flows {
		select {
		case <-f.stop:
			continue
		default:
		}
		close(f.stop)
		f.done.Wait()
		f.conn.Close()
	}
}

// node returns the node whose public address answered the flow most
// recently (by count, for a flow that never moved: its only one).
func (f *clusterFlow) nodes() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for pub, k := range f.public {
		addr, _, _ := strings.Cut(pub, ":")
		out[nodeOf(addr)] += k
	}
	return out
}

// resetGap forgets the gap measured so far.
func (f *clusterFlow) resetGap() {
	f.mu.Lock()
	f.maxGap = 0
	f.last = time.Time{}
	f.mu.Unlock()
}

// echoConn is a long TCP conversation with the TCP echo server: a line
// every interval, each echoed back before the next.
type echoConn struct {
	local  string
	conn   *net.TCPConn
	echoes int
	err    error
	stop   chan struct{}
	done   chan struct{}
}

// startEchoConns opens n conversations from the inside hosts in turn.
func (cb *clusterbed) startEchoConns(t *testing.T, n int, interval time.Duration) []*echoConn {
	t.Helper()
	var conns []*echoConn
	for i := range n {
		host := clusterHosts[i%len(clusterHosts)]
		c := &echoConn{stop: make(chan struct{}), done: make(chan struct{})}
		err := cb.inNetns("in", func() error {
			d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(host)}}
			conn, err := d.Dial("tcp", "198.18.0.10:9001")
			if err != nil {
				return err
			}
			c.conn = conn.(*net.TCPConn)
			return nil
		})
		require.NoError(t, err)
		c.local = c.conn.LocalAddr().String()
		go c.run(interval)
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.finish()
		}
	})
	return conns
}

// run talks until stop, then closes its side and expects the server to
// close after the last byte; any error (a reset) is kept in err.
func (c *echoConn) run(interval time.Duration) {
	defer close(c.done)
	defer c.conn.Close()
	buf := make([]byte, 64)
	for i := 0; ; i++ {
		select {
		case <-c.stop:
			if err := c.conn.CloseWrite(); err != nil {
				c.err = err
				return
			}
			c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			rest, err := io.ReadAll(c.conn)
			if err == nil && len(rest) != 0 {
				err = fmt.Errorf("%d bytes after the last echo", len(rest))
			}
			c.err = err
			return
		case <-time.After(interval):
		}
		msg := fmt.Sprintf("echo %s %08d\n", c.local, i)
		c.conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c.conn, msg); err != nil {
			c.err = fmt.Errorf("echo %d: %w", i, err)
			return
		}
		if _, err := io.ReadFull(c.conn, buf[:len(msg)]); err != nil || string(buf[:len(msg)]) != msg {
			c.err = fmt.Errorf("echo %d: %q, %v", i, buf[:len(msg)], err)
			return
		}
		c.echoes++
	}
}

// finish ends the conversation and waits for it.
func (c *echoConn) finish() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// minEchoes is the fewest echoes any of conns got.
func minEchoes(conns []*echoConn) int {
	m := -1
	for _, c := range conns {
		if m < 0 || c.echoes < m {
			m = c.echoes
		}
	}
	return m
}

// probeResult is one connection of a probe: when it started, which node
// the server saw it from.
type probeResult struct {
	start time.Time
	node  string
	err   error
}

// probe opens new connections to the HTTP echo one after another, from
// the inside hosts in turn, until stopped.
type probe struct {
	stopc   chan struct{}
	done    chan struct{}
	results []probeResult
}

// startProbe starts a probe; its client ports (60000 up) are its own.
func (cb *clusterbed) startProbe(t *testing.T) *probe {
	t.Helper()
	p := &probe{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		cb.inNetns("in", func() error {
			for i := 0; ; i++ {
				select {
				case <-p.stopc:
					return nil
				default:
				}
				host := clusterHosts[i%len(clusterHosts)]
				r := probeResult{start: time.Now()}
				r.node, r.err = httpVia(host, 60000+i%5000)
				p.results = append(p.results, r)
				time.Sleep(10 * time.Millisecond)
			}
		})
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the probe and returns its connections.
func (p *probe) stop() []probeResult {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
	return p.results
}

// httpVia asks the HTTP echo, from host:port (in the inside namespace),
// which address it saw, and returns that address's node.
func httpVia(host string, port int) (string, error) {
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(host), Port: port}}
	c, err := d.Dial("tcp", "198.18.0.10:8080")
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	body, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	_, after, ok := strings.Cut(string(body), "\r\n\r\n")
	addr, _, _ := strings.Cut(strings.TrimSpace(after), ":")
	if n := nodeOf(addr); ok && n != "" {
		return n, nil
	}
	return "", fmt.Errorf("unexpected answer %q", body)
}

// TestE2ECluster runs the acceptance points against two nodes.
func TestE2ECluster(t *testing.T) {
	skipUnlessE2E(t)
	cb := newClusterbed(t)
	for _, n := range clusterNodes {
		cb.start(t, n)
	}
	took, err := cb.waitRoutes(30*time.Second, "a", "b")
	require.NoError(t, err, "both nodes in ECMP")
	t.Logf("both nodes announced and installed %v after start", took.Round(time.Millisecond))
	for _, n := range clusterNodes {
		var st mgmt.StatusResponse
		cb.api(n).getJSON(t, "/v1/status", &st)
		require.NotNil(t, st.BGP, "node %s reports bgp in /v1/status", n)
	}

	t.Run("1_spread", func(t *testing.T) {
		before := map[string]float64{}
		for _, n := range clusterNodes {
			before[n] = cb.api(n).scrape(t).sum("natgw_flows_created_total", "protocol", "tcp")
		}
		seen, errs := cb.connect(400)
		require.Empty(t, errs, "every connection succeeds")
		total := seen["a"] + seen["b"]
		require.Equal(t, 400, total)
		for _, n := range clusterNodes {
			share := float64(seen[n]) / float64(total)
			t.Logf("node %s carried %d of %d connections (%.1f %%)", n, seen[n], total, 100*share)
			assert.GreaterOrEqual(t, share, 0.35, "node %s share", n)
			assert.LessOrEqual(t, share, 0.65, "node %s share", n)
			created := cb.api(n).scrape(t).sum("natgw_flows_created_total", "protocol", "tcp") - before[n]
			m := cb.api(n).scrape(t)
			t.Logf("node %s: %v TCP flows created, drops: no_flow %v spoofed %v no_neighbor %v", n, created,
				m.sum("natgw_drops_total", "reason", "no_flow"), m.sum("natgw_drops_total", "reason", "spoofed"),
				m.sum("natgw_drops_total", "reason", "no_neighbor"))
			assert.Equal(t, float64(seen[n]), created, "node %s's flow counter matches what the servers saw", n)
		}
	})

	t.Run("2_return_traffic", func(t *testing.T) {
		flows := cb.startUDPFlows(t, 20*time.Millisecond)
		// 1 MB transfers from every inside host.
		err := cb.inNetns("in", func() error {
			for _, h := range clusterHosts[:4] {
				d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(h)}}
				c, err := d.Dial("tcp", "198.18.0.12:8080")
				if err != nil {
					return err
				}
				c.SetDeadline(time.Now().Add(20 * time.Second))
				io.WriteString(c, "GET /bytes?n=1048576 HTTP/1.0\r\n\r\n")
				r := bufio.NewReader(c)
				var length int
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						c.Close()
						return fmt.Errorf("%s: headers: %w", h, err)
					}
					if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
						length, _ = strconv.Atoi(strings.TrimSpace(v))
					}
					if line == "\r\n" {
						break
					}
				}
				n, err := io.Copy(io.Discard, r)
				c.Close()
				if err != nil || n != 1048576 || length != 1048576 {
					return fmt.Errorf("%s: got %d bytes (content-length %d): %v", h, n, length, err)
				}
			}
			return nil
		})
		require.NoError(t, err, "1 MB transfers")
		time.Sleep(2 * time.Second)
		stopUDPFlows(flows)
		for _, f := range flows {
			f.mu.Lock()
			t.Logf("UDP flow of %s: %d sent, %d answered, through %v", f.host, f.sent, f.got, f.public)
			assert.GreaterOrEqual(t, f.got, f.sent*95/100, "flow of %s: answers", f.host)
			assert.Len(t, f.public, 1, "flow of %s kept one public endpoint", f.host)
			f.mu.Unlock()
		}
		// Each flow is in exactly one node's table.
		tables := map[string][]mgmt.FlowEntry{}
		for _, n := range clusterNodes {
			tables[n] = cb.api(n).flows(t, "")
			assert.Zero(t, cb.api(n).scrape(t).sum("natgw_drops_total", "reason", "no_flow"), "node %s no_flow drops", n)
		}
		for _, f := range flows {
			private := f.conn.LocalAddr().String()
			in := 0
			for _, n := range clusterNodes {
				for _, e := range tables[n] {
					if e.Protocol == "udp" && e.Private == private {
						in++
					}
				}
			}
			assert.Equal(t, 1, in, "UDP flow %s is in exactly one node's table", private)
		}
	})

	t.Run("3_no_collisions", func(t *testing.T) {
		owner := map[string]string{}
		for _, n := range clusterNodes {
			for _, e := range cb.api(n).flows(t, "") {
				key := e.Protocol + " " + e.Public + " " + e.Remote
				if prev, ok := owner[key]; ok {
					t.Errorf("public 5-tuple %s in node %s and node %s", key, prev, n)
				}
				owner[key] = n
			}
		}
		t.Logf("%d public 5-tuples over both nodes, none shared", len(owner))
		out, err := exec.Command(cb.natgw, "cluster-check", cb.config("a"), cb.config("b")).CombinedOutput()
		assert.NoError(t, err, "cluster-check of the running nodes: %s", out)
		b, err := os.ReadFile(cb.config("b"))
		require.NoError(t, err)
		clash := filepath.Join(t.TempDir(), "node-b-clash.toml")
		require.NoError(t, os.WriteFile(clash, []byte(strings.ReplaceAll(string(b), clusterFrontend["b"], clusterFrontend["a"])), 0o600))
		out, err = exec.Command(cb.natgw, "cluster-check", cb.config("a"), clash).CombinedOutput()
		var exit *exec.ExitError
		if assert.ErrorAs(t, err, &exit, "cluster-check refuses a shared frontend: %s", out) {
			assert.Equal(t, 1, exit.ExitCode(), "%s", out)
		}
		assert.Contains(t, string(out), "frontend[0].address")
	})

	t.Run("4_failure", func(t *testing.T) {
		flows := cb.startUDPFlows(t, 20*time.Millisecond)
		time.Sleep(time.Second)
		onB := map[*clusterFlow]bool{}
		for _, f := range flows {
			nodes := f.nodes()
			onB[f] = nodes["b"] > 0 && nodes["a"] == 0
			f.resetGap()
		}
		cb.mu.Lock()
		victim := cb.nodes["a"]
		cb.mu.Unlock()
		killed := time.Now()
		require.NoError(t, victim.Process.Signal(syscall.SIGKILL))
		took, err := cb.waitRoutes(10*time.Second, "b")
		require.NoError(t, err, "the routers drop node a's routes")
		t.Logf("kill -9: both routers dropped node a's routes %v after the kill (session loss)", took.Round(time.Millisecond))
		cb.wait("a", 5*time.Second)
		time.Sleep(time.Until(killed.Add(took + time.Second)))
		seen, errs := cb.connect(40)
		assert.Empty(t, errs, "1 s later every new connection succeeds")
		assert.Equal(t, 40, seen["b"], "all through the survivor")
		time.Sleep(time.Second)
		for _, f := range flows {
			f.mu.Lock()
			gap := f.maxGap
			f.mu.Unlock()
			if onB[f] {
				f.mu.Lock()
				sent, got := f.sent, f.got
				f.mu.Unlock()
				t.Logf("survivor's flow %s: longest gap %v, %d sent, %d answered", f.host, gap.Round(time.Millisecond), sent, got)
				assert.GreaterOrEqual(t, got, sent-3, "the survivor's flow %s lost nothing but what was in flight", f.host)
			} else {
				nodes := f.nodes()
				t.Logf("failed node's flow %s: longest gap %v, answers by node %v", f.host, gap.Round(time.Millisecond), nodes)
				assert.Positive(t, nodes["b"], "flow %s resumed through the survivor (new public endpoint)", f.host)
			}
		}
		stopUDPFlows(flows)
	})

	t.Run("6_recovery", func(t *testing.T) {
		// Flows running through the survivor when a node comes back: ECMP
		// re-hashes, some move to the new node (new public endpoint).
		flows := cb.startUDPFlows(t, 50*time.Millisecond)
		time.Sleep(time.Second)
		started := time.Now()
		cb.start(t, "a")
		api := cb.api("a")
		require.NoError(t, api.waitReadyz(true, 20*time.Second))
		ready := time.Since(started)
		took, err := cb.waitRoutes(20*time.Second, "a", "b")
		require.NoError(t, err, "node a back in ECMP")
		t.Logf("restart: node a ready %v after start, back in both routers %v after start", ready.Round(time.Millisecond), took.Round(time.Millisecond))
		m := api.scrape(t)
		assert.Positive(t, m.sum("natgw_bgp_announcements_total", "side", "inside"))
		seen, errs := cb.connect(40)
		assert.Empty(t, errs)
		assert.Positive(t, seen["a"], "the restarted node takes new flows")
		t.Logf("after recovery: %v", seen)
		moved := 0
		for _, f := range flows {
			if f.nodes()["a"] > 0 {
				moved++
			}
		}
		stopUDPFlows(flows)
		t.Logf("membership change 1 -> 2 nodes: %d of %d running UDP flows moved to the new node (new public endpoint)", moved, len(flows))
	})

	t.Run("5_drain", func(t *testing.T) {
		// Long TCP echo conversations and UDP flows from every inside
		// host run through both nodes; node a is drained. With
		// bgp.cluster_peers it keeps its routes and redirects every
		// new flow to node b while its own flows finish, then leaves.
		flows := cb.startUDPFlows(t, 50*time.Millisecond)
		conns := cb.startEchoConns(t, 16, 50*time.Millisecond)
		time.Sleep(time.Second)
		onA := map[*echoConn]bool{}
		for _, e := range cb.api("a").flows(t, "") {
			for _, c := range conns {
				if e.Protocol == "tcp" && e.Private == c.local {
					onA[c] = true
				}
			}
		}
		require.NotEmpty(t, onA, "some TCP conversations run through node a")
		redirBefore := cb.api("a").scrape(t).sum("natgw_drain_redirects_total", "result", "redirected")
		createdB := cb.api("b").scrape(t).sum("natgw_flows_created_total", "protocol", "tcp")
		probe := cb.startProbe(t)
		time.Sleep(time.Second)

		cmd := time.Now()
		out, err := cb.run(15*time.Second, "a", cb.natgw, "ctl", "--mgmt", e2eMgmtURL, "drain")
		require.NoError(t, err, "ctl drain: %s", out)
		answered := time.Since(cmd)
		time.Sleep(2 * time.Second)
		results := probe.stop()

		// New connections: those started once the command answered
		// all went through node b. (Between the start of ctl and its
		// answer the node may not have had the request yet.)
		var before, after, afterA, failed int
		var lastA, firstB time.Duration = -time.Hour, time.Hour
		for _, r := range results {
			at := r.start.Sub(cmd)
			if r.err != nil {
				failed++
				t.Logf("probe connection %v after the command failed: %v", at.Round(time.Millisecond), r.err)
				continue
			}
			if at < 0 {
				before++
			} else {
				after++
			}
			switch {
			case r.node == "a" && at >= answered:
				afterA++
				lastA = max(lastA, at)
			case r.node == "a":
				lastA = max(lastA, at)
			case r.node == "b" && at >= 0:
				firstB = min(firstB, at)
			}
		}
		t.Logf("drain: ctl drain answered %v after it started; probe connections: %d started before the command, %d after, %d through node a after its answer, %d failed; the last through node a started %v after the command started, the first through node b after it %v",
			answered.Round(time.Millisecond), before, after, afterA, failed, lastA.Round(time.Millisecond), firstB.Round(time.Millisecond))
		assert.Zero(t, failed, "no new connection fails")
		assert.Zero(t, afterA, "no connection started after ctl drain answered is translated by node a")
		assert.Positive(t, after)

		hops, _ := cb.nexthops()
		outside, _ := cb.outsideRoutes()
		assert.True(t, hops["a"], "the draining node keeps its inside route while its flows finish")
		assert.True(t, outside["a"], "and its outside route")
		var st struct {
			BGP struct{ Draining string } `json:"bgp"`
		}
		cb.api("a").getJSON(t, "/v1/status", &st)
		assert.Equal(t, "redirecting", st.BGP.Draining, "node a's status while its flows finish")
		seen, errs := cb.connect(40)
		assert.Empty(t, errs)
		assert.Equal(t, 40, seen["b"], "new flows go to node b")
		redirected := cb.api("a").scrape(t).sum("natgw_drain_redirects_total", "result", "redirected") - redirBefore
		created := cb.api("b").scrape(t).sum("natgw_flows_created_total", "protocol", "tcp") - createdB
		t.Logf("drain: node a redirected %v packets to node b; node b created %v TCP flows for %d probe and 40 more connections", redirected, created, len(results))
		assert.Positive(t, redirected, "node a redirected the new flows ECMP gave it")

		// The conversations on node a keep going, then end cleanly.
		time.Sleep(2 * time.Second)
		for _, c := range conns {
			c.finish()
		}
		intactA := 0
		for _, c := range conns {
			assert.NoError(t, c.err, "TCP conversation %s (node a: %v)", c.local, onA[c])
			if c.err == nil && onA[c] {
				intactA++
			}
		}
		t.Logf("drain: %d of %d TCP conversations through node a completed intact (%d echoes each at least), no reset", intactA, len(onA), minEchoes(conns))
		stopUDPFlows(flows)
		for _, f := range flows {
			f.mu.Lock()
			t.Logf("drain: UDP flow of %s: %d sent, %d answered, by node %v, longest gap %v", f.host, f.sent, f.got, f.public, f.maxGap.Round(time.Millisecond))
			assert.GreaterOrEqual(t, f.got, f.sent-3, "UDP flow of %s kept its node through the drain", f.host)
			assert.Len(t, f.public, 1, "UDP flow of %s kept its public endpoint", f.host)
			f.mu.Unlock()
		}
		require.NoError(t, cb.wait("a", 60*time.Second), "the drained node exits cleanly (status 0)")
		left := time.Since(cmd)
		_, err = cb.waitRoutes(10*time.Second, "b")
		require.NoError(t, err)
		t.Logf("drain: node a withdrew and exited %v after ctl drain (drain_deadline 20 s: the UDP flows idle out later)", left.Round(time.Millisecond))
		assert.Contains(t, cb.logs["a"].String(), "natgw stopped cleanly")
		cb.start(t, "a")
		_, err = cb.waitRoutes(30*time.Second, "a", "b")
		require.NoError(t, err)
	})

	t.Run("4b_silent_death", func(t *testing.T) {
		// A frozen node closes no session: the routers notice when the
		// hold time (3 s) runs out.
		cb.mu.Lock()
		victim := cb.nodes["b"]
		cb.mu.Unlock()
		require.NoError(t, victim.Process.Signal(syscall.SIGSTOP))
		took, err := cb.waitRoutes(20*time.Second, "a")
		victim.Process.Signal(syscall.SIGKILL)
		victim.Process.Signal(syscall.SIGCONT)
		require.NoError(t, err, "the routers drop a frozen node's routes")
		t.Logf("silent death (SIGSTOP): both routers dropped node b's routes %v after it froze (hold time 3 s)", took.Round(time.Millisecond))
		cb.wait("b", 10*time.Second)
		seen, errs := cb.connect(20)
		assert.Empty(t, errs)
		assert.Equal(t, 20, seen["a"])
		cb.start(t, "b")
		_, err = cb.waitRoutes(30*time.Second, "a", "b")
		require.NoError(t, err)
	})

	t.Run("7_fragments_l3", func(t *testing.T) {
		out, err := cb.script(30*time.Second, "hash", "l3")
		require.NoError(t, err, out)
		before := map[string]float64{}
		for _, n := range clusterNodes {
			before[n] = cb.api(n).scrape(t).sum("natgw_drops_total", "reason", "fragment")
		}
		// Per host, one socket: a small datagram, then a 3000-byte one
		// that leaves the host in three fragments. With L3 hashing both
		// take the same node, so the large one is translated by the
		// small one's flow: same public endpoint, answered intact.
		payload := strings.Repeat("x", 3000)
		small, large := map[string]string{}, map[string]string{}
		err = cb.inNetns("in", func() error {
			for _, h := range clusterHosts {
				c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(h)}, &net.UDPAddr{IP: net.ParseIP("198.18.0.10"), Port: 9000})
				if err != nil {
					return err
				}
				buf := make([]byte, 8192)
				ask := func(msg string) (string, error) {
					c.Write([]byte(msg))
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					n, err := c.Read(buf)
					if err != nil {
						return "", err
					}
					pub, rest, _ := strings.Cut(string(buf[:n]), " ")
					if rest != msg {
						return "", fmt.Errorf("answer of %d bytes is not the datagram of %d", len(rest), len(msg))
					}
					return pub, nil
				}
				small[h], err = ask("small")
				if err == nil {
					large[h], err = ask(payload)
				}
				c.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", h, err)
				}
			}
			return nil
		})
		require.NoError(t, err, "every datagram answered intact at the first try")
		for _, h := range clusterHosts {
			assert.Equal(t, small[h], large[h], "%s: the fragmented datagram went through its flow's node and mapping", h)
		}
		t.Logf("fragmented datagrams answered intact through: %v", large)
		for _, n := range clusterNodes {
			m := cb.api(n).scrape(t)
			t.Logf("node %s: fragment drops %v during the check; fragments held %v, timed out %v, refused %v", n,
				m.sum("natgw_drops_total", "reason", "fragment")-before[n], m.sum("natgw_fragments_total", "event", "held"),
				m.sum("natgw_fragments_total", "event", "timed_out"), m.sum("natgw_fragments_total", "event", "refused"))
		}
	})
}
