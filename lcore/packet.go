package lcore

// Packet is one frame in flight: received from a queue, handed between
// workers, transmitted or freed. Data starts at the Ethernet header.
// Packets belong to whoever holds them; a queue's RxBurst hands them to the
// worker, TxBurst or Free hands them back.
type Packet struct {
	// Data is the frame; cap(Data) is the buffer size.
	Data []byte
	// Flags carry what the driver or an earlier stage learned.
	Flags uint16
	// Port is the logical port the frame arrived on (PortInside, PortOutside).
	Port uint8
	// FragSport and FragDport are the ports of a later fragment's datagram,
	// learnt from its first fragment (FlagFragPorts).
	FragSport, FragDport uint16
	// Handle is the driver's reference to the buffer (a DPDK mbuf); 0 for
	// Go memory.
	Handle uintptr
	// Pool is the pool the buffer returns to (nil for ring slots and
	// driver-owned buffers).
	Pool *PacketPool
}

// Packet flags.
const (
	// FlagCsumNotReady: the transport checksum is partial (offload on a
	// virtual NIC) and must be completed before translation.
	FlagCsumNotReady uint16 = 1 << iota
	// FlagOwned: the owner worker was already chosen (a handed-over packet).
	FlagOwned
	// FlagFragPorts: FragSport and FragDport are set.
	FlagFragPorts
	// FlagTruncated: the frame was longer than the buffer.
	FlagTruncated
	// FlagHairpin: a packet of a hairpin flow, translated outbound and
	// now going through the inbound path as if it came from the outside
	// (nat.VerdictHairpin).
	FlagHairpin
)

// Logical ports.
const (
	PortInside uint8 = iota
	PortOutside
	NumPorts
)

// PortName returns "inside" or "outside".
func PortName(p uint8) string {
	if p == PortInside {
		return "inside"
	}
	return "outside"
}

// Queue is one RX/TX queue pair of a port, used by exactly one goroutine.
// Every call handles a burst; none may block for long.
type Queue interface {
	// RxBurst fills pkts with received frames and returns how many.
	RxBurst(pkts []*Packet) int
	// TxBurst transmits pkts and returns how many were taken; the caller
	// still owns (and must Free) the rest. Packets of another queue's
	// buffers may be transmitted: they are copied.
	TxBurst(pkts []*Packet) int
	// Free returns packets to their buffers without sending them.
	Free(pkts []*Packet)
	// Wait blocks until a frame may be ready or timeout nanoseconds pass;
	// poll-mode drivers return at once.
	Wait(timeoutNs int64)
}

// PortStats are a port's counters as the driver sees them.
type PortStats struct {
	RxPackets, TxPackets, RxMissed, TxErrors uint64
}

// Port is a NIC port opened by a driver with one queue per worker plus one
// for the management core.
type Port interface {
	// Name is the configured port name.
	Name() string
	// MAC is the port's hardware address.
	MAC() [6]byte
	// MTU is the largest IPv4 packet the port sends.
	MTU() int
	// LinkUp reports the link state.
	LinkUp() bool
	// Queue returns queue i: 0..workers-1 for workers, workers for the
	// management core.
	Queue(i int) Queue
	// Stats returns the port's counters.
	Stats() PortStats
	// Close stops the port and releases its resources.
	Close() error
}

// RSSReporter is implemented by ports that can tell how packets reach
// their owner worker: "hardware" when the NIC hashes the remote endpoint
// with natgw's key and redirection table, "software: <reason>" when the
// workers compute the owner and hand packets over (SPEC §3).
type RSSReporter interface {
	RSS() string
}

// RSSMode returns a port's RSSReporter answer, or the software mode for a
// port that has no hardware RSS at all (AF_PACKET, the fake driver).
func RSSMode(p Port) string {
	if r, ok := p.(RSSReporter); ok {
		return r.RSS()
	}
	return "software: the driver has no hardware RSS"
}

// MaxFrameReporter is implemented by ports that may hand the workers
// frames larger than 2048 bytes (DPDK with large mbufs): the runtime sizes
// the buffers of its rings (handoff between workers, frames for the
// management core) to hold them.
type MaxFrameReporter interface {
	MaxFrame() int
}

// BufferCounter is implemented by queues that can tell how many of their
// packet buffers are out of their pool (held by the worker, not yet sent
// or freed). Only the goroutine that uses the queue may call it.
type BufferCounter interface {
	BuffersInUse() int
}

// PacketPool is a fixed set of Go-memory packet buffers owned by one
// goroutine: a worker (for the queues of a copying driver) or a test.
type PacketPool struct {
	free []*Packet
	size int
}

// NewPacketPool returns a pool of n packets with buffers of size bytes.
func NewPacketPool(n, size int) *PacketPool {
	bp := &PacketPool{free: make([]*Packet, 0, n), size: n}
	mem := make([]byte, n*size)
	pkts := make([]Packet, n)
	for i := range pkts {
		pkts[i] = Packet{Data: mem[i*size : i*size : (i+1)*size], Pool: bp}
		bp.free = append(bp.free, &pkts[i])
	}
	return bp
}

// Get returns a free packet with empty Data, or nil.
func (bp *PacketPool) Get() *Packet {
	n := len(bp.free)
	if n == 0 {
		return nil
	}
	p := bp.free[n-1]
	bp.free = bp.free[:n-1]
	p.Flags, p.FragSport, p.FragDport = 0, 0, 0
	p.Data = p.Data[:0]
	return p
}

// Available returns how many packets Get can still hand out.
func (bp *PacketPool) Available() int { return len(bp.free) }

// InUse returns how many of the pool's packets are out of it.
func (bp *PacketPool) InUse() int { return bp.size - len(bp.free) }

// Put returns a packet to the pool.
func (bp *PacketPool) Put(p *Packet) { bp.free = append(bp.free, p) }

// FreePackets returns Go-memory packets to the pools they came from. A
// worker owns the pools of its queues on both ports, so a frame received on
// one port and sent (or dropped) on the other goes home; ring slots have no
// pool and are released by their ring.
func FreePackets(pkts []*Packet) {
	for _, p := range pkts {
		if p.Pool != nil {
			p.Pool.Put(p)
		}
	}
}
