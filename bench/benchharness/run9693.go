//go:build dpdk

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/lcore/dpdk"
)

func init() { subcommands["rfc9693-run"] = cmdRFC9693Run }

// This file is the RFC 9693 method through `natgw run` (issue 20,
// "Scale"): natgw is the real product process, started from the binary
// with a deployment-style configuration (runconfig.go), and read through
// its own metrics. The harness is a second DPDK primary process (its own
// --file-prefix, as natgw's) holding the generator (engine.go) on its own
// CPU; the two are joined by two net_memif devices:
//
//	generator net_memif0 (server) <-- in.sock  --> natgw net_memif0 (client, inside)
//	generator net_memif1 (server) <-- out.sock --> natgw net_memif1 (client, outside)
//
// natgw is the memif client: the client connects when its device starts,
// so natgw can be restarted (each connection trial starts from an empty
// table: natgw's clock can't be jumped from outside, so the table is
// emptied by a restart) and reconnects by itself. memif rings are
// natgw's RX rings: a frame the generator's device can't place is lost,
// as at a NIC natgw does not drain. The ring counts must match: a memif
// client's TX rings are the server's RX queues, so the generator's
// devices are opened for two workers (2 RX, 3 TX queues) to take natgw's
// 2 TX queues (worker and management core) and feed its 1 RX queue; the
// generator uses queue 0 only. Before and after each elementary step the
// harness reads natgw's /metrics, and records natgw's counters beside the
// generator's (natgwview.go).

// runOptions are the rfc9693-run subcommand's flags.
type runOptions struct {
	rfcOptions
	Natgw   string
	Mgmt    string
	SockDir string
	PDR     bool
	Settle  time.Duration
}

// cmdRFC9693Run is the "rfc9693-run" subcommand: one flow count.
func cmdRFC9693Run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rfc9693-run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o runOptions
	fs.StringVar(&o.Natgw, "natgw", "", "natgw binary (built with -tags dpdk)")
	fs.StringVar(&o.Mgmt, "mgmt", "127.0.0.1:19693", "natgw's management endpoint (mgmt.listen, loopback)")
	fs.StringVar(&o.SockDir, "sock-dir", "/run/natgw-bench", "directory of the memif sockets")
	fs.DurationVar(&o.Settle, "settle", time.Second, "wait after natgw is ready before a trial (its start-up work shares the generator's CPU)")
	fs.BoolVar(&o.PDR, "pdr", true, "search the PDR (≤ 0.5 % loss) beside the zero-loss throughput")
	o.register(fs, "rfc9693-run-FLOWS.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Dir == "" || o.Natgw == "" || fs.NArg() != 0 || o.Step <= 0 || o.Flows < 2 || o.Capacity < o.Flows || o.CPU == o.GenCPU || o.StatInterval < 0 {
		return errors.New("usage: benchharness rfc9693-run -natgw BIN -dir WORK [-flows N] [-capacity C >= N] [-step S] [-cpu W] [-gen-cpu G != W] [-mgmt ADDR] [-ring N]")
	}
	if err := checkRing(); err != nil {
		return err
	}
	return o.measure("rfc9693-run-%d.json", stderr, func(log *slog.Logger) (rfcRun, error) { return runRFC9693Natgw(o, log, stdout) })
}

// runBench is one rfc9693-run process: the generator's DPDK session and
// thread, and natgw's process.
type runBench struct {
	o        runOptions
	log      *slog.Logger
	session  *dpdk.Session
	ports    []*dpdk.Port
	gen      chan func()
	genDone  chan error
	eng      *cEngine
	natgw    *natgwProcess
	view     *natgwRunView
	allCPUs  unix.CPUSet
	genPorts [2]*dpdk.Port
	// host is the run's host settings; with WorkerFIFO natgw makes its
	// worker thread SCHED_FIFO (dataplane.worker_priority), checked after
	// each start (checkFIFOWorker).
	host *hostTuning
}

