package e2e

// TestE2E is natgw's end-to-end suite (issue 3): the real binary in the
// gateway namespace of scripts/testbed.sh, driven by real clients (curl,
// ping, traceroute, iperf3, tcpdump) and by in-process sockets opened in
// the testbed's namespaces, once with one worker and once with two (which
// exercises the handoff between workers). Helpers live in e2e_*_test.go.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// e2eServer is the echo server most checks talk to.
const e2eServer = "198.18.0.10"

// e2eRun is one natgw run of the suite.
type e2eRun struct {
	tb      *testbed
	workers int
	// slot numbers the runs of one test binary; it offsets the source
	// ports checks bind, so a run never meets the TIME_WAIT of another.
	slot int
	// cfg is the configuration the run started with.
	cfg e2eConfig
	// config is the configuration file natgw runs with.
	config string
	natgw  *natgwProc
}

// e2eCheck is one check of the scenario list.
type e2eCheck struct {
	name string
	run  func(t *testing.T, r *e2eRun)
}

// e2eChecks is the scenario list, run in order against each natgw run;
// the reload check changes the configuration, so it comes last.
var e2eChecks = []e2eCheck{
	{"pool members translate into their port blocks", checkPoolMembers},
	{"instance and default SNAT", checkInstanceAndDefault},
	{"inbound to the instance", checkInbound},
	{"500 concurrent connections", checkConcurrent},
	{"UDP request and reply", checkUDP},
	{"ping", checkPing},
	{"traceroute", checkTraceroute},
	{"path MTU discovery and bulk transfer", checkBulk},
	{"unsolicited inbound and denied destinations", checkDrops},
	{"malformed frame flood", checkFlood},
	{"SIGHUP reload", checkReload},
}

// TestE2E builds natgw, brings up a testbed of its own, and runs the
// scenario list against natgw with one worker and with two; each run ends
// with SIGTERM, exit status 0 and the "natgw stopped cleanly" log line.
// natgw's log is written to the test output when a run fails.
func TestE2E(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	slot := 0
	for _, driver := range e2eDrivers() {
		for _, workers := range []int{1, 2} {
			slot++
			t.Run(fmt.Sprintf("driver=%s/workers=%d", driver, workers), func(t *testing.T) {
				cfg := e2eConfig{Driver: driver, Workers: workers, Members: e2ePoolMembers}
				if cpu, ok := lastAllowedCPU(); workers == 1 && ok {
					// The last CPU for the worker, the others for the rest.
					cfg.WorkerCPUs = []int{cpu}
				}
				r := &e2eRun{tb: tb, workers: workers, slot: slot, cfg: cfg, config: filepath.Join(t.TempDir(), "natgw.toml")}
				r.start(t)
			})
		}
	}
}

// start runs natgw with the run's configuration through the scenario list
// and stops it.
func (r *e2eRun) start(t *testing.T) {
	writeConfig(t, r.config, r.cfg)
	r.natgw = r.tb.startNatgw(t, r.config)
	require.NoError(t, r.natgw.waitLog("natgw running", 1, 20*time.Second), "natgw log:\n%s", r.natgw.log.String())
	require.NoError(t, r.natgw.waitReady(20*time.Second), "natgw never translated a request")
	if len(r.cfg.WorkerCPUs) > 0 {
		t.Run("worker_cpus: each worker alone on its CPU", func(t *testing.T) { checkWorkerCPUs(t, r) })
	}
	for _, c := range e2eChecks {
		t.Run(c.name, func(t *testing.T) {
			require.True(t, r.natgw.alive(), "natgw is not running: %v", r.natgw.waitErr)
			c.run(t, r)
		})
	}
	t.Run("SIGTERM stops natgw cleanly", func(t *testing.T) {
		code, err := r.natgw.stop(20 * time.Second)
		require.NoError(t, err)
		assert.Equal(t, 0, code, "exit status")
		log := r.natgw.log.String()
		assert.Contains(t, log, "natgw stopped cleanly")
		assert.NotContains(t, log, "panic")
	})
}

