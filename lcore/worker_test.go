package lcore

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

var (
	macIn   = [6]byte{2, 0, 0, 0, 1, 1}
	macOut  = [6]byte{2, 0, 0, 0, 2, 2}
	macHost = [6]byte{2, 0, 0, 0, 1, 9}
	macGw   = [6]byte{2, 0, 0, 0, 2, 9}
	member  = a4("10.0.1.4")
	server  = a4("198.18.0.10")
	fe1     = a4("198.19.1.10")
	gateway = a4("198.19.0.1")
)

func a4(s string) uint32 { return nat.U32(netip.MustParseAddr(s)) }

// testbed is a runtime on fake ports, driven by hand: PollOnce on the
// workers and drain on the management core, no goroutines.
type testbed struct {
	rt      *Runtime
	in, out *FakePort
	// skew is added to the dataplane clock (advance moves time on).
	skew atomic.Int64
}

// advance moves the dataplane clock on by d.
func (tb *testbed) advance(d time.Duration) { tb.skew.Add(int64(d / time.Millisecond)) }

func newTestbed(t *testing.T, workers int) *testbed {
	t.Helper()
	return newTestbedClock(t, workers, false)
}

// newTestbedClock is newTestbed; with manual, the dataplane clock stands
// still but for advance, so no timeout depends on how fast the test runs.
func newTestbedClock(t *testing.T, workers int, manual bool) *testbed {
	t.Helper()
	tb := &testbed{in: NewFakePort("in", macIn, workers+1), out: NewFakePort("out", macOut, workers+1)}
	var err error
	start := time.Now()
	clock := func() nat.Tick { return nat.Tick(time.Since(start)/time.Millisecond+1) + nat.Tick(tb.skew.Load()) }
	if manual {
		clock = func() nat.Tick { return 1 + nat.Tick(tb.skew.Load()) }
	}
	tb.rt, err = NewRuntime(RuntimeConfig{
		Clock:   clock,
		Workers: workers, Ports: [NumPorts]Port{tb.in, tb.out}, Policy: testHolder(t), FlowCapacity: 4096,
		// The member is static: confirmed for the source check, so the
		// tests see no ARP asking to confirm it (sourcecheck_test.go tests that).
		Static: []StaticNeighbor{{Addr: gateway, MAC: macGw}, {Addr: member, MAC: macHost}},
		Log:    slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	tb.rt.Manager.applyStatic()
	return tb
}

// defaultTimeouts are the configuration's default idle timeouts [S5].
var defaultTimeouts = nat.Timeouts{
	TCPEstablished: nat.TickFromDuration(4 * time.Minute),
	TCPTransitory:  nat.TickFromDuration(30 * time.Second),
	TCPClosing:     nat.TickFromDuration(10 * time.Second),
	UDP:            nat.TickFromDuration(4 * time.Minute),
	ICMP:           nat.TickFromDuration(60 * time.Second),
}

// testSpec is the test policy: natgw at 10.0.0.1/16 inside and
// 198.19.0.2/24 outside, one pool "web" of 10.0.1.4 and 10.0.1.5 on the
// frontend fe1, and the configuration's defaults for the rest.
func testSpec() nat.PolicySpec {
	return nat.PolicySpec{
		Inside:             nat.Prefix{Addr: a4("10.0.0.1"), Bits: 16},
		Outside:            nat.Prefix{Addr: a4("198.19.0.2"), Bits: 24},
		Gateway:            gateway,
		SourceCheck:        true,
		Timeouts:           defaultTimeouts,
		HostFlowPercent:    25,
		InboundFlowPercent: 50,
		Frontends:          []uint32{fe1},
		Pools:              []nat.PoolSpec{{Name: "web", Frontends: []uint32{fe1}, Members: []uint32{member, a4("10.0.1.5")}}},
	}
}

// compileSpec compiles s against prev and fails the test on an error.
func compileSpec(t testing.TB, s nat.PolicySpec, prev *nat.Policy) *nat.Policy {
	t.Helper()
	p, err := nat.Compile(s, prev)
	require.NoError(t, err)
	return p
}

// holderOf returns a policy holder holding p.
func holderOf(p *nat.Policy) *nat.PolicyHolder {
	var holder nat.PolicyHolder
	holder.Store(p)
	return &holder
}

// testHolder holds the policy of testSpec.
func testHolder(t testing.TB) *nat.PolicyHolder {
	t.Helper()
	return holderOf(compileSpec(t, testSpec(), nil))
}

// poll runs every worker, then the management core, a few rounds.
func (tb *testbed) poll() {
	for round := 0; round < 3; round++ {
		for _, w := range tb.rt.Workers {
			w.PollOnce()
		}
		tb.rt.Manager.drain(time.Now())
	}
}

func frame(t *testing.T, dst, src [6]byte, build func(b []byte) int) []byte {
	t.Helper()
	b := make([]byte, 2048)
	n := build(b[nat.EthernetLen:])
	require.NotZero(t, n)
	nat.WriteEthernet(b, dst, src, nat.EtherTypeIPv4)
	return b[:nat.EthernetLen+n]
}

func udpFrame(t *testing.T, dst, src [6]byte, sip, dip uint32, sport, dport uint16, ttl uint8) []byte {
	return frame(t, dst, src, func(b []byte) int { return nat.BuildUDP(b, sip, dip, sport, dport, ttl, []byte("hello")) })
}

func parseFrame(t *testing.T, f []byte) (nat.Ethernet, nat.IPv4) {
	t.Helper()
	eth := nat.Ethernet(f)
	require.Equal(t, uint16(nat.EtherTypeIPv4), eth.EtherType())
	ip, ok := nat.ParseIPv4(f[nat.EthernetLen:])
	require.True(t, ok)
	return eth, ip
}

func TestWorkerTranslatesBothWays(t *testing.T) {
	tb := newTestbed(t, 1)
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 53, 64))
	tb.poll()
	sent := tb.out.Sent()
	require.Len(t, sent, 1)
	eth, ip := parseFrame(t, sent[0])
	assert.Equal(t, macGw, eth.Dst(), "to the gateway's static MAC")
	assert.Equal(t, macOut, eth.Src())
	assert.Equal(t, fe1, ip.Src())
	assert.Equal(t, uint8(63), ip.TTL())
	pub := nat.UDP(ip.Payload()).SrcPort()

	// The reply goes to the host, whose MAC natgw gleaned from its frame.
	tb.out.Inject(0, udpFrame(t, macOut, macGw, server, fe1, 53, pub, 64))
	tb.poll()
	sent = tb.in.Sent()
	require.Len(t, sent, 1)
	eth, ip = parseFrame(t, sent[0])
	assert.Equal(t, macHost, eth.Dst())
	assert.Equal(t, macIn, eth.Src())
	assert.Equal(t, member, ip.Dst())
	assert.Equal(t, uint16(40000), nat.UDP(ip.Payload()).DstPort())

	c := &tb.rt.Workers[0].Counters
	assert.Equal(t, uint64(1), c.Packets[nat.DirOut].Load())
	assert.Equal(t, uint64(1), c.Packets[nat.DirIn].Load())
	assert.Equal(t, uint64(1), c.FlowsActive[nat.ProtoIndex(nat.ProtoUDP)].Load())
}

