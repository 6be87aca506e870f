//go:build dpdk

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

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
// 1). rfc9693's -worker-fifo sets it (after unthrottleRT succeeded).
var workerFIFO = false

// rtRuntimeFile is the kernel's real-time throttling budget per period
// (µs; -1: no throttling).
const rtRuntimeFile = "/proc/sys/kernel/sched_rt_runtime_us"

// setFIFO makes the calling thread SCHED_FIFO at priority 1.
func setFIFO() error {
	return unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}, 0)
}

// unthrottleRT turns real-time throttling off and returns the function
// that restores the previous budget.
func unthrottleRT() (restore func(), err error) {
	b, err := os.ReadFile(rtRuntimeFile)
	if err != nil {
		return nil, err
	}
	prev := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(prev); err != nil {
		return nil, fmt.Errorf("%s: %q", rtRuntimeFile, prev)
	}
	if prev == "-1" {
		return func() {}, nil
	}
	if err := os.WriteFile(rtRuntimeFile, []byte("-1\n"), 0o644); err != nil {
		return nil, err
	}
	return func() {
		if err := os.WriteFile(rtRuntimeFile, []byte(prev+"\n"), 0o644); err != nil {
			slog.Error("restoring the real-time throttling budget", "file", rtRuntimeFile, "value", prev, "error", err)
		}
	}, nil
}

// realtimeWorker prepares a SCHED_FIFO worker when want is set: it
// turns throttling off (restore undoes it) and sets workerFIFO. When
// that fails the worker keeps the normal policy and the run says so.
func realtimeWorker(want bool, log *slog.Logger) (restore func()) {
	workerFIFO = false
	if !want {
		return func() {}
	}
	restore, err := unthrottleRT()
	if err != nil {
		log.Warn("natgw's worker keeps the normal scheduling policy: other processes' threads may take its CPU for milliseconds",
			"error", errors.Join(errors.New("turning real-time throttling off"), err))
		return func() {}
	}
	workerFIFO = true
	return restore
}
