//go:build dpdk

package main

import (
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/lcore/dpdk"
	"github.com/natgw/natgw/nat"
)

// TestGenCFrames checks the C engine's frames: the same bytes as the Go
// builder (so natgw's own frame builder, TestGenFrame), both checksums
// verified with nat's helpers, and both parsers reading them back.
func TestGenCFrames(t *testing.T) {
	for _, n := range []int{2, 1000, 1 << 20} {
		tr, err := newTraffic(n)
		require.NoError(t, err)
		g, err := newGenFlows(tr, 5)
		require.NoError(t, err)
		e, err := newCEngineFrames(g)
		require.NoError(t, err)
		defer e.close()
		b := make([]byte, 64)
		for _, i := range []uint32{0, 1, uint32(n / 2), uint32(n - 1)} {
			f := g.flow(i)
			pubAddr, pubPort := uint32(0xc6130a0a)+i%7, uint16(1024+i%60000)
			e.setPublic(i, pubAddr, pubPort)
			for _, c := range []struct {
				kind             uint8
				srcMAC           [6]byte
				src, dst         uint32
				sport, dport     uint16
				sent             int64
				fromPrivateHosts bool
			}{
				{kindFirst, sourceMAC(f.Src), f.Src, f.Dst, f.Sport, f.Dport, 1, true},
				{kindOut, sourceMAC(f.Src), f.Src, f.Dst, f.Sport, f.Dport, 3_600_000_000_123, true},
				{kindIn, gatewayMAC, f.Dst, pubAddr, f.Dport, pubPort, 987654321, false},
				{kindAnswer, gatewayMAC, f.Dst, pubAddr, f.Dport, pubPort, 0, false},
			} {
				for j := range b {
					b[j] = 0xa5 // stale bytes of the previous frame
				}
				got := e.buildFrame(b, i, c.kind, c.sent)
				want := writeGenFrame(make([]byte, 64), toNatgwMAC, c.srcMAC, c.src, c.dst, c.sport, c.dport, c.kind, i, c.sent)
				require.Equal(t, want, got, "flow %d kind %d", i, c.kind)
				ip, ok := nat.ParseIPv4(got[nat.EthernetLen:])
				require.True(t, ok)
				assert.Equal(t, uint32(0xffff), nat.Sum(got[nat.EthernetLen:nat.EthernetLen+nat.IPv4MinLen], 0), "IPv4 header checksum")
				udpSum := binary.BigEndian.Uint16(got[nat.EthernetLen+nat.IPv4MinLen+6:])
				want16 := nat.TransportChecksum(ip)
				if want16 == 0 {
					want16 = 0xffff
				}
				assert.Equal(t, want16, udpSum, "UDP checksum")
				var pc, pg genPacket
				require.NoError(t, parseFrameC(got, &pc))
				require.NoError(t, parseGenFrame(got, &pg))
				assert.Equal(t, pg, pc)
				assert.Equal(t, genPacket{Src: c.src, Dst: c.dst, Sport: c.sport, Dport: c.dport, Kind: c.kind, Flow: i, Sent: c.sent}, pc)
			}
		}
		got := e.buildFrame(b, 1, kindOut, 5)
		var p genPacket
		assert.ErrorIs(t, parseFrameC(got[:frameLen-3], &p), errNotGen, "too short")
		got[nat.EthernetLen+nat.IPv4MinLen+nat.UDPLen] ^= 1 // the magic
		assert.ErrorIs(t, parseFrameC(got, &p), errNotGen)
		got = e.buildFrame(b, 1, kindOut, 5)
		got[nat.EthernetLen+9] = nat.ProtoTCP
		assert.ErrorIs(t, parseFrameC(got, &p), errNotGen)
	}
}

// TestGenCFlows checks that the C engine computes the flows of
// genFlows.flow (so their RFC 4814 port spread, TestGenFlows, is
// unchanged) and that firstFlows orders the first k flows.
func TestGenCFlows(t *testing.T) {
	for _, n := range []int{2, 1000, 65536 + 3, 16 << 20} {
		tr, err := newTraffic(n)
		require.NoError(t, err)
		g, err := newGenFlows(tr, 9)
		require.NoError(t, err)
		e, err := newCEngineFrames(g)
		require.NoError(t, err)
		step := max(1, uint32(n/50_000))
		for i := uint32(0); i < uint32(n); i += step {
			require.Equal(t, g.flow(i), e.flowC(i), "n %d flow %d", n, i)
		}
		require.Equal(t, g.flow(uint32(n-1)), e.flowC(uint32(n-1)))
		e.close()
		assert.Equal(t, g, g.firstFlows(uint32(n)))
		for _, k := range []uint32{1, 2, 7, uint32(min(n, 1000))} {
			o := g.firstFlows(k)
			seen := make([]bool, k)
			cur := o.at(0)
			for range k {
				require.Less(t, cur, k)
				require.False(t, seen[cur], "k %d: flow %d twice in a cycle", k, cur)
				seen[cur] = true
				cur = o.next(cur)
			}
			assert.Equal(t, o.at(0), cur, "the cycle repeats")
		}
	}
}

// TestGenCHist checks the C histogram against latencyHist.
func TestGenCHist(t *testing.T) {
	tr, _ := newTraffic(2)
	g, _ := newGenFlows(tr, 1)
	e, err := newCEngineFrames(g)
	require.NoError(t, err)
	defer e.close()
	var h latencyHist
	v := uint64(1)
	for i := range 5000 {
		v = v*6364136223846793005 + 1442695040888963407
		ns := v >> (i % 64)
		if i%3 == 0 {
			ns = uint64(i)
		}
		h.record(ns)
		e.recordC(ns)
	}
	assert.Equal(t, h, e.hist)
	for _, p := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1} {
		assert.Equal(t, h.percentile(p), e.hist.percentile(p), "p %v", p)
	}
}