func TestHandoffToTheOwner(t *testing.T) {
	tb := newTestbed(t, 2)
	// Find a destination port owned by worker 1 and inject on worker 0.
	var dport uint16 = 1
	for tb.rt.Owner.Of(server, dport) != 1 {
		dport++
	}
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, dport, 64))
	tb.poll()
	sent := tb.out.Sent()
	require.Len(t, sent, 1)
	_, ip := parseFrame(t, sent[0])
	assert.Equal(t, fe1, ip.Src())
	assert.Equal(t, uint64(1), tb.rt.Workers[0].Counters.HandoffPackets.Load())
	assert.Zero(t, tb.rt.Workers[0].tr.Flows().Len(), "the receiving worker holds no flow")
	assert.Equal(t, 1, tb.rt.Workers[1].tr.Flows().Len(), "the owner does")

	// The reply arriving on worker 0's queue of the outside port is handed
	// to worker 1 too, which finds the flow.
	pub := nat.UDP(ip.Payload()).SrcPort()
	tb.out.Inject(0, udpFrame(t, macOut, macGw, server, fe1, dport, pub, 64))
	tb.poll()
	require.Len(t, tb.in.Sent(), 1)
	assert.Equal(t, uint64(2), tb.rt.Workers[0].Counters.HandoffPackets.Load())
}

