//go:build dpdk

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/lcore/dpdk"
	"github.com/natgw/natgw/mgmt"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
	"github.com/natgw/natgw/natlog"
)

func init() { subcommands["natgw"] = cmdNatgw }

// Sizing of the packet mempool. net_pcap with infinite_rx keeps every
// frame of its pcap in an mbuf of the queue's mempool — natgw's — so the
// mempool must hold a whole pcap plus natgw's working set.
const (
	// mbufReserve is what natgw's queues, stashes, descriptor pools and
	// lcore caches may hold besides the pcap's frames.
	mbufReserve = 6144
	// maxDesc is the largest ring size a uint16 descriptor count allows.
	maxDesc = 65535
)

// natgwOptions are the natgw subcommand's flags.
type natgwOptions struct {
	Flows      int
	Dir        string
	Warmup     int
	Duration   int
	CPU        int
	Lcores     string
	CPUProfile bool
	Seed       uint64
	Out        string
	// SessionLog runs with NAT session logging on (sessionlog.go).
	SessionLog bool
	// Capacity, when above 0, is the flow table's capacity instead of
	// traffic.flowCapacity (a table sized for a peak, not the flows).
	Capacity int
}

// cmdNatgw is the "natgw" subcommand: one flow count, outbound then
// inbound.
func cmdNatgw(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natgw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o natgwOptions
	fs.IntVar(&o.Flows, "flows", 1000, "established flows (and frames in the pcap)")
	fs.StringVar(&o.Dir, "dir", "", "work directory for pcaps, configuration and results")
	fs.IntVar(&o.Warmup, "warmup", 2, "seconds of traffic after the flows exist, before measuring")
	fs.IntVar(&o.Duration, "duration", 10, "seconds measured per direction")
	fs.IntVar(&o.CPU, "cpu", 1, "CPU the worker thread is pinned to (-1: not pinned)")
	fs.StringVar(&o.Lcores, "l", "0", "EAL -l (main lcore; keep it off the worker's CPU)")
	fs.BoolVar(&o.CPUProfile, "cpuprofile", false, "write a CPU profile of each measured interval to the work directory")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the pcap's frame order")
	fs.StringVar(&o.Out, "o", "", "result file (default DIR/natgw-FLOWS.json)")
	fs.BoolVar(&o.SessionLog, "session-log", false, "export NAT session events (IPFIX to a sink on the loopback) while measuring")
	fs.IntVar(&o.Capacity, "capacity", 0, "flow table capacity (default: twice the flows, at least 1024)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Dir == "" || fs.NArg() != 0 || o.Warmup < 0 || o.Duration < 1 {
		return errors.New("usage: benchharness natgw -dir WORK [-flows K] [-duration S] [-warmup S] [-cpu N]")
	}
	if o.Out == "" {
		o.Out = filepath.Join(o.Dir, fmt.Sprintf("natgw-%d.json", o.Flows))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	res, err := runNatgw(o, log)
	if err != nil {
		return err
	}
	for _, ph := range res.Phases {
		fmt.Fprintf(stdout, "natgw %d flows %s: %.2f Mpps (drops: %s)\n", res.Flows, ph.Direction, ph.Mpps, formatDrops(ph.Drops))
	}
	if sl := res.SessionLog; sl != nil {
		fmt.Fprintf(stdout, "natgw %d flows session logging: %d records exported, %d dropped by the worker ring, %d by the exporter queue, %d send errors\n",
			res.Flows, sl.Records, sl.WorkerDropped, sl.QueueDropped, sl.Errors)
	}
	if e := res.Establishment; e != nil {
		fmt.Fprintf(stdout, "natgw %d flows establishment: %s flows/s at least (%.6f s, up to %.6f s of it sampling uncertainty)%s\n", res.Flows, formatRate(e.FlowsPerSecond),
			e.Seconds, e.UncertaintySeconds, errorSuffix(e.Error))
	}
	if t := res.Teardown; t != nil {
		fmt.Fprintf(stdout, "natgw %d flows tear-down: %s flows/s (T_N %.6f s, T_0 %.6f s)%s\n", res.Flows, formatRate(t.FlowsPerSecond),
			t.FullSeconds, t.EmptySeconds, errorSuffix(t.Error))
	}
	return writeJSON(o.Out, res)
}

// runNatgw runs both phases of one flow count.
func runNatgw(o natgwOptions, log *slog.Logger) (natgwRun, error) {
	t, err := newTraffic(o.Flows)
	if err != nil {
		return natgwRun{}, err
	}
	paths := pcapPaths{
		Out:   filepath.Join(o.Dir, fmt.Sprintf("out-%d.pcap", o.Flows)),
		In:    filepath.Join(o.Dir, fmt.Sprintf("in-%d.pcap", o.Flows)),
		Spare: spareName(filepath.Join(o.Dir, "x")),
	}
	if err := writeTrafficPcaps(t, paths, o.Seed); err != nil {
		return natgwRun{}, err
	}
	ealArgs := []string{"-l", o.Lcores, "--no-pci",
		"--vdev=" + pcapVdev("net_pcap0", paths.Out, paths.Spare),
		"--vdev=" + pcapVdev("net_pcap1", paths.In, paths.Spare),
		"--vdev=net_null0,no-rx=1", "--vdev=net_null1,no-rx=1"}
	text := t.configTOML("net_pcap0", "net_null0", ealArgs)
	var sl *sessionLog
	if o.SessionLog {
		var section string
		if sl, section, err = startSessionLog(); err != nil {
			return natgwRun{}, err
		}
		text += section
	}
	if o.Capacity > 0 {
		text = strings.Replace(text, fmt.Sprintf("flow_capacity = %d\n", t.flowCapacity()), fmt.Sprintf("flow_capacity = %d\n", o.Capacity), 1)
	}
	cfg, err := config.Parse([]byte(text), "benchmark configuration")
	if err != nil {
		return natgwRun{}, err
	}
	if o.Capacity > 0 && cfg.Dataplane.FlowCapacity != o.Capacity {
		return natgwRun{}, fmt.Errorf("-capacity %d: the configuration has flow_capacity %d", o.Capacity, cfg.Dataplane.FlowCapacity)
	}
	name := fmt.Sprintf("natgw-%d.toml", o.Flows)
	if o.SessionLog {
		name = fmt.Sprintf("sessionlog-%d.toml", o.Flows)
	}
	if err := os.WriteFile(filepath.Join(o.Dir, name), []byte(text), 0o644); err != nil {
		return natgwRun{}, err
	}
	pol, err := mgmt.CompilePolicy(cfg, nil)
	if err != nil {
		return natgwRun{}, err
	}
	static, err := staticNeighbors(cfg)
	if err != nil {
		return natgwRun{}, err
	}
	dcfg := mempoolConfig(o.Flows + mbufReserve)
	dcfg.EALArgs, dcfg.Workers, dcfg.Log = ealArgs, 1, log
	res := natgwRun{
		Flows: o.Flows, Sources: t.Sources, PoolMembers: t.poolMembers(), FlowCapacity: cfg.Dataplane.FlowCapacity,
		Burst: lcore.Burst, Warmup: o.Warmup, Duration: o.Duration, EALArgs: ealArgs, WorkerCPU: o.CPU, Pcaps: paths,
		Mbufs: mempoolSizeOf(dcfg),
	}
	// The worker spins on one thread; the management loop, the sampling
	// and Go's runtime need another.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	// As natgw does with dataplane.worker_cpus: every other thread of the
	// process (the management loop, the sampler, the Go runtime, DPDK's
	// control threads, created by EAL after this) keeps off the worker's
	// CPU, so it does not preempt the worker.
	if o.CPU >= 0 {
		if err := lcore.ConfineProcess([]int{o.CPU}); err != nil {
			return natgwRun{}, fmt.Errorf("-cpu %d: %w", o.CPU, err)
		}
	}
	b := &bench{opts: o, log: log, traffic: t, sessionLog: sl}
	if sl != nil {
		b.sessionCfg = natlog.ConfigFrom(cfg.NatLog, "benchharness")
		defer func() { res.SessionLog = sl.result(b.rt) }()
	}
	defer b.close()
	if err := b.start(dcfg, pol, cfg.Dataplane.FlowCapacity, static); err != nil {
		return res, err
	}
	out, setup, est, err := b.outbound()
	res.Establishment = est
	if err != nil {
		return res, err
	}
	res.FlowSetupSeconds = setup.Seconds()
	res.TranslatorBytes = b.rt.Workers[0].Translator().MemoryBytes()
	res.Phases = append(res.Phases, out)
	if err := b.writeReplies(paths.In); err != nil {
		return res, err
	}
	in, err := b.inbound()
	if err != nil {
		return res, err
	}
	res.Phases = append(res.Phases, in)
	res.Teardown, err = b.teardown()
	return res, err
}

// errorSuffix formats a measurement's error for a result line.
func errorSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": error: " + e
}

