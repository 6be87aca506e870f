//go:build dpdk

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"golang.org/x/sys/unix"
)

// This file keeps other processes off natgw's worker CPU during a
// measurement. On this shared VM the other sessions' threads (shells,
// compilers, perf, the VM's agents) run on the worker's CPU too: only
// natgw's own threads are kept off it (lcore.ConfineProcess). Under the
// normal policy the kernel gives each of them a fair share of that CPU,
// taking it from the busy-polling worker for 1-80 ms at a time (perf
// sched traces of the rfc9693 runs, BENCHMARKS.md "Worker stalls"),
// while a ring of 1024 frames holds 0.4 ms of traffic. A SCHED_FIFO
// worker is not preempted by them (the load balancer moves them to the
// other CPUs), which is what an isolated core (isolcpus, a cpuset) gives
// natgw on a real host. The kernel's real-time throttling would then
// stop the worker for 50 ms of every second (sched_rt_runtime_us 950000
// of sched_rt_period_us 1000000: measured, 46-51 ms gaps once a second),
// so it is turned off for the run and restored afterwards, as bench.sh
// reserves hugepages for it.

// workerFIFO makes a pinned worker loop's thread SCHED_FIFO (priority
// 1). rfc9693's -worker-fifo sets it (after tuneHost turned real-time
// throttling off); rfc9693-run then sets natgw's
// dataplane.worker_priority instead (run9693.go).
var workerFIFO = false

// rtRuntimeFile is the kernel's real-time throttling budget per period
// (µs; -1: no throttling).
const rtRuntimeFile = "/proc/sys/kernel/sched_rt_runtime_us"

// setFIFO makes the calling thread SCHED_FIFO at priority 1.
// statIntervalFile is vm.stat_interval (seconds between the per-CPU
// vmstat updates).
const statIntervalFile = "/proc/sys/vm/stat_interval"

// defaultStatInterval is -stat-interval's default (s): 0, the interval
// left alone. 120 (at most one vmstat update in a 60 s elementary step)
// was measured and did not help: the regular 0.8 ms poll gaps stayed
// (BENCHMARKS.md, "Worker stalls"), so the run does not change it
// unless asked.
const defaultStatInterval = 0

func setFIFO() error { return setThreadFIFO(0) }

// setThreadFIFO makes thread tid (0: the calling one) SCHED_FIFO at
// priority 1, as `chrt -f -p 1 TID` does.
func setThreadFIFO(tid int) error {
	return unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}, 0)
}

// tuneHost makes the run's host settings (hosttune.go): with fifo, real-
// time throttling off and workerFIFO set (when throttling can't be
// turned off the worker keeps the normal policy and the run says so);
// with statInterval > 0, vm.stat_interval statInterval seconds. restore
// undoes them; a signal stopping the harness undoes them too.
func tuneHost(fifo bool, statInterval int, log *slog.Logger) (h hostTuning, restore func()) {
	workerFIFO = false
	var undo []func() error
	if fifo {
		prev, r, err := setProcValue(rtRuntimeFile, "-1")
		if err != nil {
			log.Warn("natgw's worker keeps the normal scheduling policy: other processes' threads may take its CPU for milliseconds",
				"error", errors.Join(errors.New("turning real-time throttling off"), err))
			h.Warnings = append(h.Warnings, fmt.Sprintf("SCHED_FIFO worker (turning real-time throttling off: %v)", err))
		} else {
			undo = append(undo, onSignalRestore(r))
			h.RTRuntimeUs, h.RTRuntimeBefore = "-1", prev
			workerFIFO, h.WorkerFIFO = true, true
		}
	}
	if statInterval > 0 {
		v := strconv.Itoa(statInterval)
		prev, r, err := setProcValue(statIntervalFile, v)
		if err != nil {
			log.Warn("vm.stat_interval left alone: the kernel's vmstat work keeps taking the worker's CPU every second", "error", err)
			h.Warnings = append(h.Warnings, fmt.Sprintf("vm.stat_interval %s: %v", v, err))
		} else {
			undo = append(undo, onSignalRestore(r))
			h.StatInterval, h.StatIntervalBefore = v, prev
		}
	}
	if h.RTRuntimeUs != "" || h.StatInterval != "" {
		log.Info("host settings for the run", "worker_fifo", h.WorkerFIFO, "sched_rt_runtime_us", h.RTRuntimeUs,
			"was", h.RTRuntimeBefore, "vm_stat_interval", h.StatInterval, "stat_interval_was", h.StatIntervalBefore)
	}
	return h, func() {
		for _, f := range undo {
			if err := f(); err != nil {
				log.Error("restoring a host setting", "error", err)
			}
		}
	}
}
