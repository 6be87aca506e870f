package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/natgw/natgw/attrib"
	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/mgmt"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// drivers maps each dataplane.driver built into this binary to the function
// that opens a configuration's inside and outside ports, with one queue per
// worker plus the management queue. Each driver registers itself from an
// init function (driver_afpacket.go; driver_dpdk.go, built with the dpdk
// tag); startAppliance reports a driver that is not built in as an error
// that names the drivers that are.
var drivers = map[string]func(c *config.Config) ([lcore.NumPorts]lcore.Port, error){}

// cmdRun runs the appliance in the foreground until SIGINT or SIGTERM;
// SIGHUP reloads the configuration file.
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (TOML)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *path == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: natgw run --config FILE")
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	defer signal.Stop(term)
	if err := runAppliance(ctx, *path, log, hup, term); err != nil {
		log.Error("natgw stopped", "error", err)
		return exitFail
	}
	return exitOK
}

// appliance is a running natgw: configuration, policy, ports, dataplane.
type appliance struct {
	path    string
	log     *slog.Logger
	policy  nat.PolicyHolder
	ports   [lcore.NumPorts]lcore.Port
	rt      *lcore.Runtime
	started time.Time
	// reloader applies the configuration file again (SIGHUP and the API).
	reloader *mgmt.Reloader
	// api is the management server (nil when it is not started).
	api *mgmt.Server
	// natlog is NAT event logging (app/natlog.go).
	natlog *natLog
	// history is the attribution history (nil without nat_log.history).
	history *attrib.Store
	// bgp announces the node ([bgp]; nil without it). drained is closed
	// when a drain is done.
	bgp       atomic.Pointer[bgpNode]
	drained   chan struct{}
	drainOnce sync.Once
}

// runAppliance loads the configuration, starts the dataplane and runs until
// ctx is done; a value on reload re-reads the configuration. A value on
// term stops it, or drains the node first when bgp.drain_on_sigterm is
// set (a second one stops it at once).
func runAppliance(ctx context.Context, path string, log *slog.Logger, reload, term <-chan os.Signal) error {
	a, err := startAppliance(path, log)
	if err != nil {
		return err
	}
	defer a.close()
	stats := time.NewTicker(10 * time.Second)
	defer stats.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return nil
		case <-reload:
			a.reload() // the reloader logs the outcome
		case <-term:
			if n := a.bgp.Load(); n != nil && n.conf.DrainOnSIGTERM && !a.draining() {
				log.Info("SIGTERM: draining (bgp.drain_on_sigterm); a second SIGTERM stops at once")
				if err := a.startDrain(); err == nil {
					continue
				}
			}
			log.Info("stopping")
			return nil
		case <-a.drained:
			log.Info("drained: stopping")
			return nil
		case <-stats.C:
			a.logStats()
		}
	}
}

