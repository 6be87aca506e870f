package lcore

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// fragFrame wraps an IPv4 packet (a fragment) in an Ethernet frame.
func fragFrame(t *testing.T, dst, src [6]byte, l3 []byte) []byte {
	return frame(t, dst, src, func(b []byte) int { return copy(b, l3) })
}

// totalVerdict sums a verdict's counter over the workers.
func totalVerdict(tb *fakeGateway, v nat.Verdict) uint64 {
	var n uint64
	for _, w := range tb.rt.Workers {
		w.publish()
		n += w.Counters.Verdicts[v].Load()
	}
	return n
}

// TestFragmentsAnyIDAnyWorker sends fragmented datagrams both ways with
// many IP ids, each fragment arriving on a random worker's queue: every
// fragment must be translated, the flow must live on its owner (so the
// reply, fragmented too, finds it) and nothing is dropped.
func TestFragmentsAnyIDAnyWorker(t *testing.T) {
	for _, workers := range []int{2, 4} {
		tb := newFakeGateway(t, workers)
		rng := rand.New(rand.NewPCG(13, uint64(workers)))
		for i := 0; i < 96; i++ {
			sport := uint16(41000 + i)
			dport := uint16(1 + rng.IntN(65535))
			id := uint16(rng.Uint32())
			whole := make([]byte, 2048)
			whole = whole[:nat.BuildUDP(whole, member, server, sport, dport, 64, make([]byte, 1400))]
			first, second := splitDatagram(t, whole, 1000, id)
			tb.in.Inject(rng.IntN(workers), fragFrame(t, macIn, macHost, first))
			tb.in.Inject(rng.IntN(workers), fragFrame(t, macIn, macHost, second))
			tb.poll()
			sent := tb.out.Sent()
			require.Equal(t, 2, len(sent), "workers=%d id=%#x: both fragments leave", workers, id)
			var pub uint16
			for _, f := range sent {
				_, ip := parseFrame(t, f)
				assert.Equal(t, fe1, ip.Src())
				if ip.FragOffset() == 0 {
					pub = nat.UDP(ip.Payload()).SrcPort()
				}
			}
			require.NotZero(t, pub)
			owner := tb.rt.Owner.Of(server, dport)
			for j, w := range tb.rt.Workers {
				k := nat.OutKey{Priv: member, Remote: server, PrivPort: sport, RemotePort: dport, Proto: nat.ProtoUDP}
				if ok := w.tr.Flows().LookupOut(&k) != 0; ok != (j == owner) {
					t.Fatalf("workers=%d id=%#x: worker %d holds the flow: %v (owner %d)", workers, id, j, ok, owner)
				}
			}

			// The reply, fragmented by the server, reaches the host.
			whole = make([]byte, 2048)
			whole = whole[:nat.BuildUDP(whole, server, fe1, dport, pub, 64, make([]byte, 1400))]
			first, second = splitDatagram(t, whole, 1000, uint16(rng.Uint32()))
			tb.out.Inject(rng.IntN(workers), fragFrame(t, macOut, macGw, first))
			tb.out.Inject(rng.IntN(workers), fragFrame(t, macOut, macGw, second))
			tb.poll()
			sent = tb.in.Sent()
			require.Equal(t, 2, len(sent), "workers=%d: both reply fragments arrive", workers)
			for _, f := range sent {
				_, ip := parseFrame(t, f)
				assert.Equal(t, member, ip.Dst())
			}
		}
		for _, v := range []nat.Verdict{nat.DropFragment, nat.DropNoFlow, nat.DropHandoffFull} {
			assert.Zero(t, totalVerdict(tb, v), "workers=%d: %s drops", workers, v)
		}
	}
}

// fragCount sums a fragment table counter over the workers.
func fragCount(tb *fakeGateway, c int) uint64 {
	var n uint64
	for _, w := range tb.rt.Workers {
		w.publish()
		n += w.Counters.Frag[c].Load()
	}
	return n
}