func TestFragmentsFollowTheFirstAcrossWorkers(t *testing.T) {
	for _, workers := range []int{1, 2} {
		tb := newTestbed(t, workers)
		whole := make([]byte, 2048)
		n := nat.BuildUDP(whole, member, server, 40000, 53, 64, make([]byte, 1400))
		whole = whole[:n]
		first, second := splitDatagram(t, whole, 1000, 0x4242)
		tb.in.Inject(0, frame(t, macIn, macHost, func(b []byte) int { return copy(b, first) }))
		tb.in.Inject(0, frame(t, macIn, macHost, func(b []byte) int { return copy(b, second) }))
		tb.poll()
		sent := tb.out.Sent()
		require.Len(t, sent, 2, "workers=%d", workers)
		for _, f := range sent {
			_, ip := parseFrame(t, f)
			assert.Equal(t, fe1, ip.Src())
		}
		// A later fragment of an unknown datagram is dropped and counted.
		_, stray := splitDatagram(t, udpFrame(t, macIn, macHost, member, server, 1, 2, 64)[nat.EthernetLen:], 8, 0x5151)
		tb.in.Inject(0, frame(t, macIn, macHost, func(b []byte) int { return copy(b, stray) }))
		tb.poll()
		assert.Empty(t, tb.out.Sent())
		// It is held for its first fragment, then dropped when that never
		// comes.
		tb.advance(3 * time.Second)
		for range fragSets * fragWays / fragSweepBudget {
			tb.poll()
		}
		var drops uint64
		for _, w := range tb.rt.Workers {
			drops += w.Counters.Verdicts[nat.DropFragment].Load()
		}
		assert.Equal(t, uint64(1), drops)
	}
}

func splitDatagram(t *testing.T, whole []byte, at int, id uint16) (first, second []byte) {
	t.Helper()
	ip, ok := nat.ParseIPv4(whole)
	require.True(t, ok)
	pl := ip.Payload()
	first = append(append([]byte(nil), whole[:20]...), pl[:at]...)
	second = append(append([]byte(nil), whole[:20]...), pl[at:]...)
	for i, f := range []nat.IPv4{first, second} {
		f.SetTotalLen(uint16(len(f)))
		f.SetID(id)
		if i == 0 {
			f[6], f[7] = 0x20, 0
		} else {
			f[6], f[7] = byte(at/8>>8), byte(at/8)
		}
		f.SetChecksum(0)
		f.SetChecksum(f.ComputeChecksum())
	}
	return first, second
}

func TestManagementDuties(t *testing.T) {
	t.Run("ARP for a frontend is answered on the outside", func(t *testing.T) {
		tb := newTestbed(t, 1)
		req := make([]byte, nat.EthernetLen+nat.ARPLen)
		nat.WriteEthernet(req, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macGw, nat.EtherTypeARP)
		nat.WriteARP(req[nat.EthernetLen:], nat.ARPRequest, macGw, gateway, [6]byte{}, fe1)
		tb.out.Inject(0, req)
		tb.poll()
		sent := tb.out.Sent()
		require.Len(t, sent, 1)
		arp := nat.ARP(sent[0][nat.EthernetLen:])
		require.True(t, arp.IsValid())
		assert.Equal(t, uint16(nat.ARPReply), arp.Op())
		assert.Equal(t, fe1, arp.SenderIP())
		assert.Equal(t, macOut[:], arp.SenderMAC())
	})
	t.Run("ARP for a frontend is not answered on the inside", func(t *testing.T) {
		tb := newTestbed(t, 1)
		req := make([]byte, nat.EthernetLen+nat.ARPLen)
		nat.WriteEthernet(req, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macHost, nat.EtherTypeARP)
		nat.WriteARP(req[nat.EthernetLen:], nat.ARPRequest, macHost, member, [6]byte{}, fe1)
		tb.in.Inject(0, req)
		tb.poll()
		assert.Empty(t, tb.in.Sent())
	})
	t.Run("echo request to natgw's inside address is answered", func(t *testing.T) {
		tb := newTestbed(t, 1)
		tb.in.Inject(0, frame(t, macIn, macHost, func(b []byte) int {
			return nat.BuildICMPEcho(b, member, a4("10.0.0.1"), nat.ICMPEchoRequest, 7, 1, 64, []byte("x"))
		}))
		tb.poll()
		sent := tb.in.Sent()
		require.Len(t, sent, 1)
		eth, ip := parseFrame(t, sent[0])
		assert.Equal(t, macHost, eth.Dst())
		assert.Equal(t, member, ip.Dst())
		icmp := nat.ICMP(ip.Payload())
		assert.Equal(t, uint8(nat.ICMPEchoReply), icmp.Type())
		assert.Equal(t, uint16(0), nat.Fold(nat.Sum(icmp, 0)), "valid ICMP checksum")
	})
	t.Run("TTL 1 is answered with time exceeded from the inside address", func(t *testing.T) {
		tb := newTestbed(t, 1)
		tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 33434, 1))
		tb.poll()
		assert.Empty(t, tb.out.Sent())
		sent := tb.in.Sent()
		require.Len(t, sent, 1)
		_, ip := parseFrame(t, sent[0])
		assert.Equal(t, a4("10.0.0.1"), ip.Src())
		assert.Equal(t, member, ip.Dst())
		assert.Equal(t, uint8(nat.ICMPTimeExceeded), nat.ICMP(ip.Payload()).Type())
	})
	t.Run("an unresolved host is dropped, counted and resolved by ARP", func(t *testing.T) {
		tb := newTestbed(t, 1)
		// Open a flow from member B by a frame that can't be gleaned
		// (multicast source MAC), then answer it.
		tb.in.Inject(0, udpFrame(t, macIn, [6]byte{1, 0, 0, 0, 0, 1}, a4("10.0.1.5"), server, 40000, 53, 64))
		tb.poll()
		out := tb.out.Sent()
		require.Len(t, out, 1)
		_, ip := parseFrame(t, out[0])
		pub := nat.UDP(ip.Payload()).SrcPort()
		tb.out.Inject(0, udpFrame(t, macOut, macGw, server, fe1, 53, pub, 64))
		tb.poll()
		sent := tb.in.Sent()
		require.Len(t, sent, 1, "an ARP request instead of the packet")
		arp := nat.ARP(sent[0][nat.EthernetLen:])
		require.True(t, arp.IsValid())
		assert.Equal(t, uint16(nat.ARPRequest), arp.Op())
		assert.Equal(t, a4("10.0.1.5"), arp.TargetIP())
		assert.Equal(t, uint64(1), tb.rt.Workers[0].Counters.Verdicts[nat.DropNoNeighbor].Load())
	})
	t.Run("oversized DF packets get fragmentation needed", func(t *testing.T) {
		tb := newTestbed(t, 1)
		tb.out.SetMTU(1400)
		tb.rt.Manager.pollMTU()
		tb.in.Inject(0, frame(t, macIn, macHost, func(b []byte) int {
			return nat.BuildUDP(b, member, server, 1, 2, 64, make([]byte, 1450))
		}))
		tb.poll()
		assert.Empty(t, tb.out.Sent())
		sent := tb.in.Sent()
		require.Len(t, sent, 1)
		_, ip := parseFrame(t, sent[0])
		icmp := nat.ICMP(ip.Payload())
		assert.Equal(t, uint8(nat.ICMPDestUnreachable), icmp.Type())
		assert.Equal(t, uint8(nat.ICMPCodeFragNeeded), icmp.Code())
		assert.Equal(t, uint16(1400), icmp.MTU())
	})
}

