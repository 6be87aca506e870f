package lcore

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// bigUDPFrame is a frame carrying a UDP datagram of size payload bytes,
// DF set or not.
func bigUDPFrame(t *testing.T, dst, src [6]byte, sip, dip uint32, sport, dport uint16, size int, df bool) []byte {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	return frame(t, dst, src, func(b []byte) int {
		n := nat.BuildUDP(b, sip, dip, sport, dport, 64, payload)
		if !df && n > 0 {
			ip := nat.IPv4(b[:n])
			b[6] &^= 0x40
			ip.SetChecksum(0)
			ip.SetChecksum(ip.ComputeChecksum())
		}
		return n
	})
}

// reassemble checks that frames are fragments of one datagram of at most
// mtu bytes each and returns the datagram's header (of the first
// fragment) and data.
func reassemble(t *testing.T, frames [][]byte, mtu int) (nat.IPv4, []byte) {
	t.Helper()
	var first nat.IPv4
	var data []byte
	for i, f := range frames {
		_, ip := parseFrame(t, f) // checks the header checksum
		require.LessOrEqual(t, len(ip), mtu, "fragment %d", i)
		require.Equal(t, len(data), ip.FragOffset(), "fragment %d offset", i)
		require.Equal(t, i < len(frames)-1, ip.MF(), "fragment %d MF", i)
		if i == 0 {
			first = ip
		}
		data = append(data, ip.Payload()...)
	}
	return first, data
}

func TestWorkerFragmentsAtEgress(t *testing.T) {
	for _, workers := range []int{1, 2} {
		tb := newFakeGateway(t, workers)
		tb.in.SetMTU(600)
		tb.out.SetMTU(576)
		tb.rt.Manager.pollMTU()
		orig := bigUDPFrame(t, macIn, macHost, member, server, 40000, 53, 1400, false)
		tb.in.Inject(0, orig)
		tb.poll()
		sent := tb.out.Sent()
		require.Len(t, sent, 3, "workers=%d: 1428 bytes in fragments of 576", workers)
		hdr, data := reassemble(t, sent, 576)
		assert.Equal(t, fe1, hdr.Src(), "translated before fragmenting")
		assert.Equal(t, uint8(63), hdr.TTL())
		pub := nat.UDP(hdr.Payload()).SrcPort()
		// The UDP checksum covers the whole datagram: rebuild it and check.
		whole := make([]byte, nat.IPv4MinLen+len(data))
		copy(whole, hdr[:nat.IPv4MinLen])
		copy(whole[nat.IPv4MinLen:], data)
		ip := nat.IPv4(whole)
		ip.SetTotalLen(uint16(len(whole)))
		whole[6], whole[7] = 0, 0
		ip.SetChecksum(0)
		ip.SetChecksum(ip.ComputeChecksum())
		u := nat.UDP(ip.Payload())
		assert.Equal(t, u.Checksum(), nat.TransportChecksum(ip), "UDP checksum of the reassembled datagram")
		assert.True(t, bytes.Equal(orig[nat.EthernetLen+28:], data[8:]), "payload")

		// The reply, DF clear, is cut for the inside's MTU of 600.
		tb.out.Inject(0, bigUDPFrame(t, macOut, macGw, server, fe1, 53, pub, 1400, false))
		tb.poll()
		sent = tb.in.Sent()
		require.Len(t, sent, 3, "workers=%d: reply in fragments of 600", workers)
		hdr, _ = reassemble(t, sent, 600)
		assert.Equal(t, member, hdr.Dst())

		// DF set: fragmentation needed, counted, nothing sent out.
		tb.in.Inject(0, bigUDPFrame(t, macIn, macHost, member, server, 40000, 53, 1400, true))
		tb.poll()
		assert.Empty(t, tb.out.Sent())
		errs := tb.in.Sent()
		require.Len(t, errs, 1, "an ICMP error goes back")
		_, e := parseFrame(t, errs[0])
		icmp := nat.ICMP(e.Payload())
		assert.Equal(t, uint8(nat.ICMPDestUnreachable), icmp.Type())
		assert.Equal(t, uint16(576), icmp.MTU())

		var fragmented, frags, drops uint64
		for _, w := range tb.rt.Workers {
			w.publish()
			fragmented += w.Counters.Fragmented.Load()
			frags += w.Counters.Fragments.Load()
			drops += w.Counters.Verdicts[nat.DropFragment].Load()
		}
		assert.Equal(t, uint64(2), fragmented, "workers=%d", workers)
		assert.Equal(t, uint64(6), frags)
		assert.Equal(t, uint64(1), drops, "the DF-set packet")
	}
}

