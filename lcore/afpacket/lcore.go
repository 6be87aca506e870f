//go:build linux

package afpacket

import (
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/lcore"
)

// This file adapts a Port to the driver-neutral lcore.Port: one RX/TX queue
// per worker (the fanout members) and one transmit-only queue for the
// management core, which must not take a share of the received traffic.

// PoolSize is the number of packet buffers of each worker queue.
const PoolSize = 512

// NewLcorePort opens iface with one queue per worker (and a transmit-only
// management queue) and returns it as an lcore.Port named name. side is
// the logical port (lcore.PortInside or lcore.PortOutside): with several
// workers, the fanout group runs SteeringProgram so frames arrive on their
// owner's queue (the owner function of lcore.NewRuntime: DefaultRSSKey,
// round-robin redirection table).
func NewLcorePort(name, iface string, workers int, side uint8) (lcore.Port, error) {
	opts := Options{Interface: iface, Queues: workers, Promiscuous: true}
	if workers > 1 {
		opts.Fanout = FanoutProgram
		opts.Program = SteeringProgram(lcore.NewOwner(lcore.DefaultRSSKey, workers), side)
	}
	p, err := Open(opts)
	if err != nil {
		return nil, err
	}
	lp := &lcorePort{Port: p, name: name, steered: opts.Fanout == FanoutProgram}
	for i := 0; i < workers; i++ {
		lp.queues = append(lp.queues, newLcoreQueue(p.Queue(i)))
	}
	mq, err := newMgmtQueue(p.ifindex)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: management queue: %w", iface, err)
	}
	lp.mgmt = mq
	return lp, nil
}

type lcorePort struct {
	*Port
	name    string
	queues  []*lcoreQueue
	mgmt    *mgmtQueue
	steered bool
}

// RSS implements lcore.RSSReporter.
func (lp *lcorePort) RSS() string {
	if lp.steered {
		return "software: the AF_PACKET fanout program steers frames to their owner; workers hand over the rest"
	}
	return "software: the driver has no hardware RSS"
}

func (lp *lcorePort) Name() string { return lp.name }

func (lp *lcorePort) Queue(i int) lcore.Queue {
	if i == len(lp.queues) {
		return lp.mgmt
	}
	return lp.queues[i]
}

func (lp *lcorePort) Stats() lcore.PortStats {
	s := lp.Port.Stats()
	return lcore.PortStats{RxPackets: s.RxPackets, TxPackets: s.TxPackets + lp.mgmt.sent.Load(),
		RxMissed: s.RxDrops, TxErrors: s.TxErrors}
}

func (lp *lcorePort) Close() error {
	lp.mgmt.close()
	return lp.Port.Close()
}

// lcoreQueue is one worker's queue: its buffers live in a pool the worker
// owns, frames are copied in by Recv and out by Send.
type lcoreQueue struct {
	q     *Queue
	pool  *lcore.PacketPool
	bufs  [lcore.Burst * 2][]byte
	sizes [lcore.Burst * 2]int
	flags [lcore.Burst * 2]uint8
	got   [lcore.Burst * 2]*lcore.Packet
}

func newLcoreQueue(q *Queue) *lcoreQueue {
	return &lcoreQueue{q: q, pool: lcore.NewPacketPool(PoolSize, DefaultFrameSize)}
}

func (lq *lcoreQueue) RxBurst(pkts []*lcore.Packet) int {
	n := min(len(pkts), len(lq.bufs))
	got := 0
	for ; got < n; got++ {
		p := lq.pool.Get()
		if p == nil {
			break
		}
		lq.got[got] = p
		lq.bufs[got] = p.Data[:cap(p.Data)]
	}
	r := lq.q.Recv(lq.bufs[:got], lq.sizes[:got], lq.flags[:got])
	for i := 0; i < r; i++ {
		p := lq.got[i]
		p.Data = p.Data[:lq.sizes[i]]
		if lq.flags[i]&FlagCsumNotReady != 0 {
			p.Flags |= lcore.FlagCsumNotReady
		}
		if lq.flags[i]&FlagTruncated != 0 {
			p.Flags |= lcore.FlagTruncated
		}
		pkts[i] = p
	}
	for i := r; i < got; i++ {
		lq.pool.Put(lq.got[i])
	}
	return r
}

func (lq *lcoreQueue) TxBurst(pkts []*lcore.Packet) int {
	sent := 0
	for len(pkts) > sent {
		n := min(len(pkts)-sent, len(lq.bufs))
		for i := 0; i < n; i++ {
			lq.bufs[i] = pkts[sent+i].Data
			lq.sizes[i] = len(pkts[sent+i].Data)
		}
		k, err := lq.q.Send(lq.bufs[:n], lq.sizes[:n])
		lcore.FreePackets(pkts[sent : sent+k])
		sent += k
		if err != nil || k < n {
			break
		}
	}
	return sent
}

func (lq *lcoreQueue) Free(pkts []*lcore.Packet) { lcore.FreePackets(pkts) }

// BuffersInUse returns how many of the queue's buffers the worker holds.
func (lq *lcoreQueue) BuffersInUse() int { return lq.pool.InUse() }

func (lq *lcoreQueue) Wait(ns int64) { lq.q.Wait(time.Duration(ns)) }

// mgmtQueue transmits the management core's frames (ARP, ICMP errors)
// through a socket bound with protocol 0, which receives nothing.
type mgmtQueue struct {
	fd   int
	addr unix.SockaddrLinklayer
	sent atomic.Uint64
}

func newMgmtQueue(ifindex int) (*mgmtQueue, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	q := &mgmtQueue{fd: fd, addr: unix.SockaddrLinklayer{Ifindex: ifindex}}
	if err := unix.Bind(fd, &q.addr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	return q, nil
}

func (q *mgmtQueue) RxBurst([]*lcore.Packet) int { return 0 }

func (q *mgmtQueue) TxBurst(pkts []*lcore.Packet) int {
	n := 0
	for _, p := range pkts {
		if err := unix.Sendto(q.fd, p.Data, 0, &q.addr); err != nil {
			break
		}
		n++
	}
	q.sent.Add(uint64(n))
	lcore.FreePackets(pkts[:n])
	return n
}

func (q *mgmtQueue) Free(pkts []*lcore.Packet) { lcore.FreePackets(pkts) }

func (q *mgmtQueue) Wait(int64) {}

func (q *mgmtQueue) close() {
	if q.fd >= 0 {
		unix.Close(q.fd)
		q.fd = -1
	}
}