// TestMalformedFramesNeverStopTheWorker floods both ports with garbage and
// checks a good packet still goes through.
func TestMalformedFramesNeverStopTheWorker(t *testing.T) {
	for _, workers := range []int{1, 2} {
		tb := newTestbed(t, workers)
		rng := rand.New(rand.NewPCG(1, uint64(workers)))
		good := udpFrame(t, macIn, macHost, member, server, 40000, 53, 64)
		for i := 0; i < 20000; i++ {
			var f []byte
			switch i % 4 {
			case 0: // random bytes
				f = make([]byte, rng.IntN(1600))
				for j := range f {
					f[j] = byte(rng.Uint32())
				}
			case 1: // a good frame cut anywhere
				f = good[:rng.IntN(len(good))]
			default: // a good frame with a few bytes flipped
				f = append([]byte(nil), good...)
				for k := 0; k < 3; k++ {
					f[rng.IntN(len(f))] ^= byte(1 + rng.IntN(255))
				}
			}
			port := tb.in
			if i%2 == 1 {
				port = tb.out
			}
			port.Inject(rng.IntN(workers), f)
			if i%64 == 0 {
				tb.poll()
			}
		}
		tb.poll()
		tb.in.Sent()
		tb.out.Sent()
		tb.in.Inject(0, good)
		tb.poll()
		assert.NotEmpty(t, tb.out.Sent(), "workers=%d: still translating", workers)
		for _, w := range tb.rt.Workers {
			w.publish()
			assert.Zero(t, w.Counters.BuffersInUse.Load(), "workers=%d: every buffer back in its pool", workers)
		}
	}
}

// loopQueue hands out the same frame forever and drops what it is given:
// a queue that allocates nothing, for allocation tests.
type loopQueue struct {
	pkt  Packet
	orig []byte
}

func (q *loopQueue) RxBurst(pkts []*Packet) int {
	n := min(len(pkts), 8)
	for i := 0; i < n; i++ {
		q.pkt.Data = q.pkt.Data[:len(q.orig)]
		copy(q.pkt.Data, q.orig)
		pkts[i] = &q.pkt
	}
	return n
}
func (q *loopQueue) TxBurst(pkts []*Packet) int { return len(pkts) }
func (q *loopQueue) Free([]*Packet)             {}
func (q *loopQueue) Wait(int64)                 {}

