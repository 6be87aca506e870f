package e2e

// This file is the end-to-end suite's testbed fixture: prerequisites, the
// build of natgw and the echo server, scripts/testbed.sh up/down with a
// prefix of our own, commands run inside the testbed's namespaces, and
// in-process sockets opened inside a namespace (inNetns).
//
// Threading: everything here runs on the test goroutine except inNetns,
// which runs its function on a fresh goroutine locked to its OS thread.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// e2ePrefixBase starts the name of this suite's testbeds (NATGW_TB). Each
// test binary adds its process id ("ngwe2e12345"), so two runs, or someone
// trying things by hand under "ngwe2e", never tear down each other's
// namespaces: ngwe2e12345-in, -gw, -rt and -srv.
const e2ePrefixBase = "ngwe2e"

// e2eStaleNetns matches a namespace of one of this suite's testbeds and
// captures the test binary's process id.
var e2eStaleNetns = regexp.MustCompile(`^` + e2ePrefixBase + `([0-9]+)-(in|gw|rt|srv)$`)

// e2eCommands are the programs the suite and scripts/testbed.sh run.
var e2eCommands = []string{
	"bash", "ip", "ethtool", "sysctl", "flock", "ss", "iperf3",
	"curl", "ping", "traceroute", "tcpdump",
}

// skipUnlessE2E skips the test where the end-to-end suite can't run: -short,
// not root, or a tool missing. With NATGW_REQUIRE_E2E=1 (CI) a missing
// prerequisite fails the test instead.
func skipUnlessE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	skip := t.Skipf
	if os.Getenv("NATGW_REQUIRE_E2E") == "1" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("end-to-end test needs root (network namespaces)")
	}
	for _, c := range e2eCommands {
		if _, err := exec.LookPath(c); err != nil {
			skip("%s not installed: run scripts/install-deps.sh", c)
		}
	}
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < e2eMinTime {
		skip("end-to-end test needs a -timeout of at least %v", e2eMinTime)
	}
}

// e2eMinTime is the least time left before the test binary's deadline for
// the suite to start: it takes about a minute, and its watchdog tears the
// testbed down 20 s before the deadline.
const e2eMinTime = 3 * time.Minute

// testbed is a running scripts/testbed.sh testbed in natgw mode with the
// servers started, plus the binaries the suite built.
type testbed struct {
	// prefix is the NATGW_TB prefix of every namespace.
	prefix string
	// repo is the repository root.
	repo string
	// dir holds the built binaries and the suite's files.
	dir string
	// natgw and echoserver are the built binaries.
	natgw, echoserver string
	// downOnce makes teardown idempotent between the cleanup, the signal
	// handler and the deadline watchdog.
	downOnce sync.Once
	// insideServer is the echo server on the instance 10.0.3.7, in the
	// inside namespace.
	insideServer *exec.Cmd
}

// newTestbed builds natgw and the echo server, brings the testbed up with
// the servers started, and arranges teardown at the end of t, on SIGINT or
// SIGTERM, and shortly before the test binary's deadline.
func newTestbed(t *testing.T) *testbed {
	t.Helper()
	repo, err := filepath.Abs("..")
	require.NoError(t, err)
	tb := &testbed{prefix: fmt.Sprintf("%s%d", e2ePrefixBase, os.Getpid()), repo: repo, dir: t.TempDir()}
	tb.natgw = filepath.Join(tb.dir, "natgw")
	// The testbed checks the server's /proc/PID/comm: the binary must be
	// called echoserver.
	tb.echoserver = filepath.Join(tb.dir, "echoserver")
	tb.build(t, tb.natgw, "./app")
	tb.build(t, tb.echoserver, "./scripts/echoserver")
	tb.removeStale(t)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stopWatch := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "e2e: %v: tearing down testbed %s\n", s, tb.prefix)
			tb.down()
			os.Exit(130)
		case <-stopWatch:
		}
	}()
	if deadline, ok := t.Deadline(); ok {
		// go test's -timeout panics without running cleanups: tear down
		// first, so the testbed never outlives the binary.
		watchdog := time.AfterFunc(time.Until(deadline)-20*time.Second, func() {
			fmt.Fprintf(os.Stderr, "e2e: test deadline near: tearing down testbed %s\n", tb.prefix)
			tb.down()
		})
		t.Cleanup(func() { watchdog.Stop() })
	}
	t.Cleanup(func() {
		close(stopWatch)
		signal.Stop(sigs)
		tb.down()
	})

	out, err := tb.script(2*time.Minute, "up")
	require.NoError(t, err, "testbed.sh up: %s", out)
	out, err = tb.script(2*time.Minute, "servers", "start")
	require.NoError(t, err, "testbed.sh servers start: %s", out)
	tb.startInsideServer(t)
	return tb
}

