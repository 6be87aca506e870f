package lcore

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// The runtime differential test: one random sequence of packets, run on
// the fake driver with 1, 2 and 4 workers, each packet of the multi-worker
// runs delivered to a random worker's queue (so packets are handed over,
// and fragments of one datagram reach different workers in any order). The
// outcome, what leaves each port (order normalised within a step, public
// ports replaced by the flow they belong to) and the verdict counters,
// must be the same in every run.

// diffFlow is one flow of the sequence; its remote endpoint is unique, so
// a translated packet names its flow.
type diffFlow struct {
	proto       uint8
	priv        uint32
	sport       uint16
	remote      uint32
	dport       uint16 // 0 for echo
	outs, ins   int    // packets sent so far each way
	denied      bool   // never leaves: replies are to an unknown port
	fragmentOut bool
}

// diffPkt is one packet of a step, built against a run's public ports.
type diffPkt struct {
	flow     int
	in       bool
	kind     int // diffPlain, diffFrag, diffICMPErr
	seq      int // the flow's packet number in that direction
	fragID   uint16
	fragPerm []int // order of the fragments
	queues   []int // a receive queue (of workers 4; mod workers) per fragment
}

const (
	diffPlain = iota
	diffFrag
	diffICMPErr
)

// diffSequence draws steps of packets: at most one packet (or one
// fragmented datagram) per flow and step, so per-flow order is the
// sender's, and replies only to flows that went out in an earlier step.
func diffSequence(seed uint64, steps int) ([]diffFlow, [][]diffPkt) {
	rng := rand.New(rand.NewPCG(seed, 99))
	var flows []diffFlow
	hosts := []uint32{member, a4("10.0.1.5"), a4("10.0.7.7")} // the last has no scenario
	var seqs [][]diffPkt
	for s := 0; s < steps; s++ {
		for range 1 + rng.IntN(3) {
			f := diffFlow{priv: hosts[rng.IntN(len(hosts))], sport: uint16(20000 + len(flows)),
				remote: server + uint32(1+len(flows))}
			switch rng.IntN(4) {
			case 0:
				f.proto = nat.ProtoTCP
			case 1:
				f.proto = nat.ProtoICMP
			default:
				f.proto = nat.ProtoUDP
				f.fragmentOut = rng.IntN(2) == 0
			}
			if f.proto != nat.ProtoICMP {
				f.dport = uint16(1 + rng.IntN(65000))
			}
			f.denied = f.priv == hosts[2]
			flows = append(flows, f)
		}
		var step []diffPkt
		for i := range flows {
			f := &flows[i]
			if rng.IntN(3) == 0 {
				continue
			}
			p := diffPkt{flow: i, fragID: uint16(rng.Uint32())}
			p.in = f.outs > 0 && rng.IntN(2) == 0
			if p.in {
				p.seq = f.ins
				f.ins++
			} else {
				p.seq = f.outs
				f.outs++
			}
			if f.proto == nat.ProtoUDP && (f.fragmentOut || p.in) && rng.IntN(2) == 0 {
				p.kind = diffFrag
			}
			if p.in && f.proto != nat.ProtoICMP && rng.IntN(6) == 0 {
				p.kind = diffICMPErr
			}
			n := 1
			if p.kind == diffFrag {
				n = 3
			}
			p.fragPerm = rng.Perm(n)
			for range n {
				p.queues = append(p.queues, rng.IntN(4))
			}
			step = append(step, p)
		}
		rng.Shuffle(len(step), func(i, j int) { step[i], step[j] = step[j], step[i] })
		seqs = append(seqs, step)
	}
	return flows, seqs
}

