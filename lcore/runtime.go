package lcore

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/natgw/natgw/nat"
)

// RuntimeConfig describes a dataplane to start.
type RuntimeConfig struct {
	// Workers is the number of worker lcores.
	Workers int
	// Ports are the inside and outside ports, each with Workers+1 queues
	// (the last for the management core).
	Ports [NumPorts]Port
	// Policy holds the running policy; the caller stores new ones to reload.
	Policy *nat.PolicyHolder
	// FlowCapacity is the total flow table size, split over the workers.
	FlowCapacity int
	// Static are the configured neighbours.
	Static []StaticNeighbor
	// IdleWait is how long an idle worker may block in the driver (ns); 0
	// spins (poll mode).
	IdleWait time.Duration
	// Log receives the runtime's log lines.
	Log *slog.Logger
	// Clock, when set, replaces the real-time dataplane clock (tests
	// drive time with it); it must never return 0.
	Clock func() nat.Tick
	// WorkerCPUs, when set, has one CPU per worker: worker i pins its
	// thread to WorkerCPUs[i] when it starts. Keeping the process's other
	// threads off those CPUs is ConfineProcess's job, before the driver
	// starts.
	WorkerCPUs []int
	// WorkerPriority, 1 to 99, makes each worker's thread SCHED_FIFO at
	// that priority when it starts (rtsched.go); it needs WorkerCPUs. 0
	// keeps the normal policy.
	WorkerPriority int
}

// Runtime is a running dataplane: workers and the management loop.
type Runtime struct {
	Workers []*Worker
	Manager *Manager
	Owner   *Owner
	cfg     RuntimeConfig
	start   time.Time
	wg      sync.WaitGroup
}

// handoffFrames is the number of frames the handoff rings into one worker
// hold together (split over the workers that send to it, at least
// minHandoffRing each): with one flow handed over at line rate (packets
// the driver could not steer to their owner), it covers the receiver's
// longest pause. 2 workers: 4096 frames (8 MiB) per ring.
const (
	handoffFrames  = 4096
	minHandoffRing = 512
)

// handoffRingSize is the number of frames each worker-to-worker ring holds
// with workers workers.
func handoffRingSize(workers int) int {
	return max(minHandoffRing, handoffFrames/max(workers-1, 1))
}

// ringFrameSize is the buffer size of the runtime's rings: 2048 bytes, or
// the largest frame a port reports (MaxFrameReporter), so a frame one
// worker received fits when it is handed to another.
func ringFrameSize(ports [NumPorts]Port) int {
	size := 2048
	for _, p := range ports {
		if r, ok := p.(MaxFrameReporter); ok {
			size = max(size, r.MaxFrame())
		}
	}
	return size
}

// NewRuntime builds the workers and the management loop; Start runs them.
func NewRuntime(cfg RuntimeConfig) (*Runtime, error) {
	if cfg.Workers < 1 || cfg.Workers > 64 {
		return nil, fmt.Errorf("workers %d: must be 1 to 64", cfg.Workers)
	}
	if cfg.Policy.Load() == nil {
		return nil, fmt.Errorf("no policy")
	}
	if len(cfg.WorkerCPUs) != 0 && len(cfg.WorkerCPUs) != cfg.Workers {
		return nil, fmt.Errorf("%d worker CPUs for %d workers: give one per worker", len(cfg.WorkerCPUs), cfg.Workers)
	}
	if cfg.WorkerPriority < 0 || cfg.WorkerPriority > MaxWorkerPriority {
		return nil, fmt.Errorf("worker priority %d: must be 0 to %d", cfg.WorkerPriority, MaxWorkerPriority)
	}
	if cfg.WorkerPriority > 0 && len(cfg.WorkerCPUs) == 0 {
		return nil, fmt.Errorf("worker priority %d without worker CPUs: a real-time worker needs a CPU of its own", cfg.WorkerPriority)
	}
	r := &Runtime{cfg: cfg, start: time.Now(), Owner: NewOwner(DefaultRSSKey, cfg.Workers)}
	clock := r.Now
	neigh := NewNeighborHolder(cfg.Policy.Load().Gateway)
	n := cfg.Workers
	frame := ringFrameSize(cfg.Ports)
	hand := make([][]*Ring, n) // hand[from][to]
	for i := range hand {
		hand[i] = make([]*Ring, n)
		for j := range hand[i] {
			if i != j {
				hand[i][j] = NewRing(handoffRingSize(n), frame)
			}
		}
	}
	toMgmt := make([]*Ring, n)
	for i := range toMgmt {
		toMgmt[i] = NewRing(256, frame)
	}
	r.Manager = NewManager(cfg.Log, cfg.Ports, n, cfg.Policy, neigh, toMgmt, clock)
	r.Manager.SetStatic(cfg.Static)
	perWorker := max(cfg.FlowCapacity/n, 1)
	for i := 0; i < n; i++ {
		in := make([]*Ring, n)
		for j := 0; j < n; j++ {
			in[j] = hand[j][i]
		}
		events := &eventRing{}
		r.Manager.events = append(r.Manager.events, events)
		sessions := &SessionRing{}
		r.Manager.sessions = append(r.Manager.sessions, sessions)
		wc := WorkerConfig{
			ID: i, Workers: n, Ports: cfg.Ports, Policy: cfg.Policy, Neigh: neigh, Owner: r.Owner,
			HandoffOut: hand[i], HandoffIn: in, ToMgmt: toMgmt[i], ExpireNow: &r.Manager.ExpireNow, MTU: &r.Manager.MTU,
			Clock: clock, FlowCapacity: perWorker, Seed: uint64(time.Now().UnixNano()) + uint64(i),
			OnExhausted: events.push, Sessions: sessions, Log: cfg.Log, Redirect: &r.Manager.Redirect,
		}
		if len(cfg.WorkerCPUs) != 0 {
			wc.Pin, wc.CPU, wc.Priority = true, cfg.WorkerCPUs[i], cfg.WorkerPriority
		}
		r.Workers = append(r.Workers, NewWorker(wc))
	}
	return r, nil
}

// Now is the dataplane clock: milliseconds since the runtime was built,
// never 0.
func (r *Runtime) Now() nat.Tick {
	if r.cfg.Clock != nil {
		return r.cfg.Clock()
	}
	return nat.Tick(time.Since(r.start)/time.Millisecond) + 1
}

// Start runs the workers and the management loop on their own goroutines
// and waits until every worker has set up its thread (pinned to its CPU,
// real-time). When a worker could not, Start stops the runtime (the ports
// stay open) and returns the workers' errors.
func (r *Runtime) Start() error {
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.Manager.Run() }()
	setup := make(chan error, len(r.Workers))
	for _, w := range r.Workers {
		w.setup = setup
		r.wg.Add(1)
		go func() { defer r.wg.Done(); w.Run(int64(r.cfg.IdleWait)) }()
	}
	var errs []error
	for range r.Workers {
		if err := <-setup; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		r.Stop()
		return errors.Join(errs...)
	}
	return nil
}

// Stop stops the workers, then the management loop, and waits for them.
// The ports stay open: the caller closes them.
func (r *Runtime) Stop() {
	for _, w := range r.Workers {
		w.Stop()
	}
	r.Manager.Stop()
	r.wg.Wait()
}
