//go:build dpdk

package main

/*
#cgo pkg-config: libdpdk
#include "genc.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// This file is the generator the rfc9693 subcommand uses: engine.go's
// engine with its per-frame work in C (genc.h). Frames are built in mbufs
// of the engine's own pool from two templates (the constant bytes of an
// inside- and an outside-sent frame) and patched with the flow's
// addresses, ports, kind, flow index and transmit time, the checksums
// summed from the fields; received frames are parsed and checked in C,
// their latency recorded in a C copy of latencyHist. One cgo call runs a
// whole trial (its transmission, paced with rte_rdtsc, and its drain), so
// the Go runtime is out of the packet path; the flows' addresses and
// ports are computed in C as genFlows.flow computes them (no per-flow
// template: 16 M flows would take 2 GB of them), and only the learnt
// public endpoints (8 bytes) and the phase 1 marks (1 byte) are kept per
// flow, in C memory.
//
// engine.go's Go engine stays for the tests with an in-memory NAT and
// for the genceiling subcommand's comparison.

// genMbufs returns the size of a C engine's mbuf pool: four rings of
// ringSize frames, natgw's and the generator's per-lcore caches and
// bursts in flight (12287 frames of slack), rounded up to 2^k - 1:
// 16383 with the default rings, as before -ring.
func genMbufs() int {
	n := 16384
	for n-1 < 4*ringSize+12287 {
		n <<= 1
	}
	return n - 1
}

// cEngine is the generator with its packet path in C. Its methods have
// engine's semantics; it must be used from one thread (the generator's,
// registered with EAL by newCEngine) and closed with close.
type cEngine struct {
	c     *C.struct_genc
	flows genFlows
	n     uint32
	// hist is the last phase 2 trial's latency histogram.
	hist latencyHist
	// Drain is how long the engine waits after its last transmission for
	// frames still in flight.
	Drain time.Duration
	// Out and In count the last trial's directions.
	Out, In dirCount
	// Established counts the last trial's completed connections.
	Established uint64
	// Sent counts the frames the last phase 2 trial transmitted (or
	// tried to), both directions.
	Sent uint64
	// NoMbuf counts the last trial's frames offered and lost because the
	// engine's mbuf pool was empty (the generator's fault, not natgw's).
	NoMbuf uint64
}

// newCEngine returns a C engine for the flows g transmitting and
// receiving on the DPDK ports inPort (natgw's inside) and outPort, with
// an mbuf pool named name. loopback: outPort receives what inPort sends
// untranslated (and the reverse), so phase 1 takes an untranslated
// source as the public endpoint (the generator's ceiling).
func newCEngine(name string, inPort, outPort uint16, g genFlows, loopback bool) (*cEngine, error) {
	src := sourceTable(g)
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	lb := C.int(0)
	if loopback {
		lb = 1
	}
	c := C.genc_new(cn, C.uint16_t(inPort), C.uint16_t(outPort), C.uint32_t(g.t.Flows),
		(*C.uint32_t)(unsafe.Pointer(&src[0])), C.uint32_t(len(src)), C.uint32_t(genMbufs()), lb)
	if c == nil {
		return nil, fmt.Errorf("generator %s: out of memory or mbuf pool refused (rte_errno %d)", name, int(C.rte_errno_go()))
	}
	return &cEngine{c: c, flows: g, n: uint32(g.t.Flows), Drain: 50 * time.Millisecond}, nil
}

// sourceTable returns the flows' private host addresses, by source.
func sourceTable(g genFlows) []uint32 {
	src := make([]uint32, g.t.Sources)
	for s := range src {
		src[s] = g.t.source(s)
	}
	return src
}

// newCEngineFrames returns a C engine without devices or mbuf pool: its
// frame builder, parser, flows and histogram, which need no EAL (for the
// tests). Only buildFrame, setPublic, flowC, recordC and close may be
// used.
func newCEngineFrames(g genFlows) (*cEngine, error) {
	src := sourceTable(g)
	c := C.genc_alloc_flows(C.uint32_t(g.t.Flows), (*C.uint32_t)(unsafe.Pointer(&src[0])), C.uint32_t(len(src)))
	if c == nil {
		return nil, errors.New("generator: out of memory")
	}
	return &cEngine{c: c, flows: g, n: uint32(g.t.Flows), Drain: 50 * time.Millisecond}, nil
}

// close frees the engine's C memory and mbuf pool; every mbuf must be
// back in it (the devices idle and drained).
func (e *cEngine) close() {
	C.genc_free(e.c)
	e.c = nil
}

// collect copies the last trial's counters from C.
func (e *cEngine) collect() {
	d := func(c *C.struct_genc_dir) dirCount {
		return dirCount{Offered: uint64(c.offered), Accepted: uint64(c.accepted), Received: uint64(c.received), Bad: uint64(c.bad)}
	}
	e.Out, e.In = d(&e.c.out), d(&e.c.in)
	e.Established = uint64(e.c.established)
	e.Sent = uint64(e.c.sent_out + e.c.sent_in)
	e.NoMbuf = uint64(e.c.nombuf)
	e.hist.total, e.hist.max = uint64(e.c.hist_total), uint64(e.c.hist_max)
	copy(e.hist.counts[:], unsafe.Slice((*uint64)(unsafe.Pointer(&e.c.hist[0])), histBuckets))
}

// mbufsAvailable returns how many mbufs the engine's pool can still hand
// out; safe from any thread.
func (e *cEngine) mbufsAvailable() int { return int(C.rte_mempool_avail_count(e.c.mp)) }

// connect runs phase 1 (engine.connect): every flow's first packet from
// inside at rate per second, the remote's answer to each translated one,
// a connection counted when the answer comes back translated. The table
// must hold none of the flows.
func (e *cEngine) connect(rate uint64) connectResult {
	C.genc_clear(e.c)
	return e.connectRound(rate, uint64(e.n))
}

// connectMissing opens, at rate per second, the connections phase 1 did
// not complete (engine.connectMissing).
func (e *cEngine) connectMissing(rate uint64) connectResult {
	return e.connectRound(rate, uint64(C.genc_missing(e.c)))
}

// connectFlows opens, at rate per second, the connections of the flows
// [lo, hi) only (engine.connectFlows): every other flow is marked done
// and keeps its learnt endpoint.
func (e *cEngine) connectFlows(rate uint64, lo, hi uint32) connectResult {
	C.genc_open_range(e.c, C.uint32_t(lo), C.uint32_t(min(hi, e.n)))
	return e.connectMissing(rate)
}

// connectRound sends the first packet of the n flows not yet done.
func (e *cEngine) connectRound(rate, n uint64) connectResult {
	rate = max(1, rate)
	e.c.drain_ns = C.uint64_t(e.Drain)
	lastTx := uint64(C.genc_connect(e.c, C.uint64_t(rate), C.uint64_t(n), C.uint32_t(e.flows.at(0)), C.uint64_t(e.flows.step)))
	e.collect()
	want := float64(n) / float64(rate) * 1e9
	return connectResult{Rate: rate, Flows: n, Established: e.Established, Seconds: float64(e.c.end_ns-e.c.t0_ns) / 1e9,
		First: e.Out, Answer: e.In, Limited: float64(lastTx) > want*1.01+1e5}
}

// traffic runs phase 2 for d over every flow (engine.traffic): rate
// frames per second in all, half each way; the latencies are in e.hist.
func (e *cEngine) traffic(rate uint64, d time.Duration) trafficResult {
	r, _ := e.trafficFlows(rate, d, e.n) // e.n is always a valid k
	return r
}

// trafficFlows runs phase 2 for d over the flows [0, k) only, in a
// pseudorandom order of their own (flows at or beyond k get no frames):
// rate frames per second in all, half each way, the inbound cycle half
// a cycle ahead of the outbound one. Those flows' public endpoints must
// have been learnt.
func (e *cEngine) trafficFlows(rate uint64, d time.Duration, k uint32) (trafficResult, error) {
	if k == 0 || k > e.n {
		return trafficResult{Rate: rate}, fmt.Errorf("%w (k %d, %d flows)", errLoadFlows, k, e.n)
	}
	o := e.flows.firstFlows(k)
	e.c.drain_ns = C.uint64_t(e.Drain)
	due := uint64(C.genc_traffic(e.c, C.uint64_t(rate), C.uint64_t(d), C.uint32_t(k), C.uint64_t(o.step),
		C.uint32_t(o.at(0)), C.uint32_t(o.at(uint64(k)/2))))
	e.collect()
	return trafficResult{Rate: rate, Seconds: float64(d) / 1e9, Out: e.Out, In: e.In, Due: due,
		Limited: float64(e.Sent) < 0.999*float64(due)}, nil
}

// learnt reports how many flows have a public endpoint.
func (e *cEngine) learnt() int { return int(C.genc_learnt(e.c)) }

// checkLearnt returns an error unless phase 1 learnt every flow.
func (e *cEngine) checkLearnt() error {
	if l := e.learnt(); l != int(e.n) {
		return fmt.Errorf("phase 1 learnt the public endpoint of %d flows of %d", l, e.n)
	}
	return nil
}

// setPublic sets flow i's learnt public endpoint (for the tests).
func (e *cEngine) setPublic(i uint32, addr uint32, port uint16) {
	*(*uint64)(unsafe.Add(unsafe.Pointer(e.c.pub), 8*uintptr(i))) = uint64(addr)<<16 | uint64(port)
}

// buildFrame writes flow i's frame of kind into b (at least 64 bytes)
// with the C engine's builder, as its trials do, and returns the frame
// (for the tests).
func (e *cEngine) buildFrame(b []byte, i uint32, kind uint8, sent int64) []byte {
	C.genc_build(e.c, (*C.uint8_t)(unsafe.Pointer(&b[0])), C.uint32_t(i), C.uint8_t(kind), C.uint64_t(sent))
	return b[:frameLen]
}

// parseFrameC parses b with the C engine's parser (for the tests).
func parseFrameC(b []byte, out *genPacket) error {
	var p C.struct_genc_pkt
	if len(b) == 0 || C.genc_parse_go((*C.uint8_t)(unsafe.Pointer(&b[0])), C.uint32_t(len(b)), &p) != 0 {
		return errNotGen
	}
	*out = genPacket{Src: uint32(p.src), Dst: uint32(p.dst), Sport: uint16(p.sport), Dport: uint16(p.dport),
		Kind: uint8(p.kind), Flow: uint32(p.flow), Sent: int64(p.sent)}
	return nil
}

// recordC records a latency in the C histogram and copies it to e.hist
// (for the tests).
func (e *cEngine) recordC(ns uint64) {
	C.genc_record_go(e.c, C.uint64_t(ns))
	e.collect()
}

// flowC returns flow i as the C engine computes it (for the tests).
func (e *cEngine) flowC(i uint32) flowSpec {
	return flowSpec{Src: uint32(C.genc_src(e.c, C.uint32_t(i))), Dst: uint32(C.genc_dst(C.uint32_t(i))),
		Sport: uint16(C.genc_sport(C.uint32_t(i))), Dport: uint16(C.genc_dport(C.uint32_t(i)))}
}