// mempoolConfig returns a driver configuration whose mempool holds at
// least need mbufs. dpdk.Config has no mbuf count of its own: the
// mempool is sized from ports, workers and ring sizes (MempoolSize), so
// a larger one is asked for with the largest rings (net_pcap and net_null
// ignore ring sizes) and, beyond that, more ports sharing the mempool.
func mempoolConfig(need int) dpdk.Config {
	c := dpdk.Config{Ports: 2, Workers: 1, RxDesc: dpdk.DefaultRxDesc, TxDesc: dpdk.DefaultTxDesc}
	if dpdk.MempoolSize(c.Ports, 1, c.RxDesc, c.TxDesc) >= need {
		return c
	}
	c.RxDesc, c.TxDesc = maxDesc, maxDesc
	for dpdk.MempoolSize(c.Ports, 1, maxDesc, maxDesc) < need {
		c.Ports++
	}
	return c
}

// mempoolSizeOf returns the mbufs of the mempool a configuration gets.
func mempoolSizeOf(c dpdk.Config) int {
	return dpdk.MempoolSize(c.Ports, c.Workers, c.RxDesc, c.TxDesc)
}

// writeTrafficPcaps writes the outbound pcap (every flow once, in a fixed
// pseudo-random order), the spare one-frame pcap and a placeholder for
// the replies with as many frames as there are flows: net_pcap opens
// every rx_pcap file when EAL probes the vdevs, before any flow exists;
// it counts the frames of the file it opened when natgw opens the port
// and then reopens the file by name to load them (pcap_ethdev.c,
// count_packets_in_pcap), so writeReplies renames the real replies over
// the placeholder before the reply device is opened, and the counts
// match.
func writeTrafficPcaps(t traffic, p pcapPaths, seed uint64) error {
	buf := make([]byte, frameLen)
	if _, err := writePcapFile(p.Spare, func(yield func([]byte) bool) {
		yield(outboundFrame(buf, t.flow(0)))
	}); err != nil {
		return err
	}
	order := t.order(seed)
	if _, err := writePcapFile(p.Out, func(yield func([]byte) bool) {
		for _, i := range order {
			if !yield(outboundFrame(buf, t.flow(i))) {
				return
			}
		}
	}); err != nil {
		return err
	}
	_, err := writePcapFile(p.In, func(yield func([]byte) bool) {
		f := outboundFrame(buf, t.flow(0))
		for range t.Flows {
			if !yield(f) {
				return
			}
		}
	})
	return err
}

