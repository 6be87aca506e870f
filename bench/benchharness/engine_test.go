package main

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/lcore"
)

// fakeNat is an in-memory NAT behind the engine's four queues: what the
// generator transmits inside comes out outside with a public source, and
// back. Its rings hold ringCap frames; a full ring refuses frames, as the
// DPDK rings do. It allocates nothing once its mappings exist.
type fakeNat struct {
	out, in  fakeRing // frames natgw "emits" outside / inside
	fwd      map[flowSpec]uint16
	rev      []flowSpec // by public port - genPortLo
	dropNext int        // inbound frames to lose (a "DUT" drop)
	mangle   bool       // translate the inbound destination port wrong
	loseOut  int        // outbound frames to lose
	// stall, when set, holds each translated outbound frame that long
	// before it comes out (a stalled worker): in held, taken at heldAt.
	stall  time.Duration
	held   fakeRing
	heldAt []time.Time
}

const fakePub = 0xc6130a0a // 198.19.10.10

type fakeRing struct {
	bufs [][]byte
	pkts []*lcore.Packet
	head int
	n    int
}

func newFakeRing(capacity int) fakeRing {
	r := fakeRing{bufs: make([][]byte, capacity), pkts: make([]*lcore.Packet, capacity)}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, 64)
		r.pkts[i] = &lcore.Packet{}
	}
	return r
}

func (r *fakeRing) push(f []byte) bool {
	if r.n == len(r.bufs) {
		return false
	}
	i := (r.head + r.n) % len(r.bufs)
	r.bufs[i] = r.bufs[i][:len(f)]
	copy(r.bufs[i], f)
	r.n++
	return true
}

func (r *fakeRing) pop(pkts []*lcore.Packet) int {
	k := 0
	for ; k < len(pkts) && r.n > 0; k++ {
		p := r.pkts[r.head]
		p.Data = r.bufs[r.head]
		pkts[k] = p
		r.head = (r.head + 1) % len(r.bufs)
		r.n--
	}
	return k
}

func newFakeNat(ringCap int) *fakeNat {
	return &fakeNat{out: newFakeRing(ringCap), in: newFakeRing(ringCap), fwd: map[flowSpec]uint16{},
		held: newFakeRing(ringCap), heldAt: make([]time.Time, ringCap)}
}

// queues returns the generator's ends.
func (n *fakeNat) queues() genQueues {
	return genQueues{InTx: fakeQueue{tx: n.outbound}, InRx: fakeQueue{rx: &n.in},
		OutTx: fakeQueue{tx: n.inbound}, OutRx: fakeQueue{rx: &n.out, poll: n.release}}
}

// release moves the held frames whose stall is over to the outbound ring
// (while it has room).
func (n *fakeNat) release() {
	h := &n.held
	for h.n > 0 && time.Since(n.heldAt[h.head]) >= n.stall && n.out.push(h.bufs[h.head]) {
		h.head = (h.head + 1) % len(h.bufs)
		h.n--
	}
}

var scratch [64]byte

func (n *fakeNat) outbound(f []byte) bool {
	var p genPacket
	if parseGenFrame(f, &p) != nil {
		return true
	}
	k := flowSpec{Src: p.Src, Dst: p.Dst, Sport: p.Sport, Dport: p.Dport}
	port, ok := n.fwd[k]
	if !ok {
		port = uint16(genPortLo + len(n.rev))
		n.fwd[k] = port
		n.rev = append(n.rev, k)
	}
	if n.loseOut > 0 {
		n.loseOut--
		return true // taken, then lost inside the "DUT"
	}
	f = writeGenFrame(scratch[:], gatewayMAC, toNatgwMAC, fakePub, p.Dst, port, p.Dport, p.Kind, p.Flow, p.Sent)
	if n.stall > 0 {
		n.heldAt[(n.held.head+n.held.n)%len(n.heldAt)] = time.Now()
		return n.held.push(f)
	}
	return n.out.push(f)
}

func (n *fakeNat) inbound(f []byte) bool {
	var p genPacket
	if parseGenFrame(f, &p) != nil || p.Dst != fakePub || int(p.Dport)-genPortLo >= len(n.rev) {
		return true
	}
	if n.dropNext > 0 {
		n.dropNext--
		return true // taken, then lost inside the "DUT"
	}
	k := n.rev[int(p.Dport)-genPortLo]
	if n.mangle {
		k.Sport++
	}
	return n.in.push(writeGenFrame(scratch[:], sourceMAC(k.Src), toNatgwMAC, p.Src, k.Src, p.Sport, k.Sport, p.Kind, p.Flow, p.Sent))
}

type fakeQueue struct {
	tx   func([]byte) bool
	rx   *fakeRing
	poll func() // before each receive, when set
}

func (q fakeQueue) RxBurst(pkts []*lcore.Packet) int {
	if q.rx == nil {
		return 0
	}
	if q.poll != nil {
		q.poll()
	}
	return q.rx.pop(pkts)
}

func (q fakeQueue) TxBurst(pkts []*lcore.Packet) int {
	for i, p := range pkts {
		if !q.tx(p.Data) {
			return i
		}
	}
	return len(pkts)
}

func (q fakeQueue) Free([]*lcore.Packet) {}
func (q fakeQueue) Wait(int64)           {}

