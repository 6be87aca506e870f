package e2e

// TestWorkerPriority is a light end-to-end test of dataplane.worker_priority:
// the real natgw binary on two veth pairs in a namespace of its own (no
// testbed, no traffic), once per driver.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/mgmt/config/configtest"
)

// TestWorkerPriority: with worker_cpus and worker_priority, natgw's worker
// thread runs SCHED_FIFO at the priority on its CPU (read from /proc and
// sched_getattr), and natgw without CAP_SYS_NICE refuses to start with an
// error naming the key.
func TestWorkerPriority(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	skip := t.Skipf
	if os.Getenv("NATGW_REQUIRE_E2E") == "1" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root (network namespaces, SCHED_FIFO)")
	}
	for _, c := range []string{"ip", "setpriv"} {
		if _, err := exec.LookPath(c); err != nil {
			skip("%s not installed", c)
		}
	}
	cpu, ok := lastAllowedCPU()
	if !ok {
		skip("needs two CPUs: one for the worker, one for the rest")
	}
	repo, err := filepath.Abs("..")
	require.NoError(t, err)
	tb := &testbed{repo: repo, dir: t.TempDir()}
	tb.natgw = filepath.Join(tb.dir, "natgw")
	tb.build(t, tb.natgw, "./app")
	ns := rtNetns(t)

	for _, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) {
			x := e2eConfig{Driver: driver, Workers: 1, Members: e2ePoolMembers, WorkerCPUs: []int{cpu}}.config()
			x.Dataplane.WorkerPriority = 7
			path := filepath.Join(t.TempDir(), "natgw.toml")
			writeFileAtomic(t, path, configtest.Text(x))

			t.Run("worker thread SCHED_FIFO", func(t *testing.T) {
				p := startInNetns(t, ns, "real-time worker", tb.natgw, "run", "--config", path)
				require.NoError(t, p.waitLog("natgw running", 1, 30*time.Second))
				line := regexp.MustCompile(fmt.Sprintf(`msg="worker pinned" worker=0 cpu=%d tid=([0-9]+) policy=SCHED_FIFO priority=7`, cpu))
				m := line.FindStringSubmatch(p.log.String())
				require.NotNil(t, m, "no worker pinned line for SCHED_FIFO priority 7")
				tid, err := strconv.Atoi(m[1])
				require.NoError(t, err)
				pid := p.cmd.Process.Pid
				sched, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/sched", pid, tid))
				require.NoError(t, err, "the worker thread %d is not a thread of natgw (%d)", tid, pid)
				assert.Equal(t, strconv.Itoa(unix.SCHED_FIFO), schedField(t, string(sched), "policy"), "policy in /proc/%d/task/%d/sched", pid, tid)
				// The kernel's prio of a real-time thread is 99 - its priority.
				assert.Equal(t, "92", schedField(t, string(sched), "prio"), "prio in /proc/%d/task/%d/sched", pid, tid)
				attr, err := unix.SchedGetAttr(tid, 0)
				require.NoError(t, err)
				assert.Equal(t, uint32(unix.SCHED_FIFO), attr.Policy)
				assert.Equal(t, uint32(7), attr.Priority)
				if rt, err := os.ReadFile("/proc/sys/kernel/sched_rt_runtime_us"); err == nil && strings.TrimSpace(string(rt)) != "-1" {
					assert.Contains(t, p.log.String(), "the kernel throttles real-time threads")
				}
				code, err := p.stop(20 * time.Second)
				require.NoError(t, err)
				assert.Equal(t, 0, code, "exit status")
				assert.Contains(t, p.log.String(), "natgw stopped cleanly")
			})

			t.Run("without CAP_SYS_NICE natgw does not start", func(t *testing.T) {
				var lim unix.Rlimit
				require.NoError(t, unix.Getrlimit(unix.RLIMIT_RTPRIO, &lim))
				if lim.Cur >= 7 {
					t.Skipf("RLIMIT_RTPRIO is %d: natgw may be real-time without CAP_SYS_NICE", lim.Cur)
				}
				p := startInNetns(t, ns, "without CAP_SYS_NICE", "setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice", tb.natgw, "run", "--config", path)
				select {
				case <-p.done:
				case <-time.After(30 * time.Second):
					t.Fatalf("natgw still runs 30 s after starting without CAP_SYS_NICE; log:\n%s", p.log.String())
				}
				code, err := p.stop(time.Second)
				require.NoError(t, err)
				log := p.log.String()
				t.Logf("natgw's refusal:\n%s", log)
				assert.Equal(t, 1, code, "exit status; log:\n%s", log)
				assert.Contains(t, log, "dataplane.worker_priority")
				assert.Contains(t, log, "making the thread SCHED_FIFO at priority 7: operation not permitted")
				assert.Contains(t, log, "CAP_SYS_NICE")
				assert.NotContains(t, log, "natgw running")
			})
		})
	}
}

// rtNetns makes a namespace with the veth pairs veth-in and veth-out
// (their peers stay in it too, unused), removed at the end of t.
func rtNetns(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("ngwrt%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	exec.Command("ip", "netns", "del", ns).Run() // left by a killed run with this pid
	run("netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	run("-n", ns, "link", "set", "lo", "up")
	for _, name := range []string{"veth-in", "veth-out"} {
		run("-n", ns, "link", "add", name, "type", "veth", "peer", "name", name+"-p")
		run("-n", ns, "link", "set", name, "up")
		run("-n", ns, "link", "set", name+"-p", "up")
	}
	return ns
}

// schedField returns the value of a "name : value" line of
// /proc/PID/task/TID/sched.
func schedField(t *testing.T, sched, name string) string {
	t.Helper()
	for _, line := range strings.Split(sched, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q in:\n%s", name, sched)
	return ""
}