// diffRun runs the sequence with workers workers and returns, per step, the
// normalised frames that left each port, and the verdict totals.
// With concurrent, the workers and the management core run on their own
// goroutines (Runtime.Start) and each step waits for the dataplane to
// settle; otherwise the test polls them by hand.
func diffRun(t *testing.T, workers int, concurrent bool, flows []diffFlow, steps [][]diffPkt) ([][]string, [nat.NumVerdicts]uint64) {
	// The dataplane clock moves only when the test says: with the real
	// clock, whether a fragment table entry had expired by the time a
	// later datagram needed its way or its source's share depended on how
	// fast the run went.
	tb := newFakeGatewayClock(t, workers, true)
	settle := func(polls int) {
		for range polls {
			tb.poll()
		}
	}
	if concurrent {
		tb.rt.Start()
		settle = func(polls int) { tb.settle(t, polls) }
	}
	pub := map[int]uint16{}      // flow -> public port (or echo id) seen going out
	byRemote := map[uint64]int{} // remote endpoint -> flow
	for i, f := range flows {
		byRemote[uint64(f.remote)<<16|uint64(f.dport)] = i
	}
	var out [][]string
	for si, step := range steps {
		for _, p := range step {
			f := &flows[p.flow]
			for k, l3 := range diffBuild(t, f, p, pub) {
				q := p.queues[k] % workers
				if p.in {
					tb.out.Inject(q, fragFrame(t, macOut, macGw, l3))
				} else {
					tb.in.Inject(q, fragFrame(t, macIn, macHost, l3))
				}
			}
		}
		settle(1)
		var seen []string
		for _, fr := range ipv4Only(tb.out.Sent()) {
			seen = append(seen, "out "+diffNormOut(t, fr, byRemote, pub, si))
		}
		for _, fr := range ipv4Only(tb.in.Sent()) {
			seen = append(seen, fmt.Sprintf("in %x", fr[nat.EthernetLen:]))
		}
		slices.Sort(seen)
		out = append(out, seen)
	}
	// Let held fragments time out, identically in every run.
	tb.advance(5 * 1e9)
	settle(fragSets * fragWays / fragSweepBudget)
	if concurrent {
		tb.rt.Stop()
	}
	var v [nat.NumVerdicts]uint64
	for i := range v {
		v[i] = totalVerdict(tb, nat.Verdict(i))
	}
	// The runs can only agree while the fragment table's bounds (per
	// worker, keyed with the per-process secret) are not reached: the
	// sequence completes every datagram within its step, so none may be.
	require.Zero(t, fragCount(tb, FragRefused), "workers %d: a fragment refused", workers)
	return out, v
}