// runRFC9693Natgw measures one flow count through natgw run.
func runRFC9693Natgw(o runOptions, log *slog.Logger, stdout io.Writer) (rfcRun, error) {
	t, err := newTraffic(o.Flows)
	if err != nil {
		return rfcRun{}, err
	}
	t.Capacity = o.Capacity
	g, err := newGenFlows(t, o.Seed)
	if err != nil {
		return rfcRun{}, err
	}
	bin, err := filepath.Abs(o.Natgw)
	if err != nil {
		return rfcRun{}, err
	}
	// Before natgw's configuration is written: with real-time throttling
	// off, natgw runs its worker SCHED_FIFO (dataplane.worker_priority).
	// Restored after natgw is stopped (defers run last first).
	host, restoreHost := tuneHost(o.WorkerFIFO, o.StatInterval, log)
	defer restoreHost()
	rc := runConfig{WorkerCPU: o.CPU, MainLcore: o.Lcores, SocketDir: o.SockDir, MgmtListen: o.Mgmt, Ring: ringSize}
	if host.WorkerFIFO {
		rc.WorkerPriority, host.WorkerPriority = runWorkerPriority, runWorkerPriority
	}
	text, _, err := rc.configTOML(t)
	if err != nil {
		return rfcRun{}, err
	}
	cfgPath := filepath.Join(o.Dir, fmt.Sprintf("rfc9693-run-%d.toml", o.Flows))
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		return rfcRun{}, err
	}
	inSock, outSock := memifSockets(o.SockDir)
	ealArgs := []string{"-l", o.Lcores, "--no-pci", memifVdev(0, "server", inSock, ringSize), memifVdev(1, "server", outSock, ringSize)}
	view := &natgwRunView{Binary: bin, Config: cfgPath, EALArgs: rc.natgwEALArgs()}
	res := rfcRun{Flows: o.Flows, Capacity: o.Capacity, Sources: t.Sources, StepSeconds: o.Step, WorkerCPU: o.CPU,
		GeneratorCPU: o.GenCPU, RingSize: ringSize, EALArgs: ealArgs, Mode: modeNatgwRun, Natgw: view}
	if err := os.MkdirAll(o.SockDir, 0o755); err != nil {
		return res, err
	}
	for _, s := range []string{inSock, outSock} {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, err
		}
	}
	if runtime.GOMAXPROCS(0) < 4 {
		runtime.GOMAXPROCS(4)
	}
	b := &runBench{o: o, log: log, view: view}
	if err := unix.SchedGetaffinity(0, &b.allCPUs); err != nil {
		return res, err
	}
	// The harness's threads stay off natgw's worker CPU; natgw is
	// started from a thread with the whole set (natProcess.start), as
	// its own worker_cpus check wants the CPU allowed.
	if err := lcore.ConfineProcess([]int{o.CPU}); err != nil {
		return res, fmt.Errorf("-cpu %d: %w", o.CPU, err)
	}
	b.natgw = &natgwProcess{bin: bin, config: cfgPath, logPath: filepath.Join(o.Dir, fmt.Sprintf("natgw-run-%d.log", o.Flows)),
		url: "http://" + o.Mgmt, all: b.allCPUs}
	b.host, res.Host = &host, &host
	defer b.close()
	if err := b.start(ealArgs, g); err != nil {
		return res, err
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	// Connection establishment: zero-loss binary search; natgw is
	// restarted before each trial so the table is empty.
	var last connectResult
	connTrial := func(rate uint64) (searchStep, error) {
		if err := b.restart(); err != nil {
			return searchStep{}, err
		}
		return b.connectStep("connections", rate, func() { last = b.eng.connect(rate) }, &last, stdout)
	}
	lo := max(1000, o.MaxCPS/256, uint64(o.Flows)/maxConnSeconds)
	res.Connections, res.ConnectionSteps, err = binarySearch(lo, o.MaxCPS, max(1, uint64(float64(o.MaxCPS)*o.Resolution)), connTrial)
	if err != nil {
		return res, err
	}
	// Phase 1 for the throughput: a fresh natgw, filled at the rate
	// found; natgw's memory before and after.
	fill := max(res.Connections, lo)
	if err := b.restart(); err != nil {
		return res, err
	}
	if err := b.memory("start"); err != nil {
		return res, err
	}
	if _, err := b.connectStep("fill", fill, func() { last = b.eng.connect(fill) }, &last, stdout); err != nil {
		return res, err
	}
	// Each round waits at least fillDrain for late frames (fill.go).
	last, err = fillMissing(last, &b.eng.Drain, func(int) (connectResult, error) {
		r := max(1000, fill/4)
		_, err := b.connectStep("fill (missing)", r, func() { last = b.eng.connectMissing(r) }, &last, stdout)
		return last, err
	})
	if err != nil {
		return res, err
	}
	if err := b.eng.checkLearnt(); err != nil {
		return res, fmt.Errorf("filling the table at %d/s: %w (%+v)", fill, err, last)
	}
	if got, err := b.flowsActive(uint64(o.Flows)); err != nil || got != uint64(o.Flows) {
		return res, errors.Join(err, fmt.Errorf("after phase 1: natgw_flows_active %d, want %d", got, o.Flows))
	}
	if err := b.memory("fill"); err != nil {
		return res, err
	}

	// Phase 2: two-way throughput, zero-loss binary search (and PDR).
	step := time.Duration(o.Step * float64(time.Second))
	var tr trafficResult
	var maxOffered float64
	search := "throughput"
	tputTrial := func(rate uint64) (searchStep, error) {
		before, err := b.natgw.counters()
		if err != nil {
			return searchStep{}, err
		}
		b.onGen(func() { tr = b.eng.traffic(rate, step) })
		after, err := b.natgw.counters()
		if err != nil {
			return searchStep{}, err
		}
		maxOffered = max(maxOffered, float64(tr.Out.Offered+tr.In.Offered)/tr.Seconds)
		s := searchStep{Pass: tr.pass(), Offered: tr.Out.Offered + tr.In.Offered, Loss: tr.lost(), Seconds: tr.Seconds, Limited: tr.Limited}
		ns := natgwStep{Search: search, Rate: rate, Out: tr.Out, In: tr.In, Natgw: after.sub(before)}
		if search == "PDR" {
			s.Pass = s.Offered > 0 && float64(s.Loss) <= pdrLoss*float64(s.Offered) && tr.Out.Bad == 0 && tr.In.Bad == 0
		}
		ns.Pass, ns.Limited = s.Pass && !s.Limited, s.Limited
		ns.Where = ns.where()
		b.view.Steps = append(b.view.Steps, ns)
		s.Note = fmt.Sprintf("out %+v, in %+v; natgw: %s", tr.Out, tr.In, ns.describe())
		fmt.Fprintf(stdout, "rfc9693-run %d flows: %s %s pps: pass %v (%s)\n", o.Flows, search, formatRate(float64(rate)), ns.Pass, s.Note)
		if after.FlowsActive != uint64(o.Flows) {
			return s, fmt.Errorf("phase 2 at %d pps: natgw_flows_active %d, want %d (flows idled out? natgw's udp timeout is its default)",
				rate, after.FlowsActive, o.Flows)
		}
		return s, nil
	}
	res.Throughput, res.ThroughputSteps, err = binarySearch(max(100_000, o.MaxRate/256), o.MaxRate,
		max(1, uint64(float64(o.MaxRate)*o.Resolution)), tputTrial)
	if err != nil {
		res.GeneratorCeiling = uint64(maxOffered)
		return res, err
	}
	if o.PDR {
		search = "PDR"
		pdrLo := max(res.Throughput, 100_000, o.MaxRate/256)
		res.PDR, res.PDRSteps, err = binarySearch(pdrLo, o.MaxRate, max(1, uint64(float64(o.MaxRate)*o.Resolution)), tputTrial)
		if err != nil {
			res.GeneratorCeiling = uint64(maxOffered)
			return res, err
		}
	}
	res.GeneratorCeiling = uint64(maxOffered)
	if o.Latency && res.Throughput > 0 {
		search = "latency"
		for _, pct := range []int{10, 50, 90} {
			rate := res.Throughput * uint64(pct) / 100
			if _, err := tputTrial(rate); err != nil {
				return res, err
			}
			h := &b.eng.hist
			row := latencyRow{LoadPercent: pct, Rate: rate, Frames: h.total, Lost: tr.lost(),
				P50us: float64(h.percentile(0.5)) / 1e3, P99us: float64(h.percentile(0.99)) / 1e3,
				P999us: float64(h.percentile(0.999)) / 1e3, MaxUs: float64(h.max) / 1e3}
			res.Latency = append(res.Latency, row)
		}
	}
	if err := b.memory("end"); err != nil {
		return res, err
	}
	f, err := figures(view.Memory[0], view.Memory[len(view.Memory)-1], o.Capacity)
	if err != nil {
		return res, err
	}
	view.Figures = f
	fmt.Fprintf(stdout, "rfc9693-run %d flows in a %d-flow table (natgw run): %s connections/s, %s pps two-way; "+
		"natgw resident %.1f bytes per live flow, Go heap %.1f bytes per flow of capacity, %d MB of hugepages\n",
		o.Flows, o.Capacity, formatRate(float64(res.Connections)), formatRate(float64(res.Throughput)),
		f.BytesPerLive, f.BytesPerCapacity, f.HugepagesBytes>>20)
	return res, nil
}

