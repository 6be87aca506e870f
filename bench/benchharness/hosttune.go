package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// This file holds the host settings an operator of a DPDK box makes for
// a busy-polling worker, which the RFC 9693 runs make for their duration
// and undo afterwards (rtsched.go has the real-time worker):
//
//   - kernel.sched_rt_runtime_us -1: no real-time throttling, so a
//     SCHED_FIFO worker is not idled 50 ms of every second;
//   - vm.stat_interval: the kernel's per-CPU vmstat_update work runs
//     every stat_interval seconds on a CPU with pending counter
//     differences, the worker's too (0.6-1.0 ms off the worker in one
//     trace on this VM, longer than a ring of 1024 frames lasts above
//     about 2.5 Mpps); a longer interval is a documented low-latency
//     tuning (nohz_full CPUs skip it instead). Measured, it did not
//     help here, so -stat-interval is off by default.
//
// Each setting is restored when the run ends, on an error too, and when
// the harness is stopped by SIGINT, SIGTERM or SIGHUP (onSignalRestore).

// hostTuning records the host settings a run was measured with (the
// run's JSON "host").
type hostTuning struct {
	// WorkerFIFO says natgw's worker thread ran SCHED_FIFO, priority 1.
	WorkerFIFO bool `json:"worker_fifo"`
	// WorkerPriority is natgw's dataplane.worker_priority in an
	// rfc9693-run: natgw made its worker SCHED_FIFO itself (0: not set
	// by natgw; runs from before the key had the harness do it).
	WorkerPriority int `json:"natgw_worker_priority,omitempty"`
	// FIFOThreads counts the natgw worker threads seen SCHED_FIFO
	// (rfc9693-run, one per natgw start): checked after natgw made them
	// so with WorkerPriority, or, before the key, made so from outside
	// as `chrt -f -p 1 TID`.
	FIFOThreads int `json:"worker_fifo_threads,omitempty"`
	// RTRuntimeUs is kernel.sched_rt_runtime_us during the run, and
	// RTRuntimeBefore its value before ("" when not touched).
	RTRuntimeUs     string `json:"sched_rt_runtime_us,omitempty"`
	RTRuntimeBefore string `json:"sched_rt_runtime_us_before,omitempty"`
	// StatInterval is vm.stat_interval (s) during the run, and
	// StatIntervalBefore its value before ("" when left alone).
	StatInterval       string `json:"vm_stat_interval_s,omitempty"`
	StatIntervalBefore string `json:"vm_stat_interval_s_before,omitempty"`
	// Warnings are the settings asked for that could not be made.
	Warnings []string `json:"warnings,omitempty"`
}

// describe is a sentence for the report.
func (h *hostTuning) describe() string {
	if h == nil {
		return "Host settings: not recorded (a run from before the harness set them)."
	}
	var parts []string
	if h.WorkerFIFO {
		s := "natgw's worker thread SCHED_FIFO (priority 1)"
		switch {
		case h.WorkerPriority > 0:
			s = fmt.Sprintf("natgw's worker thread SCHED_FIFO (priority %d), set by natgw (`dataplane.worker_priority = %d`) and checked on the `worker pinned` thread of each of %d natgw starts",
				h.WorkerPriority, h.WorkerPriority, h.FIFOThreads)
		case h.FIFOThreads > 0:
			s += fmt.Sprintf(", set with sched_setattr on the `worker pinned` thread of each of %d natgw starts", h.FIFOThreads)
		}
		parts = append(parts, s)
	} else {
		parts = append(parts, "natgw's worker at the normal scheduling policy")
	}
	if h.RTRuntimeUs != "" {
		parts = append(parts, fmt.Sprintf("kernel.sched_rt_runtime_us %s (was %s)", h.RTRuntimeUs, h.RTRuntimeBefore))
	}
	if h.StatInterval != "" {
		parts = append(parts, fmt.Sprintf("vm.stat_interval %s s (was %s)", h.StatInterval, h.StatIntervalBefore))
	} else {
		parts = append(parts, "vm.stat_interval left alone")
	}
	s := "Host settings for the run: " + strings.Join(parts, "; ") + "."
	if len(h.Warnings) > 0 {
		s += " Not made: " + strings.Join(h.Warnings, "; ") + "."
	}
	return s
}

