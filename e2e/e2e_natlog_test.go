package e2e

// TestE2ENatLog runs natgw with NAT event logging on (issue 16) and real
// collectors in the testbed's gw namespace, where natgw's management
// side lives: nfcapd (nfdump) and a packet capture on two IPFIX
// collector ports, decoded afterwards by tshark, and rsyslogd receiving
// the syslog form over TCP. Real clients make flows through natgw; a
// reload moves the pool's blocks; a clean stop releases everything. The
// collectors must have decoded the NAT fields right: private and public
// endpoints of the flows the clients made, block ranges as the API
// reports them, the generations, RFC 7011 sequence numbers per
// collector. It runs on every driver of e2eDrivers, with fresh collectors
// each.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt/config/configtest"
)

// The collectors' addresses, on the gw namespace's loopback.
const (
	natlogIPFIX1 = "127.0.0.1:4739"
	natlogIPFIX2 = "127.0.0.1:4740"
	natlogSyslog = "127.0.0.1:5514"
)

// writeNatLogConfig writes the suite's configuration for c with a
// [nat_log] section naming the test's collectors, atomically.
func writeNatLogConfig(t *testing.T, path string, c e2eConfig) {
	t.Helper()
	cfg := c.config()
	cfg.NatLog.IPFIX = []string{natlogIPFIX1, natlogIPFIX2}
	cfg.NatLog.Syslog = "tcp://" + natlogSyslog
	cfg.NatLog.Events = []string{"blocks", "sessions", "exhaustion"}
	writeFileAtomic(t, path, configtest.Text(cfg))
}

// collectorProc is a collector running in a namespace of the testbed.
type collectorProc struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

// startCollector runs args in namespace ns for the rest of t (at most 8
// minutes), killed on cleanup if still running.
func (tb *testbed) startCollector(t *testing.T, ns string, args ...string) *collectorProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	p := &collectorProc{name: args[0], cmd: tb.command(ctx, ns, args...), log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	require.NoError(t, p.cmd.Start(), "%s", args[0])
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", p.name, lastLines(p.log.String(), 20))
		}
	})
	return p
}

// stop signals the collector and waits (up to 10 s) for it to exit.
func (p *collectorProc) stop(sig syscall.Signal) {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.done <- nil // stop again: no wait
}

