//go:build dpdk

package dpdk

/*
#include "natgw_dpdk.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/natgw/natgw/lcore"
)

// This file is the packet path. A Queue is used by one goroutine: queue i
// of each port by worker i (locked to its OS thread by lcore.Worker.Run),
// queue Workers by the management core (TX only). RxBurst, TxBurst and
// Free make one cgo call each per burst of up to NATGW_BURST frames, never
// allocate, never lock.
//
// Buffers: a received frame is an mbuf; its lcore.Packet descriptor comes
// from the queue's descriptor pool (a lcore.PacketPool without Go
// buffers), with Data over the mbuf's data room and Handle the mbuf. The
// descriptor goes back to that pool whichever way the frame leaves:
// TxBurst (the device took the mbuf: Handle is cleared), Free (the mbuf is
// freed: Handle is cleared), or the worker's own drop and handoff paths,
// which put the descriptor back without telling the driver. A descriptor
// that comes back with Handle still set therefore holds a frame the
// worker dropped, and RxBurst frees that mbuf when it takes the
// descriptor again: nothing leaks, and the worker needs no driver call to
// drop a frame. Frames in Go memory (Handle 0: handed over between
// workers, or the management core's) are copied into spare mbufs the
// queue keeps in C memory (its stash) and sent in the same call.

// burstMax is the most frames one cgo call handles.
const burstMax = C.NATGW_BURST

// Queue is one RX/TX queue pair of a port; it implements lcore.Queue.
type Queue struct {
	c     *C.struct_natgw_queue
	port  *Port
	index int
	rx    bool
	descs *lcore.PacketPool
	got   [burstMax]*lcore.Packet
}

// newQueue allocates queue i's C state; worker queues (rx) also get a
// descriptor pool and register their thread with EAL on first receive.
// extraRx >= 0 names a second RX queue this one drains.
func newQueue(p *Port, i int, rx bool, extraRx int) (*Queue, error) {
	extra := C.uint16_t(C.NATGW_NO_QUEUE)
	if extraRx >= 0 {
		extra = C.uint16_t(extraRx)
	}
	reg := C.int(0)
	if rx {
		reg = 1
	}
	c := C.natgw_queue_new(C.uint16_t(p.id), C.uint16_t(i), extra, reg, p.s.mp)
	if c == nil {
		return nil, fmt.Errorf("dpdk: port %q queue %d: out of DPDK memory", p.name, i)
	}
	q := &Queue{c: c, port: p, index: i, rx: rx}
	if rx {
		q.descs = lcore.NewPacketPool(descPoolSize, 0)
	}
	return q, nil
}

// close frees the stash, the C state and the mbufs of dropped frames
// still held by descriptors. The queue must be idle.
func (q *Queue) close() {
	if q.c == nil {
		return
	}
	if q.descs != nil {
		n := 0
		for {
			p := q.descs.Get()
			if p == nil {
				break
			}
			if p.Handle != 0 {
				q.c.free_mbuf[n] = C.uintptr_t(p.Handle)
				p.Handle = 0
				if n++; n == burstMax {
					C.natgw_free(q.c, C.uint16_t(n))
					n = 0
				}
			}
		}
		if n > 0 {
			C.natgw_free(q.c, C.uint16_t(n))
		}
	}
	C.natgw_queue_free(q.c)
	q.c = nil
}

// RxBurst receives up to min(len(pkts), NATGW_BURST) frames into pkts and
// returns how many. Each is an mbuf (Handle) seen through Data, whose cap
// is the mbuf's data room; FlagCsumNotReady is set when the device says
// the L4 checksum is partial (RTE_MBUF_F_RX_L4_CKSUM_NONE), FlagTruncated
// when the frame spans several segments (only the first is in Data).
// Data may be shortened, or lengthened up to cap, but must keep its start.
func (q *Queue) RxBurst(pkts []*lcore.Packet) int {
	if !q.rx || q.c == nil {
		return 0
	}
	n := min(len(pkts), burstMax)
	got, nfree := 0, 0
	for got < n {
		p := q.descs.Get()
		if p == nil {
			break
		}
		if p.Handle != 0 { // dropped by the worker: free its mbuf now
			q.c.free_mbuf[nfree] = C.uintptr_t(p.Handle)
			nfree++
			p.Handle = 0
		}
		q.got[got] = p
		got++
	}
	r := int(C.natgw_rx(q.c, C.uint16_t(nfree), C.uint16_t(got)))
	c := q.c
	for i := 0; i < r; i++ {
		p := q.got[i]
		room := int(c.rx_room[i])
		p.Data = unsafe.Slice((*byte)(unsafe.Pointer(c.rx_data[i])), room)[:min(int(c.rx_len[i]), room)]
		p.Handle = uintptr(c.rx_mbuf[i])
		f := uint16(0)
		if c.rx_flags[i]&C.NATGW_RX_CSUM_NONE != 0 {
			f |= lcore.FlagCsumNotReady
		}
		if c.rx_flags[i]&C.NATGW_RX_MULTISEG != 0 {
			f |= lcore.FlagTruncated
		}
		p.Flags = f
		pkts[i] = p
	}
	for i := r; i < got; i++ {
		q.descs.Put(q.got[i])
	}
	return r
}

// TxBurst transmits pkts and returns how many the device took; the caller
// still owns (and must Free) pkts[n:]. Mbuf frames are sent as they are
// (their lengths set from len(Data)); Go-memory frames are copied into
// spare mbufs. Taken frames' descriptors go back to their pools. A
// Go-memory frame larger than an mbuf, or one met when no spare mbuf is
// left, ends the burst there.
func (q *Queue) TxBurst(pkts []*lcore.Packet) int {
	c := q.c
	if c == nil {
		return 0
	}
	total := 0
	for total < len(pkts) {
		chunk := pkts[total:min(len(pkts), total+burstMax)]
		k := 0
		for ; k < len(chunk); k++ {
			p := chunk[k]
			if p.Handle != 0 {
				c.tx_mbuf[k] = C.uintptr_t(p.Handle)
				c.tx_len[k] = C.uint16_t(len(p.Data))
				c.tx_stash[k] = 0
				continue
			}
			s := int(c.nstash) - 1
			if s < 0 || len(p.Data) > int(c.stash_room[s]) {
				break
			}
			c.nstash--
			copy(unsafe.Slice((*byte)(unsafe.Pointer(c.stash_data[s])), int(c.stash_room[s])), p.Data)
			c.tx_mbuf[k] = c.stash_mbuf[s]
			c.tx_len[k] = C.uint16_t(len(p.Data))
			c.tx_stash[k] = 1
		}
		if k == 0 {
			break
		}
		sent := int(C.natgw_tx(c, C.uint16_t(k)))
		for _, p := range chunk[:sent] {
			p.Handle = 0
			if p.Pool != nil {
				p.Pool.Put(p)
			}
		}
		total += sent
		if sent < len(chunk) {
			break
		}
	}
	return total
}

// Free returns packets without sending them: mbufs are freed, descriptors
// and Go-memory buffers go back to their pools.
func (q *Queue) Free(pkts []*lcore.Packet) {
	c := q.c
	n := 0
	for _, p := range pkts {
		if p.Handle != 0 {
			if c == nil {
				// The queue is closed: leave the mbuf to the descriptor's
				// own queue, which frees it on close.
				continue
			}
			c.free_mbuf[n] = C.uintptr_t(p.Handle)
			p.Handle = 0
			if n++; n == burstMax {
				C.natgw_free(c, C.uint16_t(n))
				n = 0
			}
		}
		if p.Pool != nil {
			p.Pool.Put(p)
		}
	}
	if n > 0 {
		C.natgw_free(c, C.uint16_t(n))
	}
}

// Wait returns at once: DPDK queues are polled.
func (q *Queue) Wait(int64) {}

// QueueStats are a queue's own counters.
type QueueStats struct {
	// SpareMbufs is the number of spare mbufs held for copies.
	SpareMbufs int
	// StashEmpty counts refills that found the mempool empty.
	StashEmpty uint64
	// RegisterFailed is 1 when rte_thread_register failed for the
	// queue's thread (the mempool cache is then not used).
	RegisterFailed uint64
}

// Stats returns the queue's counters; it must be called by the queue's
// goroutine or while the queue is idle.
func (q *Queue) Stats() QueueStats {
	if q.c == nil {
		return QueueStats{}
	}
	return QueueStats{SpareMbufs: int(q.c.nstash), StashEmpty: uint64(q.c.stash_empty),
		RegisterFailed: uint64(q.c.register_failed)}
}
