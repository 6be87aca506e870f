//go:build dpdk

package main

/*
#cgo pkg-config: libdpdk
#cgo LDFLAGS: -lrte_net_ring
#include <stdlib.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_errno.h>

static int natgwbench_errno(void) { return rte_errno; }

static struct rte_ring *natgwbench_ring(const char *name, unsigned count) {
	return rte_ring_create(name, count, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
}

// natgwbench_port makes an ethdev receiving from rx and transmitting to
// tx0 (queue 0) and tx1 (queue 1), and returns its port id or -1.
static int natgwbench_port(const char *name, struct rte_ring *rx, struct rte_ring *tx0, struct rte_ring *tx1) {
	struct rte_ring *rxs[1] = {rx};
	struct rte_ring *txs[2] = {tx0, tx1};
	return rte_eth_from_rings(name, rxs, 1, txs, 2, rte_socket_id());
}
*/
import "C"

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/lcore/dpdk"
	"github.com/natgw/natgw/mgmt"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// pdrLoss is the loss ratio of the PDR search (CSIT: 0.5 %).
const pdrLoss = 0.005

func init() { subcommands["rfc9693"] = cmdRFC9693 }

// This file is the RFC 9693 method (issue 20): natgw's real runtime and
// DPDK driver with one worker pinned to one CPU, and the rate-controlled
// generator (genc.go, its packet path in C) pinned to another, connected
// by four DPDK ring devices (net_ring, made with rte_eth_from_rings):
//
//	generator --ring A--> natgw inside  --ring B--> generator
//	generator --ring C--> natgw outside --ring D--> generator
//
// Each ring holds ringSize frames, as a NIC's RX ring would: when natgw
// falls behind, the generator's transmission fails and the frame is lost.
// natgw's management queues transmit to rings nobody reads.

// maxConnSeconds bounds a connection trial's length at the lowest rate.
const maxConnSeconds = 20

// ringSize is each ring's size (a power of two; it holds ringSize-1):
// the -ring flag of rfc9693, rfc9693-run and genceiling (ringFlag), set
// once before any device is made.
var ringSize = defaultRing

// ringFlag registers -ring, the depth of every ring between the
// generator and natgw, on fs.
func ringFlag(fs *flag.FlagSet) {
	fs.IntVar(&ringSize, "ring", defaultRing, "frames per ring between the generator and natgw: net_ring size, "+
		"RX/TX descriptors, memif rsize and natgw's rx_descriptors/tx_descriptors (a power of two, 64 to 16384)")
}

// checkRing refuses a -ring the devices can't have: rte_ring and memif
// want a power of two, memif at most 2^14 (DPDK's
// ETH_MEMIF_MAX_LOG2_RING_SIZE).
func checkRing() error {
	if ringSize < 64 || ringSize > 16384 || ringSize&(ringSize-1) != 0 {
		return fmt.Errorf("-ring %d: must be a power of two, 64 to 16384", ringSize)
	}
	return nil
}

// rfcOptions are the rfc9693 subcommand's flags.
type rfcOptions struct {
	Flows      int
	Capacity   int
	Dir        string
	Out        string
	Step       float64
	CPU        int
	GenCPU     int
	Lcores     string
	Seed       uint64
	MaxRate    uint64
	MaxCPS     uint64
	Resolution float64
	Latency    bool
	Teardown   bool
	WorkerFIFO bool
	// StatInterval is vm.stat_interval (s) for the run; 0 leaves it.
	StatInterval int
}

// register adds the flags rfc9693 and rfc9693-run share to fs; out is
// the default result file's pattern.
func (o *rfcOptions) register(fs *flag.FlagSet, out string) {
	fs.IntVar(&o.Flows, "flows", 1000, "live flows")
	fs.IntVar(&o.Capacity, "capacity", 1<<24, "natgw's flow_capacity (sized for the peak, as an operator does)")
	fs.StringVar(&o.Dir, "dir", "", "work directory")
	fs.StringVar(&o.Out, "o", "", "result file (default DIR/"+out+")")
	fs.Float64Var(&o.Step, "step", 60, "seconds per elementary step of the throughput search (RFC 9693: 60)")
	fs.IntVar(&o.CPU, "cpu", 1, "CPU of natgw's worker")
	fs.IntVar(&o.GenCPU, "gen-cpu", 0, "CPU of the generator")
	fs.StringVar(&o.Lcores, "l", "0", "EAL -l (main lcore)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the flows' order")
	fs.Uint64Var(&o.MaxRate, "max-rate", 40_000_000, "highest two-way rate tried (frames/s)")
	fs.Uint64Var(&o.MaxCPS, "max-cps", 8_000_000, "highest connection rate tried (per second)")
	fs.Float64Var(&o.Resolution, "resolution", 0.01, "search resolution, a fraction of the highest rate")
	fs.BoolVar(&o.Latency, "latency", true, "measure latency at 10, 50 and 90 % of the throughput")
	fs.BoolVar(&o.WorkerFIFO, "worker-fifo", true, "run natgw's worker thread SCHED_FIFO (rfc9693-run: natgw's dataplane.worker_priority = 1, checked after each start), real-time throttling off for the run (rtsched.go)")
	fs.IntVar(&o.StatInterval, "stat-interval", defaultStatInterval, "vm.stat_interval (s) for the run, restored after (hosttune.go); 0 leaves it alone")
	ringFlag(fs)
}