// freeingQueue receives copies of one frame (8 a burst) in buffers of its
// pool and gives transmitted buffers back to their pools, like a driver.
type freeingQueue struct {
	orig []byte
	pool *PacketPool
	sent int
}

func (q *freeingQueue) RxBurst(pkts []*Packet) int {
	n := 0
	for ; n < min(len(pkts), 8) && len(q.orig) > 0; n++ {
		p := q.pool.Get()
		if p == nil {
			break
		}
		p.Data = p.Data[:copy(p.Data[:cap(p.Data)], q.orig)]
		pkts[n] = p
	}
	return n
}
func (q *freeingQueue) Free(pkts []*Packet) { FreePackets(pkts) }
func (q *freeingQueue) Wait(int64)          {}

func (q *freeingQueue) TxBurst(pkts []*Packet) int {
	q.sent += len(pkts)
	FreePackets(pkts)
	return len(pkts)
}

func TestWorkerFragmentsNoAllocs(t *testing.T) {
	tb := newFakeGateway(t, 1)
	w := tb.rt.Workers[0]
	tb.out.SetMTU(576)
	tb.rt.Manager.pollMTU()
	big := bigUDPFrame(t, macIn, macHost, member, server, 40000, 53, 1400, false)
	tb.in.Inject(0, big)
	tb.poll()
	require.Len(t, tb.out.Sent(), 3)
	in := &freeingQueue{orig: big, pool: NewPacketPool(64, 2048)}
	out := &freeingQueue{pool: NewPacketPool(64, 2048)}
	w.q[PortInside], w.q[PortOutside] = in, out
	w.PollOnce()
	allocs := testing.AllocsPerRun(200, func() { w.PollOnce() })
	assert.Zero(t, allocs)
	w.publish()
	assert.Greater(t, out.sent, 3*200, "fragments sent")
	assert.Equal(t, uint64(out.sent)+3, w.Counters.Fragments.Load(), "every packet sent is a counted fragment (3 in the first poll)")
	assert.Zero(t, w.Counters.Verdicts[nat.DropTxFull].Load())
	assert.Equal(t, fragPoolSize, w.fragPool.Available(), "every fragment buffer came back")
	assert.Zero(t, in.pool.InUse(), "every received buffer came back")
}

// TestEgressMTUFollowsTheLink: the MTU of a port changes while natgw runs
// (RFC 4787 REQ-13): the management core's poll publishes it and the
// workers use it from their next poll, for DF-set packets (ICMP
// fragmentation needed with the new MTU) and DF-clear ones (fragmented).
func TestEgressMTUFollowsTheLink(t *testing.T) {
	tb := newFakeGateway(t, 2)
	send := func(df bool) (out, back [][]byte) {
		tb.in.Inject(0, bigUDPFrame(t, macIn, macHost, member, server, 40000, 53, 1200, df))
		tb.poll()
		return tb.out.Sent(), tb.in.Sent()
	}
	out, _ := send(true)
	require.Len(t, out, 1, "1228 bytes pass a 1500 link")

	tb.out.SetMTU(1000)
	tb.rt.Manager.pollMTU()
	assert.Equal(t, int32(1000), tb.rt.Manager.MTU[PortOutside].Load())
	out, back := send(true)
	assert.Empty(t, out, "DF set over the new MTU")
	require.Len(t, back, 1, "ICMP fragmentation needed")
	_, e := parseFrame(t, back[0])
	assert.Equal(t, uint16(1000), nat.ICMP(e.Payload()).MTU())
	out, _ = send(false)
	assert.Len(t, out, 2, "DF clear: fragmented for the new MTU")

	tb.out.SetMTU(40) // nonsense from a link: ignored
	tb.rt.Manager.pollMTU()
	assert.Equal(t, int32(1000), tb.rt.Manager.MTU[PortOutside].Load())

	tb.out.SetMTU(1500)
	tb.rt.Manager.pollMTU()
	out, _ = send(true)
	assert.Len(t, out, 1, "back to 1500")
}