// setProcValue writes value to a /proc/sys file for the run and returns
// the previous value and the function that restores it (run once; a
// no-op when the file held value already). The value must be an
// integer, as the files this is used for hold.
func setProcValue(path, value string) (prev string, restore func() error, err error) {
	if _, err := strconv.Atoi(value); err != nil {
		return "", nil, fmt.Errorf("%s: value %q is not an integer", path, value)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	prev = strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(prev); err != nil {
		return "", nil, fmt.Errorf("%s holds %q, not an integer", path, prev)
	}
	if prev == value {
		return prev, func() error { return nil }, nil
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
		return "", nil, err
	}
	var once sync.Once
	var rerr error
	return prev, func() error {
		once.Do(func() {
			if err := os.WriteFile(path, []byte(prev+"\n"), 0o644); err != nil {
				rerr = fmt.Errorf("restoring %s to %s: %w", path, prev, err)
			}
		})
		return rerr
	}, nil
}

// restores are the host settings to undo if the harness is stopped by a
// signal before its deferred restores run.
var restores struct {
	sync.Mutex
	next    int
	pending map[int]func() error
	watch   sync.Once
}

// onSignalRestore registers restore to run if SIGINT, SIGTERM or SIGHUP
// stops the harness, and returns restore wrapped to unregister itself.
func onSignalRestore(restore func() error) func() error {
	restores.Lock()
	defer restores.Unlock()
	if restores.pending == nil {
		restores.pending = map[int]func() error{}
	}
	id := restores.next
	restores.next++
	restores.pending[id] = restore
	restores.watch.Do(func() {
		// A signal the harness was started with ignored (a background
		// job of a script, nohup) stays ignored: catching it would make
		// it stop the run.
		var sigs []os.Signal
		for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
			if !signal.Ignored(s) {
				sigs = append(sigs, s)
			}
		}
		if len(sigs) == 0 {
			return
		}
		c := make(chan os.Signal, 1)
		signal.Notify(c, sigs...)
		go func() {
			sig := <-c
			if err := runPendingRestores(); err != nil {
				fmt.Fprintf(os.Stderr, "benchharness: %v\n", err)
			}
			// Die of the signal as if it had not been caught.
			signal.Reset(sig)
			_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
			time.Sleep(time.Second)
			os.Exit(128 + int(sig.(syscall.Signal)))
		}()
	})
	return func() error {
		restores.Lock()
		delete(restores.pending, id)
		restores.Unlock()
		return restore()
	}
}

// runPendingRestores runs every registered restore (the signal path).
func runPendingRestores() error {
	restores.Lock()
	defer restores.Unlock()
	var errs []error
	for id, f := range restores.pending {
		errs = append(errs, f())
		delete(restores.pending, id)
	}
	return errors.Join(errs...)
}

// startMarker begins the line natgwProcess.start writes to natgw's log
// before each start.
const startMarker = "--- benchharness: natgw start "

// natgwStartMarker is the line natgwProcess.start writes to natgw's log
// before start n (up to the time).
func natgwStartMarker(n int) string { return fmt.Sprintf("%s%d at ", startMarker, n) }

// parseWorkerTIDs returns the thread ids natgw's log names in its
// `worker pinned` lines (slog text: msg="worker pinned" worker=0 cpu=1
// tid=1234) of one start: after the last line starting with marker
// (natgwStartMarker) up to the next start's; "" reads the whole log.
func parseWorkerTIDs(log, marker string) ([]int, error) {
	if marker != "" {
		if i := strings.LastIndex(log, "\n"+marker); i >= 0 {
			log = log[i+1:]
		} else if !strings.HasPrefix(log, marker) {
			return nil, nil
		}
		if i := strings.Index(log, "\n"+startMarker); i >= 0 {
			log = log[:i]
		}
	}
	var tids []int
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="worker pinned"`) {
			continue
		}
		var tid string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "tid="); ok {
				tid = v
			}
		}
		n, err := strconv.Atoi(tid)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("natgw's log: no thread id in %q", line)
		}
		tids = append(tids, n)
	}
	return tids, nil
}