// removeStale tears down testbeds left by earlier runs of this suite that
// were killed before they could clean up (their process is gone).
func (tb *testbed) removeStale(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil {
		return
	}
	done := map[string]bool{}
	for _, e := range entries {
		m := e2eStaleNetns.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		prefix := e2ePrefixBase + m[1]
		if done[prefix] || prefix == tb.prefix {
			continue
		}
		done[prefix] = true
		pid, err := strconv.Atoi(m[1])
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue // that run is still alive (or the pid was reused)
		}
		stale := &testbed{prefix: prefix, repo: tb.repo, echoserver: tb.echoserver}
		t.Logf("removing testbed %s left by a dead run", prefix)
		stale.down()
	}
}

// build compiles one package of the repository to out.
func (tb *testbed) build(t *testing.T, out, pkg string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"build", "-o", out}
	if _, ok := drivers["dpdk"]; ok {
		args = append(args, "-tags", "dpdk") // the natgw under test has what this test binary has
	}
	cmd := exec.CommandContext(ctx, gobin, append(args, pkg)...)
	cmd.Dir = tb.repo
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, b)
}

// script runs scripts/testbed.sh with this testbed's prefix.
func (tb *testbed) script(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(tb.repo, "scripts", "testbed.sh"), args...)
	cmd.Env = append(os.Environ(), "NATGW_TB="+tb.prefix, "NATGW_ECHOSERVER="+tb.echoserver)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return string(out), err
}

// down stops the inside echo server and removes the testbed (which ends
// every process left in its namespaces, natgw included). It runs once.
func (tb *testbed) down() {
	tb.downOnce.Do(func() {
		if c := tb.insideServer; c != nil && c.Process != nil {
			c.Process.Kill()
			c.Wait()
		}
		if out, err := tb.script(2*time.Minute, "down"); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: testbed.sh down: %v: %s\n", err, out)
			return
		}
		// testbed.sh leaves its lock file; ours has a one-off name.
		os.Remove("/run/lock/natgw-testbed-" + tb.prefix + ".lock")
	})
}

// ns returns the full name of one of the testbed's namespaces (in, gw, rt,
// srv).
func (tb *testbed) ns(name string) string { return tb.prefix + "-" + name }

// command returns a command that runs args in namespace ns, bounded by ctx.
func (tb *testbed) command(ctx context.Context, ns string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", tb.ns(ns)}, args...)...)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// run runs args in namespace ns, killed after timeout, and returns its
// combined output. An error says whether it timed out.
func (tb *testbed) run(timeout time.Duration, ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := tb.command(ctx, ns, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: timed out after %v: %w", strings.Join(args, " "), timeout, err)
	}
	return string(out), err
}

// startInsideServer runs the echo server on the instance's private address
// in the inside namespace (HTTP :8080, TCP echo :9001, UDP echo :9000), so
// inbound checks can tell a forwarded packet from a dropped one, and waits
// until it listens.
func (tb *testbed) startInsideServer(t *testing.T) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", tb.ns("in"), tb.echoserver,
		"-http", "10.0.3.7:8080", "-tcp", "10.0.3.7:9001", "-udp", "10.0.3.7:9000", "-quiet")
	logBuf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logBuf, logBuf
	require.NoError(t, cmd.Start())
	tb.insideServer = cmd
	err := waitFor(10*time.Second, func() error {
		out, err := tb.run(5*time.Second, "in", "ss", "-Hltn", "sport = :8080")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "10.0.3.7:8080") {
			return errors.New("not listening yet")
		}
		return nil
	})
	require.NoError(t, err, "inside echo server: %s", logBuf.String())
}

// permanentError is an error on which waitFor stops at once.
type permanentError struct{ error }

// Unwrap returns the cause.
func (p permanentError) Unwrap() error { return p.error }

// waitFor calls try until it succeeds, returns a permanentError, or timeout
// has passed, pausing 100 ms between attempts; it returns the last error.
func waitFor(timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return perm.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inNetns runs fn on a goroutine locked to an OS thread that has entered
// the testbed namespace ns, and returns fn's error. Sockets fn creates live
// in that namespace and can be used from any goroutine afterwards; fn must
// create them itself (not on other goroutines) and must bound every wait.
// The thread returns to its original namespace before it is unlocked; if
// that fails, it stays locked and ends with the goroutine.
func (tb *testbed) inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + tb.ns(ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = unix.Setns(int(target.Fd()), unix.CLONE_NEWNET)
		target.Close()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", tb.ns(ns), err)
			return
		}
		fnErr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked: it dies with this goroutine.
			errc <- fmt.Errorf("restoring the namespace: %w (fn: %v)", err, fnErr)
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// syncBuffer is a bytes buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

// Write appends p.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