func startAppliance(path string, log *slog.Logger) (*appliance, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	var token string
	if c.Mgmt.TokenFile != "" {
		if token, err = mgmt.ReadToken(c.Mgmt.TokenFile); err != nil {
			return nil, err
		}
	}
	p, err := mgmt.CompilePolicy(c, nil)
	if err != nil {
		return nil, err
	}
	a := &appliance{path: path, log: log, started: time.Now(), drained: make(chan struct{})}
	a.policy.Store(p)
	open, ok := drivers[c.Dataplane.Driver]
	if !ok {
		err := fmt.Errorf("dataplane.driver %q is not built into this binary (available: %v)", c.Dataplane.Driver, driverNames())
		if hint, ok := driverHints[c.Dataplane.Driver]; ok {
			err = fmt.Errorf("%w: %s", err, hint)
		}
		return nil, err
	}
	if cpus := c.Dataplane.WorkerCPUs; len(cpus) != 0 {
		// Before the driver starts, so DPDK's control threads are
		// created with the confined mask too.
		if err := lcore.ConfineProcess(cpus); err != nil {
			return nil, fmt.Errorf("dataplane.worker_cpus: %w", err)
		}
		log.Info("worker CPUs reserved for the workers", "worker_cpus", cpus)
	}
	if a.ports, err = open(c); err != nil {
		return nil, fmt.Errorf("opening ports: %w", err)
	}
	static := staticNeighbors(c)
	a.rt, err = lcore.NewRuntime(lcore.RuntimeConfig{
		Workers: c.Dataplane.Workers, Ports: a.ports, Policy: &a.policy,
		FlowCapacity: c.Dataplane.FlowCapacity, Static: static, Log: log,
		IdleWait: idleWait(c.Dataplane.Driver), WorkerCPUs: c.Dataplane.WorkerCPUs, WorkerPriority: c.Dataplane.WorkerPriority,
	})
	if err != nil {
		a.closePorts()
		return nil, err
	}
	if a.history, err = openHistory(c, log); err != nil {
		a.closePorts()
		return nil, err
	}
	if a.natlog, err = startNatLog(c, p, a.rt, log, a.history); err != nil {
		a.closeHistory()
		a.closePorts()
		return nil, err
	}
	if c.Dataplane.WorkerPriority > 0 {
		warnRTThrottling(log)
	}
	if err := a.rt.Start(); err != nil {
		a.natlog.close()
		a.closeHistory()
		a.closePorts()
		return nil, fmt.Errorf("starting the workers (dataplane.worker_cpus, dataplane.worker_priority): %w", err)
	}
	source := path
	if abs, err := filepath.Abs(path); err == nil {
		source = abs // /v1/status names the file whatever the working directory
	}
	a.reloader = mgmt.NewReloader(mgmt.ReloadOptions{
		Path: source, Policy: &a.policy, Config: c, Check: restartNeeded, Log: log,
		Apply: func(c *config.Config, p *nat.Policy) {
			a.rt.Manager.SetStatic(staticNeighbors(c))
			a.natlog.apply(c, p)
			a.applyHistory(c)
		},
	})
	opts := mgmt.Options{
		Listen: c.Mgmt.Listen, Token: token, Runtime: a.rt, Ports: a.ports, Policy: &a.policy,
		Reloader: a.reloader, Version: version, Driver: c.Dataplane.Driver, Started: a.started, Log: log,
		History: a.history,
	}
	if c.BGP != nil {
		opts.BGPStatus, opts.Drain = a.bgpStatus, a.startDrain
	}
	a.api, err = mgmt.NewServer(opts)
	if err == nil {
		err = a.api.Registry().Register(a.natlog.out)
	}
	if err == nil {
		err = a.api.Start()
	}
	if err == nil && c.BGP != nil {
		if err = a.startBGP(c); err != nil {
			a.api.Close()
		}
	}
	if err != nil {
		a.rt.Stop()
		a.natlog.close()
		a.closeHistory()
		a.closePorts()
		return nil, err
	}
	for i, port := range a.ports {
		mac := port.MAC()
		log.Info("port up", "port", lcore.PortName(uint8(i)), "name", port.Name(),
			"mac", net.HardwareAddr(mac[:]).String(),
			"mtu", port.MTU(), "link", port.LinkUp())
	}
	log.Info("natgw running", "version", version, "driver", c.Dataplane.Driver, "workers", c.Dataplane.Workers,
		"flow_capacity", c.Dataplane.FlowCapacity, "pools", len(p.Pools), "instances", len(c.Instances),
		"default_snat", c.DefaultSNAT != nil, "config", path, "generation", p.Gen)
	return a, nil
}

// warnRTThrottling warns when the kernel throttles real-time threads
// (kernel.sched_rt_runtime_us not -1): it then takes a SCHED_FIFO
// worker's CPU from it for the rest of every period (50 ms of each
// second by default). natgw leaves the setting to the host.
func warnRTThrottling(log *slog.Logger) {
	runtime, period, err := lcore.RTThrottling()
	switch {
	case err != nil:
		log.Warn("cannot read the kernel's real-time throttling: a real-time worker may be forced off its CPU for part of every second", "error", err)
	case runtime >= 0:
		log.Warn("the kernel throttles real-time threads: each real-time worker is forced off its CPU for part of every period; "+
			"turn throttling off with sysctl kernel.sched_rt_runtime_us=-1",
			"sched_rt_runtime_us", runtime, "sched_rt_period_us", period,
			"off_cpu_ms_per_period", max(period-runtime, 0)/1000)
	}
}

