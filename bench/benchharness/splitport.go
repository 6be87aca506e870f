package main

import (
	"errors"

	"github.com/natgw/natgw/lcore"
)

// This file combines two devices into one lcore.Port: frames are received
// from a source device (a net_pcap vdev replaying the benchmark's frames)
// and transmitted to a sink device (net_null). natgw wants Workers RX
// queues and Workers+1 TX queues per port; a replay source can't give
// both directions' traffic, and the source of each benchmark phase must
// be switched off while the other runs. The queue methods run on the
// worker (queues 0..workers-1) and on the management core (queue
// workers); the source is switched only while the worker is stopped.

// splitPort is an lcore.Port receiving from a switchable source port and
// transmitting to a sink port.
type splitPort struct {
	name   string
	sink   lcore.Port
	queues []*splitQueue
}

// newSplitPort returns a port named name with workers+1 queues that
// transmit to sink's queues and receive nothing until SetSource.
func newSplitPort(name string, sink lcore.Port, workers int) *splitPort {
	p := &splitPort{name: name, sink: sink}
	for i := 0; i <= workers; i++ {
		p.queues = append(p.queues, &splitQueue{tx: sink.Queue(i)})
	}
	return p
}

// SetSource makes queue i (i < workers) of the port receive from queue i
// of src (nil: receive nothing). Call it only while no worker polls.
func (p *splitPort) SetSource(src lcore.Port) {
	for i, q := range p.queues[:len(p.queues)-1] {
		q.rx = nil
		if src != nil {
			q.rx = src.Queue(i)
		}
	}
}

// Name returns the port's name.
func (p *splitPort) Name() string { return p.name }

// MAC returns natgw's MAC on the port: the one the benchmark's frames are
// addressed to (the sink, net_null, ignores the source MAC of what natgw
// sends, and its own MAC is random).
func (p *splitPort) MAC() [6]byte { return toNatgwMAC }

// MTU returns the sink's MTU.
func (p *splitPort) MTU() int { return p.sink.MTU() }

// LinkUp reports the sink's link.
func (p *splitPort) LinkUp() bool { return p.sink.LinkUp() }

// Queue returns queue i, or nil when there is none.
func (p *splitPort) Queue(i int) lcore.Queue {
	if i < 0 || i >= len(p.queues) {
		return nil
	}
	return p.queues[i]
}

// Stats returns the sink's counters.
func (p *splitPort) Stats() lcore.PortStats { return p.sink.Stats() }

// Close closes nothing: the devices are closed by their owner.
func (p *splitPort) Close() error { return nil }

// errNoQueue is returned when a device lacks a queue the split port needs.
var errNoQueue = errors.New("device has fewer queues than natgw needs")

// check reports whether every queue has a sink queue.
func (p *splitPort) check() error {
	for _, q := range p.queues {
		if q.tx == nil {
			return errNoQueue
		}
	}
	return nil
}

// splitQueue receives from one device's queue and transmits to another's.
type splitQueue struct {
	rx lcore.Queue
	tx lcore.Queue
}

// RxBurst receives from the source queue, if any.
func (q *splitQueue) RxBurst(pkts []*lcore.Packet) int {
	if q.rx == nil {
		return 0
	}
	return q.rx.RxBurst(pkts)
}

// TxBurst transmits on the sink queue.
func (q *splitQueue) TxBurst(pkts []*lcore.Packet) int { return q.tx.TxBurst(pkts) }

// Free returns packets through the sink queue (the driver frees any of
// its buffers through any of its queues).
func (q *splitQueue) Free(pkts []*lcore.Packet) { q.tx.Free(pkts) }

// Wait returns at once: the benchmark's devices are polled.
func (q *splitQueue) Wait(int64) {}