// waitListening waits until something in namespace ns listens on addr
// ("tcp" or "udp").
func (tb *testbed) waitListening(t *testing.T, ns, proto, addr string) {
	t.Helper()
	flag := "-Hlun"
	if proto == "tcp" {
		flag = "-Hltn"
	}
	err := waitFor(20*time.Second, func() error {
		out, err := tb.run(5*time.Second, ns, "ss", flag)
		if err != nil {
			return err
		}
		if !strings.Contains(out, addr) {
			return fmt.Errorf("nothing listens on %s %s yet", proto, addr)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestE2ENatLog(t *testing.T) {
	skipUnlessE2E(t)
	for _, c := range []string{"nfcapd", "nfdump", "tshark", "rsyslogd"} {
		if _, err := exec.LookPath(c); err != nil {
			if os.Getenv("NATGW_REQUIRE_E2E") == "1" {
				t.Fatalf("%s not installed: run scripts/install-deps.sh", c)
			}
			t.Skipf("%s not installed: run scripts/install-deps.sh", c)
		}
	}
	tb := newTestbed(t)
	for _, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) { natLogWithCollectors(t, tb, driver) })
	}
}

// natLogWithCollectors is TestE2ENatLog on one driver, with collectors of
// its own: the exporters live on the management side, so the driver must
// make no difference.
func natLogWithCollectors(t *testing.T, tb *testbed, driver string) {
	dir := t.TempDir()

	// The collectors, before natgw, so they see the templates it sends
	// at start.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "nfcapd"), 0o755))
	nfcapd := tb.startCollector(t, "gw", "nfcapd", "-w", filepath.Join(dir, "nfcapd"), "-b", "127.0.0.1", "-p", "4739", "-t", "3600")
	// The second collector is a second nfcapd: its files are not read,
	// the capture shows what it got.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "nfcapd2"), 0o755))
	nfcapd2 := tb.startCollector(t, "gw", "nfcapd", "-w", filepath.Join(dir, "nfcapd2"), "-b", "127.0.0.1", "-p", "4740", "-t", "3600")
	pcap := filepath.Join(dir, "ipfix.pcap")
	capture := tb.startCollector(t, "gw", "tcpdump", "-i", "lo", "--immediate-mode", "-U", "-n", "-w", pcap, "udp and (port 4739 or port 4740)")
	conf := filepath.Join(dir, "rsyslog.conf")
	syslogFile := filepath.Join(dir, "nat.log")
	host, port, _ := net.SplitHostPort(natlogSyslog)
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" address=%q port=%q)
*.* action(type="omfile" file=%q template="RSYSLOG_SyslogProtocol23Format")
`, dir, host, port, syslogFile)), 0o644))
	rsyslogd := tb.startCollector(t, "gw", "rsyslogd", "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	tb.waitListening(t, "gw", "udp", natlogIPFIX1)
	tb.waitListening(t, "gw", "udp", natlogIPFIX2)
	tb.waitListening(t, "gw", "tcp", natlogSyslog)
	require.NoError(t, waitFor(20*time.Second, func() error {
		if !strings.Contains(capture.log.String(), "listening on lo") {
			return fmt.Errorf("tcpdump not capturing yet")
		}
		return nil
	}))

	cfg := e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers, TCPClosing: "1s"}
	r := &e2eRun{tb: tb, workers: cfg.Workers, cfg: cfg, config: filepath.Join(dir, "natgw.toml")}
	writeNatLogConfig(t, r.config, cfg)
	r.natgw = tb.startNatgw(t, r.config)
	require.NoError(t, r.natgw.waitLog("natgw running", 1, 30*time.Second), "natgw log:\n%s", r.natgw.log.String())
	require.NoError(t, r.natgw.waitReady(30*time.Second), "natgw never translated a request")
	api := tb.api()
	m1 := api.mapping(t, "10.0.1.4")
	require.NotNil(t, m1.Ports)

	// A pool member's TCP connection, and a default-SNAT host's UDP
	// flow: the private endpoints are the sockets', the public ones what
	// the servers saw.
	conns, err := tb.dialMany("in", "10.0.1.4", e2eServer+":8080", 1)
	require.NoError(t, err)
	tcpPrivate := netip.MustParseAddrPort(conns[0].LocalAddr().String())
	seen, err := httpGet(conns[0])
	require.NoError(t, err)
	tcpPublic := netip.MustParseAddrPort(seen)
	udpPrivate := netip.MustParseAddrPort("10.0.9.9:41234")
	_, _, err = tb.udpExchange("in", udpPrivate, netip.MustParseAddrPort(e2eServer+":9000"), "natlog")
	require.NoError(t, err)
	udpFlows := api.flows(t, "10.0.9.9")
	require.NotEmpty(t, udpFlows)
	udpPublic := netip.MustParseAddrPort(udpFlows[0].Public)
	ds := api.mapping(t, "10.0.9.9")
	require.NotNil(t, ds.Ports)

	// The TCP flow closed (FINs both ways): released after tcp_closing.
	require.NoError(t, waitFor(30*time.Second, func() error {
		for _, f := range api.flows(t, "10.0.1.4") {
			if f.Private == tcpPrivate.String() {
				return fmt.Errorf("flow %s still there (%s)", f.Private, f.State)
			}
		}
		return nil
	}))

	// A reload that halves the pool's blocks [S7]: old ranges released,
	// new ones assigned, generation 2.
	cfg2 := cfg
	cfg2.PortsPerMember = 512
	writeNatLogConfig(t, r.config, cfg2)
	st, body := api.reload(t)
	require.Equal(t, 200, st, "%s", body)
	m2 := api.mapping(t, "10.0.1.4")
	require.NotNil(t, m2.Ports)
	require.NotEqual(t, m1.Ports.Last, m2.Ports.Last)

	// The exporters' counters, before the stop.
	_, err = api.waitMetric(20*time.Second, func(v float64) bool { return v > 0 }, "natgw_natlog_records_total", "format", "syslog")
	require.NoError(t, err)
	metrics := api.scrape(t)
	assert.Positive(t, metrics.sum("natgw_natlog_records_total", "format", "ipfix"))
	assert.Zero(t, metrics.sum("natgw_natlog_export_errors_total"))
	assert.Zero(t, metrics.sum("natgw_natlog_dropped_total"))

	// A clean stop releases every block; the exporters send their queue.
	r.stopCleanly(t)
	time.Sleep(time.Second) // the last datagrams reach the collectors
	capture.stop(syscall.SIGINT)
	nfcapd.stop(syscall.SIGTERM)
	nfcapd2.stop(syscall.SIGTERM)
	rsyslogd.stop(syscall.SIGTERM)

	pub1 := *m1.Public
	want := []struct {
		what string
		rec  map[string]string
	}{
		{"pool block at start", map[string]string{"cflow.nat_event": "16", "cflow.srcaddr": "10.0.1.4",
			"cflow.post_natsource_ipv4_address": pub1, "cflow.port_range_start": fmt.Sprint(m1.Ports.First),
			"cflow.port_range_end": fmt.Sprint(m1.Ports.Last), "cflow.nat_pool_name": "web"}},
		{"old block released by the reload", map[string]string{"cflow.nat_event": "17", "cflow.srcaddr": "10.0.1.4",
			"cflow.port_range_start": fmt.Sprint(m1.Ports.First), "cflow.port_range_end": fmt.Sprint(m1.Ports.Last)}},
		{"new block assigned by the reload", map[string]string{"cflow.nat_event": "16", "cflow.srcaddr": "10.0.1.4",
			"cflow.post_natsource_ipv4_address": *m2.Public, "cflow.port_range_start": fmt.Sprint(m2.Ports.First),
			"cflow.port_range_end": fmt.Sprint(m2.Ports.Last)}},
		{"new block released at stop", map[string]string{"cflow.nat_event": "17", "cflow.srcaddr": "10.0.1.4",
			"cflow.port_range_start": fmt.Sprint(m2.Ports.First), "cflow.port_range_end": fmt.Sprint(m2.Ports.Last)}},
		{"instance binding", map[string]string{"cflow.nat_event": "14", "cflow.srcaddr": "10.0.3.7",
			"cflow.post_natsource_ipv4_address": "198.19.1.50"}},
		{"default-SNAT block on first use", map[string]string{"cflow.nat_event": "16", "cflow.srcaddr": "10.0.9.9",
			"cflow.post_natsource_ipv4_address": *ds.Public, "cflow.port_range_start": fmt.Sprint(ds.Ports.First),
			"cflow.port_range_end": fmt.Sprint(ds.Ports.Last), "cflow.nat_pool_name": "default_snat"}},
		{"TCP session created", map[string]string{"cflow.nat_event": "4", "cflow.protocol": "6",
			"cflow.srcaddr": tcpPrivate.Addr().String(), "cflow.srcport": fmt.Sprint(tcpPrivate.Port()),
			"cflow.post_natsource_ipv4_address": tcpPublic.Addr().String(), "cflow.post_naptsource_transport_port": fmt.Sprint(tcpPublic.Port()),
			"cflow.dstaddr": e2eServer, "cflow.dstport": "8080"}},
		{"TCP session deleted: end of flow detected", map[string]string{"cflow.nat_event": "5", "cflow.protocol": "6",
			"cflow.srcaddr": tcpPrivate.Addr().String(), "cflow.srcport": fmt.Sprint(tcpPrivate.Port()),
			"cflow.post_naptsource_transport_port": fmt.Sprint(tcpPublic.Port()), "cflow.flow_end_reason": "3"}},
		{"UDP session created", map[string]string{"cflow.nat_event": "4", "cflow.protocol": "17",
			"cflow.srcaddr": "10.0.9.9", "cflow.srcport": "41234",
			"cflow.post_natsource_ipv4_address": udpPublic.Addr().String(), "cflow.post_naptsource_transport_port": fmt.Sprint(udpPublic.Port()),
			"cflow.dstaddr": e2eServer, "cflow.dstport": "9000"}},
	}

	// tshark decodes the capture: every expected record reached both
	// collectors, and each collector's sequence numbers count the data
	// records sent to it before (RFC 7011 section 3.1).
	perPort := tsharkIPFIX(t, pcap)
	for _, p := range []string{"4739", "4740"} {
		msgs := perPort[p]
		require.NotEmpty(t, msgs, "no IPFIX message to port %s", p)
		var records []map[string]string
		var count uint64
		for i, m := range msgs {
			assert.Equal(t, count, m.seq, "port %s message %d: sequence number", p, i)
			count += uint64(len(m.records))
			records = append(records, m.records...)
		}
		for _, w := range want {
			assert.True(t, hasRecord(records, w.rec), "port %s: no %s record %v", p, w.what, w.rec)
		}
	}
	assert.Equal(t, len(perPort["4739"]), len(perPort["4740"]), "both collectors got every message")
	if t.Failed() {
		for _, p := range []string{"4739", "4740"} {
			for i, m := range perPort[p] {
				events := map[string]int{}
				for _, r := range m.records {
					events[r["cflow.nat_event"]]++
				}
				t.Logf("port %s message %d: sequence %d, %d records, natEvent counts %v", p, i, m.seq, len(m.records), events)
			}
		}
	}

	// nfcapd decoded the same events: the NAT event, private and public
	// endpoints.
	files, err := filepath.Glob(filepath.Join(dir, "nfcapd", "nfcapd.*"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "nfcapd wrote no file:\n%s", nfcapd.log.String())
	var nel strings.Builder
	for _, f := range files {
		out, err := exec.Command("nfdump", "-r", f, "-o", "nel", "-q").CombinedOutput()
		require.NoError(t, err, "%s", out)
		nel.Write(out)
	}
	lines := strings.Fields(strings.ReplaceAll(nel.String(), "\n", " | "))
	nfText := strings.Join(lines, " ")
	for _, w := range []string{
		fmt.Sprintf("TCP %s -> %s:8080 %s -> 0.0.0.0:0", tcpPrivate, e2eServer, tcpPublic),
		fmt.Sprintf("UDP %s -> %s:9000 %s -> 0.0.0.0:0", udpPrivate, e2eServer, udpPublic),
		fmt.Sprintf("10.0.1.4:0 -> 0.0.0.0:0 %s:0", pub1),
		"10.0.3.7:0 -> 0.0.0.0:0 198.19.1.50:0",
	} {
		assert.Contains(t, nfText, w, "nfdump -o nel")
	}
	assert.Contains(t, nfcapd.log.String(), "Sequence Errors: 0", "nfcapd checked the sequence numbers")
	assert.NotRegexp(t, `Sequence Errors: [1-9]`, nfcapd.log.String())

	// rsyslogd received the syslog form, structured data intact.
	b, err := os.ReadFile(syslogFile)
	require.NoError(t, err, "rsyslogd wrote nothing:\n%s", rsyslogd.log.String())
	sys := string(b)
	for _, w := range []string{
		fmt.Sprintf(`NAT_BLOCK [nat@32473 event="block_allocate" private="10.0.1.4" public="%s" first="%d" last="%d" pool="web" gen="1"]`,
			pub1, m1.Ports.First, m1.Ports.Last),
		fmt.Sprintf(`NAT_BLOCK [nat@32473 event="block_release" private="10.0.1.4" public="%s" first="%d" last="%d" pool="web" gen="2"]`,
			pub1, m1.Ports.First, m1.Ports.Last),
		fmt.Sprintf(`NAT_BLOCK [nat@32473 event="block_allocate" private="10.0.1.4" public="%s" first="%d" last="%d" pool="web" gen="2"]`,
			*m2.Public, m2.Ports.First, m2.Ports.Last),
		`NAT_BINDING [nat@32473 event="binding_create" private="10.0.3.7" public="198.19.1.50" gen="1"]`,
		fmt.Sprintf(`NAT_SESSION [nat@32473 event="session_create" proto="tcp" private="%s" privatePort="%d" public="%s" publicPort="%d" remote="%s" remotePort="8080"]`,
			tcpPrivate.Addr(), tcpPrivate.Port(), tcpPublic.Addr(), tcpPublic.Port(), e2eServer),
		fmt.Sprintf(`event="session_delete" proto="tcp" private="%s" privatePort="%d"`, tcpPrivate.Addr(), tcpPrivate.Port()),
		`reason="closed"]`,
	} {
		assert.Contains(t, sys, w, "rsyslogd's file")
	}
	if t.Failed() {
		t.Logf("rsyslogd file (tail):\n%s", lastLines(sys, 20))
		t.Logf("nfdump (tail):\n%s", lastLines(nel.String(), 20))
	}
}

// ipfixMessage is one IPFIX message as tshark decoded it: its sequence
// number and its data records (field name to value).
type ipfixMessage struct {
	seq     uint64
	records []map[string]string
}

// tsharkIPFIX decodes the IPFIX messages of a capture with tshark, by
// destination port, in capture order.
func tsharkIPFIX(t *testing.T, pcap string) map[string][]ipfixMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-r", pcap, "-n",
		"-d", "udp.port==4739,cflow", "-d", "udp.port==4740,cflow", "-T", "json").Output()
	require.NoError(t, err, "tshark")
	var pkts []struct {
		Source struct {
			Layers map[string]json.RawMessage `json:"layers"`
		} `json:"_source"`
	}
	require.NoError(t, json.Unmarshal(out, &pkts))
	res := map[string][]ipfixMessage{}
	for _, p := range pkts {
		var udp struct {
			DstPort string `json:"udp.dstport"`
		}
		var cflow map[string]any
		if json.Unmarshal(p.Source.Layers["udp"], &udp) != nil || json.Unmarshal(p.Source.Layers["cflow"], &cflow) != nil {
			continue
		}
		seq, _ := strconv.ParseUint(fmt.Sprint(cflow["cflow.sequence"]), 10, 32)
		m := ipfixMessage{seq: seq}
		collectRecords(cflow, &m.records)
		res[udp.DstPort] = append(res[udp.DstPort], m)
	}
	return res
}

// collectRecords walks tshark's JSON of a message and appends every data
// record (an object with cflow.nat_event), in order.
func collectRecords(v map[string]any, out *[]map[string]string) {
	if _, ok := v["cflow.nat_event"]; ok {
		rec := map[string]string{}
		for k, x := range v {
			if s, ok := x.(string); ok {
				rec[k] = s
			}
		}
		*out = append(*out, rec)
		return
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	// "Set 1 [...]", "Set 2 [...]", "Flow 1"...: in message order.
	sort.Slice(keys, func(i, j int) bool { return setOrder(keys[i]) < setOrder(keys[j]) })
	for _, k := range keys {
		if sub, ok := v[k].(map[string]any); ok {
			collectRecords(sub, out)
		}
	}
}

// setOrder orders tshark's "Set N ..." and "Flow N" keys by N.
func setOrder(k string) int {
	f := strings.Fields(k)
	if len(f) >= 2 && (f[0] == "Set" || f[0] == "Flow") {
		if n, err := strconv.Atoi(f[1]); err == nil {
			return n
		}
	}
	return 0
}

// hasRecord reports whether a record has all of want's fields.
func hasRecord(records []map[string]string, want map[string]string) bool {
next:
	for _, r := range records {
		for k, v := range want {
			if r[k] != v {
				continue next
			}
		}
		return true
	}
	return false
}