// bench is one natgw benchmark process: the DPDK session, the devices,
// the runtime and the worker loop.
type bench struct {
	opts    natgwOptions
	log     *slog.Logger
	traffic traffic
	session *dpdk.Session
	devs    map[string]*dpdk.Port
	inside  *splitPort
	outside *splitPort
	policy  nat.PolicyHolder
	rt      *lcore.Runtime
	mgr     chan struct{}
	worker  *workerLoop
	// clock is the runtime's dataplane clock, which teardown moves.
	clock *benchClock
	// sessionLog, when set, exports the session events (-session-log)
	// with sessionCfg.
	sessionLog *sessionLog
	sessionCfg natlog.ExporterConfig
}

// start brings up EAL, the source and sink devices, the runtime's
// management loop and the worker loop (paused).
func (b *bench) start(dcfg dpdk.Config, pol *nat.Policy, capacity int, static []lcore.StaticNeighbor) error {
	s, err := dpdk.Start(dcfg)
	if err != nil {
		return err
	}
	b.session = s
	b.devs = map[string]*dpdk.Port{}
	for _, d := range []struct {
		name string
		side uint8
	}{{"net_pcap0", lcore.PortInside}, {"net_null0", lcore.PortOutside}, {"net_null1", lcore.PortInside}} {
		if err := b.open(d.name, d.side); err != nil {
			return err
		}
	}
	b.inside = newSplitPort("inside", b.devs["net_null1"], 1)
	b.outside = newSplitPort("outside", b.devs["net_null0"], 1)
	if err := errors.Join(b.inside.check(), b.outside.check()); err != nil {
		return err
	}
	b.inside.SetSource(b.devs["net_pcap0"])
	b.policy.Store(pol)
	b.clock = newBenchClock()
	b.rt, err = lcore.NewRuntime(lcore.RuntimeConfig{
		Workers: 1, Ports: [lcore.NumPorts]lcore.Port{b.inside, b.outside}, Policy: &b.policy,
		FlowCapacity: capacity, Static: static, Log: b.log, Clock: b.clock.now,
	})
	if err != nil {
		return err
	}
	if b.sessionLog != nil {
		if err := b.sessionLog.wire(b.rt, b.sessionCfg, b.log); err != nil {
			return err
		}
	}
	b.mgr = make(chan struct{})
	go func() { defer close(b.mgr); b.rt.Manager.Run() }()
	// The workers must see the static neighbours before the first frame,
	// or the first frames are dropped while the gateway is "resolved".
	deadline := time.Now().Add(10 * time.Second)
	for len(b.rt.Manager.Neighbors()) < len(static) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the management loop published %d of %d static neighbours", len(b.rt.Manager.Neighbors()), len(static))
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.worker = newWorkerLoop(b.rt.Workers[0], b.opts.CPU)
	return nil
}

