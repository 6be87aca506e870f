//go:build dpdk

package main

/*
#cgo pkg-config: libdpdk
#include <rte_ring.h>
*/
import "C"

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/lcore/dpdk"
)

func init() { subcommands["genceiling"] = cmdGenCeiling }

// This file measures the generator's own ceiling, without natgw: two
// ring devices joined back to back (a loopback),
//
//	generator inside TX --ring E--> generator outside RX
//	generator outside TX --ring F--> generator inside RX
//
// with rings of ringSize frames as in the rfc9693 set-up. The generator
// does all of its per-frame work (it builds, sends, receives, parses and
// checks every frame of both directions and records its latency); only
// natgw's translation is missing, so the public endpoint it learns is
// the private one. Its zero-loss rate over the loopback bounds every
// throughput the rfc9693 method can report: a figure near it is the
// generator's limit, not natgw's.

// loopback is the pair of ring devices joined back to back.
type loopback struct {
	in, out *dpdk.Port
	rings   []*C.struct_rte_ring
}

// openLoopback makes the loopback's rings and devices in s; prefix
// makes their names unique.
func openLoopback(s *dpdk.Session, prefix string) (*loopback, error) {
	l := &loopback{}
	r := map[string]*C.struct_rte_ring{}
	for _, n := range []string{"E", "F", "inspare", "outspare"} {
		var err error
		if r[n], err = newRing(prefix + n); err != nil {
			l.closeRings()
			return nil, err
		}
		l.rings = append(l.rings, r[n])
	}
	open := func(name string, rx, tx0, tx1 *C.struct_rte_ring, side uint8) (*dpdk.Port, error) {
		if err := ringDevice(name, rx, tx0, tx1); err != nil {
			return nil, err
		}
		return s.OpenPort(dpdk.PortOptions{Name: "net_ring_" + name, Side: side})
	}
	var err error
	if l.in, err = open(prefix+"in", r["F"], r["E"], r["inspare"], lcore.PortInside); err != nil {
		l.close(nil)
		return nil, err
	}
	if l.out, err = open(prefix+"out", r["E"], r["F"], r["outspare"], lcore.PortOutside); err != nil {
		l.close(nil)
		return nil, err
	}
	return l, nil
}

// close closes the devices and frees the rings.
func (l *loopback) close(log *slog.Logger) {
	for _, p := range []*dpdk.Port{l.in, l.out} {
		if p != nil {
			if err := p.Close(); err != nil && log != nil {
				log.Warn("closing device", "device", p.Name(), "error", err)
			}
		}
	}
	l.closeRings()
}

func (l *loopback) closeRings() {
	for _, r := range l.rings {
		C.rte_ring_free(r)
	}
	l.rings = nil
}

// trafficEngine is what the ceiling needs of an engine.
type trafficEngine interface {
	traffic(rate uint64, d time.Duration) trafficResult
}

// measureCeiling measures e over a loopback whose public endpoints are
// learnt: a step told 4 times maxRate, then a zero-loss binary search up
// to maxRate. It runs on the generator's thread.
func measureCeiling(e trafficEngine, c genCeiling, maxRate uint64, resolution float64, stdout io.Writer) (genCeiling, error) {
	step := time.Duration(c.StepSeconds * float64(time.Second))
	sat := e.traffic(4*maxRate, step)
	c.Offered = uint64(float64(sat.Out.Offered+sat.In.Offered) / sat.Seconds)
	c.Received = uint64(float64(sat.Out.Received+sat.In.Received) / sat.Seconds)
	if sat.Out.Bad+sat.In.Bad != 0 {
		return c, fmt.Errorf("generator loopback: frames came back wrong: out %+v, in %+v", sat.Out, sat.In)
	}
	fmt.Fprintf(stdout, "generator ceiling (%s engine, %d flows): told %s pps: offered %s pps, received %s pps\n",
		c.Engine, c.Flows, formatRate(float64(4*maxRate)), formatRate(float64(c.Offered)), formatRate(float64(c.Received)))
	trial := func(rate uint64) (searchStep, error) {
		tr := e.traffic(rate, step)
		s := searchStep{Pass: tr.pass(), Offered: tr.Out.Offered + tr.In.Offered, Loss: tr.lost(), Seconds: tr.Seconds,
			Limited: tr.Limited, Note: fmt.Sprintf("out %+v, in %+v", tr.Out, tr.In)}
		fmt.Fprintf(stdout, "generator ceiling (%s engine): %s pps: pass %v (%s)\n", c.Engine, formatRate(float64(rate)), s.Pass && !s.Limited, s.Note)
		return s, nil
	}
	var err error
	c.ZeroLoss, c.Steps, err = binarySearch(max(100_000, maxRate/256), maxRate, max(1, uint64(float64(maxRate)*resolution)), trial)
	fmt.Fprintf(stdout, "generator ceiling (%s engine, %d flows): %s pps two-way zero loss over the loopback\n",
		c.Engine, c.Flows, formatRate(float64(c.ZeroLoss)))
	return c, err
}