// TestFragmentsOutOfOrder sends the later fragments of datagrams before
// their first (RFC 4787 REQ-14), each on a random worker's queue: they are
// held and leave after the first, which leaves first.
func TestFragmentsOutOfOrder(t *testing.T) {
	for _, workers := range []int{1, 2, 4} {
		tb := newFakeGateway(t, workers)
		rng := rand.New(rand.NewPCG(14, uint64(workers)))
		for i := 0; i < 48; i++ {
			sport := uint16(42000 + i)
			dport := uint16(1 + rng.IntN(65535))
			whole := make([]byte, 4096)
			whole = whole[:nat.BuildUDP(whole, member, server, sport, dport, 64, make([]byte, 1400))]
			first, rest := splitDatagram(t, whole, 600, uint16(rng.Uint32()))
			// Cut the rest in two: a middle and a last fragment.
			mid, last := splitLater(t, rest, 400)
			tb.in.Inject(rng.IntN(workers), fragFrame(t, macIn, macHost, last))
			tb.in.Inject(rng.IntN(workers), fragFrame(t, macIn, macHost, mid))
			tb.poll()
			require.Empty(t, tb.out.Sent(), "workers=%d: held", workers)
			tb.in.Inject(rng.IntN(workers), fragFrame(t, macIn, macHost, first))
			tb.poll()
			sent := tb.out.Sent()
			require.Equal(t, 3, len(sent), "workers=%d: all three leave", workers)
			for j, f := range sent {
				_, ip := parseFrame(t, f)
				assert.Equal(t, fe1, ip.Src())
				if j == 0 {
					assert.Zero(t, ip.FragOffset(), "the first fragment leaves first")
				}
			}
		}
		assert.Equal(t, uint64(96), fragCount(tb, FragHeld), "workers=%d", workers)
		assert.Equal(t, uint64(96), fragCount(tb, FragReleased), "workers=%d", workers)
		assert.Zero(t, totalVerdict(tb, nat.DropFragment), "workers=%d", workers)
		for _, w := range tb.rt.Workers {
			for d := range w.frags.dir {
				assert.Len(t, w.frags.dir[d].freeHold, fragHoldSlots, "every hold slot is free again")
			}
		}
	}
}

// splitLater cuts a later fragment in two at payload offset at (a multiple
// of 8): the first part has more fragments set.
func splitLater(t *testing.T, frag []byte, at int) (a, b []byte) {
	t.Helper()
	ip, ok := nat.ParseIPv4(frag)
	require.True(t, ok)
	off := ip.FragOffset()
	mf := frag[6] & 0x20
	pl := ip.Payload()
	a = append(append([]byte(nil), frag[:20]...), pl[:at]...)
	b = append(append([]byte(nil), frag[:20]...), pl[at:]...)
	for i, f := range []nat.IPv4{a, b} {
		f.SetTotalLen(uint16(len(f)))
		o := off / 8
		flags := byte(0x20)
		if i == 1 {
			o += at / 8
			flags = mf
		}
		f[6], f[7] = flags|byte(o>>8), byte(o)
		f.SetChecksum(0)
		f.SetChecksum(f.ComputeChecksum())
	}
	return a, b
}