// open opens a device and remembers it.
func (b *bench) open(name string, side uint8) error {
	p, err := b.session.OpenPort(dpdk.PortOptions{Name: name, Side: side})
	if err != nil {
		return err
	}
	b.devs[name] = p
	return nil
}

// closeDev closes a device the worker no longer uses.
func (b *bench) closeDev(name string) error {
	p, ok := b.devs[name]
	if !ok {
		return nil
	}
	delete(b.devs, name)
	return p.Close()
}

// close stops everything in order: worker, management loop, devices, EAL.
func (b *bench) close() {
	if b.worker != nil {
		b.worker.pause()
		b.worker.close()
	}
	if b.mgr != nil {
		b.rt.Manager.Stop()
		<-b.mgr
	}
	for name := range b.devs {
		if err := b.closeDev(name); err != nil {
			b.log.Warn("closing device", "device", name, "error", err)
		}
	}
	if b.session != nil {
		if err := b.session.Close(); err != nil {
			b.log.Warn("closing the DPDK session", "error", err)
		}
	}
}

// outbound runs the outbound phase: the first pass over the pcap creates
// the flows (the connection establishment measurement), then warm-up,
// then the measured interval. A failed establishment check is reported in
// the establishResult, not as an error: the throughput is still measured.
func (b *bench) outbound() (phaseResult, time.Duration, *establishResult, error) {
	w := b.rt.Workers[0]
	want := uint64(b.traffic.Flows)
	var before [nat.NumVerdicts]uint64
	verdictDrops(w, &before)
	samples := make([]flowSample, 0, 4096)
	start := time.Now()
	samples = append(samples, flowSample{Created: flowsCreated(w)})
	b.worker.start()
	deadline := start.Add(2*time.Minute + time.Duration(b.traffic.Flows/100_000)*time.Second)
	for samples[len(samples)-1].Created < want {
		if time.Now().After(deadline) {
			return phaseResult{}, 0, nil, fmt.Errorf("outbound: %d of %d flows created after %s (drops: %s)",
				flowsCreated(w), want, time.Since(start).Round(time.Second), formatDrops(verdictDrops(w, nil)))
		}
		time.Sleep(time.Millisecond)
		n := flowsCreated(w)
		samples = append(samples, flowSample{At: time.Since(start), Created: n})
	}
	drops := verdictDrops(w, &before)
	setup := samples[len(samples)-1].At
	est, err := establishment(samples, want, drops)
	if err != nil {
		est.Error = err.Error()
		b.log.Warn("connection establishment rate", "error", err)
	}
	time.Sleep(time.Duration(b.opts.Warmup) * time.Second)
	ph, err := b.measure("out", nat.DirOut)
	b.worker.pause()
	b.inside.SetSource(nil)
	if err != nil {
		return ph, setup, &est, err
	}
	if got := w.Counters.FlowsActive[nat.ProtoIndex(nat.ProtoUDP)].Load(); got != want {
		return ph, setup, &est, fmt.Errorf("outbound: %d UDP flows active, want %d", got, want)
	}
	return ph, setup, &est, nil
}