// cmdRFC9693 is the "rfc9693" subcommand: one flow count.
func cmdRFC9693(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rfc9693", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o rfcOptions
	o.register(fs, "rfc9693-FLOWS.json")
	fs.BoolVar(&o.Teardown, "teardown", true, "measure the tear-down rate under 50 % load (teardown9693.go)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Dir == "" || fs.NArg() != 0 || o.Step <= 0 || o.Flows < 2 || o.Capacity < o.Flows || o.CPU == o.GenCPU || o.StatInterval < 0 {
		return errors.New("usage: benchharness rfc9693 -dir WORK [-flows N] [-capacity C >= N] [-step S] [-cpu W] [-gen-cpu G != W] [-ring N]")
	}
	if err := checkRing(); err != nil {
		return err
	}
	return o.measure("rfc9693-%d.json", stderr, func(log *slog.Logger) (rfcRun, error) { return runRFC9693(o, log, stdout) })
}

// measure runs one flow count with a logger on stderr and writes its
// result, with its run time and any error, to o.Out (default DIR/ the
// pattern filled with the flow count).
func (o *rfcOptions) measure(pattern string, stderr io.Writer, run func(*slog.Logger) (rfcRun, error)) error {
	if o.Out == "" {
		o.Out = filepath.Join(o.Dir, fmt.Sprintf(pattern, o.Flows))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t0 := time.Now()
	res, err := run(log)
	res.Seconds = time.Since(t0).Seconds()
	if err != nil {
		res.Error = err.Error()
	}
	if werr := writeJSON(o.Out, res); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// newRing makes a ring of ringSize frames (one producer, one consumer).
func newRing(name string) (*C.struct_rte_ring, error) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	r := C.natgwbench_ring(cn, C.uint(ringSize))
	if r == nil {
		return nil, fmt.Errorf("rte_ring_create %s: errno %d", name, int(C.natgwbench_errno()))
	}
	return r, nil
}

// ringDevice makes the ethdev net_ring_NAME receiving from rx and
// transmitting to tx0 (queue 0) and tx1 (queue 1).
func ringDevice(name string, rx, tx0, tx1 *C.struct_rte_ring) error {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	if id := C.natgwbench_port(cn, rx, tx0, tx1); id < 0 {
		return fmt.Errorf("rte_eth_from_rings %s: errno %d", name, int(C.natgwbench_errno()))
	}
	return nil
}

// rfcBench is one rfc9693 process.
type rfcBench struct {
	o          rfcOptions
	log        *slog.Logger
	session    *dpdk.Session
	ports      []*dpdk.Port
	rings      []*C.struct_rte_ring
	policy     nat.PolicyHolder
	rt         *lcore.Runtime
	mgr        chan struct{}
	worker     *workerLoop
	clock      *benchClock
	gen        chan func()
	genDone    chan error
	ringByName map[string]*C.struct_rte_ring
	eng        *cEngine
	loop       *loopback
}

// runRFC9693 measures one flow count.
func runRFC9693(o rfcOptions, log *slog.Logger, stdout io.Writer) (rfcRun, error) {
	t, err := newTraffic(o.Flows)
	if err != nil {
		return rfcRun{}, err
	}
	t.Capacity = o.Capacity
	g, err := newGenFlows(t, o.Seed)
	if err != nil {
		return rfcRun{}, err
	}
	ealArgs := []string{"-l", o.Lcores, "--no-pci"}
	text := t.configTOML("net_ring_natin", "net_ring_natout", ealArgs)
	cfg, err := config.Parse([]byte(text), "benchmark configuration")
	if err != nil {
		return rfcRun{}, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, fmt.Sprintf("rfc9693-%d.toml", o.Flows)), []byte(text), 0o644); err != nil {
		return rfcRun{}, err
	}
	pol, err := mgmt.CompilePolicy(cfg, nil)
	if err != nil {
		return rfcRun{}, err
	}
	static, err := staticNeighbors(cfg)
	if err != nil {
		return rfcRun{}, err
	}
	res := rfcRun{Flows: o.Flows, Capacity: o.Capacity, Sources: t.Sources, StepSeconds: o.Step, WorkerCPU: o.CPU,
		GeneratorCPU: o.GenCPU, RingSize: ringSize, EALArgs: ealArgs}
	// The worker and the generator each spin on a P of their own; with
	// only two Ps the management loop, the timers and the garbage
	// collector would take the worker's P from it (tens of ms). Two
	// more Ps run them, on threads the OS keeps off the worker's CPU.
	if runtime.GOMAXPROCS(0) < 4 {
		runtime.GOMAXPROCS(4)
	}
	if err := lcore.ConfineProcess([]int{o.CPU}); err != nil {
		return res, fmt.Errorf("-cpu %d: %w", o.CPU, err)
	}
	// Six ports (natgw's two, the generator's two and its loopback pair,
	// genceiling.go) with ring-sized RX and TX rings: the mempool holds
	// every ring full, the stashes and the lcore caches.
	dcfg := dpdk.Config{Ports: 6, Workers: 1, RxDesc: ringSize, TxDesc: ringSize}
	dcfg.EALArgs, dcfg.Workers, dcfg.Log = ealArgs, 1, log
	host, restoreHost := tuneHost(o.WorkerFIFO, o.StatInterval, log)
	defer restoreHost()
	res.Host = &host
	b := &rfcBench{o: o, log: log}
	defer b.close()
	if err := b.start(dcfg, pol, o.Capacity, static, g); err != nil {
		return res, err
	}
	w := b.rt.Workers[0]
	if res.GeneratorLoopback, err = b.generatorCeiling(g, stdout); err != nil {
		return res, err
	}
	// No garbage collection while measuring: its stop-the-world phases
	// stop natgw's worker and the generator (both are goroutines), and
	// on 2 CPUs the collector's threads queue behind the generator. The
	// flow table and the generator's state are allocated by now; what
	// the harness allocates from here on is a few lines of text a step.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	// Connection establishment: zero-loss binary search of the rate; each
	// trial starts from an empty table.
	var last connectResult
	connTrial := func(rate uint64) (searchStep, error) {
		if err := b.emptyTable(); err != nil {
			return searchStep{}, err
		}
		var before [nat.NumVerdicts]uint64
		verdictDrops(w, &before)
		b.onGen(func() { last = b.eng.connect(rate) })
		s := searchStep{Pass: last.pass(), Offered: last.First.Offered + last.Answer.Offered,
			Loss: last.First.lost() + last.Answer.lost(), Seconds: last.Seconds, Limited: last.Limited}
		s.Note = fmt.Sprintf("established %d/%d, first %+v, answer %+v, natgw drops %s", last.Established, last.Flows,
			last.First, last.Answer, formatDrops(verdictDrops(w, &before)))
		fmt.Fprintf(stdout, "rfc9693 %d flows: connections at %s/s: pass %v (%s)\n", o.Flows, formatRate(float64(rate)), s.Pass && !s.Limited, s.Note)
		return s, nil
	}
	// The lowest rate tried opens the N flows in at most maxConnSeconds
	// (16 M flows at 1/256 of the highest rate would take minutes).
	lo := max(1000, o.MaxCPS/256, uint64(o.Flows)/maxConnSeconds)
	res.Connections, res.ConnectionSteps, err = binarySearch(lo, o.MaxCPS, max(1, uint64(float64(o.MaxCPS)*o.Resolution)), connTrial)
	if err != nil {
		return res, err
	}
	// Phase 1 for the throughput: fill the table at the rate found (or
	// the lowest tried) and learn every public endpoint.
	fill := max(res.Connections, lo)
	if _, err := connTrial(fill); err != nil {
		return res, err
	}
	var fillDrops [nat.NumVerdicts]uint64
	verdictDrops(w, &fillDrops)
	fwd := &w.Counters.Verdicts[nat.VerdictForward]
	fillFwd := fwd.Load()
	// Each round waits at least fillDrain for late frames (fill.go); its
	// line says what natgw translated and dropped, and the worker's
	// longest poll gap during it.
	last, _ = fillMissing(last, &b.eng.Drain, func(round int) (connectResult, error) {
		var before [nat.NumVerdicts]uint64
		verdictDrops(w, &before)
		fwd0 := fwd.Load()
		b.worker.maxGap.Store(0)
		var r connectResult
		b.onGen(func() { r = b.eng.connectMissing(max(1000, fill/4)) })
		fmt.Fprintf(stdout, "rfc9693 %d flows: filling, round %d: %d of %d missing connections established (first %+v), natgw translated %d, drops %s, %s\n",
			o.Flows, round, r.Established, r.Flows, r.First, fwd.Load()-fwd0, formatDrops(verdictDrops(w, &before)), b.diag())
		return r, nil
	})
	if err := b.eng.checkLearnt(); err != nil {
		return res, fmt.Errorf("filling the table at %d/s: %w (%+v; natgw while re-sending: translated %d, drops %s)", fill, err, last,
			fwd.Load()-fillFwd, formatDrops(verdictDrops(w, &fillDrops)))
	}
	if got := b.flowsActive(uint64(o.Flows)); got != uint64(o.Flows) {
		return res, fmt.Errorf("after phase 1: %d UDP flows active, want %d", got, o.Flows)
	}
	res.TranslatorBytes = w.Translator().MemoryBytes()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBytes = ms.HeapInuse

	// Phase 2: two-way throughput, zero-loss binary search.
	step := time.Duration(o.Step * float64(time.Second))
	var tr trafficResult
	var maxOffered float64
	tputTrial := func(rate uint64) (searchStep, error) {
		var before [nat.NumVerdicts]uint64
		verdictDrops(w, &before)
		created := flowsCreated(w)
		b.worker.maxGap.Store(0)
		polls0, busy0, rx0 := w.Counters.Polls.Load(), w.Counters.BusyPolls.Load(), w.Counters.RxPackets.Load()
		b.onGen(func() { tr = b.eng.traffic(rate, step) })
		polls, busy, rx := w.Counters.Polls.Load()-polls0, w.Counters.BusyPolls.Load()-busy0, w.Counters.RxPackets.Load()-rx0
		maxOffered = max(maxOffered, float64(tr.Out.Offered+tr.In.Offered)/tr.Seconds)
		s := searchStep{Pass: tr.pass(), Offered: tr.Out.Offered + tr.In.Offered, Loss: tr.lost(), Seconds: tr.Seconds, Limited: tr.Limited}
		s.Note = fmt.Sprintf("out %+v, in %+v, natgw drops %s, flows created %d, worker polls %d (%d busy, %.1f frames per busy poll), %s",
			tr.Out, tr.In, formatDrops(verdictDrops(w, &before)), flowsCreated(w)-created, polls, busy,
			float64(rx)/float64(max(busy, 1)), b.diag())
		fmt.Fprintf(stdout, "rfc9693 %d flows: two-way %s pps: pass %v (%s)\n", o.Flows, formatRate(float64(rate)), s.Pass && !s.Limited, s.Note)
		if got := b.flowsActive(uint64(o.Flows)); got != uint64(o.Flows) {
			return s, fmt.Errorf("phase 2 at %d pps: %d UDP flows active, want %d", rate, got, o.Flows)
		}
		return s, nil
	}
	res.Throughput, res.ThroughputSteps, err = binarySearch(max(100_000, o.MaxRate/256), o.MaxRate,
		max(1, uint64(float64(o.MaxRate)*o.Resolution)), tputTrial)
	if err != nil {
		res.GeneratorCeiling = uint64(maxOffered)
		return res, err
	}
	// CSIT's PDR beside the NDR: the highest rate losing at most
	// pdrLoss of the frames offered. On a shared VM the worker's core is
	// sometimes taken for milliseconds, which a zero-loss step cannot
	// absorb; the PDR shows the capacity between such stalls.
	pdrTrial := func(rate uint64) (searchStep, error) {
		s, err := tputTrial(rate)
		s.Pass = s.Offered > 0 && float64(s.Loss) <= pdrLoss*float64(s.Offered) && tr.Out.Bad == 0 && tr.In.Bad == 0
		return s, err
	}
	pdrLo := max(res.Throughput, 100_000, o.MaxRate/256)
	res.PDR, res.PDRSteps, err = binarySearch(pdrLo, o.MaxRate, max(1, uint64(float64(o.MaxRate)*o.Resolution)), pdrTrial)
	res.GeneratorCeiling = uint64(maxOffered)
	if err != nil {
		return res, err
	}
	if o.Latency && res.Throughput > 0 {
		for _, pct := range []int{10, 50, 90} {
			rate := res.Throughput * uint64(pct) / 100
			var row latencyRow
			b.onGen(func() {
				tr = b.eng.traffic(rate, step)
				h := &b.eng.hist
				row = latencyRow{LoadPercent: pct, Rate: rate, Frames: h.total, Lost: tr.lost(),
					P50us: float64(h.percentile(0.5)) / 1e3, P99us: float64(h.percentile(0.99)) / 1e3,
					P999us: float64(h.percentile(0.999)) / 1e3, MaxUs: float64(h.max) / 1e3}
			})
			fmt.Fprintf(stdout, "rfc9693 %d flows: latency at %d %% (%s pps): p50 %.1f us, p99 %.1f us, p99.9 %.1f us, lost %d\n",
				o.Flows, pct, formatRate(float64(rate)), row.P50us, row.P99us, row.P999us, row.Lost)
			res.Latency = append(res.Latency, row)
		}
	}
	if o.Teardown {
		td, err := b.teardownUnderLoad(&res, fill, max(100_000, o.MaxRate/256), step, stdout)
		if err != nil { // the run's other figures stand
			td.Error = err.Error()
			log.Warn("tear-down under load", "error", err)
		}
		res.Teardown = td
	}
	fmt.Fprintf(stdout, "rfc9693 %d flows in a %d-flow table: %s connections/s, %s pps two-way, %d bytes of translator\n",
		o.Flows, o.Capacity, formatRate(float64(res.Connections)), formatRate(float64(res.Throughput)), res.TranslatorBytes)
	return res, nil
}