func newTestEngine(t *testing.T, flows, ringCap int) (*engine, *fakeNat) {
	tr, err := newTraffic(flows)
	require.NoError(t, err)
	g, err := newGenFlows(tr, 3)
	require.NoError(t, err)
	n := newFakeNat(ringCap)
	e := newEngine(n.queues(), g)
	e.Drain = 5 * time.Millisecond
	return e, n
}

func TestEngineConnectAndTraffic(t *testing.T) {
	e, n := newTestEngine(t, 3000, 4096)
	c := e.connect(1_000_000)
	assert.True(t, c.pass(), "%+v", c)
	assert.Equal(t, uint64(3000), c.Established)
	assert.Equal(t, uint64(3000), c.First.Received)
	assert.Equal(t, uint64(3000), c.Answer.Received)
	require.NoError(t, e.checkLearnt())
	assert.Len(t, n.rev, 3000, "one mapping per flow")

	r := e.traffic(1_000_000, 20*time.Millisecond)
	assert.True(t, r.pass(), "%+v", r)
	assert.Equal(t, r.Out.Offered, r.Out.Received)
	assert.Equal(t, r.In.Offered, r.In.Received)
	offered := r.Out.Offered + r.In.Offered
	assert.Equal(t, uint64(20_000), r.Due, "1 Mpps for 20 ms")
	assert.LessOrEqual(t, offered, r.Due, "paced: never ahead of the rate")
	assert.Equal(t, float64(offered) < 0.999*float64(r.Due), r.Limited, "a generator behind its rate says so")
	assert.Equal(t, r.Out.Received+r.In.Received, e.hist.total, "every frame's latency is recorded")
	assert.Len(t, n.rev, 3000, "phase 2 creates no flow")

	n.dropNext = 1
	r = e.traffic(1_000_000, 5*time.Millisecond)
	assert.False(t, r.pass())
	assert.Equal(t, uint64(1), r.lost(), "one frame lost inbound is a failed step")
	assert.Equal(t, uint64(1), r.In.lost())

	n.mangle = true
	r = e.traffic(1_000_000, 5*time.Millisecond)
	assert.False(t, r.pass(), "a wrong translation fails the step")
	assert.NotZero(t, r.In.Bad)
}

func TestEngineLossAtFullRing(t *testing.T) {
	// A ring of 8 frames that nobody drains between the generator's
	// bursts cannot take 32 frames at once: the frames it refuses are
	// offered and lost, not retried.
	e, _ := newTestEngine(t, 100, 8)
	c := e.connect(100_000_000)
	assert.False(t, c.pass())
	assert.Greater(t, c.First.Offered, c.First.Accepted)
	assert.Less(t, c.Established, uint64(100))
}

func TestEngineConnectFailsWithoutAnswers(t *testing.T) {
	e, n := newTestEngine(t, 500, 4096)
	n.dropNext = 1
	c := e.connect(1_000_000)
	assert.False(t, c.pass(), "a connection whose answer is lost does not count")
	assert.Equal(t, uint64(499), c.Established)
	assert.NoError(t, e.checkLearnt(), "the lost answer's flow has its public endpoint learnt all the same")
	m := e.connectMissing(1_000_000)
	assert.True(t, m.pass(), "%+v", m)
	assert.Equal(t, uint64(1), m.Flows, "only the missing connection is sent again")
	assert.Equal(t, uint64(1), m.First.Offered)
}

// TestFillOutlastsAStalledNat is the regression test of the 16 M fill
// (BENCHMARKS.md): natgw's worker stalled for longer than a short round
// of re-sending lasted, translated the round's first packets after the
// generator had stopped waiting, and the fill gave up with those
// connections missing, although natgw had counted them translated.
func TestFillOutlastsAStalledNat(t *testing.T) {
	e, n := newTestEngine(t, 2000, 4096)
	n.loseOut = 300
	first := e.connect(1_000_000)
	require.Equal(t, uint64(1700), first.Established)
	n.stall = 100 * time.Millisecond // the trials' drain (e.Drain) is 5 ms
	rounds := 0
	last, err := fillMissing(first, &e.Drain, func(int) (connectResult, error) {
		rounds++
		return e.connectMissing(100_000), nil
	})
	require.NoError(t, err)
	assert.True(t, last.pass(), "%+v", last)
	assert.Equal(t, 1, rounds, "one round, which waits for the stalled frames")
	assert.NoError(t, e.checkLearnt())
	assert.Equal(t, 5*time.Millisecond, e.Drain, "the trials' drain is restored")
}

func TestFillMissingStopsOnError(t *testing.T) {
	e, n := newTestEngine(t, 100, 4096)
	n.loseOut = 10
	first := e.connect(1_000_000)
	require.False(t, first.pass())
	boom := errors.New("counters unreadable")
	rounds := 0
	_, err := fillMissing(first, &e.Drain, func(int) (connectResult, error) {
		rounds++
		return e.connectMissing(100_000), boom
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 1, rounds)
	assert.Equal(t, 5*time.Millisecond, e.Drain, "the trials' drain is restored")
}

func TestEngineTrafficAllocs(t *testing.T) {
	e, _ := newTestEngine(t, 1000, 4096)
	require.True(t, e.connect(1_000_000).pass())
	allocs := testing.AllocsPerRun(5, func() { e.traffic(2_000_000, 2*time.Millisecond) })
	assert.Zero(t, allocs, "the generator's packet loop allocates nothing")
}