// writeReplies writes the reply to every flow of the (stopped) worker's
// table, in a fixed pseudo-random order, over the placeholder pcap.
func (b *bench) writeReplies(path string) error {
	w := b.rt.Workers[0]
	flows := make([]nat.Flow, 0, b.traffic.Flows)
	w.Translator().Flows().Range(func(_ uint32, f *nat.Flow) bool {
		flows = append(flows, *f)
		return true
	})
	if len(flows) != b.traffic.Flows {
		return fmt.Errorf("flow table holds %d flows, want %d (the reply pcap must have as many frames as the placeholder)",
			len(flows), b.traffic.Flows)
	}
	rng := rand.New(rand.NewPCG(b.opts.Seed, 0x7265706c))
	rng.Shuffle(len(flows), func(i, j int) { flows[i], flows[j] = flows[j], flows[i] })
	buf := make([]byte, frameLen)
	n, err := writePcapFile(path, func(yield func([]byte) bool) {
		for i := range flows {
			if !yield(replyFrame(buf, &flows[i])) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if n != len(flows) {
		return fmt.Errorf("wrote %d reply frames of %d", n, len(flows))
	}
	return nil
}

// inbound frees the outbound source's frames, opens the reply source and
// measures the inbound direction.
func (b *bench) inbound() (phaseResult, error) {
	if err := b.closeDev("net_pcap0"); err != nil {
		return phaseResult{}, err
	}
	if err := b.open("net_pcap1", lcore.PortOutside); err != nil {
		return phaseResult{}, fmt.Errorf("opening the reply source: %w", err)
	}
	b.outside.SetSource(b.devs["net_pcap1"])
	w := b.rt.Workers[0]
	b.worker.start()
	// One full pass over the replies, then the warm-up.
	deadline := time.Now().Add(2 * time.Minute)
	for w.Counters.RxPackets.Load() < 2*uint64(b.traffic.Flows) {
		if time.Now().After(deadline) {
			return phaseResult{}, errors.New("inbound: the reply source delivered less than one pass in 2 minutes")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Duration(b.opts.Warmup) * time.Second)
	ph, err := b.measure("in", nat.DirIn)
	b.worker.pause()
	b.outside.SetSource(nil)
	if err != nil {
		return ph, err
	}
	if ph.Drops[nat.DropNoFlow.String()] > 0 {
		return ph, fmt.Errorf("inbound: %d replies matched no flow: the reply pcap does not match the flow table", ph.Drops[nat.DropNoFlow.String()])
	}
	return ph, nil
}

// teardown measures the connection tear-down rate on the table the
// inbound phase left (worker paused, no source attached): the worker
// polls the idle ports, the clock jumps past the UDP idle timeout and the
// worker expires every flow (T_N); then the same on the empty table
// (T_0). A rate that cannot be computed is reported in the result; a
// wrong expiry count or a worker that does not expire is an error.
func (b *bench) teardown() (*teardownResult, error) {
	w := b.rt.Workers[0]
	c := &w.Counters
	udp := nat.ProtoIndex(nat.ProtoUDP)
	n := uint64(b.traffic.Flows)
	if got := c.FlowsActive[udp].Load(); got != n {
		return nil, fmt.Errorf("tear-down: %d UDP flows active before, want %d", got, n)
	}
	jump := teardownJump(b.policy.Load().Timeouts.UDP)
	res := &teardownResult{Flows: n, JumpMs: uint32(jump)}
	expired0 := c.FlowsExpired[nat.ExpireIdle].Load()
	b.worker.start()
	defer b.worker.pause()
	// Let the worker settle into polling idle ports before the jump.
	if err := b.waitPolls(c.Polls.Load() + 1000); err != nil {
		return res, err
	}
	tN, polls, err := b.expireAll(jump, 2*time.Minute+time.Duration(n/10_000)*time.Second)
	if err != nil {
		return res, fmt.Errorf("tear-down of %d flows: %w", n, err)
	}
	t0, _, err := b.expireAll(jump, 10*time.Second)
	if err != nil {
		return res, fmt.Errorf("tear-down on the empty table: %w", err)
	}
	res.FullSeconds, res.EmptySeconds, res.Polls = tN.Seconds(), t0.Seconds(), polls
	res.ExpiredIdle = c.FlowsExpired[nat.ExpireIdle].Load() - expired0
	if res.ExpiredIdle != n {
		return res, fmt.Errorf("tear-down: %d flows expired idle, want %d", res.ExpiredIdle, n)
	}
	if res.FlowsPerSecond, err = teardownRate(n, tN, t0); err != nil {
		res.Error = err.Error()
		b.log.Warn("connection tear-down rate", "error", err)
	}
	return res, nil
}

// expireAll jumps the clock forward by jump, waits until the management
// core has published the jumped expiry tick (T start) and returns the time
// from then until the worker has published a poll that started after T
// start and shows no active UDP flow, with the worker's polls in between.
// It spins (yielding) to time to the microsecond; the worker polls on its
// own core.
func (b *bench) expireAll(jump nat.Tick, limit time.Duration) (time.Duration, uint64, error) {
	w := b.rt.Workers[0]
	c := &w.Counters
	udp := nat.ProtoIndex(nat.ProtoUDP)
	target := b.clock.jump(jump)
	deadline := time.Now().Add(10 * time.Second)
	for !tickReached(nat.Tick(b.rt.Manager.ExpireNow.Load()), target) {
		if time.Now().After(deadline) {
			return 0, 0, errors.New("the management core did not publish the jumped expiry tick in 10 s")
		}
		runtime.Gosched()
	}
	start := time.Now()
	// The poll under way at start may have read the old expiry tick; the
	// next one has read the new one and publishes the count after it.
	p0 := c.Polls.Load()
	deadline = start.Add(limit)
	for {
		now := time.Now()
		if c.FlowsActive[udp].Load() == 0 && c.Polls.Load() >= p0+2 {
			return now.Sub(start), c.Polls.Load() - p0, nil
		}
		if now.After(deadline) {
			return 0, 0, fmt.Errorf("%d UDP flows still active %s after the clock jump", c.FlowsActive[udp].Load(), limit)
		}
		runtime.Gosched()
	}
}

// waitPolls waits until the worker has published at least polls polls.
func (b *bench) waitPolls(polls uint64) error {
	c := &b.rt.Workers[0].Counters
	deadline := time.Now().Add(10 * time.Second)
	for c.Polls.Load() < polls {
		if time.Now().After(deadline) {
			return fmt.Errorf("the worker published %d polls of %d in 10 s", c.Polls.Load(), polls)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// measure samples the worker's counters once a second for the configured
// duration and returns the direction's rate.
func (b *bench) measure(name string, dir int) (phaseResult, error) {
	w := b.rt.Workers[0]
	c := &w.Counters
	if b.opts.CPUProfile {
		f, err := os.Create(filepath.Join(b.opts.Dir, fmt.Sprintf("natgw-%d-%s.pprof", b.traffic.Flows, name)))
		if err != nil {
			return phaseResult{}, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return phaseResult{}, err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var before [nat.NumVerdicts]uint64
	verdictDrops(w, &before)
	b.worker.maxGap.Store(0)
	gaps0 := b.worker.gapCounts()
	t0, p0, rx0 := time.Now(), c.Packets[dir].Load(), c.RxPackets.Load()
	ph := phaseResult{Direction: name}
	tPrev, pPrev := t0, p0
	for i := 0; i < b.opts.Duration; i++ {
		time.Sleep(time.Until(t0.Add(time.Duration(i+1) * time.Second)))
		t, p := time.Now(), c.Packets[dir].Load()
		ph.Samples = append(ph.Samples, float64(p-pPrev)/t.Sub(tPrev).Seconds()/1e6)
		tPrev, pPrev = t, p
	}
	ph.Packets, ph.Seconds, ph.RxPackets = pPrev-p0, tPrev.Sub(t0).Seconds(), c.RxPackets.Load()-rx0
	ph.Mpps = float64(ph.Packets) / ph.Seconds / 1e6
	ph.MaxPollGapUs = float64(b.worker.maxGap.Load()) / 1e3
	gaps := b.worker.gapCounts()
	ph.PollGapsOver100us, ph.PollGapsOver1ms, ph.PollGapsOver10ms = gaps[0]-gaps0[0], gaps[1]-gaps0[1], gaps[2]-gaps0[2]
	ph.Drops = verdictDrops(w, &before)
	ph.FlowsActive = c.FlowsActive[nat.ProtoIndex(nat.ProtoUDP)].Load()
	if ph.Packets == 0 {
		return ph, fmt.Errorf("%s: no packet translated in %d s (drops: %s)", name, b.opts.Duration, formatDrops(ph.Drops))
	}
	return ph, nil
}

// flowsCreated returns the worker's created flows, all protocols.
func flowsCreated(w *lcore.Worker) uint64 {
	var n uint64
	for i := range w.Counters.FlowsCreated {
		n += w.Counters.FlowsCreated[i].Load()
	}
	return n
}

// verdictDrops returns the worker's drops by reason since before (all
// drops when before is nil) and stores the current counts in before.
func verdictDrops(w *lcore.Worker, before *[nat.NumVerdicts]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for v := nat.Verdict(0); v < nat.NumVerdicts; v++ {
		n := w.Counters.Verdicts[v].Load()
		d := n
		if before != nil {
			d = n - before[v]
			before[v] = n
		}
		if v.IsDrop() && d > 0 {
			out[v.String()] = d
		}
	}
	return out
}

// pollGapLimits are the thresholds of the poll-gap counts, in ns, in the
// order of phaseResult's PollGapsOver fields (report.go).
var pollGapLimits = [3]int64{100_000, 1_000_000, 10_000_000}

// workerLoop runs a worker's PollOnce on one goroutine, locked to its OS
// thread and pinned to a CPU, in phases: Worker.Run's loop (with
// IdleWait 0, as natgw runs DPDK workers), which can be paused so the
// harness can read the flow table and switch sources, and resumed on the
// same thread (so the thread registered with EAL keeps its lcore id and
// mempool cache). Worker.Stop is final, hence this loop instead of
// Runtime.Start.
type workerLoop struct {
	w    *lcore.Worker
	stop atomic.Bool
	// maxGap is the longest time (ns) between the starts of two
	// successive polls since the harness last reset it to 0.
	maxGap atomic.Int64
	// gapsOver[i] counts the gaps between two polls longer than
	// pollGapLimits[i]; it only grows (readers subtract a snapshot).
	gapsOver [len(pollGapLimits)]atomic.Uint64
	run      chan struct{}
	paused   chan struct{}
	active   bool
}

func newWorkerLoop(w *lcore.Worker, cpu int) *workerLoop {
	l := &workerLoop{w: w, run: make(chan struct{}), paused: make(chan struct{})}
	go l.loop(cpu)
	return l
}

func (l *workerLoop) loop(cpu int) {
	// The goroutine ends locked: its pinned thread exits with it.
	runtime.LockOSThread()
	if cpu >= 0 {
		if err := lcore.PinThread(cpu); err != nil {
			slog.Warn("pinning the worker thread", "cpu", cpu, "error", err)
		}
		if workerFIFO {
			if err := setFIFO(); err != nil {
				slog.Warn("the worker thread keeps the normal scheduling policy", "error", err)
			}
		}
	}
	for range l.run {
		last := time.Now()
		for !l.stop.Load() {
			l.w.PollOnce()
			now := time.Now()
			gap := int64(now.Sub(last))
			if gap > l.maxGap.Load() {
				l.maxGap.Store(gap)
			}
			if gap > pollGapLimits[0] {
				l.countGap(gap)
			}
			last = now
		}
		l.paused <- struct{}{}
	}
}

// countGap counts a long gap in every limit it exceeds (worker goroutine).
func (l *workerLoop) countGap(gap int64) {
	for i, limit := range pollGapLimits {
		if gap > limit {
			l.gapsOver[i].Add(1)
		}
	}
}

// gapCounts returns the poll-gap counts so far, in pollGapLimits' order.
func (l *workerLoop) gapCounts() [len(pollGapLimits)]uint64 {
	var c [len(pollGapLimits)]uint64
	for i := range c {
		c[i] = l.gapsOver[i].Load()
	}
	return c
}

// start resumes polling.
func (l *workerLoop) start() {
	l.stop.Store(false)
	l.run <- struct{}{}
	l.active = true
}

// pause stops polling and waits until the worker is between polls.
func (l *workerLoop) pause() {
	if !l.active {
		return
	}
	l.stop.Store(true)
	<-l.paused
	l.active = false
}

// close ends the loop's goroutine (paused first).
func (l *workerLoop) close() { close(l.run) }