type loopPort struct {
	*FakePort
	q Queue
}

func (p loopPort) Queue(i int) Queue {
	if i == 0 {
		return p.q
	}
	return p.FakePort.Queue(i)
}

func TestWorkerNoAllocs(t *testing.T) {
	tb := newTestbed(t, 1)
	// Establish the flow and learn the host, then replace the inside queue
	// with one replaying the same frame.
	good := udpFrame(t, macIn, macHost, member, server, 40000, 53, 64)
	tb.in.Inject(0, good)
	tb.poll()
	require.Len(t, tb.out.Sent(), 1)
	lq := &loopQueue{orig: good, pkt: Packet{Data: make([]byte, len(good), 2048)}}
	w := tb.rt.Workers[0]
	w.q[PortInside] = lq
	w.q[PortOutside] = &loopQueue{orig: nil, pkt: Packet{Data: make([]byte, 0, 2048)}}
	w.PollOnce()
	before := w.Counters.Packets[nat.DirOut].Load()
	allocs := testing.AllocsPerRun(200, func() { w.PollOnce() })
	assert.Zero(t, allocs)
	w.publish()
	assert.Greater(t, w.Counters.Packets[nat.DirOut].Load(), before, "the loop translated packets")
}

func TestToeplitz(t *testing.T) {
	// The Microsoft RSS verification suite: IPv4 source 66.9.149.187:2794,
	// destination 161.142.100.80:1766.
	in := []byte{66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6}
	assert.Equal(t, uint32(0x51ccc178), Toeplitz(DefaultRSSKey[:], in), "4-tuple vector")
	assert.Equal(t, uint32(0x323e8fc2), Toeplitz(DefaultRSSKey[:], in[:8]), "2-tuple vector")

	o := NewOwner(DefaultRSSKey, 4)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 10000; i++ {
		addr, port := rng.Uint32(), uint16(rng.Uint32())
		var b [6]byte
		binary.BigEndian.PutUint32(b[:], addr)
		binary.BigEndian.PutUint16(b[4:], port)
		require.Equal(t, Toeplitz(DefaultRSSKey[:], b[:]), o.Hash(addr, port))
		require.Less(t, o.Of(addr, port), 4)
	}
}

func TestRing(t *testing.T) {
	r := NewRing(4, 64)
	p := &Packet{Data: []byte("abc"), Flags: FlagOwned, Port: PortOutside}
	for i := 0; i < 4; i++ {
		require.True(t, r.Push(p))
	}
	assert.False(t, r.Push(p), "full")
	assert.Equal(t, uint64(1), r.Dropped.Load())
	assert.False(t, r.Push(&Packet{Data: make([]byte, 65)}), "too big for a slot")
	out := make([]*Packet, 8)
	n := r.Peek(out)
	require.Equal(t, 4, n)
	assert.Equal(t, "abc", string(out[0].Data))
	assert.Equal(t, PortOutside, out[0].Port)
	r.Release(n)
	assert.Zero(t, r.Len())

	// One producer, one consumer, under the race detector.
	r = NewRing(64, 16)
	done := make(chan struct{})
	const total = 100000
	go func() {
		defer close(done)
		var b [8]byte
		for i := 0; i < total; {
			binary.BigEndian.PutUint64(b[:], uint64(i))
			if r.Push(&Packet{Data: b[:]}) {
				i++
			}
		}
	}()
	next := uint64(0)
	for next < total {
		n := r.Peek(out)
		for _, p := range out[:n] {
			require.Equal(t, next, binary.BigEndian.Uint64(p.Data))
			next++
		}
		r.Release(n)
	}
	<-done
}

func TestIdleResetSendsRSTBothWays(t *testing.T) {
	tb := newTestbed(t, 1)
	// Learn the host's MAC.
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 53, 64))
	tb.poll()
	tb.out.Sent()
	w := tb.rt.Workers[0]
	w.pushReset(&nat.Flow{Priv: member, Pub: fe1, Remote: server, PrivPort: 41000, PubPort: 1500, RemotePort: 80,
		Proto: nat.ProtoTCP, AckPriv: 5001, AckRemote: 1001})
	tb.poll()
	check := func(sent [][]byte, dstMAC [6]byte, src, dst uint32, sport, dport uint16, seq uint32) {
		t.Helper()
		require.Len(t, sent, 1)
		eth, ip := parseFrame(t, sent[0])
		assert.Equal(t, dstMAC, eth.Dst())
		assert.Equal(t, src, ip.Src())
		assert.Equal(t, dst, ip.Dst())
		tcp, ok := nat.ParseTCP(ip.Payload())
		require.True(t, ok)
		assert.Equal(t, uint8(nat.TCPFlagRST), tcp.Flags())
		assert.Equal(t, sport, tcp.SrcPort())
		assert.Equal(t, dport, tcp.DstPort())
		assert.Equal(t, seq, tcp.Seq())
	}
	check(tb.in.Sent(), macHost, server, member, 80, 41000, 5001)
	check(tb.out.Sent(), macGw, fe1, server, 1500, 80, 1001)
	assert.Equal(t, uint64(2), tb.rt.Manager.Stats.Resets.Load())
}

func TestNeighborsTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 100, 5000} {
		want := map[uint32][6]byte{}
		for len(want) < n {
			a := rng.Uint32() | 1
			want[a] = [6]byte{2, byte(a), byte(a >> 8), byte(a >> 16), byte(a >> 24), 9}
		}
		var gw uint32 = 1
		for a := range want {
			gw = a
			break
		}
		nb := NewNeighbors(gw, want)
		assert.Equal(t, n, nb.Len())
		for a, mac := range want {
			got, ok := nb.Lookup(a)
			require.True(t, ok)
			require.Equal(t, mac, got)
		}
		for i := 0; i < 1000; i++ {
			a := rng.Uint32() &^ 1 // even: never in want
			_, ok := nb.Lookup(a)
			require.False(t, ok)
		}
		_, ok := nb.Lookup(0)
		assert.False(t, ok, "0 is never a neighbour")
		mac, ok := nb.GatewayMAC()
		assert.Equal(t, n > 0, ok)
		assert.Equal(t, want[gw], mac)
		seen := 0
		nb.Range(func(uint32, [6]byte) bool { seen++; return true })
		assert.Equal(t, n, seen)
	}
}

// TestGleanCache checks the glean cache: a source is offered to the
// management core once while it stays cached, two sources of one set are
// both kept (two ways), and a third evicts the older of them.
func TestGleanCache(t *testing.T) {
	w := &Worker{toMgmt: NewRing(64, 64), neigh: NewNeighborHolder(0)}
	eth := nat.Ethernet(make([]byte, nat.EthernetLen))
	// Three addresses of one set.
	var same []uint32
	set := func(a uint32) uint32 { return (a * 2654435761) >> (32 - gleanSetBits) }
	for a := uint32(0x0A000001); len(same) < 3; a++ {
		if len(same) == 0 || set(a) == set(same[0]) {
			same = append(same, a)
		}
	}
	offered := func() int {
		var out [64]*Packet
		n := w.toMgmt.Peek(out[:])
		w.toMgmt.Release(n)
		return n
	}
	tests := []struct {
		name string
		src  uint32
		want int
	}{
		{"first sight of A", same[0], 1},
		{"A again", same[0], 0},
		{"B shares A's set", same[1], 1},
		{"A still cached", same[0], 0},
		{"B still cached", same[1], 0},
		{"C evicts the older (A)", same[2], 1},
		{"B still cached after C", same[1], 0},
		{"A offered again", same[0], 1},
	}
	for _, tt := range tests {
		w.glean(tt.src, eth)
		assert.Equal(t, tt.want, offered(), tt.name)
	}
}

// TestHandoffDrainsMoreThanABurst: a worker takes in several bursts from a
// handoff ring per poll, so one flow handed over at the sender's receive
// rate doesn't pile up in the ring.
func TestHandoffDrainsMoreThanABurst(t *testing.T) {
	tb := newTestbed(t, 2)
	var dport uint16 = 1
	for tb.rt.Owner.Of(server, dport) != 1 {
		dport++
	}
	const n = 3 * Burst
	for i := 0; i < n; i++ {
		tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, dport, 64))
	}
	for range n / Burst {
		tb.rt.Workers[0].PollOnce()
	}
	require.Equal(t, n, tb.rt.Workers[0].handOut[1].Len(), "all handed over")
	tb.rt.Workers[1].PollOnce()
	assert.Zero(t, tb.rt.Workers[0].handOut[1].Len(), "one poll drains them")
	assert.Len(t, tb.out.Sent(), n)
}

