package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/lcore"
)

func TestSplitPortForwardsSourceToSink(t *testing.T) {
	src := lcore.NewFakePort("src", [6]byte{2, 0, 0, 0, 0, 1}, 2)
	sink := lcore.NewFakePort("sink", [6]byte{2, 0, 0, 0, 0, 2}, 2)
	p := newSplitPort("inside", sink, 1)
	require.NoError(t, p.check())
	assert.Equal(t, "inside", p.Name())
	assert.Equal(t, toNatgwMAC, p.MAC(), "natgw's MAC is the one the frames are addressed to")
	assert.Nil(t, p.Queue(2))
	assert.Nil(t, p.Queue(-1))

	src.Inject(0, []byte{1, 2, 3})
	var pkts [lcore.Burst]*lcore.Packet
	q := p.Queue(0)
	assert.Zero(t, q.RxBurst(pkts[:]), "no source yet")

	p.SetSource(src)
	n := q.RxBurst(pkts[:])
	require.Equal(t, 1, n)
	assert.Equal(t, []byte{1, 2, 3}, pkts[0].Data)
	assert.Equal(t, 1, q.TxBurst(pkts[:n]))
	assert.Equal(t, [][]byte{{1, 2, 3}}, sink.Sent())
	assert.Empty(t, src.Sent(), "nothing goes back to the source")

	p.SetSource(nil)
	src.Inject(0, []byte{4})
	assert.Zero(t, q.RxBurst(pkts[:]), "source switched off")
}

func TestSplitPortNeedsSinkQueues(t *testing.T) {
	sink := lcore.NewFakePort("sink", [6]byte{}, 1) // natgw needs workers+1 = 2
	p := newSplitPort("outside", &shortPort{sink}, 1)
	assert.ErrorIs(t, p.check(), errNoQueue)
}

// shortPort returns nil for queues a device doesn't have.
type shortPort struct{ *lcore.FakePort }

func (s *shortPort) Queue(i int) lcore.Queue {
	if i > 0 {
		return nil
	}
	return s.FakePort.Queue(i)
}

// countQueue is an allocation-free queue: it receives burst copies of one
// packet and takes everything it is given.
type countQueue struct {
	pkt      lcore.Packet
	rx, tx   int
	freed    int
	burstLen int
}

func (q *countQueue) RxBurst(pkts []*lcore.Packet) int {
	n := min(len(pkts), q.burstLen)
	for i := range n {
		pkts[i] = &q.pkt
	}
	q.rx += n
	return n
}
func (q *countQueue) TxBurst(pkts []*lcore.Packet) int { q.tx += len(pkts); return len(pkts) }
func (q *countQueue) Free(pkts []*lcore.Packet)        { q.freed += len(pkts) }
func (q *countQueue) Wait(int64)                       {}

type countPort struct {
	lcore.FakePort
	q []*countQueue
}

func (p *countPort) Queue(i int) lcore.Queue { return p.q[i] }

func TestSplitQueueNoAllocs(t *testing.T) {
	src := &countPort{q: []*countQueue{{burstLen: lcore.Burst}, {}}}
	sink := &countPort{q: []*countQueue{{}, {}}}
	p := newSplitPort("inside", sink, 1)
	p.SetSource(src)
	q := p.Queue(0)
	var pkts [lcore.Burst]*lcore.Packet
	allocs := testing.AllocsPerRun(100, func() {
		n := q.RxBurst(pkts[:])
		q.TxBurst(pkts[:n])
		q.Free(pkts[:1])
		q.Wait(0)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, 101*lcore.Burst, src.q[0].rx)
	assert.Equal(t, 101*lcore.Burst, sink.q[0].tx)
	assert.Equal(t, 101, sink.q[0].freed)
}

func BenchmarkSplitQueue(b *testing.B) {
	src := &countPort{q: []*countQueue{{burstLen: lcore.Burst}, {}}}
	sink := &countPort{q: []*countQueue{{}, {}}}
	p := newSplitPort("inside", sink, 1)
	p.SetSource(src)
	q := p.Queue(0)
	var pkts [lcore.Burst]*lcore.Packet
	b.ReportAllocs()
	for b.Loop() {
		n := q.RxBurst(pkts[:])
		q.TxBurst(pkts[:n])
	}
}