// start brings up EAL, the rings and their devices, natgw's runtime and
// worker, and the generator's goroutine.
func (b *rfcBench) start(dcfg dpdk.Config, pol *nat.Policy, capacity int, static []lcore.StaticNeighbor, g genFlows) error {
	s, err := dpdk.Start(dcfg)
	if err != nil {
		return err
	}
	b.session = s
	ring := func(name string) (*C.struct_rte_ring, error) {
		r, err := newRing(name)
		if err == nil {
			b.rings = append(b.rings, r)
		}
		return r, err
	}
	names := []string{"A", "B", "C", "D", "natin_mgmt", "natout_mgmt", "genin_spare", "genout_spare"}
	r := map[string]*C.struct_rte_ring{}
	for _, n := range names {
		if r[n], err = ring("natgwbench_" + n); err != nil {
			return err
		}
	}
	open := func(name string, rx, tx0, tx1 *C.struct_rte_ring, side uint8) (*dpdk.Port, error) {
		if err := ringDevice(strings.TrimPrefix(name, "net_ring_"), rx, tx0, tx1); err != nil {
			return nil, err
		}
		p, err := b.session.OpenPort(dpdk.PortOptions{Name: name, Side: side})
		if err != nil {
			return nil, err
		}
		b.ports = append(b.ports, p)
		return p, nil
	}
	natIn, err := open("net_ring_natin", r["A"], r["B"], r["natin_mgmt"], lcore.PortInside)
	if err != nil {
		return err
	}
	natOut, err := open("net_ring_natout", r["C"], r["D"], r["natout_mgmt"], lcore.PortOutside)
	if err != nil {
		return err
	}
	genIn, err := open("net_ring_genin", r["B"], r["A"], r["genin_spare"], lcore.PortInside)
	if err != nil {
		return err
	}
	genOut, err := open("net_ring_genout", r["D"], r["C"], r["genout_spare"], lcore.PortOutside)
	if err != nil {
		return err
	}
	// natgw's ports answer to toNatgwMAC (splitPort.MAC), the address the
	// generator's frames carry.
	inside, outside := newSplitPort("inside", natIn, 1), newSplitPort("outside", natOut, 1)
	inside.SetSource(natIn)
	outside.SetSource(natOut)
	b.policy.Store(pol)
	b.clock = newBenchClock()
	b.rt, err = lcore.NewRuntime(lcore.RuntimeConfig{
		Workers: 1, Ports: [lcore.NumPorts]lcore.Port{inside, outside}, Policy: &b.policy,
		FlowCapacity: capacity, Static: static, Log: b.log, Clock: b.clock.now,
	})
	if err != nil {
		return err
	}
	b.mgr = make(chan struct{})
	go func() { defer close(b.mgr); b.rt.Manager.Run() }()
	deadline := time.Now().Add(10 * time.Second)
	for len(b.rt.Manager.Neighbors()) < len(static) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the management loop published %d of %d static neighbours", len(b.rt.Manager.Neighbors()), len(static))
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.worker = newWorkerLoop(b.rt.Workers[0], b.o.CPU)
	b.worker.start()
	// The generator: its own goroutine, locked to a thread pinned to its
	// CPU, running what onGen hands it.
	b.gen = make(chan func())
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := lcore.PinThread(b.o.GenCPU); err != nil {
			ready <- err
			return
		}
		// SCHED_IDLE: the generator spins on the CPU the management loop,
		// EAL and the Go runtime share; any of their threads that wakes
		// must run at once, or the Go scheduler's hand-offs (a locked
		// goroutine preempted every 10 ms is given its P back by another
		// thread) leave natgw's worker waiting for milliseconds. The
		// generator still has the CPU whenever they sleep.
		ready <- unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0)
		for f := range b.gen {
			f()
			ready <- nil
		}
	}()
	if err := <-ready; err != nil {
		return fmt.Errorf("pinning the generator: %w", err)
	}
	b.genDone = ready
	b.ringByName = r
	b.onGen(func() { b.eng, err = newCEngine("natgwbench_gen", genIn.ID(), genOut.ID(), g, false) })
	return err
}

