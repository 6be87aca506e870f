package lcore

import "sync"

// FakePort is an in-memory Port for tests: frames written with Inject
// arrive on the queue the test names, and frames the port transmits are
// collected for Sent. It stands in for a NIC so runtime tests need no
// kernel interfaces.
type FakePort struct {
	name string
	mac  [6]byte
	mtu  int

	mu     sync.Mutex
	rx     [][][]byte // per queue, frames waiting
	tx     [][]byte
	link   bool
	queues []*fakeQueue
	closed bool
}

// NewFakePort returns a fake port with queues queues.
func NewFakePort(name string, mac [6]byte, queues int) *FakePort {
	fp := &FakePort{name: name, mac: mac, mtu: 1500, link: true, rx: make([][][]byte, queues)}
	for i := 0; i < queues; i++ {
		fp.queues = append(fp.queues, &fakeQueue{port: fp, id: i, pool: NewPacketPool(256, 2048)})
	}
	return fp
}

// Inject queues a copy of frame for reception on queue q.
func (fp *FakePort) Inject(q int, frame []byte) {
	fp.mu.Lock()
	fp.rx[q] = append(fp.rx[q], append([]byte(nil), frame...))
	fp.mu.Unlock()
}

// Sent returns and clears the frames transmitted so far.
func (fp *FakePort) Sent() [][]byte {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	s := fp.tx
	fp.tx = nil
	return s
}

// SetLink sets the link state.
func (fp *FakePort) SetLink(up bool) { fp.mu.Lock(); fp.link = up; fp.mu.Unlock() }

// Name implements Port.
func (fp *FakePort) Name() string { return fp.name }

// MAC implements Port.
func (fp *FakePort) MAC() [6]byte { return fp.mac }

// MTU implements Port.
func (fp *FakePort) MTU() int { fp.mu.Lock(); defer fp.mu.Unlock(); return fp.mtu }

// SetMTU sets the MTU the port reports.
func (fp *FakePort) SetMTU(mtu int) { fp.mu.Lock(); fp.mtu = mtu; fp.mu.Unlock() }

// LinkUp implements Port.
func (fp *FakePort) LinkUp() bool { fp.mu.Lock(); defer fp.mu.Unlock(); return fp.link }

// Queue implements Port.
func (fp *FakePort) Queue(i int) Queue { return fp.queues[i] }

// Stats implements Port.
func (fp *FakePort) Stats() PortStats { return PortStats{} }

// Close implements Port.
func (fp *FakePort) Close() error { fp.mu.Lock(); fp.closed = true; fp.mu.Unlock(); return nil }

type fakeQueue struct {
	port *FakePort
	id   int
	pool *PacketPool
}

func (q *fakeQueue) RxBurst(pkts []*Packet) int {
	fp := q.port
	fp.mu.Lock()
	defer fp.mu.Unlock()
	n := 0
	for n < len(pkts) && len(fp.rx[q.id]) > 0 {
		p := q.pool.Get()
		if p == nil {
			break
		}
		f := fp.rx[q.id][0]
		fp.rx[q.id] = fp.rx[q.id][1:]
		p.Data = p.Data[:copy(p.Data[:cap(p.Data)], f)]
		pkts[n] = p
		n++
	}
	return n
}

func (q *fakeQueue) TxBurst(pkts []*Packet) int {
	fp := q.port
	fp.mu.Lock()
	for _, p := range pkts {
		fp.tx = append(fp.tx, append([]byte(nil), p.Data...))
	}
	fp.mu.Unlock()
	q.Free(pkts)
	return len(pkts)
}

func (q *fakeQueue) Free(pkts []*Packet) {
	FreePackets(pkts)
}

func (q *fakeQueue) Wait(int64) {}

func (q *fakeQueue) BuffersInUse() int { return q.pool.InUse() }