// TestFragmentHoldBounds: held fragments whose first fragment never comes
// are dropped (counted) after the timeout, and the hold area is bounded
// per datagram.
func TestFragmentHoldBounds(t *testing.T) {
	tb := newFakeGateway(t, 1)
	whole := make([]byte, 4096)
	whole = whole[:nat.BuildUDP(whole, member, server, 40000, 53, 64, make([]byte, 1600))]
	_, rest := splitDatagram(t, whole, 8, 0x7777)
	// Twelve copies of a later fragment: fragMaxHeld are held, the rest
	// refused.
	for i := 0; i < 12; i++ {
		tb.in.Inject(0, fragFrame(t, macIn, macHost, rest))
	}
	tb.poll()
	assert.Equal(t, uint64(fragMaxHeld), fragCount(tb, FragHeld))
	assert.Equal(t, uint64(12-fragMaxHeld), fragCount(tb, FragRefused))
	assert.Equal(t, uint64(12-fragMaxHeld), totalVerdict(tb, nat.DropFragment))
	tb.advance(3 * time.Second)
	for range fragSets * fragWays / fragSweepBudget {
		tb.poll()
	}
	assert.Equal(t, uint64(fragMaxHeld), fragCount(tb, FragTimedOut))
	assert.Equal(t, uint64(12), totalVerdict(tb, nat.DropFragment))
	assert.Empty(t, tb.out.Sent())
	d := &tb.rt.Workers[0].frags.dir[PortInside]
	assert.Len(t, d.freeHold, fragHoldSlots)
	for _, u := range d.srcUse {
		require.Zero(t, u, "the source's usage is back to 0")
	}
}

// TestFragmentStateFromOutsideCannotEvictInside: an outside host sending
// fragments from many (spoofed) sources and many ids can't take an inside
// datagram's state, and one source can't hold more than its share.
func TestFragmentStateFromOutsideCannotEvictInside(t *testing.T) {
	tb := newFakeGateway(t, 1)
	whole := make([]byte, 2048)
	whole = whole[:nat.BuildUDP(whole, member, server, 40000, 53, 64, make([]byte, 1400))]
	first, second := splitDatagram(t, whole, 1000, 0x4242)
	tb.in.Inject(0, fragFrame(t, macIn, macHost, first))
	tb.poll()
	require.Len(t, tb.out.Sent(), 1)

	rng := rand.New(rand.NewPCG(6, 6))
	attack := func(src uint32, n int) {
		for i := 0; i < n; i++ {
			b := make([]byte, 2048)
			b = b[:nat.BuildUDP(b, src, fe1, 53, uint16(1024+rng.IntN(60000)), 64, make([]byte, 64))]
			f, _ := splitDatagram(t, b, 16, uint16(rng.Uint32()))
			tb.out.Inject(0, fragFrame(t, macOut, macGw, f))
			if i%64 == 63 {
				tb.poll()
			}
		}
		tb.poll()
	}
	// Many sources: more datagrams than the table holds.
	for i := 0; i < 3*fragSets*fragWays; i++ {
		attack(rng.Uint32(), 1)
	}
	// One source: its share, then refusals.
	before := fragCount(tb, FragRefused)
	attack(server+1, 4*fragSourceLimit)
	assert.GreaterOrEqual(t, fragCount(tb, FragRefused)-before, uint64(3*fragSourceLimit),
		"one source holds at most its share")
	d := &tb.rt.Workers[0].frags.dir[PortOutside]
	assert.LessOrEqual(t, d.srcUse[sourceSlot(server+1)], uint16(fragSourceLimit))
	tb.in.Sent()

	// The inside datagram's later fragment still finds its ports.
	tb.in.Inject(0, fragFrame(t, macIn, macHost, second))
	tb.poll()
	sent := tb.out.Sent()
	require.Len(t, sent, 1, "the inside datagram's state survived")
	_, ip := parseFrame(t, sent[0])
	assert.Equal(t, fe1, ip.Src())
}

// cycleQueue hands out its frames in turn, forever, from one buffer per
// frame, and drops what it is given: allocation tests. Each round through
// the frames adds 4*(round%8) to their IP ids (new datagrams) and calls
// onRound.
type cycleQueue struct {
	frames  [][]byte
	pkts    []Packet
	next    int
	onRound func()
}