// lastAllowedCPU returns the highest CPU this process may run on, when it
// may run on two or more (one is left for natgw's other threads).
func lastAllowedCPU() (int, bool) {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil || set.Count() < 2 {
		return 0, false
	}
	for c := len(set)*64 - 1; c >= 0; c-- {
		if set.IsSet(c) {
			return c, true
		}
	}
	return 0, false
}

// checkWorkerCPUs: with dataplane.worker_cpus, each worker's thread may
// run on its CPU only, and every other thread of natgw (management, HTTP,
// Go runtime, DPDK's control threads) on none of the worker CPUs.
func checkWorkerCPUs(t *testing.T, r *e2eRun) {
	pid := r.natgw.cmd.Process.Pid
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	require.NoError(t, err)
	require.Equal(t, "natgw", strings.TrimSpace(string(comm)), "ip netns exec runs natgw in its own process")
	for i, cpu := range r.cfg.WorkerCPUs {
		assert.Contains(t, r.natgw.log.String(), fmt.Sprintf(`msg="worker pinned" worker=%d cpu=%d`, i, cpu))
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	require.NoError(t, err)
	pinned := map[string]int{}
	for _, task := range tasks {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		var allowed string
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				allowed = strings.TrimSpace(v)
			}
		}
		require.NotEmpty(t, allowed, "thread %s", task.Name())
		isWorker := false
		for _, cpu := range r.cfg.WorkerCPUs {
			if allowed == strconv.Itoa(cpu) {
				pinned[allowed]++
				isWorker = true
			}
		}
		if isWorker {
			continue
		}
		for _, cpu := range r.cfg.WorkerCPUs {
			assert.False(t, cpuListHas(t, allowed, cpu), "thread %s may run on worker CPU %d (allowed %s)", task.Name(), cpu, allowed)
		}
	}
	for _, cpu := range r.cfg.WorkerCPUs {
		assert.Equal(t, 1, pinned[strconv.Itoa(cpu)], "threads pinned to worker CPU %d", cpu)
	}
}

// cpuListHas reports whether a list like "0,2-3" holds cpu.
func cpuListHas(t *testing.T, list string, cpu int) bool {
	for _, part := range strings.Split(list, ",") {
		lo, hi, ranged := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		require.NoError(t, err, "CPU list %q", list)
		b := a
		if ranged {
			b, err = strconv.Atoi(hi)
			require.NoError(t, err, "CPU list %q", list)
		}
		if cpu >= a && cpu <= b {
			return true
		}
	}
	return false
}

// checkPoolMembers: [S1]/[S3] pool members reach the server from the
// pool's frontend with a source port inside their own block.
func checkPoolMembers(t *testing.T, r *e2eRun) {
	for _, member := range []string{"10.0.1.4", "10.0.1.5", "10.0.2.3"} {
		t.Run(member, func(t *testing.T) {
			out, err := r.tb.curl(10*time.Second, member, "http://"+e2eServer+":8080/")
			require.NoError(t, err, out)
			expectFor(t, member, 0).check(t, out)
		})
	}
}

// checkInstanceAndDefault: [S1] the instance keeps its source port on its
// own public address; any other inside host gets default SNAT.
func checkInstanceAndDefault(t *testing.T, r *e2eRun) {
	localPort := 40000 + r.slot
	tests := []struct {
		name      string
		src       string
		localPort int
		want      expectedPublic
	}{
		{"instance 10.0.3.7 keeps its source port", "10.0.3.7", localPort, expectFor(t, "10.0.3.7", localPort)},
		{"default SNAT 10.0.9.9", "", 0, expectFor(t, "10.0.9.9", 0)},
		{"default SNAT 10.0.9.9 bound explicitly", "10.0.9.9", 0, expectFor(t, "10.0.9.9", 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var extra []string
			if tt.localPort != 0 {
				extra = append(extra, "--local-port", fmt.Sprint(tt.localPort))
			}
			out, err := r.tb.curl(10*time.Second, tt.src, "http://"+e2eServer+":8080/", extra...)
			require.NoError(t, err, out)
			tt.want.check(t, out)
		})
	}
}

