package lcore

import (
	"encoding/binary"

	"github.com/natgw/natgw/nat"
)

// fragTimeout is how long a datagram's ports are kept for its later
// fragments (SPEC §2).
const fragTimeout = nat.Tick(2000)

// fragKey identifies a datagram: source, destination, protocol, IP id.
type fragKey struct {
	src, dst uint32
	id       uint16
	proto    uint8
}

type fragEntry struct {
	key          fragKey
	sport, dport uint16
	expires      nat.Tick
	used         bool
}

// fragTable remembers, per worker, the ports of fragmented datagrams whose
// first fragment it saw, so later fragments can follow the same flow. It is
// a small fixed-size cache: a slot is overwritten by a newer datagram that
// hashes to it, and entries live fragTimeout.
type fragTable struct {
	slots []fragEntry
	mask  uint32
	// Dropped counts later fragments with no known first fragment.
	Dropped uint64
}

func (t *fragTable) init(size int) {
	n := 1
	for n < size {
		n <<= 1
	}
	t.slots = make([]fragEntry, n)
	t.mask = uint32(n - 1)
}

func (k fragKey) hash() uint32 {
	h := uint64(k.src)<<32 | uint64(k.dst)
	h ^= uint64(k.id)<<8 | uint64(k.proto)
	h *= 0x9e3779b97f4a7c15
	return uint32(h >> 32)
}

func fragKeyOf(l3 []byte) fragKey {
	ip := nat.IPv4(l3)
	return fragKey{src: ip.Src(), dst: ip.Dst(), id: ip.ID(), proto: ip.Protocol()}
}

// fragOwner returns the worker tracking a fragmented datagram.
func fragOwner(l3 []byte, workers int) int {
	return int(fragKeyOf(l3).hash() % uint32(workers))
}

// fragment records a first fragment's ports or finds a later fragment's.
// It reports false, and drops the packet, for a later fragment whose first
// fragment is unknown (or a malformed one).
func (w *Worker) fragment(p *Packet, l3 []byte) bool {
	ip, ok := nat.ParseIPv4(l3)
	if !ok {
		w.drop(p, nat.DropMalformed)
		return false
	}
	now := w.clock()
	k := fragKeyOf(l3)
	e := &w.frags.slots[k.hash()&w.frags.mask]
	dir := nat.DirOut
	if p.Port == PortOutside {
		dir = nat.DirIn
	}
	if ip.FragOffset() == 0 {
		sport, dport, ok := nat.FlowPorts(ip, dir)
		if ok {
			*e = fragEntry{key: k, sport: sport, dport: dport, expires: now + fragTimeout, used: true}
		}
		return true
	}
	if !e.used || e.key != k || int32(now-e.expires) > 0 {
		w.frags.Dropped++
		w.drop(p, nat.DropFragment)
		return false
	}
	p.Flags |= FlagFragPorts
	p.FragSport, p.FragDport = e.sport, e.dport
	if binary.BigEndian.Uint16(l3[6:])&0x2000 == 0 { // the last fragment
		e.expires = now + 100 // keep briefly for reordered fragments
	}
	return true
}