// ceilingC measures a C engine over the loopback l; it runs on the
// generator's thread. Phase 1 over the loopback learns each flow's
// private endpoint as its public one.
func ceilingC(l *loopback, name string, g genFlows, stepSeconds float64, maxRate uint64, resolution float64, stdout io.Writer) (genCeiling, error) {
	c := genCeiling{Engine: "c", Flows: g.t.Flows, StepSeconds: stepSeconds}
	e, err := newCEngine(name, l.in.ID(), l.out.ID(), g, true)
	if err != nil {
		return c, err
	}
	defer e.close()
	var r connectResult
	for round := 0; round < 5 && e.learnt() != g.t.Flows; round++ {
		if round == 0 {
			r = e.connect(4_000_000) // 16 M flows in 4 s
		} else {
			r = e.connectMissing(100_000)
		}
	}
	if err := e.checkLearnt(); err != nil {
		return c, fmt.Errorf("generator loopback: %w (%+v)", err, r)
	}
	return measureCeiling(e, c, maxRate, resolution, stdout)
}

// ceilingGo measures engine.go's Go engine over the loopback l (the
// generator before its packet path moved to C); it runs on the
// generator's thread.
func ceilingGo(l *loopback, g genFlows, stepSeconds float64, maxRate uint64, resolution float64, stdout io.Writer) (genCeiling, error) {
	q := genQueues{InTx: l.in.Queue(0), InRx: l.in.Queue(0), OutTx: l.out.Queue(0), OutRx: l.out.Queue(0)}
	e := newEngine(q, g)
	for i := range e.pub {
		f := g.flow(uint32(i))
		e.pub[i] = uint64(f.Src)<<16 | uint64(f.Sport)
	}
	return measureCeiling(e, genCeiling{Engine: "go", Flows: g.t.Flows, StepSeconds: stepSeconds}, maxRate, resolution, stdout)
}

// ceilingStepSeconds is the length of the rfc9693 run's loopback steps.
const ceilingStepSeconds = 1

// generatorCeiling measures the generator's ceiling over a loopback of
// its own (as the genceiling subcommand does) before natgw is measured.
func (b *rfcBench) generatorCeiling(g genFlows, stdout io.Writer) (*genCeiling, error) {
	l, err := openLoopback(b.session, "natgwbench_loop")
	if err != nil {
		return nil, err
	}
	b.loop = l
	var c genCeiling
	b.onGen(func() {
		c, err = ceilingC(l, "natgwbench_genceil", g, ceilingStepSeconds, b.o.MaxRate, b.o.Resolution, stdout)
	})
	return &c, err
}

// cmdGenCeiling is the "genceiling" subcommand: the generator's ceiling
// over a loopback, without natgw.
func cmdGenCeiling(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("genceiling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flows := fs.Int("flows", 1000, "flows")
	step := fs.Float64("step", 1, "seconds per step")
	engines := fs.String("engine", "c", "engine: c, go or both")
	genCPU := fs.Int("gen-cpu", 0, "CPU of the generator")
	lcores := fs.String("l", "0", "EAL -l (main lcore)")
	maxRate := fs.Uint64("max-rate", 60_000_000, "highest two-way rate tried (frames/s)")
	resolution := fs.Float64("resolution", 0.01, "search resolution, a fraction of the highest rate")
	out := fs.String("o", "", "result file (JSON; default none)")
	ringFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *step <= 0 || *flows < 2 || (*engines != "c" && *engines != "go" && *engines != "both") {
		return errors.New("usage: benchharness genceiling [-flows N] [-step S] [-engine c|go|both] [-gen-cpu G] [-max-rate R] [-o FILE] [-ring N]")
	}
	if err := checkRing(); err != nil {
		return err
	}
	t, err := newTraffic(*flows)
	if err != nil {
		return err
	}
	g, err := newGenFlows(t, 1)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := lcore.PinThread(*genCPU); err != nil {
		return fmt.Errorf("-gen-cpu %d: %w", *genCPU, err)
	}
	s, err := dpdk.Start(dpdk.Config{EALArgs: []string{"-l", *lcores, "--no-pci"}, Ports: 2, Workers: 1,
		RxDesc: ringSize, TxDesc: ringSize, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			log.Warn("closing the DPDK session", "error", err)
		}
	}()
	l, err := openLoopback(s, "natgwbench_loop")
	if err != nil {
		return err
	}
	defer l.close(log)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var res []genCeiling
	if *engines != "c" {
		c, err := ceilingGo(l, g, *step, *maxRate, *resolution, stdout)
		res = append(res, c)
		if err != nil {
			return err
		}
	}
	if *engines != "go" {
		c, err := ceilingC(l, "natgwbench_genceil", g, *step, *maxRate, *resolution, stdout)
		res = append(res, c)
		if err != nil {
			return err
		}
	}
	if *out != "" {
		return writeJSON(*out, res)
	}
	return nil
}
