package lcore

// Real-time workers (dataplane.worker_priority; docs/OPERATIONS.md,
// "Pinning and isolation"). A busy-polling worker at the normal policy
// gets a fair share of its CPU only: any other runnable thread there (of
// another process, or a kworker) takes its time slices, for 1-80 ms at
// a time on the shared benchmark VM (BENCHMARKS.md, "Worker stalls"). A
// SCHED_FIFO worker runs until it blocks or a higher real-time priority
// wants the CPU, so the kernel moves normal threads to other CPUs. That
// is why it needs a CPU of its own (worker_cpus): it starves whatever
// normal work is left on that CPU. The kernel's real-time throttling
// (kernel.sched_rt_runtime_us) takes the CPU from it for the rest of
// each period; natgw warns about it and leaves the setting to the host.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxWorkerPriority is the highest SCHED_FIFO priority.
const MaxWorkerPriority = 99

// SetThreadFIFO makes the calling OS thread SCHED_FIFO at priority prio
// (1 to MaxWorkerPriority), as `chrt -f -p PRIO TID` does. The caller
// must have locked its goroutine to the thread (runtime.LockOSThread).
// A refusal (EPERM: no CAP_SYS_NICE and an RLIMIT_RTPRIO below prio, a
// seccomp filter such as systemd's RestrictRealtime, or a cgroup without
// a real-time budget) is an error saying so.
func SetThreadFIFO(prio int) error {
	if prio < 1 || prio > MaxWorkerPriority {
		return fmt.Errorf("SCHED_FIFO priority %d: must be 1 to %d", prio, MaxWorkerPriority)
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	err := unix.SchedSetAttr(0, &attr, 0)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("making the thread SCHED_FIFO at priority %d: %w (it needs CAP_SYS_NICE or an RLIMIT_RTPRIO of %d, "+
			"no seccomp filter against real-time policies (systemd's RestrictRealtime=yes), "+
			"and, where the kernel schedules real-time threads by cgroup, a cgroup with a cpu.rt_runtime_us budget)", prio, err, prio)
	default:
		return fmt.Errorf("making the thread SCHED_FIFO at priority %d: %w", prio, err)
	}
}

// rtRuntimeFile and rtPeriodFile are the kernel's real-time throttling
// settings: real-time threads may use runtime µs of each period µs of a
// CPU (runtime -1: no throttling).
var (
	rtRuntimeFile = "/proc/sys/kernel/sched_rt_runtime_us"
	rtPeriodFile  = "/proc/sys/kernel/sched_rt_period_us"
)

// RTThrottling reads the kernel's real-time throttling: real-time threads
// may use runtime of every period microseconds of a CPU; runtime is -1
// when they are not throttled.
func RTThrottling() (runtime, period int64, err error) {
	read := func(path string) (int64, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		return v, nil
	}
	if runtime, err = read(rtRuntimeFile); err != nil {
		return 0, 0, err
	}
	if period, err = read(rtPeriodFile); err != nil {
		return 0, 0, err
	}
	return runtime, period, nil
}

// setupThread prepares a worker's locked thread before it polls: pinned
// to its CPU (Pin), then SCHED_FIFO at its priority (Priority), and logs
// `worker pinned` with the thread id. A pinning failure leaves an
// ordinary worker unpinned (logged); for a real-time worker it is an
// error, as is any failure to make it real-time: a spinning real-time
// thread off its CPU would starve another.
func (w *Worker) setupThread() error {
	if !w.pin {
		if w.prio > 0 {
			return fmt.Errorf("worker %d: a real-time priority needs a worker CPU", w.id)
		}
		return nil
	}
	if err := PinThread(w.cpu); err != nil {
		if w.prio > 0 {
			return fmt.Errorf("worker %d: %w", w.id, err)
		}
		w.log.Error("worker runs unpinned", "worker", w.id, "error", err)
		return nil
	}
	policy := "normal"
	if w.prio > 0 {
		if err := SetThreadFIFO(w.prio); err != nil {
			return fmt.Errorf("worker %d: %w", w.id, err)
		}
		policy = "SCHED_FIFO"
	}
	w.log.Info("worker pinned", "worker", w.id, "cpu", w.cpu, "tid", threadID(), "policy", policy, "priority", w.prio)
	return nil
}
