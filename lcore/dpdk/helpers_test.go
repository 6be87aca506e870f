//go:build dpdk

package dpdk

// Test fixtures. DPDK cannot initialise EAL twice in one process, so every
// test that uses EAL runs in a child process: the test re-executes the
// test binary with -test.run naming itself and childEnv set, and the child
// runs the body. A test whose child must run inside a network namespace
// starts it under `ip netns exec`.

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// childEnv names the test a child process runs.
const childEnv = "NATGW_DPDK_TEST_CHILD"

// testEAL are EAL arguments every test uses besides its vdevs: one lcore,
// no PCI scan, no telemetry socket, quiet logs.
var testEAL = []string{"-l", "0", "--no-pci", "--no-telemetry", "--log-level=lib.eal:warning"}

// isChild reports whether this process is the child running t.
func isChild(t *testing.T) bool { return os.Getenv(childEnv) == t.Name() }

// needEAL skips t unless EAL can run here: root and free hugepages.
func needEAL(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: DPDK maps hugepages and opens devices")
	}
	if n := freeHugepages(); n < 64 {
		t.Skipf("needs free 2 MB hugepages (have %d): run scripts/install-deps.sh", n)
	}
}

// freeHugepages reads HugePages_Free from /proc/meminfo.
func freeHugepages() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "HugePages_Free:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// runChild runs t's body (fn) in a child process, optionally inside the
// network namespace netns, and fails t when the child fails. In the child
// it runs fn directly. It returns the child's output.
func runChild(t *testing.T, netns string, fn func(t *testing.T)) string {
	t.Helper()
	if isChild(t) {
		fn(t)
		return ""
	}
	needEAL(t)
	args := []string{"-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.v", "-test.count=1"}
	var cmd *exec.Cmd
	if netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", netns, os.Args[0]}, args...)...)
	} else {
		cmd = exec.Command(os.Args[0], args...)
	}
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child process failed:\n%s", out)
	if strings.Contains(string(out), "--- SKIP: "+t.Name()) {
		t.Skipf("child skipped:\n%s", out)
	}
	require.Contains(t, string(out), "--- PASS: "+t.Name(), "child did not run the test:\n%s", out)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "RECORD ") {
			t.Log(strings.TrimSpace(line))
		}
	}
	return string(out)
}

// startSession starts EAL in the child with the test arguments and vdevs,
// closing the session in t.Cleanup (ports must be closed by then too).
func startSession(t *testing.T, workers int, vdevs ...string) *Session {
	t.Helper()
	args := append([]string(nil), testEAL...)
	for _, v := range vdevs {
		args = append(args, "--vdev="+v)
	}
	s, err := Start(Config{EALArgs: args, Workers: workers, RxDesc: 512, TxDesc: 512,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// openPort opens a port and closes it in t.Cleanup.
func openPort(t *testing.T, s *Session, name string, side uint8) *Port {
	t.Helper()
	p, err := s.OpenPort(PortOptions{Name: name, Side: side})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Close()) })
	return p
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

var _ io.Writer = testWriter{}

// udpFrame builds an Ethernet/IPv4/UDP frame from 10.0.0.2:sport to
// 198.18.0.10:9000 whose payload carries seq, padded to size bytes. The
// UDP checksum is zero (none).
func udpFrame(seq uint32, sport uint16, size int) []byte {
	if size < 14+20+8+4 {
		size = 14 + 20 + 8 + 4
	}
	b := make([]byte, size)
	copy(b[0:6], []byte{0x02, 0x4e, 0x47, 0x09, 0x00, 0x01})
	copy(b[6:12], []byte{0x02, 0x4e, 0x47, 0x09, 0x00, 0x02})
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	copy(ip[12:16], []byte{10, 0, 0, 2})
	copy(ip[16:20], []byte{198, 18, 0, 10})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xFFFF {
		sum = sum&0xFFFF + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], 9000)
	binary.BigEndian.PutUint16(udp[4:], uint16(size-14-20))
	binary.BigEndian.PutUint32(udp[8:], seq)
	return b
}

// frameSeq returns the sequence number udpFrame put in a frame.
func frameSeq(b []byte) (uint32, bool) {
	if len(b) < 14+20+8+4 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[14+20+8:]), true
}

// netnsVeth creates a network namespace with a veth pair a-b (both up,
// IPv6 off), deleted in t.Cleanup, and returns its name.
func netnsVeth(t *testing.T, a, b string) string {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command")
	}
	ns := fmt.Sprintf("ngwt-dpdk-%08x", rand.Uint32())
	ip := func(args ...string) {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	ip("netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	for _, key := range []string{"all", "default"} {
		out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+key+".disable_ipv6=1").CombinedOutput()
		require.NoError(t, err, "sysctl: %s", out)
	}
	ip("-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
	for _, dev := range []string{"lo", a, b} {
		ip("-n", ns, "link", "set", dev, "up")
	}
	return ns
}

// sessionOnce is the EAL session benchmarks share: benchmarks run in the
// test binary's own process (go test -run '^$' -bench .), and EAL can be
// started only once in it.
var sessionOnce struct {
	sync.Once
	s     *Session
	ports [2]*Port
	err   error
}

// benchPorts starts (once) EAL with a net_null pair for benchmarks and
// returns the session and both ports, which stay open for the process.
func benchPorts(b *testing.B) (*Session, [2]*Port) {
	b.Helper()
	needEAL(b)
	sessionOnce.Do(func() {
		args := append(append([]string(nil), testEAL...), "--vdev=net_null0", "--vdev=net_null1")
		sessionOnce.s, sessionOnce.err = Start(Config{EALArgs: args, Workers: 1, RxDesc: 512, TxDesc: 512,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		for i, name := range []string{"net_null0", "net_null1"} {
			if sessionOnce.err == nil {
				sessionOnce.ports[i], sessionOnce.err = sessionOnce.s.OpenPort(PortOptions{Name: name, Side: uint8(i)})
			}
		}
	})
	if sessionOnce.err == ErrEALUsed {
		b.Skip("EAL already used by a test in this process: run benchmarks with -run '^$'")
	}
	require.NoError(b, sessionOnce.err)
	return sessionOnce.s, sessionOnce.ports
}

// heldMbufs returns the mbufs allocated from s that are not the queues'
// spares: frames in rings, in flight, or leaked.
func heldMbufs(s *Session, ports ...*Port) int {
	n := s.MbufsInUse()
	for _, p := range ports {
		for _, q := range p.queues {
			n -= q.Stats().SpareMbufs
		}
	}
	return n
}