// genCChild names the environment variable that makes
// TestGenCLoopback run its EAL part (EAL can be initialised once per
// process, and TestNatgwHarness initialises it).
const genCChild = "NATGW_GENC_LOOPBACK_CHILD"

// TestGenCLoopback runs the C engine over the loopback in a child
// process: phase 1 learns every flow, phase 2 passes at a low rate with
// every latency recorded, trafficFlows sends only to the first k flows,
// and frames that come back wrong are counted Bad.
func TestGenCLoopback(t *testing.T) {
	if os.Getenv(genCChild) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root (DPDK)")
		}
		if free := freeHugepages(); free < 64 {
			t.Skipf("needs 64 free 2 MB hugepages, %d free", free)
		}
		cmd := exec.Command(os.Args[0], "-test.run", "^TestGenCLoopback$", "-test.count", "1", "-test.v")
		cmd.Env = append(os.Environ(), genCChild+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "child:\n%s", out)
		require.Contains(t, string(out), "--- PASS: TestGenCLoopback")
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, err := dpdk.Start(dpdk.Config{EALArgs: []string{"-l", "0", "--no-pci"}, Ports: 2, Workers: 1,
		RxDesc: ringSize, TxDesc: ringSize, Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()
	l, err := openLoopback(s, "genctest")
	require.NoError(t, err)
	defer l.close(nil)
	const n = 3000
	tr, _ := newTraffic(n)
	g, _ := newGenFlows(tr, 2)
	e, err := newCEngine("genctest_mbufs", l.in.ID(), l.out.ID(), g, true)
	require.NoError(t, err)
	defer e.close()
	e.Drain = 200 * time.Millisecond

	// A full ring refuses frames when this thread is preempted for longer
	// than the ring holds (a busy host): what the rings took must come
	// back, right; what they refused may be lost.
	learn := func() {
		t.Helper()
		c := e.connect(100_000)
		assert.Zero(t, c.First.Bad+c.Answer.Bad, "%+v", c)
		assert.Equal(t, c.First.Accepted, c.First.Received, "%+v", c)
		for round := 0; round < 5 && e.learnt() != n; round++ {
			e.connectMissing(10_000)
		}
		require.NoError(t, e.checkLearnt())
	}
	learn()
	assert.Zero(t, e.connectMissing(100_000).Established, "nothing was missing")
	ok := func(r trafficResult) {
		t.Helper()
		assert.Zero(t, r.Out.Bad+r.In.Bad, "%+v", r)
		assert.Positive(t, r.Out.Received, "%+v", r)
		assert.Positive(t, r.In.Received, "%+v", r)
		assert.Equal(t, r.Out.Accepted, r.Out.Received, "%+v", r)
		assert.Equal(t, r.In.Accepted, r.In.Received, "%+v", r)
	}

	r := e.traffic(200_000, 200*time.Millisecond)
	ok(r)
	assert.Equal(t, uint64(40_000), r.Due)
	assert.Equal(t, r.Out.Received+r.In.Received, e.hist.total, "every frame's latency")
	assert.Positive(t, e.hist.percentile(0.5))
	assert.Zero(t, e.NoMbuf)
	assert.Equal(t, genMbufs(), e.mbufsAvailable(), "every mbuf is back in the pool after the drain")
	allocs := testing.AllocsPerRun(3, func() { e.traffic(100_000, time.Millisecond) })
	assert.Zero(t, allocs, "a trial allocates nothing in Go")

	// Forget the public endpoint of the flows from k on: their frames
	// would come back wrong, so trafficFlows(k) must send none.
	const k = 10
	for i := uint32(k); i < n; i++ {
		e.setPublic(i, 0, 0)
	}
	r, err = e.trafficFlows(100_000, 100*time.Millisecond, k)
	require.NoError(t, err)
	ok(r)
	r = e.traffic(100_000, 100*time.Millisecond)
	assert.Positive(t, r.Out.Bad, "outbound frames of flows with another public endpoint are counted bad")
	assert.Positive(t, r.In.Bad, "inbound frames translated to another endpoint are counted bad")
	assert.Equal(t, k, e.learnt(), "learnt counts the endpoints")
	_, err = e.trafficFlows(100_000, time.Millisecond, n+1)
	assert.ErrorIs(t, err, errLoadFlows)
	_, err = e.trafficFlows(100_000, time.Millisecond, 0)
	assert.ErrorIs(t, err, errLoadFlows)

	// connectFlows opens only its range; the other flows keep their
	// endpoints (flows [0, k) learnt, the rest forgotten above).
	c := e.connectFlows(100_000, 100, 200)
	assert.Equal(t, uint64(100), c.Flows, "%+v", c)
	for round := 0; round < 5 && e.learnt() != k+100; round++ {
		e.connectMissing(10_000)
	}
	assert.Equal(t, k+100, e.learnt(), "flows [0, k) and [100, 200) learnt, no other")
	assert.Zero(t, e.connectMissing(100_000).Flows, "nothing outside the range was opened")

	// The genceiling subcommand's measurement over the same loopback.
	learn()
	ceil, err := measureCeiling(e, genCeiling{Engine: "c", Flows: n, StepSeconds: 0.05}, 2_000_000, 0.1, io.Discard)
	require.NoError(t, err, "nothing came back wrong")
	assert.Positive(t, ceil.Received)
	assert.NotEmpty(t, ceil.Steps)
}