// checkInbound: [S6] the instance's inbound rules admit new flows from the
// internet to 10.0.3.7 (tcp/8000-8100, udp/*) and nothing else.
func checkInbound(t *testing.T, r *e2eRun) {
	t.Run("tcp/8080 allowed reaches 10.0.3.7", func(t *testing.T) {
		out, err := r.tb.run(10*time.Second, "srv", "curl", "-sS", "-m", "5", "--interface", "198.18.0.11",
			"http://"+e2eInstancePublic+":8080/")
		require.NoError(t, err, out)
		ap, err := netip.ParseAddrPort(strings.TrimSpace(out))
		require.NoError(t, err, "reply %q", out)
		assert.Equal(t, "198.18.0.11", ap.Addr().String(), "the instance sees the real client")
	})
	t.Run("udp/9000 allowed reaches 10.0.3.7 and the reply comes from the public address", func(t *testing.T) {
		src := netip.MustParseAddrPort(fmt.Sprintf("198.18.0.11:%d", 46000+r.slot))
		dst := netip.MustParseAddrPort(e2eInstancePublic + ":9000")
		reply, from, err := r.tb.udpExchange("srv", src, dst, "hello-inbound")
		require.NoError(t, err)
		assert.Equal(t, src.String()+" hello-inbound", reply)
		assert.Equal(t, dst, from, "reply source")
	})
	t.Run("tcp/9001 not allowed never reaches 10.0.3.7", func(t *testing.T) {
		srcPort := 47000 + r.slot*100
		captured := r.tb.captureInside(t, fmt.Sprintf("src net 198.18.0.0/24 and src port %d", srcPort), func() {
			err := r.tb.tcpProbe("srv", fmt.Sprintf("198.18.0.11:%d", srcPort), e2eInstancePublic+":9001")
			assert.Error(t, err, "a connection to a port the instance doesn't open inbound succeeded")
		})
		assert.Empty(t, captured, "packets reached the inside host")
	})
}

// checkConcurrent: 500 TCP connections from seven inside hosts (pool
// members and a default SNAT host) to one server port, all open at once,
// then one HTTP/1.0 request on each. Every reply must show the right public
// address and block, and no two connections may share a public endpoint
// ([S2]: one port per flow towards the same destination).
func checkConcurrent(t *testing.T, r *e2eRun) {
	const total = 500
	sources := []string{"10.0.1.4", "10.0.1.5", "10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4", "10.0.9.9"}
	dst := e2eServer + ":8080"
	perSource := make([][]net.Conn, len(sources))
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	for i, src := range sources {
		n := total / len(sources)
		if i < total%len(sources) {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			perSource[i], errs[i] = r.tb.dialMany("in", src, dst, n)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, conns := range perSource {
			for _, c := range conns {
				c.Close()
			}
		}
	})
	opened := 0
	for i := range sources {
		opened += len(perSource[i])
		assert.NoError(t, errs[i], "dialing from %s", sources[i])
	}
	require.Equal(t, total, opened, "connections open at once")

	type result struct {
		src, seen string
		err       error
	}
	results := make(chan result, total)
	for i, conns := range perSource {
		for _, c := range conns {
			go func() {
				seen, err := httpGet(c)
				results <- result{sources[i], seen, err}
			}()
		}
	}
	public := map[string]string{}
	failures := 0
	for range total {
		res := <-results
		if res.err != nil {
			failures++
			if failures <= 5 {
				t.Errorf("request from %s: %v", res.src, res.err)
			}
			continue
		}
		if !expectFor(t, res.src, 0).check(t, res.seen) {
			failures++
			continue
		}
		if prev, dup := public[res.seen]; dup {
			t.Errorf("public endpoint %s used by two concurrent flows (%s and %s)", res.seen, prev, res.src)
		}
		public[res.seen] = res.src
	}
	assert.Zero(t, failures, "failed requests out of %d", total)
	assert.Len(t, public, total, "distinct public endpoints")
}