// connectStep runs one phase 1 trial (run) with natgw's counters read
// before and after, and records it.
func (b *runBench) connectStep(search string, rate uint64, run func(), last *connectResult, stdout io.Writer) (searchStep, error) {
	before, err := b.natgw.counters()
	if err != nil {
		return searchStep{}, err
	}
	b.onGen(run)
	after, err := b.natgw.counters()
	if err != nil {
		return searchStep{}, err
	}
	l := *last
	s := searchStep{Pass: l.pass(), Offered: l.First.Offered + l.Answer.Offered,
		Loss: l.First.lost() + l.Answer.lost(), Seconds: l.Seconds, Limited: l.Limited}
	ns := natgwStep{Search: search, Rate: rate, Pass: s.Pass && !s.Limited, Limited: s.Limited, Out: l.First, In: l.Answer, Natgw: after.sub(before)}
	ns.Where = ns.where()
	b.view.Steps = append(b.view.Steps, ns)
	s.Note = fmt.Sprintf("established %d/%d, first %+v, answer %+v; natgw: %s", l.Established, l.Flows, l.First, l.Answer, ns.describe())
	fmt.Fprintf(stdout, "rfc9693-run %d flows: %s at %s/s: pass %v (%s)\n", b.o.Flows, search, formatRate(float64(rate)), ns.Pass, s.Note)
	return s, nil
}