// TestFramesForOtherHosts checks that frames whose destination MAC is not
// the port's own are dropped and counted as not_for_us (both drivers
// receive promiscuously), that broadcast ARP is still handled, and that a
// frame to natgw's MAC beside them is translated. Before, the foreign
// unicast, multicast and broadcast IPv4 frames were all translated.
func TestFramesForOtherHosts(t *testing.T) {
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	other := [6]byte{2, 0, 0, 0, 1, 0x77}
	mcast := [6]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
	tb := newTestbed(t, 1)
	for _, dst := range [][6]byte{other, mcast, bcast} {
		tb.in.Inject(0, udpFrame(t, dst, macHost, member, server, 40000, 53, 64))
		tb.out.Inject(0, udpFrame(t, dst, macGw, server, fe1, 53, 1024, 64))
	}
	// Unicast ARP for another host, even asking for natgw's address.
	arpFor := func(dst [6]byte) []byte {
		req := make([]byte, nat.EthernetLen+nat.ARPLen)
		nat.WriteEthernet(req, dst, macGw, nat.EtherTypeARP)
		nat.WriteARP(req[nat.EthernetLen:], nat.ARPRequest, macGw, gateway, [6]byte{}, fe1)
		return req
	}
	tb.out.Inject(0, arpFor(other))
	tb.poll()
	assert.Empty(t, tb.out.Sent())
	assert.Empty(t, tb.in.Sent())
	w := tb.rt.Workers[0]
	w.publish()
	assert.Equal(t, uint64(7), w.Counters.Verdicts[nat.DropNotForUs].Load())
	assert.Zero(t, w.tr.Flows().Len(), "no flow was created")

	// Broadcast ARP and frames to natgw's own MAC still work.
	tb.out.Inject(0, arpFor(bcast))
	tb.poll()
	sent := tb.out.Sent()
	require.Len(t, sent, 1, "the broadcast ARP request is answered")
	assert.Equal(t, uint16(nat.ARPReply), nat.ARP(sent[0][nat.EthernetLen:]).Op())
	tb.out.Inject(0, arpFor(macOut))
	tb.poll()
	require.Len(t, tb.out.Sent(), 1, "a unicast ARP request to natgw's MAC is answered")
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 53, 64))
	tb.poll()
	require.Len(t, tb.out.Sent(), 1, "a frame to natgw's MAC is translated")
	w.publish()
	assert.Equal(t, uint64(7), w.Counters.Verdicts[nat.DropNotForUs].Load())
}

// arpFrame builds an ARP frame to MAC dst.
func arpFrame(dst, src [6]byte, op uint16, senderMAC [6]byte, sender uint32, targetMAC [6]byte, target uint32) []byte {
	b := make([]byte, nat.EthernetLen+nat.ARPLen)
	nat.WriteEthernet(b, dst, src, nat.EtherTypeARP)
	nat.WriteARP(b[nat.EthernetLen:], op, senderMAC, sender, targetMAC, target)
	return b
}

// TestARPOnlyForUs checks that only ARP addressed to natgw changes its
// neighbour table (issue 14 item 8): a request for one of its addresses,
// a reply to its own request, a gratuitous ARP for the gateway. ARP
// between third parties, unsolicited replies and gratuitous ARP for other
// addresses are ignored and counted. Before, every ARP frame's sender on
// the port's subnet was learned, so any host could redirect another's
// traffic to itself.
func TestARPOnlyForUs(t *testing.T) {
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	evil := [6]byte{2, 0, 0, 0, 0x66, 0x66}
	host2 := a4("10.0.1.9")
	neighbor := func(tb *testbed, a uint32) ([6]byte, bool) {
		e, ok := tb.rt.Manager.table[a]
		if !ok {
			return [6]byte{}, false
		}
		return e.mac, true
	}
	t.Run("ignored", func(t *testing.T) {
		tb := newTestbed(t, 1)
		inside := a4("10.0.0.1")
		frames := []struct {
			port *FakePort
			f    []byte
		}{
			// Third parties: who-has member tell host2 (the sender would
			// have been learned), on the inside.
			{tb.in, arpFrame(bcast, evil, nat.ARPRequest, evil, host2, [6]byte{}, member)},
			// An unsolicited reply to natgw's inside address.
			{tb.in, arpFrame(macIn, evil, nat.ARPReply, evil, member, macIn, inside)},
			// A gratuitous ARP for another outside address.
			{tb.out, arpFrame(bcast, evil, nat.ARPRequest, evil, a4("198.19.0.77"), [6]byte{}, a4("198.19.0.77"))},
			// An unsolicited reply claiming the gateway.
			{tb.out, arpFrame(macOut, evil, nat.ARPReply, evil, gateway, macOut, a4("198.19.0.2"))},
		}
		for _, f := range frames {
			f.port.Inject(0, f.f)
		}
		// The gateway is static in the testbed; make it dynamic to see
		// whether the reply would have replaced it.
		tb.rt.Manager.SetStatic(nil)
		tb.rt.Manager.applyStatic()
		tb.rt.Manager.table[gateway] = &neighborEntry{mac: macGw, updated: time.Now()}
		tb.poll()
		_, ok := neighbor(tb, host2)
		assert.False(t, ok, "learned from a request between third parties")
		_, ok = neighbor(tb, member)
		assert.False(t, ok, "learned from an unsolicited reply")
		_, ok = neighbor(tb, a4("198.19.0.77"))
		assert.False(t, ok, "learned from a gratuitous ARP for another address")
		mac, _ := neighbor(tb, gateway)
		assert.Equal(t, macGw, mac, "the gateway was replaced by an unsolicited reply")
		assert.Equal(t, uint64(4), tb.rt.Manager.Stats.ARPIgnored.Load())
	})
	t.Run("learned", func(t *testing.T) {
		tb := newTestbed(t, 1)
		m := tb.rt.Manager
		tb.rt.Manager.SetStatic(nil)
		tb.rt.Manager.applyStatic()
		// A request for natgw's inside address teaches the sender.
		tb.in.Inject(0, arpFrame(bcast, macHost, nat.ARPRequest, macHost, member, [6]byte{}, a4("10.0.0.1")))
		tb.poll()
		mac, ok := neighbor(tb, member)
		assert.True(t, ok)
		assert.Equal(t, macHost, mac)
		// A reply to natgw's own request.
		m.resolve(host2, time.Now())
		tb.in.Inject(0, arpFrame(macIn, evil, nat.ARPReply, evil, host2, macIn, a4("10.0.0.1")))
		tb.poll()
		mac, ok = neighbor(tb, host2)
		assert.True(t, ok)
		assert.Equal(t, evil, mac)
		// A gratuitous ARP for the gateway (VRRP fail-over), request or reply.
		newGw := [6]byte{2, 0, 0, 0, 2, 0x10}
		tb.out.Inject(0, arpFrame(bcast, newGw, nat.ARPRequest, newGw, gateway, [6]byte{}, gateway))
		tb.poll()
		mac, _ = neighbor(tb, gateway)
		assert.Equal(t, newGw, mac)
		tb.out.Inject(0, arpFrame(bcast, macGw, nat.ARPReply, macGw, gateway, bcast, gateway))
		tb.poll()
		mac, _ = neighbor(tb, gateway)
		assert.Equal(t, macGw, mac)
		assert.Zero(t, m.Stats.ARPIgnored.Load())
	})
}

