package lcore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// rejectBed is a one-worker testbed (manual clock) whose pool has 8-port
// blocks and on_exhaustion reject (or drop).
func rejectBed(t *testing.T, reject bool) *fakeGateway {
	tb := newFakeGatewayClock(t, 1, true)
	s := testSpec()
	s.Pools[0].PortsPerMember = 8
	s.Pools[0].RejectOnExhaustion = reject
	w := tb.rt.Workers[0]
	w.pol.Store(compileSpec(t, s, w.pol.Load()))
	return tb
}

func synFrame(t *testing.T, sport uint16) []byte {
	return frame(t, macIn, macHost, func(b []byte) int {
		return nat.BuildTCP(b, nat.TCPSegment{Src: member, Dst: server, SrcPort: sport, DstPort: 80,
			Seq: 7000 + uint32(sport), Flags: nat.TCPFlagSYN, TTL: 64})
	})
}

// fill opens the 8 flows of the member's block towards server:80/tcp.
func fill(t *testing.T, tb *fakeGateway) {
	for i := range 8 {
		tb.in.Inject(0, synFrame(t, uint16(30000+i)))
	}
	tb.poll()
	require.Len(t, tb.out.Sent(), 8)
	tb.in.Sent()
}

func TestRejectOnExhaustion(t *testing.T) {
	t.Run("a SYN gets a RST from the remote", func(t *testing.T) {
		tb := rejectBed(t, true)
		fill(t, tb)
		tb.in.Inject(0, synFrame(t, 31000))
		tb.poll()
		assert.Empty(t, tb.out.Sent(), "nothing leaves")
		back := tb.in.Sent()
		require.Len(t, back, 1)
		eth, ip := parseFrame(t, back[0])
		assert.Equal(t, macHost, eth.Dst())
		assert.Equal(t, macIn, eth.Src())
		assert.Equal(t, server, ip.Src())
		assert.Equal(t, member, ip.Dst())
		tcp, ok := nat.ParseTCP(ip.Payload())
		require.True(t, ok)
		assert.Equal(t, uint8(nat.TCPFlagRST|nat.TCPFlagACK), tcp.Flags())
		assert.Equal(t, uint16(80), tcp.SrcPort())
		assert.Equal(t, uint16(31000), tcp.DstPort())
		assert.Equal(t, uint32(7000+31000+1), tcp.Ack(), "acknowledges the SYN")
		assert.Equal(t, tcp.Checksum(), nat.TransportChecksum(ip), "TCP checksum")
		w := tb.rt.Workers[0]
		w.publish()
		assert.Equal(t, uint64(1), w.Counters.Verdicts[nat.DropPortExhausted].Load(), "still a port_exhausted drop")
		assert.Equal(t, uint64(1), w.Counters.Rejects.Load())
	})
	t.Run("the worker resets the SYN in the poll that received it", func(t *testing.T) {
		// Without the management core: the RST leaves with the
		// worker's own transmit burst (on DPDK the management loop
		// is one more thread to be scheduled on the way).
		tb := rejectBed(t, true)
		fill(t, tb)
		w := tb.rt.Workers[0]
		tb.in.Inject(0, synFrame(t, 31000))
		w.PollOnce()
		back := tb.in.Sent()
		require.Len(t, back, 1, "the RST is sent by the worker's poll")
		_, ip := parseFrame(t, back[0])
		tcp, ok := nat.ParseTCP(ip.Payload())
		require.True(t, ok)
		assert.Equal(t, uint8(nat.TCPFlagRST|nat.TCPFlagACK), tcp.Flags())
		assert.Zero(t, w.toMgmt.Len(), "nothing for the management core")
	})
	t.Run("UDP gets ICMP administratively prohibited", func(t *testing.T) {
		tb := rejectBed(t, true)
		for i := range 8 {
			tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, uint16(40000+i), 53, 64))
		}
		tb.poll()
		require.Len(t, tb.out.Sent(), 8)
		tb.in.Sent()
		tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 41000, 53, 64))
		tb.poll()
		assert.Empty(t, tb.out.Sent())
		back := tb.in.Sent()
		require.Len(t, back, 1)
		eth, ip := parseFrame(t, back[0])
		assert.Equal(t, macHost, eth.Dst())
		assert.Equal(t, a4("10.0.0.1"), ip.Src(), "from natgw's inside address")
		assert.Equal(t, member, ip.Dst())
		require.Equal(t, uint8(nat.ProtoICMP), ip.Protocol())
		icmp, ok := nat.ParseICMP(ip.Payload())
		require.True(t, ok)
		assert.Equal(t, uint8(nat.ICMPDestUnreachable), icmp.Type())
		assert.Equal(t, uint8(nat.ICMPCodeAdminProhibited), icmp.Code())
		assert.Equal(t, uint64(1), tb.rt.Manager.Stats.RejectICMP.Load())
	})
	t.Run("drop stays silent", func(t *testing.T) {
		tb := rejectBed(t, false)
		fill(t, tb)
		tb.in.Inject(0, synFrame(t, 31000))
		tb.poll()
		assert.Empty(t, tb.out.Sent())
		assert.Empty(t, tb.in.Sent(), "no answer with on_exhaustion drop")
		w := tb.rt.Workers[0]
		w.publish()
		assert.Equal(t, uint64(1), w.Counters.Verdicts[nat.DropPortExhausted].Load())
		assert.Zero(t, w.Counters.Rejects.Load())
	})
	t.Run("rate-limited per worker", func(t *testing.T) {
		tb := rejectBed(t, true)
		fill(t, tb)
		// The clock stands still: the bucket's burst, then nothing.
		for round := range 3 {
			for i := range 100 {
				tb.in.Inject(0, synFrame(t, uint16(32000+round*100+i)))
			}
			tb.poll()
		}
		w := tb.rt.Workers[0]
		w.publish()
		assert.Equal(t, uint64(RejectBurst), w.Counters.Rejects.Load())
		assert.Equal(t, uint64(300-RejectBurst), w.Counters.RejectsLimited.Load())
		assert.Len(t, tb.in.Sent(), RejectBurst)
		// A second later the bucket has refilled.
		tb.advance(time.Second)
		tb.in.Inject(0, synFrame(t, 33000))
		tb.poll()
		assert.Len(t, tb.in.Sent(), 1)
	})
}

func TestRejectBucket(t *testing.T) {
	var r rejectState
	n := 0
	for r.take(5) {
		n++
	}
	assert.Equal(t, RejectBurst, n, "a full bucket at start")
	assert.False(t, r.take(5))
	assert.True(t, r.take(6), "1 ms brings one token at 1000/s")
	assert.False(t, r.take(6))
	for range 2 * RejectBurst {
		r.take(6)
	}
	n = 0
	for r.take(100_000) {
		n++
	}
	assert.Equal(t, RejectBurst, n, "never more than the burst")
}

func TestRejectNoAllocs(t *testing.T) {
	tb := rejectBed(t, true)
	fill(t, tb)
	w := tb.rt.Workers[0]
	syn := synFrame(t, 31000)
	lq := &loopQueue{orig: syn, pkt: Packet{Data: make([]byte, len(syn), 2048)}}
	w.q[PortInside] = lq
	w.q[PortOutside] = &loopQueue{orig: nil, pkt: Packet{Data: make([]byte, 0, 2048)}}
	w.PollOnce()
	allocs := testing.AllocsPerRun(200, func() { w.PollOnce() })
	assert.Zero(t, allocs)
	w.publish()
	assert.NotZero(t, w.Counters.Rejects.Load())
}