// checkUDP: UDP request and reply through the NAT for a pool member, a
// default SNAT host and the instance (whose port is kept).
func checkUDP(t *testing.T, r *e2eRun) {
	tests := []struct {
		name string
		src  string
		port int
	}{
		{"pool member 10.0.2.1", "10.0.2.1", 0},
		{"default SNAT 10.0.9.9", "10.0.9.9", 0},
		{"instance 10.0.3.7", "10.0.3.7", 45000 + r.slot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := netip.AddrPortFrom(netip.MustParseAddr(tt.src), uint16(tt.port))
			dst := netip.MustParseAddrPort(e2eServer + ":9000")
			reply, from, err := r.tb.udpExchange("in", src, dst, "hello-udp")
			require.NoError(t, err)
			assert.Equal(t, dst, from, "reply source")
			seen, payload, ok := strings.Cut(reply, " ")
			require.True(t, ok, "reply %q", reply)
			assert.Equal(t, "hello-udp", payload)
			expectFor(t, tt.src, tt.port).check(t, seen)
		})
	}
}

// checkPing: [S8] echo through the NAT from every scenario, and natgw's
// answers to echo requests for its own addresses.
func checkPing(t *testing.T, r *e2eRun) {
	tests := []struct {
		name string
		ns   string
		args []string
	}{
		{"pool member 10.0.1.4", "in", []string{"-I", "10.0.1.4", e2eServer}},
		{"default SNAT 10.0.9.9", "in", []string{e2eServer}},
		{"instance 10.0.3.7", "in", []string{"-I", "10.0.3.7", e2eServer}},
		{"natgw's inside address 10.0.0.1", "in", []string{"10.0.0.1"}},
		{"natgw's outside address 198.19.0.2", "rt", []string{"198.19.0.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"ping", "-n", "-c", "3", "-i", "0.2", "-W", "2"}, tt.args...)
			out, err := r.tb.run(15*time.Second, tt.ns, args...)
			require.NoError(t, err, out)
			assert.Regexp(t, ` 3 received`, out)
		})
	}
}

// hopLine matches one hop of traceroute -n -q1 output: "  2  198.19.0.1  1.234 ms".
var hopLine = regexp.MustCompile(`(?m)^\s*(\d+)\s+(\S+)`)

// parseHops returns the address of each hop of a traceroute ("*" when the
// probe got no answer).
func parseHops(out string) map[string]string {
	hops := map[string]string{}
	for _, m := range hopLine.FindAllStringSubmatch(out, -1) {
		hops[m[1]] = m[2]
	}
	return hops
}

// checkTraceroute: [S8] ICMP time exceeded from the router is translated
// back to the private host (hop 2), natgw answers its own TTL expiry
// (hop 1), with UDP, ICMP and TCP probes.
func checkTraceroute(t *testing.T, r *e2eRun) {
	want := map[string]string{"1": "10.0.0.1", "2": "198.19.0.1", "3": e2eServer}
	tests := []struct {
		name string
		args []string
	}{
		{"UDP probes from pool member 10.0.1.4", []string{"-s", "10.0.1.4"}},
		{"ICMP probes from pool member 10.0.1.5", []string{"-I", "-s", "10.0.1.5"}},
		{"TCP probes from default SNAT 10.0.9.9", []string{"-T", "-p", "8080", "-s", "10.0.9.9"}},
		{"UDP probes from instance 10.0.3.7", []string{"-s", "10.0.3.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"traceroute", "-n", "-q", "1", "-w", "2", "-m", "3"}, tt.args...)
			args = append(args, e2eServer)
			var out string
			// One probe per hop: an answer natgw rate-limits away shows as
			// "*"; up to three attempts.
			for attempt := 1; attempt <= 3; attempt++ {
				var err error
				out, err = r.tb.run(20*time.Second, "in", args...)
				require.NoError(t, err, out)
				if !strings.Contains(out, "*") {
					break
				}
				t.Logf("attempt %d had a lost probe:\n%s", attempt, out)
			}
			assert.Equal(t, want, parseHops(out), out)
		})
	}
}