// TestGratuitousARP checks that natgw announces its own addresses (the
// inside address on the inside; the outside address, frontends and
// instance publics on the outside) when it starts, again when a link
// comes back up, and the addresses a new policy adds.
func TestGratuitousARP(t *testing.T) {
	tb := newTestbed(t, 1)
	m := tb.rt.Manager
	announced := func(p *FakePort) []uint32 {
		var out []uint32
		for _, f := range p.Sent() {
			if nat.Ethernet(f).EtherType() != nat.EtherTypeARP {
				continue
			}
			a := nat.ARP(f[nat.EthernetLen:])
			require.True(t, a.IsValid())
			require.Equal(t, uint16(nat.ARPRequest), a.Op())
			require.Equal(t, a.SenderIP(), a.TargetIP(), "gratuitous: sender and target the same")
			require.Equal(t, p.MAC(), [6]byte(a.SenderMAC()))
			require.Equal(t, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nat.Ethernet(f).Dst())
			out = append(out, a.SenderIP())
		}
		return out
	}
	tb.in.SetLink(true)
	tb.out.SetLink(true)
	m.maintain(time.Now())
	assert.Equal(t, []uint32{a4("10.0.0.1")}, announced(tb.in))
	assert.ElementsMatch(t, []uint32{a4("198.19.0.2"), fe1}, announced(tb.out))
	m.maintain(time.Now())
	assert.Empty(t, announced(tb.in), "announced once")
	assert.Empty(t, announced(tb.out), "announced once")

	tb.out.SetLink(false)
	m.maintain(time.Now())
	assert.Empty(t, announced(tb.out), "not while the link is down")
	tb.out.SetLink(true)
	m.maintain(time.Now())
	assert.ElementsMatch(t, []uint32{a4("198.19.0.2"), fe1}, announced(tb.out), "again on link up")
	assert.Empty(t, announced(tb.in))

	// A reload adding an instance announces its public address only.
	s := testSpec()
	s.Instances = []nat.InstanceSpec{{Private: a4("10.0.3.7"), Public: a4("198.19.1.50")}}
	m.pol.Store(compileSpec(t, s, m.pol.Load()))
	m.maintain(time.Now())
	assert.Equal(t, []uint32{a4("198.19.1.50")}, announced(tb.out))
	assert.Empty(t, announced(tb.in))
	assert.Equal(t, uint64(6), m.Stats.GratuitousARP.Load())
}