// idleWait lets an idle AF_PACKET worker sleep in poll(2) instead of
// spinning; DPDK workers poll.
func idleWait(driver string) time.Duration {
	if driver == "afpacket" {
		return time.Millisecond
	}
	return 0
}

// reload re-reads the configuration; on any error nothing changes. SIGHUP
// and POST /v1/config/reload both come here (through the same Reloader,
// which serialises them and logs the outcome).
func (a *appliance) reload() (uint32, error) { return a.reloader.Reload() }

// restartNeeded refuses a reload that changes what only a restart can:
// the driver, the ports, the worker count, the flow table size, the ring
// sizes and the management endpoint.
func restartNeeded(old, c *config.Config) error {
	var errs []error
	if old.Dataplane.Driver != c.Dataplane.Driver || old.Dataplane.Workers != c.Dataplane.Workers ||
		old.Dataplane.FlowCapacity != c.Dataplane.FlowCapacity || fmt.Sprint(old.Dataplane.EALArgs) != fmt.Sprint(c.Dataplane.EALArgs) ||
		fmt.Sprint(old.Dataplane.WorkerCPUs) != fmt.Sprint(c.Dataplane.WorkerCPUs) {
		errs = append(errs, errors.New("dataplane: changing the driver, workers, flow_capacity, eal_args or worker_cpus needs a restart"))
	}
	if old.Dataplane.WorkerPriority != c.Dataplane.WorkerPriority {
		errs = append(errs, errors.New("dataplane.worker_priority: changing the workers' real-time priority needs a restart"))
	}
	if old.Dataplane.RxDesc() != c.Dataplane.RxDesc() || old.Dataplane.TxDesc() != c.Dataplane.TxDesc() {
		errs = append(errs, errors.New("dataplane: changing rx_descriptors or tx_descriptors needs a restart"))
	}
	if old.Inside.Port != c.Inside.Port || old.Outside.Port != c.Outside.Port {
		errs = append(errs, errors.New("inside.port/outside.port: changing a port needs a restart"))
	}
	if old.NatLog.History != c.NatLog.History {
		errs = append(errs, errors.New("nat_log.history: changing the attribution history's path needs a restart"))
	}
	if old.Mgmt != c.Mgmt {
		errs = append(errs, errors.New("mgmt: changing listen, token_file or allow_insecure needs a restart"))
	}
	if !reflect.DeepEqual(old.BGP, c.BGP) {
		errs = append(errs, errors.New("bgp: changing [bgp] needs a restart"))
	}
	return errors.Join(errs...)
}

// staticNeighbors lists the configured neighbours (already validated).
func staticNeighbors(c *config.Config) []lcore.StaticNeighbor {
	var out []lcore.StaticNeighbor
	for _, n := range c.Neighbors {
		out = append(out, lcore.StaticNeighbor{Addr: nat.U32(n.Addr()), MAC: n.HardwareAddr()})
	}
	return out
}

// logStats writes one line of totals, so an operator tailing the log sees
// traffic move.
func (a *appliance) logStats() {
	var out, in, flows, drops uint64
	for _, w := range a.rt.Workers {
		c := &w.Counters
		out += c.Packets[nat.DirOut].Load()
		in += c.Packets[nat.DirIn].Load()
		for i := range c.FlowsActive {
			flows += c.FlowsActive[i].Load()
		}
		for v := nat.DropDenied; v < nat.NumVerdicts; v++ {
			drops += c.Verdicts[v].Load()
		}
	}
	a.log.Info("traffic", "packets_out", out, "packets_in", in, "flows_active", flows, "drops", drops)
}

func (a *appliance) close() {
	a.stopBGP() // routes go before the dataplane does
	if a.api != nil {
		a.api.Close()
	}
	a.rt.Stop()
	a.natlog.close()
	a.closeHistory() // after natlog: its last events release every block
	a.closePorts()
	a.log.Info("natgw stopped cleanly")
}

func (a *appliance) closePorts() {
	for _, p := range a.ports {
		if p != nil {
			p.Close()
		}
	}
}

func driverNames() []string {
	var names []string
	for n := range drivers {
		names = append(names, n)
	}
	return names
}

// draining reports whether a drain was started.
func (a *appliance) draining() bool {
	n := a.bgp.Load()
	return n != nil && n.ann.Status().Draining != ""
}