// start brings up the generator's EAL and memif server devices, its
// thread and engine, and natgw.
func (b *runBench) start(ealArgs []string, g genFlows) error {
	// Two "workers": the devices get 2 RX queues (natgw's worker and
	// management TX rings land on them) and 3 TX queues (natgw's one RX
	// ring is fed from queue 0; a server's TX queues past the client's
	// RX rings are never used).
	s, err := dpdk.Start(dpdk.Config{EALArgs: ealArgs, Workers: 2, Ports: 2, RxDesc: ringSize, TxDesc: ringSize, Log: b.log})
	if err != nil {
		return err
	}
	b.session = s
	for i, side := range []uint8{lcore.PortInside, lcore.PortOutside} {
		p, err := s.OpenPort(dpdk.PortOptions{Name: fmt.Sprintf("net_memif%d", i), Side: side})
		if err != nil {
			return err
		}
		b.ports = append(b.ports, p)
		b.genPorts[i] = p
	}
	b.gen = make(chan func())
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := lcore.PinThread(b.o.GenCPU); err != nil {
			ready <- err
			return
		}
		// SCHED_IDLE, as in the in-process method (gen_dpdk.go): natgw's
		// management threads share the generator's CPU and must run as
		// soon as they wake.
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
	in, out := b.genPorts[0], b.genPorts[1]
	b.onGen(func() { b.eng, err = newCEngine("natgwbench_gen", in.ID(), out.ID(), g, false) })
	return err
}