// diag describes the generator's queues, the mempool and the rings (the
// causes of a refused frame besides natgw itself).
func (b *rfcBench) diag() string {
	gap := b.worker.maxGap.Swap(0)
	return fmt.Sprintf("worker max poll gap %d us, generator out of mbufs for %d frames, mbufs available %d + generator's %d, rings A %d B %d C %d D %d",
		gap/1000, b.eng.NoMbuf, b.session.MbufsAvailable(), b.eng.mbufsAvailable(),
		C.rte_ring_count(b.ringByName["A"]), C.rte_ring_count(b.ringByName["B"]),
		C.rte_ring_count(b.ringByName["C"]), C.rte_ring_count(b.ringByName["D"]))
}

// flowsActive returns the worker's active UDP flows once they are want,
// or what they are after a second (the worker publishes its counters
// between polls, not at once).
func (b *rfcBench) flowsActive(want uint64) uint64 {
	c := &b.rt.Workers[0].Counters
	udp := nat.ProtoIndex(nat.ProtoUDP)
	deadline := time.Now().Add(time.Second)
	for {
		got := c.FlowsActive[udp].Load()
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

// onGen runs f on the generator's thread and waits for it.
func (b *rfcBench) onGen(f func()) {
	b.gen <- f
	<-b.genDone
}

// emptyTable expires every flow (the clock jumps past the UDP idle
// timeout) and waits until the worker has none.
func (b *rfcBench) emptyTable() error {
	w := b.rt.Workers[0]
	udp := nat.ProtoIndex(nat.ProtoUDP)
	if w.Counters.FlowsActive[udp].Load() == 0 {
		return nil
	}
	b.clock.jump(teardownJump(b.policy.Load().Timeouts.UDP))
	deadline := time.Now().Add(2*time.Minute + time.Duration(b.o.Flows/10_000)*time.Second)
	for w.Counters.FlowsActive[udp].Load() != 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d UDP flows still active after the clock jump", w.Counters.FlowsActive[udp].Load())
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// close stops everything: generator, worker, management loop, devices,
// rings, EAL.
func (b *rfcBench) close() {
	if b.gen != nil {
		close(b.gen)
	}
	if b.worker != nil {
		b.worker.pause()
		b.worker.close()
	}
	if b.mgr != nil {
		b.rt.Manager.Stop()
		<-b.mgr
	}
	for _, p := range b.ports {
		if err := p.Close(); err != nil {
			b.log.Warn("closing device", "device", p.Name(), "error", err)
		}
	}
	for _, r := range b.rings {
		C.rte_ring_free(r)
	}
	if b.loop != nil {
		b.loop.close(b.log)
	}
	if b.eng != nil {
		b.eng.close()
	}
	if b.session != nil {
		if err := b.session.Close(); err != nil {
			b.log.Warn("closing the DPDK session", "error", err)
		}
	}
}
