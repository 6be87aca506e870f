package lcore

// CPU placement (docs/OPERATIONS.md, "Worker CPUs"). A poll-mode worker
// that shares its CPU with other threads is preempted for their time
// slices: measured on the benchmark VM, the kernel's scheduler gave
// natgw's own management, Go runtime and DPDK control threads several
// milliseconds of a worker's CPU at a time. With dataplane.worker_cpus
// set, natgw keeps every thread but the workers off the worker CPUs
// (ConfineProcess, before the driver starts) and pins each worker to its
// CPU (PinThread, on the worker's locked thread). Threads created later
// inherit the confined mask: the Go runtime creates them from confined
// threads, or from its template thread when the creator is locked to a
// worker. Keeping other processes and kernel work off those CPUs is the
// host's part (isolcpus, nohz_full, rcu_nocbs; deploy/setup-host.sh).

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// ConfineProcess sets the CPU affinity of every thread of the process to
// the CPUs it may use now, less workerCPUs, so that only the workers
// pinned there will run on them, and fixes GOMAXPROCS at its value (at
// least one P per worker CPU and one more). It fails, changing nothing, when a
// worker CPU is not one the process may use (offline, or outside its
// cpuset) or when no CPU would be left for the other threads. It runs on
// the management core, before the driver starts.
func ConfineProcess(workerCPUs []int) error {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return fmt.Errorf("reading the CPU affinity: %w", err)
	}
	rest := allowed
	for _, c := range workerCPUs {
		if c < 0 || c >= maxCPU || !allowed.IsSet(c) {
			return fmt.Errorf("worker CPU %d is not one this process may run on (allowed: %s)", c, cpuList(&allowed))
		}
		rest.Clear(c)
	}
	if rest.Count() == 0 {
		return fmt.Errorf("worker CPUs %v leave no CPU for the management core and the runtime (allowed: %s)", workerCPUs, cpuList(&allowed))
	}
	// Go recomputes its default GOMAXPROCS about once a second from the
	// CPU affinity of the thread asking, which is about to leave out the
	// worker CPUs: on 2 CPUs with one worker it fell to 1, and the
	// worker's P went to the management loop, the HTTP server and the
	// garbage collector each time Go preempted the worker (every 10 ms),
	// for up to 10 ms (natgw_worker_poll_gaps_total; BENCHMARKS.md,
	// "Worker stalls"). Setting it explicitly stops those updates; it
	// stays the CPUs the process had, one P per worker and the rest for
	// everything else.
	runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), len(workerCPUs)+1))
	// A thread created while the first pass runs may have copied its
	// creator's old mask: go over the threads until a pass finds none new.
	done := map[int]bool{}
	for pass := 0; pass < 10; pass++ {
		tids, err := threadIDs()
		if err != nil {
			return err
		}
		changed := false
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &rest); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("confining thread %d to CPUs %s: %w", tid, cpuList(&rest), err)
			}
			done[tid] = true
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return errors.New("confining the process: threads kept appearing")
}

// PinThread pins the calling OS thread to cpu. The caller must have locked
// its goroutine to the thread (runtime.LockOSThread).
func PinThread(cpu int) error {
	if cpu < 0 || cpu >= maxCPU {
		return fmt.Errorf("CPU %d: out of range", cpu)
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pinning to CPU %d: %w", cpu, err)
	}
	return nil
}

// maxCPU is the number of CPUs a unix.CPUSet holds.
const maxCPU = len(unix.CPUSet{}) * 64

// threadIDs lists the process's threads.
func threadIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("listing the process's threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// cpuList formats a CPU set as "0,2-3".
func cpuList(s *unix.CPUSet) string {
	out := ""
	for c := 0; c < maxCPU; c++ {
		if !s.IsSet(c) {
			continue
		}
		end := c
		for end+1 < maxCPU && s.IsSet(end+1) {
			end++
		}
		if out != "" {
			out += ","
		}
		if end == c {
			out += strconv.Itoa(c)
		} else {
			out += strconv.Itoa(c) + "-" + strconv.Itoa(end)
		}
		c = end
	}
	return out
}

// threadID returns the calling thread's kernel id (what chrt, taskset and
// perf name it by).
func threadID() int { return unix.Gettid() }