// checkBulk: [S8] path MTU discovery through the NAT — the router's
// fragmentation-needed for a 1500-byte segment must reach the private
// host, or a 1 MB upload over the 1400-byte link stalls — and 1 MB
// download and iperf3 throughput.
func checkBulk(t *testing.T, r *e2eRun) {
	t.Run("1 MB upload learns path MTU 1400 through the NAT", func(t *testing.T) {
		const member = "10.0.1.4"
		// Forget a path MTU learned by an earlier run.
		out, err := r.tb.run(5*time.Second, "in", "ip", "route", "flush", "cache")
		require.NoError(t, err, out)
		out, err = r.tb.run(5*time.Second, "in", "ip", "route", "get", e2eServer, "from", member)
		require.NoError(t, err, out)
		require.NotContains(t, out, "mtu 1400", "path MTU still cached")

		upload := filepath.Join(t.TempDir(), "upload.bin")
		require.NoError(t, os.WriteFile(upload, randomBytes(1<<20), 0o600))
		out, err = r.tb.curl(40*time.Second, member, "http://"+e2eServer+":8080/upload",
			"-m", "30", "-H", "Content-Type: application/octet-stream", "--data-binary", "@"+upload)
		require.NoError(t, err, out)
		seen, n, ok := strings.Cut(strings.TrimSpace(out), " ")
		require.True(t, ok, "reply %q", out)
		assert.Equal(t, "1048576", n, "bytes the server received")
		expectFor(t, member, 0).check(t, seen)

		out, err = r.tb.run(5*time.Second, "in", "ip", "route", "get", e2eServer, "from", member)
		require.NoError(t, err, out)
		assert.Contains(t, out, "mtu 1400", "the host learned the path MTU from the translated ICMP error")
	})
	t.Run("1 MB download", func(t *testing.T) {
		out, err := r.tb.curl(40*time.Second, "10.0.1.5", "http://"+e2eServer+":8080/bytes?n=1048576",
			"-m", "30", "-o", "/dev/null", "-w", "%{size_download} %{http_code}")
		require.NoError(t, err, out)
		assert.Equal(t, "1048576 200", strings.TrimSpace(out))
	})
	t.Run("iperf3 for 1 s", func(t *testing.T) {
		out, err := r.tb.run(30*time.Second, "in", "iperf3", "-c", e2eServer, "-B", "10.0.2.2",
			"-t", "1", "--connect-timeout", "3000")
		require.NoError(t, err, out)
		assert.Contains(t, out, "receiver")
	})
}

