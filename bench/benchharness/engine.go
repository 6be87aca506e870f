package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/natgw/natgw/lcore"
)

// This file is the generator's engine in Go. The rfc9693 subcommand uses
// its C port (genc.go, genc.h), which has the same API and semantics;
// this one stays for the tests with an in-memory NAT and for genceiling's
// comparison (-engine go, over DPDK ring devices). It runs on its own
// goroutine, locked to a thread pinned to a CPU other than natgw's
// worker, and talks to natgw's two ports through four queues. It
// transmits at a paced rate and never retries: a frame the device does
// not take is counted offered and lost, as a NIC's full RX ring loses it.
// The packet loop allocates nothing.

// genBurst is the most frames the engine transmits per queue and call;
// in phase 2 it waits for a full burst unless the first frame due has
// waited genMaxWait ns (bursts keep the per-call costs of both sides low,
// as a NIC's descriptor batching does).
const (
	genBurst   = 32
	genMaxWait = 20_000
)

// genQueues are the generator's ends of natgw's ports: InTx reaches
// natgw's inside port, InRx receives what natgw sends out of it; the same
// for the outside.
type genQueues struct {
	InTx, InRx, OutTx, OutRx lcore.Queue
}

// dirCount counts one direction of one trial.
type dirCount struct {
	// Offered frames were handed to the device; Accepted were taken by
	// it; Received came back translated; Bad came back wrong (not
	// translated as expected, or not the generator's).
	Offered  uint64 `json:"offered"`
	Accepted uint64 `json:"accepted"`
	Received uint64 `json:"received"`
	Bad      uint64 `json:"bad"`
}

// lost returns the frames offered and not received.
func (d dirCount) lost() uint64 {
	if d.Received >= d.Offered {
		return 0
	}
	return d.Offered - d.Received
}

// engine is the generator.
type engine struct {
	q     genQueues
	flows genFlows
	n     uint32
	epoch time.Time
	// pub is each flow's public endpoint learnt in phase 1 (addr<<16 |
	// port; 0: not learnt).
	pub []uint64
	// done marks flows whose connection completed in phase 1.
	done []bool
	// Frames to transmit (Go memory: the driver copies them).
	txOut, txIn [genBurst]*lcore.Packet
	// ans holds the phase 1 answers of one received burst.
	ans  [lcore.Burst]*lcore.Packet
	rx   [lcore.Burst]*lcore.Packet
	hist latencyHist
	// Drain is how long the engine waits after its last transmission for
	// frames still in flight.
	Drain time.Duration
	// Out and In count the current trial's directions.
	Out, In dirCount
	// Established counts the current trial's completed connections.
	Established uint64
}

// newEngine returns an engine over q for the flows g.
func newEngine(q genQueues, g genFlows) *engine {
	e := &engine{q: q, flows: g, n: uint32(g.t.Flows), epoch: time.Now(), Drain: 50 * time.Millisecond,
		pub: make([]uint64, g.t.Flows), done: make([]bool, g.t.Flows)}
	mk := func(ps []*lcore.Packet) {
		for i := range ps {
			ps[i] = &lcore.Packet{Data: make([]byte, frameLen, 64)}
		}
	}
	mk(e.txOut[:])
	mk(e.txIn[:])
	mk(e.ans[:])
	return e
}

// now returns the generator's clock, ns since its epoch.
func (e *engine) now() int64 { return int64(time.Since(e.epoch)) }

// reset clears the trial's counters.
func (e *engine) reset() {
	e.Out, e.In, e.Established = dirCount{}, dirCount{}, 0
	e.hist.reset()
}

// connectResult is one phase 1 trial.
type connectResult struct {
	Rate        uint64   `json:"rate_cps"`
	Flows       uint64   `json:"flows"`
	Established uint64   `json:"established"`
	Seconds     float64  `json:"seconds"`
	First       dirCount `json:"first"`
	Answer      dirCount `json:"answer"`
	Limited     bool     `json:"generator_limited"`
}

// pass reports zero loss with every connection established.
func (r connectResult) pass() bool {
	return r.Established == r.Flows && r.First.lost() == 0 && r.Answer.lost() == 0 &&
		r.First.Bad == 0 && r.Answer.Bad == 0
}

// connect runs phase 1 (RFC 9693 §4.1, CSIT's connections per second):
// every flow's first packet is sent from inside at rate per second, in
// the flows' pseudorandom order; when it comes out translated the
// engine learns its public endpoint and answers from the remote at once;
// the connection counts when the answer comes back inside translated to
// the private endpoint. The table must hold none of the flows.
func (e *engine) connect(rate uint64) connectResult {
	clear(e.done)
	clear(e.pub)
	return e.connectRound(rate, uint64(e.n))
}

// connectMissing opens, at rate per second, the connections phase 1 did
// not complete (their first packet or answer was lost): the filling of
// the table for phase 2 must leave none out, as a tester re-sends what
// was lost. The table must still hold the completed ones.
func (e *engine) connectMissing(rate uint64) connectResult {
	missing := uint64(0)
	for _, d := range e.done {
		if !d {
			missing++
		}
	}
	return e.connectRound(rate, missing)
}

