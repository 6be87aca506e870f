//go:build dpdk

package dpdk

import (
	"testing"

	"github.com/natgw/natgw/lcore"
)

// Benchmarks run in the test binary's own process (EAL once per process):
//
//	go test -tags dpdk -run '^$' -bench . ./lcore/dpdk/
//
// net_null0 and net_null1 stand in for NICs: net_null's RX hands out
// fresh 64-byte mbufs and its TX frees them, so these measure natgw's
// binding (cgo call, descriptor handling) plus DPDK's mempool, not a NIC.

// BenchmarkForward receives a burst on one port and sends it on the other,
// as a worker forwards translated frames.
func BenchmarkForward(b *testing.B) {
	_, ports := benchPorts(b)
	qi, qo := ports[0].Queue(0), ports[1].Queue(0)
	var rx [lcore.Burst]*lcore.Packet
	pkts := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := qi.RxBurst(rx[:])
		sent := qo.TxBurst(rx[:n])
		qo.Free(rx[sent:n])
		pkts += n
	}
	b.StopTimer()
	if pkts > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pkts), "ns/pkt")
	}
}

// BenchmarkTxCopy sends bursts of Go-memory frames (handed over between
// workers, or the management core's): each is copied into a spare mbuf.
func BenchmarkTxCopy(b *testing.B) {
	_, ports := benchPorts(b)
	q := ports[1].Queue(0)
	pool := lcore.NewPacketPool(lcore.Burst, 2048)
	frame := udpFrame(1, 1000, 64)
	var pk [lcore.Burst]*lcore.Packet
	pkts := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range pk {
			pk[j] = pool.Get()
			pk[j].Data = append(pk[j].Data, frame...)
		}
		k := q.TxBurst(pk[:])
		q.Free(pk[k:])
		pkts += k
	}
	b.StopTimer()
	if pkts > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pkts), "ns/pkt")
	}
}

// BenchmarkRxDrop receives bursts and drops them the worker's way (the
// descriptor goes back to its pool; the next receive frees the mbufs).
func BenchmarkRxDrop(b *testing.B) {
	_, ports := benchPorts(b)
	q := ports[0].Queue(0)
	var rx [lcore.Burst]*lcore.Packet
	pkts := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := q.RxBurst(rx[:])
		for _, p := range rx[:n] {
			p.Pool.Put(p)
		}
		pkts += n
	}
	b.StopTimer()
	if pkts > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pkts), "ns/pkt")
	}
}