// checkDrops: [S6] unsolicited inbound packets to the frontends reach no
// inside host; [S1] deny rules drop only what they name.
func checkDrops(t *testing.T, r *e2eRun) {
	t.Run("unsolicited inbound reaches no inside host", func(t *testing.T) {
		first, _, err := memberBlock(e2ePoolMembers, "10.0.1.4")
		require.NoError(t, err)
		base := 47000 + r.slot*100 + 10
		probes := []struct {
			proto string
			dst   string
		}{
			{"tcp", e2ePoolPublic + ":80"},
			{"tcp", fmt.Sprintf("%s:%d", e2ePoolPublic, first)},
			{"udp", e2ePoolPublic + ":9000"},
			{"tcp", e2eDefaultPublic + ":8080"},
			{"udp", e2eDefaultPublic + ":9000"},
		}
		var filter []string
		for i := range probes {
			filter = append(filter, fmt.Sprintf("src port %d", base+i))
		}
		captured := r.tb.captureInside(t, "src net 198.18.0.0/24 and ("+strings.Join(filter, " or ")+")", func() {
			var wg sync.WaitGroup
			for i, p := range probes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					src := fmt.Sprintf("198.18.0.10:%d", base+i)
					if p.proto == "tcp" {
						assert.Error(t, r.tb.tcpProbe("srv", src, p.dst), "unsolicited TCP to %s connected", p.dst)
						return
					}
					_, _, err := r.tb.udpExchangeN("srv", netip.MustParseAddrPort(src), netip.MustParseAddrPort(p.dst), "unsolicited", 2, time.Second)
					assert.Error(t, err, "unsolicited UDP to %s was answered", p.dst)
				}()
			}
			wg.Wait()
		})
		assert.Empty(t, captured, "packets reached the inside host")
	})
	tests := []struct {
		name    string
		server  string
		allowed bool
	}{
		{"tcp to the denied 198.18.0.12 never leaves natgw", "198.18.0.12", false},
		{"tcp to 198.18.0.11 works", "198.18.0.11", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.allowed {
				r.assertHTTP(t, "10.0.1.4", tt.server)
			} else {
				r.assertDenied(t, "10.0.1.4", tt.server)
			}
		})
	}
	t.Run("udp to 198.18.0.12 passes (the rule denies tcp only)", func(t *testing.T) {
		// The echo server's UDP socket is bound to the wildcard address
		// and answers from 198.18.0.10 whatever address was asked, so a
		// reply from .12 can't be expected: watch the datagram arrive
		// instead.
		captured := r.tb.capture(t, "srv", "udp and src host "+e2ePoolPublic+" and dst host 198.18.0.12 and dst port 9000", func() {
			// Reply or not, the datagram went out.
			r.tb.udpExchangeN("in", netip.MustParseAddrPort("10.0.1.4:0"),
				netip.MustParseAddrPort("198.18.0.12:9000"), "not-denied", 1, time.Second)
		})
		assert.NotEmpty(t, captured, "the datagram never reached 198.18.0.12")
	})
}

