package lcore

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// lastAllowedCPU returns the highest CPU the process may run on.
func lastAllowedCPU(t *testing.T) (cpu int, allowed unix.CPUSet) {
	t.Helper()
	require.NoError(t, unix.SchedGetaffinity(0, &allowed))
	for c := maxCPU - 1; c >= 0; c-- {
		if allowed.IsSet(c) {
			return c, allowed
		}
	}
	t.Fatal("no CPU allowed")
	return 0, allowed
}

// fifoThreads lists the process's threads that run SCHED_FIFO.
func fifoThreads(t *testing.T) []int {
	t.Helper()
	tids, err := threadIDs()
	require.NoError(t, err)
	var fifo []int
	for _, tid := range tids {
		if a, err := unix.SchedGetAttr(tid, 0); err == nil && a.Policy == unix.SCHED_FIFO {
			fifo = append(fifo, tid)
		}
	}
	return fifo
}

// TestRuntimeWorkerPriority: with a worker priority the runtime wants
// worker CPUs, and a started worker's thread runs SCHED_FIFO at that
// priority, logs it, and exits with the worker.
func TestRuntimeWorkerPriority(t *testing.T) {
	holder := testHolder(t)
	ports := [NumPorts]Port{NewFakePort("in", macIn, 2), NewFakePort("out", macOut, 2)}
	_, err := NewRuntime(RuntimeConfig{Workers: 1, Ports: ports, Policy: holder, FlowCapacity: 64, WorkerPriority: 5})
	require.ErrorContains(t, err, "worker priority 5 without worker CPUs")
	_, err = NewRuntime(RuntimeConfig{Workers: 1, Ports: ports, Policy: holder, FlowCapacity: 64, WorkerCPUs: []int{0}, WorkerPriority: 100})
	require.ErrorContains(t, err, "worker priority 100: must be 0 to 99")
	if os.Geteuid() != 0 {
		t.Skip("making a thread SCHED_FIFO needs root (CAP_SYS_NICE)")
	}

	cpu, _ := lastAllowedCPU(t)
	var logs syncBuf
	rt, err := NewRuntime(RuntimeConfig{Workers: 1, Ports: ports, Policy: holder, FlowCapacity: 64,
		WorkerCPUs: []int{cpu}, WorkerPriority: 7, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	// An earlier real-time worker may have ended on the main thread, which
	// Go parks for good (still SCHED_FIFO, running nothing).
	before := fifoThreads(t)
	require.NoError(t, rt.Start())
	stopped := false
	defer func() {
		if !stopped {
			rt.Stop()
		}
	}()
	line := regexp.MustCompile(fmt.Sprintf(`msg="worker pinned" worker=0 cpu=%d tid=([0-9]+) policy=SCHED_FIFO priority=7`, cpu))
	m := line.FindStringSubmatch(logs.String())
	require.NotNil(t, m, "log:\n%s", logs.String()) // Start returns after the worker logged its setup
	tid, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	attr, err := unix.SchedGetAttr(tid, 0)
	require.NoError(t, err)
	assert.Equal(t, uint32(unix.SCHED_FIFO), attr.Policy, "the worker thread's policy")
	assert.Equal(t, uint32(7), attr.Priority, "the worker thread's priority")
	var mask unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(tid, &mask))
	assert.Equal(t, strconv.Itoa(cpu), cpuList(&mask), "the worker thread's CPUs")
	assert.ElementsMatch(t, append(before, tid), fifoThreads(t), "SCHED_FIFO threads")

	rt.Stop()
	stopped = true
	// The real-time thread is gone with its goroutine (Go parks the main
	// thread instead of ending it; a parked thread runs nothing).
	if tid == os.Getpid() {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(fifoThreads(t)) > len(before) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	assert.ElementsMatch(t, before, fifoThreads(t), "SCHED_FIFO threads after Stop")
}

// TestRuntimeStartFailsWhenWorkerSetupFails: a real-time worker that
// cannot be pinned makes Start fail, naming the worker, with no worker
// left running and no SCHED_FIFO thread left.
func TestRuntimeStartFailsWhenWorkerSetupFails(t *testing.T) {
	_, allowed := lastAllowedCPU(t)
	bad := maxCPU - 1
	if allowed.IsSet(bad) {
		t.Skipf("CPU %d is allowed here", bad)
	}
	holder := testHolder(t)
	ports := [NumPorts]Port{NewFakePort("in", macIn, 2), NewFakePort("out", macOut, 2)}
	rt, err := NewRuntime(RuntimeConfig{Workers: 1, Ports: ports, Policy: holder, FlowCapacity: 64,
		WorkerCPUs: []int{bad}, WorkerPriority: 3})
	require.NoError(t, err)
	// An earlier test's real-time worker may have ended on the main
	// thread, which Go parks for good (still SCHED_FIFO, running nothing).
	before := fifoThreads(t)
	err = rt.Start()
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("worker 0: pinning to CPU %d", bad))
	assert.Equal(t, before, fifoThreads(t), "SCHED_FIFO threads")
	assert.Zero(t, rt.Workers[0].Counters.Polls.Load(), "polls of a worker that could not start")
}

// TestSetThreadFIFORefused: a thread without CAP_SYS_NICE (and with
// RLIMIT_RTPRIO 0) is refused, and the error says what it needs.
func TestSetThreadFIFORefused(t *testing.T) {
	require.ErrorContains(t, SetThreadFIFO(0), "SCHED_FIFO priority 0: must be 1 to 99")
	require.ErrorContains(t, SetThreadFIFO(100), "SCHED_FIFO priority 100: must be 1 to 99")
	var lim unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_RTPRIO, &lim))
	if lim.Cur != 0 {
		t.Skipf("RLIMIT_RTPRIO is %d: the thread may be real-time without CAP_SYS_NICE", lim.Cur)
	}
	errc := make(chan error, 1)
	go func() {
		// Capabilities are per thread: this one drops CAP_SYS_NICE and
		// ends with its goroutine (it stays locked).
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		for i := range data {
			data[i].Effective &^= capBit(unix.CAP_SYS_NICE, i)
			data[i].Permitted &^= capBit(unix.CAP_SYS_NICE, i)
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		errc <- SetThreadFIFO(10)
	}()
	err := <-errc
	require.Error(t, err)
	assert.ErrorIs(t, err, unix.EPERM)
	assert.Contains(t, err.Error(), "making the thread SCHED_FIFO at priority 10")
	assert.Contains(t, err.Error(), "CAP_SYS_NICE")
}

// capBit is capability c's bit in word i of a capability set.
func capBit(c, i int) uint32 {
	if c/32 != i {
		return 0
	}
	return 1 << (c % 32)
}