// onGen runs f on the generator's thread and waits for it.
func (b *runBench) onGen(f func()) {
	b.gen <- f
	<-b.genDone
}

// restart stops natgw if it runs, starts it, and waits until it is ready
// and both memif links are up.
func (b *runBench) restart() error {
	if err := b.natgw.stop(); err != nil {
		return err
	}
	if err := b.natgw.start(); err != nil {
		return err
	}
	if b.host != nil && b.host.WorkerFIFO {
		if err := b.checkFIFOWorker(); err != nil {
			return err
		}
	}
	b.view.Restarts = b.natgw.starts - 1
	b.view.StartSeconds = b.natgw.startSeconds
	deadline := time.Now().Add(30 * time.Second)
	for !b.genPorts[0].LinkUp() || !b.genPorts[1].LinkUp() {
		if time.Now().After(deadline) {
			return fmt.Errorf("the generator's memif links are not up 30 s after natgw was ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(b.o.Settle)
	return nil
}

// runWorkerPriority is natgw's dataplane.worker_priority in a run with
// -worker-fifo (as the in-process method's worker, priority 1).
const runWorkerPriority = 1

// checkFIFOWorker checks that the worker thread of the natgw just started
// runs SCHED_FIFO at runWorkerPriority, as natgw makes it with
// dataplane.worker_priority: the thread natgw's `worker pinned` line
// names. natgw logs the line before the worker polls, so it is there by
// /readyz; it is waited for (10 s) all the same.
func (b *runBench) checkFIFOWorker() error {
	marker := natgwStartMarker(b.natgw.starts)
	deadline := time.Now().Add(10 * time.Second)
	for {
		text, err := os.ReadFile(b.natgw.logPath)
		if err != nil {
			return err
		}
		tids, err := parseWorkerTIDs(string(text), marker)
		if err != nil {
			return err
		}
		if len(tids) > 0 {
			for _, tid := range tids {
				a, err := unix.SchedGetAttr(tid, 0)
				if err != nil {
					return fmt.Errorf("reading the policy of natgw's worker thread %d: %w", tid, err)
				}
				if a.Policy != unix.SCHED_FIFO || a.Priority != runWorkerPriority {
					return fmt.Errorf("natgw's worker thread %d runs policy %d priority %d, not SCHED_FIFO priority %d (dataplane.worker_priority)",
						tid, a.Policy, a.Priority, runWorkerPriority)
				}
				b.host.FIFOThreads++
			}
			b.log.Info("natgw's worker is SCHED_FIFO", "tids", tids, "priority", runWorkerPriority)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no `worker pinned` line in %s 10 s after natgw was ready (-worker-fifo=false runs without): %s",
				b.natgw.logPath, tailFile(b.natgw.logPath, 10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flowsActive waits (up to 5 s: natgw publishes its counters between
// polls) until natgw_flows_active is want, and returns what it is.
func (b *runBench) flowsActive(want uint64) (uint64, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := b.natgw.counters()
		if err != nil {
			return 0, err
		}
		if c.FlowsActive == want || time.Now().After(deadline) {
			return c.FlowsActive, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memory records natgw's memory at a point of the run.
func (b *runBench) memory(at string) error {
	c, err := b.natgw.counters()
	if err != nil {
		return err
	}
	text, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.natgw.pid()))
	if err != nil {
		return err
	}
	st, err := parseProcStatus(string(text))
	if err != nil {
		return err
	}
	m := natgwMemory{At: at, FlowsActive: c.FlowsActive, VmRSS: st.VmRSS, VmHWM: st.VmHWM, Hugetlb: st.Hugetlb,
		HeapInuse: c.HeapInuse, RSS: c.RSS}
	if free, err := systemFreeHugepages(); err == nil {
		m.SystemHugepagesUsed = b.natgw.freeHugeBefore - free
	}
	b.view.Memory = append(b.view.Memory, m)
	b.log.Info("natgw memory", "at", at, "flows", m.FlowsActive, "vm_rss", m.VmRSS, "hugetlb", m.Hugetlb, "heap_inuse", m.HeapInuse)
	return nil
}

// close stops natgw, the generator and the DPDK session.
func (b *runBench) close() {
	if b.natgw != nil {
		if err := b.natgw.stop(); err != nil {
			b.log.Warn("stopping natgw", "error", err)
		}
	}
	if b.gen != nil {
		close(b.gen)
	}
	for _, p := range b.ports {
		if err := p.Close(); err != nil {
			b.log.Warn("closing device", "device", p.Name(), "error", err)
		}
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

// hugepagesFree is the system's free 2 MB hugepages.
const hugepagesFree = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"

// systemFreeHugepages reads the system's free 2 MB hugepages.
func systemFreeHugepages() (int, error) {
	b, err := os.ReadFile(hugepagesFree)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// natgwProcess is natgw run as a child process.
type natgwProcess struct {
	bin, config, logPath, url string
	// all is the CPU set natgw starts with (the harness's own threads
	// are confined off natgw's worker CPU).
	all            unix.CPUSet
	cmd            *exec.Cmd
	exited         chan error
	starts         int
	startSeconds   float64
	freeHugeBefore int
}

// pid returns natgw's process id (0 when it does not run).
func (p *natgwProcess) pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// start runs natgw run --config and waits for /readyz (ports up, worker
// polling). Its output is appended to logPath.
func (p *natgwProcess) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "%s%s\n", natgwStartMarker(p.starts+1), time.Now().UTC().Format(time.RFC3339Nano))
	if p.freeHugeBefore, err = systemFreeHugepages(); err != nil {
		return err
	}
	cmd := exec.Command(p.bin, "run", "--config", p.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The child inherits the forking thread's CPU mask: fork from a
	// locked thread given the whole set, then confine it again.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var mine unix.CPUSet
		if err := unix.SchedGetaffinity(0, &mine); err != nil {
			errc <- err
			return
		}
		if err := unix.SchedSetaffinity(0, &p.all); err != nil {
			errc <- err
			return
		}
		err := cmd.Start()
		errc <- errors.Join(err, unix.SchedSetaffinity(0, &mine))
	}()
	t0 := time.Now()
	if err := <-errc; err != nil {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		return fmt.Errorf("starting %s: %w", p.bin, err)
	}
	p.cmd, p.starts = cmd, p.starts+1
	p.exited = make(chan error, 1)
	go func() { p.exited <- cmd.Wait() }()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := t0.Add(2 * time.Minute)
	for {
		select {
		case err := <-p.exited:
			p.cmd = nil
			return fmt.Errorf("natgw exited before it was ready (%v): %s", err, tailFile(p.logPath, 15))
		default:
		}
		if resp, err := client.Get(p.url + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.startSeconds = time.Since(t0).Seconds()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natgw not ready at %s/readyz after 2 minutes: %s", p.url, tailFile(p.logPath, 15))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends natgw SIGTERM (a clean stop: its memif devices disconnect)
// and waits for it, killing it after a minute.
func (p *natgwProcess) stop() error {
	if p.cmd == nil {
		return nil
	}
	defer func() { p.cmd = nil }()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping natgw: %w", err)
	}
	select {
	case err := <-p.exited:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return err
		}
		if err != nil {
			return fmt.Errorf("natgw stopped with %v: %s", err, tailFile(p.logPath, 10))
		}
		return nil
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("natgw did not stop within a minute of SIGTERM: killed")
	}
}

// counters reads natgw's /metrics.
func (p *natgwProcess) counters() (natgwCounters, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(p.url + "/metrics")
	if err != nil {
		return natgwCounters{}, fmt.Errorf("reading natgw's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return natgwCounters{}, fmt.Errorf("natgw's /metrics: %s", resp.Status)
	}
	s, err := parsePrometheus(resp.Body)
	if err != nil {
		return natgwCounters{}, err
	}
	return countersFrom(s), nil
}

// tailFile returns the last n lines of a file, joined by " | ".
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