// checkFlood: [§2] malformed frames on both ports never crash natgw: a
// flood of 20,000 frames of every malformed kind, then natgw still
// translates.
func checkFlood(t *testing.T, r *e2eRun) {
	const perPort = 10000
	seed := uint64(time.Now().UnixNano())
	t.Logf("flood seed %d", seed)
	rxBefore := r.tb.rxPackets(t)
	var wg sync.WaitGroup
	results := make([]floodResult, len(e2eFloodPorts))
	errs := make([]error, len(e2eFloodPorts))
	for i := range e2eFloodPorts {
		p := &e2eFloodPorts[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.tb.inNetns(p.ns, func() error {
				var err error
				results[i], err = flood(p, perPort, seed+uint64(i))
				return err
			})
		}()
	}
	wg.Wait()
	rxAfter := r.tb.rxPackets(t)
	for i, p := range e2eFloodPorts {
		assert.NoError(t, errs[i], "flood on %s", p.name)
		res := results[i]
		t.Logf("%s: %d frames sent, %d refused by the kernel (jumbo); natgw's interface received %d",
			p.name, res.sent, res.rejected, rxAfter[p.name]-rxBefore[p.name])
		assert.Len(t, res.perKind, len(e2eFrameKinds)-1, "every kind but the jumbo frame was sent")
		assert.GreaterOrEqual(t, rxAfter[p.name]-rxBefore[p.name], uint64(res.sent/2),
			"frames that reached natgw's %s interface", p.name)
	}
	require.True(t, r.natgw.alive(), "natgw died in the flood: %v", r.natgw.waitErr)
	err := waitFor(10*time.Second, func() error {
		out, err := r.tb.curl(5*time.Second, "10.0.1.5", "http://"+e2eServer+":8080/", "-m", "2")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	assert.NoError(t, err, "natgw doesn't translate after the flood")
	out, err := r.tb.run(15*time.Second, "in", "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "-I", "10.0.3.7", e2eServer)
	assert.NoError(t, err, out)
	assert.True(t, r.natgw.alive(), "natgw died after the flood")
}

// checkReload: SIGHUP reloads the file: an added deny rule applies to new
// flows; an invalid file is refused and the running configuration stays.
func checkReload(t *testing.T, r *e2eRun) {
	t.Run("added deny rule applies", func(t *testing.T) {
		n := strings.Count(r.natgw.log.String(), "configuration reloaded")
		cfg := r.cfg
		cfg.DenyTCP = []string{"198.18.0.11"}
		writeConfig(t, r.config, cfg)
		require.NoError(t, r.natgw.signal(syscall.SIGHUP))
		require.NoError(t, r.natgw.waitLog("configuration reloaded", n+1, 10*time.Second))
		r.assertDenied(t, "10.0.1.4", "198.18.0.11")
		r.assertHTTP(t, "10.0.1.4", e2eServer)
	})
	t.Run("invalid file is refused and traffic keeps the previous configuration", func(t *testing.T) {
		n := strings.Count(r.natgw.log.String(), "reload failed")
		writeFileAtomic(t, r.config, []byte("[dataplane]\ndriver = \"afpacket\"\nworkers = \"two\"\n"))
		require.NoError(t, r.natgw.signal(syscall.SIGHUP))
		require.NoError(t, r.natgw.waitLog("reload failed", n+1, 10*time.Second))
		require.True(t, r.natgw.alive())
		r.assertHTTP(t, "10.0.1.4", e2eServer)
		r.assertDenied(t, "10.0.1.4", "198.18.0.11")
		out, err := r.tb.curl(10*time.Second, "10.0.3.7", "http://"+e2eServer+":8080/", "-m", "3")
		require.NoError(t, err, out)
		assert.True(t, strings.HasPrefix(out, e2eInstancePublic+":"), "instance reply %q", out)
	})
}

// assertHTTP asserts that an HTTP request from private address src to
// server's port 8080 gets through with the expected translation.
func (r *e2eRun) assertHTTP(t *testing.T, src, server string) {
	t.Helper()
	out, err := r.tb.curl(10*time.Second, src, "http://"+server+":8080/", "-m", "3")
	require.NoError(t, err, out)
	expectFor(t, src, 0).check(t, out)
}

// assertDenied asserts that a TCP connection from private address src to
// server's port 8080 fails and that no packet of it reaches the server's
// link.
func (r *e2eRun) assertDenied(t *testing.T, src, server string) {
	t.Helper()
	captured := r.tb.capture(t, "srv", "tcp and dst host "+server+" and dst port 8080", func() {
		out, err := r.tb.curl(10*time.Second, src, "http://"+server+":8080/", "-m", "2")
		assert.Error(t, err, "curl got through: %s", out)
	})
	assert.Empty(t, captured, "a denied packet reached the server")
}

// randomBytes returns n bytes that don't compress.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// httpGet sends an HTTP/1.0 GET / on c and returns the body's first line
// (the client address the echo server saw). It closes c.
func httpGet(c net.Conn) (string, error) {
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: e2e\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %s", resp.Status, body)
	}
	return strings.TrimSpace(string(body)), nil
}

// dialMany opens n TCP connections from src to dst in namespace ns, all
// kept open; on error it returns the connections opened so far.
func (tb *testbed) dialMany(ns, src, dst string, n int) ([]net.Conn, error) {
	var conns []net.Conn
	err := tb.inNetns(ns, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		for range n {
			c, err := d.Dial("tcp4", dst)
			if err != nil {
				return fmt.Errorf("connection %d: %w", len(conns)+1, err)
			}
			conns = append(conns, c)
		}
		return nil
	})
	return conns, err
}

// tcpProbe tries a TCP connection from src to dst in namespace ns with a
// 2 s limit; nil means it connected.
func (tb *testbed) tcpProbe(ns, src, dst string) error {
	return tb.inNetns(ns, func() error {
		addr, err := net.ResolveTCPAddr("tcp4", src)
		if err != nil {
			return err
		}
		d := net.Dialer{LocalAddr: addr, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp4", dst)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// udpExchange sends payload from src to dst in namespace ns and returns
// the first reply and its source; up to three tries, 2 s each. Port 0 in
// src picks any port.
func (tb *testbed) udpExchange(ns string, src, dst netip.AddrPort, payload string) (string, netip.AddrPort, error) {
	return tb.udpExchangeN(ns, src, dst, payload, 3, 2*time.Second)
}

// udpExchangeN is udpExchange with tries attempts, each waiting wait for
// the reply.
func (tb *testbed) udpExchangeN(ns string, src, dst netip.AddrPort, payload string, tries int, wait time.Duration) (string, netip.AddrPort, error) {
	var conn *net.UDPConn
	err := tb.inNetns(ns, func() error {
		var err error
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(src))
		return err
	})
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	for range tries {
		if _, err := conn.WriteToUDPAddrPort([]byte(payload), dst); err != nil {
			return "", netip.AddrPort{}, err
		}
		if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return "", netip.AddrPort{}, err
		}
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err == nil {
			return string(buf[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return "", netip.AddrPort{}, err
		}
	}
	return "", netip.AddrPort{}, fmt.Errorf("no UDP reply from %s after %d tries of %v", dst, tries, wait)
}

// captureInside runs probe while tcpdump watches the inside hosts' eth0
// for packets arriving from natgw that match filter, and returns the
// packets it printed (empty when none arrived).
func (tb *testbed) captureInside(t *testing.T, filter string, probe func()) string {
	t.Helper()
	return tb.capture(t, "in", filter, probe)
}

// capture runs probe while tcpdump watches eth0 of namespace ns (in or
// srv) for arriving packets that match filter, and returns the first such
// packet as tcpdump printed it (empty when none arrived).
func (tb *testbed) capture(t *testing.T, ns, filter string, probe func()) string {
	t.Helper()
	return tb.captureOn(t, ns, "eth0", filter, probe)
}

// captureOn is capture on interface ifname of namespace ns.
func (tb *testbed) captureOn(t *testing.T, ns, ifname, filter string, probe func()) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := tb.command(ctx, ns, "tcpdump", "-i", ifname, "-nn", "-l", "--immediate-mode",
		"-Q", "in", "-c", "1", filter)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	err := waitFor(10*time.Second, func() error {
		if strings.Contains(stderr.String(), "listening on") {
			return nil
		}
		return errors.New("tcpdump is not listening yet")
	})
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		require.NoError(t, err, "tcpdump: %s", stderr.String())
	}
	exited := make(chan struct{})
	probe()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	// tcpdump exits by itself once it printed a packet (-c 1); give a
	// packet still in flight a moment before interrupting it.
	select {
	case <-exited:
	case <-time.After(time.Second):
		cmd.Process.Signal(os.Interrupt)
		<-exited
	}
	t.Logf("tcpdump %q: %s", filter, strings.TrimSpace(stderr.String()))
	return strings.TrimSpace(stdout.String())
}

// rxPackets returns the received-packet counters of natgw's interfaces in
// the gateway namespace, by natgw port name (inside, outside).
func (tb *testbed) rxPackets(t *testing.T) map[string]uint64 {
	t.Helper()
	counts := map[string]uint64{}
	for port, ifname := range map[string]string{"inside": "veth-in", "outside": "veth-out"} {
		out, err := tb.run(5*time.Second, "gw", "cat", "/sys/class/net/"+ifname+"/statistics/rx_packets")
		require.NoError(t, err, out)
		var n uint64
		_, err = fmt.Sscan(out, &n)
		require.NoError(t, err, "rx_packets %q", out)
		counts[port] = n
	}
	return counts
}