func (q *cycleQueue) RxBurst(pkts []*Packet) int {
	n := min(len(pkts), len(q.frames))
	for i := 0; i < n; i++ {
		j := q.next % len(q.frames)
		round := q.next / len(q.frames)
		q.next++
		if j == 0 && q.onRound != nil {
			q.onRound()
		}
		p := &q.pkts[j]
		p.Data = p.Data[:len(q.frames[j])]
		copy(p.Data, q.frames[j])
		ip := nat.IPv4(p.Data[nat.EthernetLen:])
		ip.SetID(ip.ID() + uint16(4*(round%8)))
		ip.SetChecksum(0)
		ip.SetChecksum(ip.ComputeChecksum())
		p.Flags = 0
		pkts[i] = p
	}
	return n
}
func (q *cycleQueue) TxBurst(pkts []*Packet) int { return len(pkts) }
func (q *cycleQueue) Free([]*Packet)             {}
func (q *cycleQueue) Wait(int64)                 {}

// TestFragmentPathNoAllocs: holding a later fragment, then releasing it
// behind its first, allocates nothing.
func TestFragmentPathNoAllocs(t *testing.T) {
	tb := newFakeGateway(t, 1)
	good := udpFrame(t, macIn, macHost, member, server, 40000, 53, 64)
	tb.in.Inject(0, good)
	tb.poll()
	require.Len(t, tb.out.Sent(), 1)
	whole := make([]byte, 2048)
	whole = whole[:nat.BuildUDP(whole, member, server, 40000, 53, 64, make([]byte, 1400))]
	var frames [][]byte
	for id := uint16(1); id <= 4; id++ {
		first, second := splitDatagram(t, whole, 1000, id)
		frames = append(frames, fragFrame(t, macIn, macHost, second), fragFrame(t, macIn, macHost, first))
	}
	q := &cycleQueue{frames: frames, pkts: make([]Packet, len(frames)), onRound: func() { tb.advance(time.Second) }}
	for i := range q.pkts {
		q.pkts[i].Data = make([]byte, 0, 2048)
	}
	w := tb.rt.Workers[0]
	w.q[PortInside] = q
	w.q[PortOutside] = &loopQueue{pkt: Packet{Data: make([]byte, 0, 2048)}}
	w.PollOnce()
	w.publish()
	before := w.Counters.Frag[FragReleased].Load()
	allocs := testing.AllocsPerRun(200, func() { w.PollOnce() })
	assert.Zero(t, allocs)
	w.publish()
	assert.Greater(t, w.Counters.Frag[FragReleased].Load()-before, uint64(200*len(frames)/2-8), "fragments were held and released")
	assert.Zero(t, w.Counters.Verdicts[nat.DropFragment].Load())
}

// TestFragmentAfterTheLast: a middle fragment reordered well behind the
// last one still finds its datagram's ports (the state lingers only once
// every byte went through).
func TestFragmentAfterTheLast(t *testing.T) {
	tb := newFakeGateway(t, 1)
	whole := make([]byte, 4096)
	whole = whole[:nat.BuildUDP(whole, member, server, 40000, 53, 64, make([]byte, 1400))]
	first, rest := splitDatagram(t, whole, 600, 0x3131)
	mid, last := splitLater(t, rest, 400)
	tb.in.Inject(0, fragFrame(t, macIn, macHost, first))
	tb.in.Inject(0, fragFrame(t, macIn, macHost, last))
	tb.poll()
	require.Len(t, tb.out.Sent(), 2)
	tb.advance(500 * time.Millisecond)
	tb.in.Inject(0, fragFrame(t, macIn, macHost, mid))
	tb.poll()
	require.Len(t, tb.out.Sent(), 1, "the middle fragment leaves too")
	assert.Zero(t, totalVerdict(tb, nat.DropFragment))
}