// connectRound sends the first packet of the n flows not yet done.
func (e *engine) connectRound(rate, n uint64) connectResult {
	e.reset()
	t0 := e.now()
	var sent uint64
	cur := e.flows.at(0)
	lastRx, lastTx := t0, t0
	for {
		now := e.now()
		if sent < n {
			lastTx = now
			due := min(dueCount(now-t0, rate), n)
			k := 0
			for ; k < genBurst && sent < due; k++ {
				i := cur
				cur = e.flows.next(cur)
				for e.done[i] {
					i = cur
					cur = e.flows.next(cur)
				}
				f := e.flows.flow(i)
				e.txOut[k].Data = writeGenFrame(e.txOut[k].Data, toNatgwMAC, sourceMAC(f.Src), f.Src, f.Dst, f.Sport, f.Dport, kindFirst, i, now)
				sent++
			}
			if k > 0 {
				e.Out.Offered += uint64(k)
				e.Out.Accepted += uint64(e.q.InTx.TxBurst(e.txOut[:k]))
			}
		}
		if e.rxConnect() {
			lastRx = e.now()
		} else if sent == n && (e.In.Received == e.In.Offered && e.Out.Received+e.Out.Bad >= e.Out.Offered ||
			time.Duration(e.now()-lastRx) > e.Drain) {
			break
		}
	}
	// The last first packet was due at n/rate: the generator kept up if
	// it sent it within 1 % (and 100 µs) of that.
	want := float64(n) / float64(rate) * 1e9
	return connectResult{Rate: rate, Flows: n, Established: e.Established, Seconds: float64(e.now()-t0) / 1e9,
		First: e.Out, Answer: e.In, Limited: float64(lastTx-t0) > want*1.01+1e5}
}

// rxConnect receives one burst from each side in phase 1 and reports
// whether anything came.
func (e *engine) rxConnect() bool {
	got := false
	if r := e.q.OutRx.RxBurst(e.rx[:]); r > 0 {
		got = true
		a := 0
		now := e.now()
		var p genPacket
		for _, pk := range e.rx[:r] {
			if parseGenFrame(pk.Data, &p) != nil || p.Kind != kindFirst || p.Flow >= e.n {
				e.Out.Bad++
				continue
			}
			f := e.flows.flow(p.Flow)
			if p.Src == f.Src || p.Dst != f.Dst || p.Dport != f.Dport {
				e.Out.Bad++
				continue
			}
			e.Out.Received++
			e.pub[p.Flow] = uint64(p.Src)<<16 | uint64(p.Sport)
			e.ans[a].Data = writeGenFrame(e.ans[a].Data, toNatgwMAC, gatewayMAC, f.Dst, p.Src, f.Dport, p.Sport, kindAnswer, p.Flow, now)
			a++
		}
		e.q.OutRx.Free(e.rx[:r])
		for s := 0; s < a; {
			k := min(genBurst, a-s)
			e.In.Offered += uint64(k)
			e.In.Accepted += uint64(e.q.OutTx.TxBurst(e.ans[s : s+k]))
			s += k
		}
	}
	if r := e.q.InRx.RxBurst(e.rx[:]); r > 0 {
		got = true
		var p genPacket
		for _, pk := range e.rx[:r] {
			if parseGenFrame(pk.Data, &p) != nil || p.Kind != kindAnswer || p.Flow >= e.n {
				e.In.Bad++
				continue
			}
			f := e.flows.flow(p.Flow)
			if p.Dst != f.Src || p.Dport != f.Sport {
				e.In.Bad++
				continue
			}
			e.In.Received++
			if !e.done[p.Flow] {
				e.done[p.Flow] = true
				e.Established++
			}
		}
		e.q.InRx.Free(e.rx[:r])
	}
	return got
}

// learnt reports how many flows have a public endpoint.
func (e *engine) learnt() int {
	n := 0
	for _, v := range e.pub {
		if v != 0 {
			n++
		}
	}
	return n
}

// trafficResult is one phase 2 trial.
type trafficResult struct {
	Rate    uint64   `json:"rate_pps"`
	Seconds float64  `json:"seconds"`
	Out     dirCount `json:"out"`
	In      dirCount `json:"in"`
	// Limited: the generator offered less than 99.9 % of the frames due.
	Limited bool   `json:"generator_limited"`
	Due     uint64 `json:"due"`
}

// lost returns both directions' lost frames.
func (r trafficResult) lost() uint64 { return r.Out.lost() + r.In.lost() }

// pass reports zero loss and nothing wrong.
func (r trafficResult) pass() bool { return r.lost() == 0 && r.Out.Bad == 0 && r.In.Bad == 0 }

// traffic runs phase 2 for d: established traffic in both directions at
// once, rate frames per second in all (half each way), cycling over the
// flows in their pseudorandom order; every frame carries its transmit
// time and the latency of every frame received is recorded in e.hist.
// Phase 1 must have learnt every flow's public endpoint.
func (e *engine) traffic(rate uint64, d time.Duration) trafficResult {
	r, _ := e.trafficFlows(rate, d, e.n) // e.n is always a valid k
	return r
}