// diffBuild builds the IPv4 packets of p (several for a fragmented one, in
// their sending order).
func diffBuild(t *testing.T, f *diffFlow, p diffPkt, pub map[int]uint16) [][]byte {
	t.Helper()
	payload := []byte(fmt.Sprintf("flow %d %v %d", p.flow, p.in, p.seq))
	if p.kind == diffFrag {
		payload = append(payload, make([]byte, 1200)...)
		for i := range payload[20:] {
			payload[20+i] = byte(i * 7)
		}
	}
	pp, known := pub[p.flow]
	if !known {
		pp = 9 // never went out: an unknown public port
	}
	b := make([]byte, 2048)
	var n int
	switch {
	case !p.in && f.proto == nat.ProtoTCP:
		flags := uint8(nat.TCPFlagACK)
		if p.seq == 0 {
			flags = nat.TCPFlagSYN
		}
		n = nat.BuildTCP(b, nat.TCPSegment{Src: f.priv, Dst: f.remote, SrcPort: f.sport, DstPort: f.dport, Seq: uint32(100 + p.seq), Ack: 1, Flags: flags, TTL: 64, Payload: payload})
	case p.in && f.proto == nat.ProtoTCP && p.kind != diffICMPErr:
		flags := uint8(nat.TCPFlagACK)
		if p.seq == 0 {
			flags |= nat.TCPFlagSYN
		}
		n = nat.BuildTCP(b, nat.TCPSegment{Src: f.remote, Dst: fe1, SrcPort: f.dport, DstPort: pp, Seq: uint32(500 + p.seq), Ack: 101, Flags: flags, TTL: 64, Payload: payload})
	case !p.in && f.proto == nat.ProtoICMP:
		n = nat.BuildICMPEcho(b, f.priv, f.remote, nat.ICMPEchoRequest, f.sport, uint16(p.seq), 64, payload)
	case p.in && f.proto == nat.ProtoICMP:
		n = nat.BuildICMPEcho(b, f.remote, fe1, nat.ICMPEchoReply, pp, uint16(p.seq), 64, payload)
	case !p.in:
		n = nat.BuildUDP(b, f.priv, f.remote, f.sport, f.dport, 64, payload)
	case p.kind == diffICMPErr:
		// Port unreachable from the server about a packet it received.
		q := make([]byte, 256)
		m := nat.BuildUDP(q, fe1, f.remote, pp, f.dport, 60, []byte("quoted"))
		if f.proto == nat.ProtoTCP {
			m = nat.BuildTCP(q, nat.TCPSegment{Src: fe1, Dst: f.remote, SrcPort: pp, DstPort: f.dport, Seq: 100, Ack: 1, Flags: nat.TCPFlagACK, TTL: 60, Payload: []byte("quoted")})
		}
		n = nat.BuildICMPError(b, f.remote, fe1, 3, 3, 0, nat.IPv4(q[:m]), 64)
	default:
		n = nat.BuildUDP(b, f.remote, fe1, f.dport, pp, 64, payload)
	}
	require.NotZero(t, n)
	whole := b[:n]
	if p.kind != diffFrag {
		return [][]byte{whole}
	}
	first, rest := splitDatagram(t, whole, 400, p.fragID)
	mid, last := splitLater(t, rest, 400)
	frags := [][]byte{first, mid, last}
	var order [][]byte
	for _, i := range p.fragPerm {
		order = append(order, frags[i])
	}
	return order
}

// diffNormOut normalises a frame that left the outside port: its checksums
// are checked, then its public port (or echo id) is replaced by the flow
// it belongs to, recorded at its first sighting.
func diffNormOut(t *testing.T, fr []byte, byRemote map[uint64]int, pub map[int]uint16, step int) string {
	t.Helper()
	ip, ok := nat.ParseIPv4(fr[nat.EthernetLen:])
	require.True(t, ok, "step %d: an outbound frame is IPv4", step)
	c := append(nat.IPv4(nil), ip...)
	c.SetChecksum(0)
	require.Equal(t, c.ComputeChecksum(), ip.Checksum(), "step %d: IP checksum", step)
	if ip.FragOffset() != 0 {
		return fmt.Sprintf("%x", []byte(ip)) // a later fragment: no ports
	}
	l4 := c.Payload()
	var remotePort, portOff, sumOff int
	switch ip.Protocol() {
	case nat.ProtoTCP:
		remotePort, portOff, sumOff = int(binary.BigEndian.Uint16(l4[2:])), 0, 16
	case nat.ProtoUDP:
		remotePort, portOff, sumOff = int(binary.BigEndian.Uint16(l4[2:])), 0, 6
	case nat.ProtoICMP:
		remotePort, portOff, sumOff = 0, 4, 2
	}
	if !isFragment(ip) {
		d := append(nat.IPv4(nil), ip...)
		nat.CompleteChecksum(d)
		require.Equal(t, []byte(ip), []byte(d), "step %d: transport checksum", step)
	}
	flow, ok := byRemote[uint64(ip.Dst())<<16|uint64(remotePort)]
	require.True(t, ok, "step %d: an outbound frame of no flow: %x", step, []byte(ip))
	port := binary.BigEndian.Uint16(l4[portOff:])
	label := "P"
	if p, seen := pub[flow]; !seen {
		pub[flow] = port
	} else if p != port {
		label = fmt.Sprintf("P-changed-%d", port)
	}
	binary.BigEndian.PutUint16(l4[portOff:], 0)
	binary.BigEndian.PutUint16(l4[sumOff:], 0)
	c.SetChecksum(0)
	return fmt.Sprintf("flow %d %s %x", flow, label, []byte(c))
}