// TestFragmentCompleteDatagramsFreeTheirPlace: a datagram whose every byte
// went through no longer holds its source's share nor its way of the set,
// so a host sending fragmented datagrams faster than they linger is not
// refused, and a set full of complete datagrams takes a new one. (Before,
// both were refused until the linger ran out: which datagram was refused
// depended on the process's hash secret and how fast the clock moved.)
func TestFragmentCompleteDatagramsFreeTheirPlace(t *testing.T) {
	tb := newFakeGatewayClock(t, 1, true)
	send := func(src, dst uint32, id uint16) {
		whole := make([]byte, 2048)
		whole = whole[:nat.BuildUDP(whole, src, dst, 40000, 53, 64, make([]byte, 600))]
		first, second := splitDatagram(t, whole, 304, id)
		tb.in.Inject(0, fragFrame(t, macIn, macHost, first))
		tb.in.Inject(0, fragFrame(t, macIn, macHost, second))
	}
	// One source, many complete datagrams while the clock stands still.
	for i := range 4 * fragSourceLimit {
		send(member, server, uint16(i))
		if i%16 == 15 {
			tb.poll()
		}
	}
	tb.poll()
	assert.Zero(t, fragCount(tb, FragRefused), "complete datagrams hold no source share")
	assert.Equal(t, 2*4*fragSourceLimit, len(tb.out.Sent()))
	d := &tb.rt.Workers[0].frags.dir[PortInside]
	assert.Zero(t, d.srcUse[sourceSlot(member)])

	// One set: fragWays complete datagrams, then more to the same set.
	k := fragKey{src: member, dst: server + 1, proto: nat.ProtoUDP}
	set := uint32(k.hash()) % fragSets
	var n int
	for id := 0; id < 1<<16 && n < 2*fragWays; id++ {
		k.id = uint16(id)
		if uint32(k.hash())%fragSets == set {
			send(member, server+1, uint16(id))
			tb.poll()
			n++
		}
	}
	require.Equal(t, 2*fragWays, n)
	assert.Zero(t, fragCount(tb, FragRefused), "a set of complete datagrams takes a new one")
	assert.Equal(t, 2*2*fragWays, len(tb.out.Sent()))
}

// assertFragLive checks each fragment table's count of live entries, which
// lets a poll skip the sweep while the table is empty, against the entries.
func assertFragLive(t *testing.T, tb *fakeGateway) {
	t.Helper()
	for wi, w := range tb.rt.Workers {
		for di := range w.frags.dir {
			d := &w.frags.dir[di]
			var used int
			for i := range d.entries {
				if d.entries[i].used {
					used++
				}
			}
			assert.Equal(t, used, d.live, "worker %d direction %d: live entries", wi, di)
		}
	}
}

// TestFragmentTableEmptiesAndStopsSweeping fills the tables with complete
// and incomplete datagrams; the count of live entries follows them, and
// once the entries have expired and been swept it is 0 again.
func TestFragmentTableEmptiesAndStopsSweeping(t *testing.T) {
	tb := newFakeGatewayClock(t, 2, true)
	rng := rand.New(rand.NewPCG(5, 7))
	for i := range 200 {
		whole := make([]byte, 2048)
		whole = whole[:nat.BuildUDP(whole, member, server, uint16(40000+i), 53, 64, make([]byte, 600))]
		first, second := splitDatagram(t, whole, 304, uint16(rng.Uint32()))
		if i%3 != 0 { // every third datagram stays incomplete
			tb.in.Inject(rng.IntN(2), fragFrame(t, macIn, macHost, first))
		}
		tb.in.Inject(rng.IntN(2), fragFrame(t, macIn, macHost, second))
		tb.poll()
		assertFragLive(t, tb)
	}
	var live int
	for _, w := range tb.rt.Workers {
		live += w.frags.dir[PortInside].live
	}
	require.NotZero(t, live, "datagrams are tracked")
	tb.advance(2 * time.Duration(fragTimeout) * time.Millisecond)
	for range fragSets * fragWays / fragSweepBudget {
		tb.poll()
	}
	assertFragLive(t, tb)
	for _, w := range tb.rt.Workers {
		assert.Zero(t, w.frags.dir[PortInside].live, "every entry expired and was swept")
	}
}