// errLoadFlows is returned by trafficFlows for k outside [1, N].
var errLoadFlows = errors.New("traffic over the first k flows: k must be 1 to the number of flows")

// trafficFlows is traffic over the flows [0, k) only, in a pseudorandom
// order of their own (genFlows.firstFlows): flows at or beyond k get no
// frame, so they idle while the others carry the load (the tear-down
// trial, teardown9693.go). trafficFlows(rate, d, N) is traffic.
func (e *engine) trafficFlows(rate uint64, d time.Duration, k uint32) (trafficResult, error) {
	if k == 0 || k > e.n {
		return trafficResult{Rate: rate}, fmt.Errorf("%w (k %d, %d flows)", errLoadFlows, k, e.n)
	}
	o := e.flows.firstFlows(k)
	e.reset()
	half := max(1, rate/2)
	t0 := e.now()
	end := t0 + int64(d)
	var sentOut, sentIn, due uint64
	// The inbound cycle starts half-way so the two directions do not
	// hit the same flow at once.
	curOut, curIn := o.at(0), o.at(uint64(k)/2)
	lastRx, lastTx := t0, t0
	for {
		now := e.now()
		if now < end {
			due = dueCount(now-t0, half)
			if due-sentOut < genBurst && now-lastTx < genMaxWait {
				due = sentOut // wait for a fuller burst
			} else {
				lastTx = now
			}
			k := 0
			for ; k < genBurst && sentOut < due; k++ {
				i := curOut
				curOut = o.next(curOut)
				f := e.flows.flow(i)
				e.txOut[k].Data = writeGenFrame(e.txOut[k].Data, toNatgwMAC, sourceMAC(f.Src), f.Src, f.Dst, f.Sport, f.Dport, kindOut, i, now)
				sentOut++
			}
			if k > 0 {
				e.Out.Offered += uint64(k)
				e.Out.Accepted += uint64(e.q.InTx.TxBurst(e.txOut[:k]))
			}
			k = 0
			for ; k < genBurst && sentIn < due; k++ {
				i := curIn
				curIn = o.next(curIn)
				f := e.flows.flow(i)
				pub := e.pub[i]
				e.txIn[k].Data = writeGenFrame(e.txIn[k].Data, toNatgwMAC, gatewayMAC, f.Dst, uint32(pub>>16), f.Dport, uint16(pub), kindIn, i, now)
				sentIn++
			}
			if k > 0 {
				e.In.Offered += uint64(k)
				e.In.Accepted += uint64(e.q.OutTx.TxBurst(e.txIn[:k]))
			}
		}
		if e.rxTraffic() {
			lastRx = e.now()
		} else if now >= end && (e.Out.Received+e.Out.Bad >= e.Out.Accepted && e.In.Received+e.In.Bad >= e.In.Accepted ||
			time.Duration(e.now()-lastRx) > e.Drain) {
			break
		}
	}
	dueEnd := dueCount(end-t0, half)
	return trafficResult{Rate: rate, Seconds: float64(d) / 1e9, Out: e.Out, In: e.In, Due: 2 * dueEnd,
		Limited: float64(sentOut+sentIn) < 0.999*float64(2*dueEnd)}, nil
}

// rxTraffic receives one burst from each side in phase 2, checks the
// translation and records the latencies; it reports whether anything
// came.
func (e *engine) rxTraffic() bool {
	got := false
	if r := e.q.OutRx.RxBurst(e.rx[:]); r > 0 {
		got = true
		now := e.now()
		var p genPacket
		for _, pk := range e.rx[:r] {
			if parseGenFrame(pk.Data, &p) != nil || p.Kind != kindOut || p.Flow >= e.n {
				e.Out.Bad++
				continue
			}
			pub := e.pub[p.Flow]
			if p.Src != uint32(pub>>16) || p.Sport != uint16(pub) {
				e.Out.Bad++
				continue
			}
			e.Out.Received++
			e.hist.record(uint64(max(0, now-p.Sent)))
		}
		e.q.OutRx.Free(e.rx[:r])
	}
	if r := e.q.InRx.RxBurst(e.rx[:]); r > 0 {
		got = true
		now := e.now()
		var p genPacket
		for _, pk := range e.rx[:r] {
			if parseGenFrame(pk.Data, &p) != nil || p.Kind != kindIn || p.Flow >= e.n {
				e.In.Bad++
				continue
			}
			f := e.flows.flow(p.Flow)
			if p.Dst != f.Src || p.Dport != f.Sport {
				e.In.Bad++
				continue
			}
			e.In.Received++
			e.hist.record(uint64(max(0, now-p.Sent)))
		}
		e.q.InRx.Free(e.rx[:r])
	}
	return got
}

// checkLearnt returns an error unless phase 1 learnt every flow.
func (e *engine) checkLearnt() error {
	if l := e.learnt(); l != int(e.n) {
		return fmt.Errorf("phase 1 learnt the public endpoint of %d flows of %d", l, e.n)
	}
	return nil
}