func TestRuntimeDifferential(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		diffCompare(t, seed, 40, false)
	}
}

// TestRuntimeDifferentialConcurrent is the same with the workers and the
// management core on their own goroutines, for the race detector: a
// shorter sequence, as the test waits for the dataplane to settle after
// each step.
func TestRuntimeDifferentialConcurrent(t *testing.T) {
	diffCompare(t, 4, 20, true)
}

// diffCompare runs a sequence with 1 worker (polled by hand), then with 2
// and 4, and compares the outcomes.
func diffCompare(t *testing.T, seed uint64, steps int, concurrent bool) {
	flows, seq := diffSequence(seed, steps)
	ref, refV := diffRun(t, 1, false, append([]diffFlow(nil), flows...), seq)
	var sent int
	for _, s := range ref {
		sent += len(s)
	}
	require.Greater(t, sent, 2*steps, "seed %d: the sequence does something", seed)
	for _, workers := range []int{2, 4} {
		got, gotV := diffRun(t, workers, concurrent, append([]diffFlow(nil), flows...), seq)
		for s := range ref {
			require.Equal(t, ref[s], got[s], "seed %d workers %d concurrent %v step %d", seed, workers, concurrent, s)
		}
		for v := range refV {
			require.Equal(t, refV[v], gotV[v], "seed %d workers %d concurrent %v: %s", seed, workers, concurrent, nat.Verdict(v))
		}
	}
	t.Logf("seed %d: %d flows, %d frames out, verdicts %v", seed, len(flows), sent, refV)
}

// settle waits until the running dataplane has taken in every injected
// frame and finished with it: the fake ports' receive queues, the
// handoff rings and the rings to the management core are empty, and
// every worker has then completed 2*polls more polls (a poll that starts
// after that finds nothing in flight). The management core's rings
// matter to the next step: an inside host's first packet only offers its
// MAC to the management core (Worker.glean), and a reply to that host is
// dropped (DropNoNeighbor) until the management core has published the
// neighbour; the reference run, polled by hand, drains the management
// core after every round.
func (tb *fakeGateway) settle(t *testing.T, polls int) {
	t.Helper()
	empty := func() bool {
		for _, fp := range []*FakePort{tb.in, tb.out} {
			fp.mu.Lock()
			for _, q := range fp.rx {
				if len(q) > 0 {
					fp.mu.Unlock()
					return false
				}
			}
			fp.mu.Unlock()
		}
		for _, w := range tb.rt.Workers {
			for _, r := range w.handIn {
				if r != nil && r.Len() > 0 {
					return false
				}
			}
		}
		// The management core releases a batch only after handling it
		// (Manager.drain): an empty ring means what the workers sent it,
		// a gleaned neighbour above all, is learnt and published.
		for _, r := range tb.rt.Manager.rings {
			if r.Len() > 0 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		require.True(t, time.Now().Before(deadline), "the dataplane never settled")
		if !empty() {
			time.Sleep(time.Millisecond)
			continue
		}
		at := make([]uint64, len(tb.rt.Workers))
		for i, w := range tb.rt.Workers {
			at[i] = w.Counters.Polls.Load()
		}
		for i, w := range tb.rt.Workers {
			for w.Counters.Polls.Load() < at[i]+2*uint64(polls) {
				require.True(t, time.Now().Before(deadline), "worker %d stopped polling", i)
				time.Sleep(100 * time.Microsecond)
			}
		}
		if empty() {
			return
		}
	}
}

// ipv4Only leaves out what the management core sends on its own (the
// gratuitous ARP for natgw's addresses, whenever its loop gets to it in a
// concurrent run): the comparison is of translated traffic.
func ipv4Only(frames [][]byte) [][]byte {
	var ip [][]byte
	for _, fr := range frames {
		if len(fr) >= nat.EthernetLen && nat.Ethernet(fr).EtherType() == nat.EtherTypeIPv4 {
			ip = append(ip, fr)
		}
	}
	return ip
}
