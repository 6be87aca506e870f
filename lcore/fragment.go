package lcore

import (
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"

	"github.com/natgw/natgw/nat"
)

// This file is the fragment table of a worker: for every fragmented
// datagram whose fragments it tracks (the fragment owner, fragOwner), the
// ports its first fragment carries, so later fragments can follow the same
// flow (SPEC §2), and the later fragments that arrived before the first
// (RFC 4787 REQ-14), held until it comes.
//
// Hostile traffic: the table is keyed with a per-process random secret, so
// nobody outside can aim datagrams at one set; the two directions have
// tables of their own, so fragments from the outside never take the place
// of an inside datagram's state; one source may hold at most
// fragSourceLimit incomplete datagrams and held fragments per direction
// and worker; a full set refuses a new datagram instead of evicting a live
// one. A datagram whose every byte went through is no longer live: its
// entry lingers for duplicates but counts against no source, and a new
// datagram may take its way. Every refusal and timeout is a counted
// `fragment` drop.

const (
	// fragTimeout is how long a datagram's state (ports, held fragments)
	// lives after its first fragment reached the table.
	fragTimeout = nat.Tick(2000)
	// fragLinger is how long the state is kept once every byte of the
	// datagram went through (the last fragment told its length), for
	// duplicates.
	fragLinger = nat.Tick(100)
	// fragSets and fragWays size each direction's table.
	fragSets = 256
	fragWays = 4
	// fragMaxHeld is the number of later fragments held per datagram
	// while its first fragment is missing.
	fragMaxHeld = 8
	// fragHoldSlots is the number of held fragments per direction and
	// worker; fragHoldSize the largest frame held (bytes).
	fragHoldSlots = 128
	fragHoldSize  = 2048
	// fragSourceSlots is the size of the per-source usage table (sources
	// are hashed into it with the secret); fragSourceLimit is the number
	// of entries plus held fragments one source slot may hold.
	fragSourceSlots = 4096
	fragSourceLimit = 64
	// fragSweepBudget is the number of entries checked for expiry per
	// direction per poll.
	fragSweepBudget = 16
)

// fragSeed is the per-process secret of the fragment table's hash.
var fragSeed = maphash.MakeSeed()

// fragKey identifies a datagram: source, destination, protocol, IP id.
type fragKey struct {
	src, dst uint32
	id       uint16
	proto    uint8
}

// hash is the keyed hash of a datagram: its high half picks the fragment
// owner, its low half the set.
func (k fragKey) hash() uint64 {
	var b [11]byte
	binary.BigEndian.PutUint32(b[0:], k.src)
	binary.BigEndian.PutUint32(b[4:], k.dst)
	binary.BigEndian.PutUint16(b[8:], k.id)
	b[10] = k.proto
	return maphash.Bytes(fragSeed, b[:])
}

// sourceSlot is the keyed hash of a source address into the usage table.
func sourceSlot(src uint32) uint16 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], src)
	return uint16(maphash.Bytes(fragSeed, b[:]) % fragSourceSlots)
}

func fragKeyOf(l3 []byte) fragKey {
	ip := nat.IPv4(l3)
	return fragKey{src: ip.Src(), dst: ip.Dst(), id: ip.ID(), proto: ip.Protocol()}
}

// fragOwner returns the worker tracking a fragmented datagram.
func fragOwner(l3 []byte, workers int) int {
	return int(uint32(fragKeyOf(l3).hash()>>32) % uint32(workers))
}

type fragEntry struct {
	key          fragKey
	sport, dport uint16
	expires      nat.Tick
	src          uint16 // source usage slot
	used         bool
	ports        bool // the first fragment went through: sport, dport are set
	// counted: the entry counts against its source (srcUse) until every
	// byte of the datagram went through.
	counted bool
	// seen counts the payload bytes of fragments that went through;
	// total is the datagram's payload length once the last fragment told
	// it (0 before).
	seen, total uint32
	nheld       uint8
	held        [fragMaxHeld]uint8 // hold slots, in arrival order
}

// fragDir is one direction's table (datagrams received on one port).
type fragDir struct {
	entries  [fragSets * fragWays]fragEntry
	srcUse   [fragSourceSlots]uint16
	hold     [fragHoldSlots]Packet
	freeHold []uint8
	inflight []uint8 // hold slots queued here for translation this poll
	sweep    int
	live     int // entries in use: the sweep is skipped while there are none
}

// Fragment table events, counted per worker (FragCounters).
const (
	// FragHeld: a later fragment held until its first fragment comes.
	FragHeld = iota
	// FragReleased: a held fragment sent on after its first fragment.
	FragReleased
	// FragTimedOut: a held fragment dropped when its datagram's state
	// expired without a first fragment.
	FragTimedOut
	// FragRefused: a fragment (or a new datagram's state) refused by a
	// bound: the source's share, a full set, a full hold area, too many
	// held fragments for one datagram, or too big to hold.
	FragRefused
	// NumFragCounters is the number of fragment table counters.
	NumFragCounters
)

// FragCounterNames are the fragment table events as metric labels.
var FragCounterNames = [NumFragCounters]string{"held", "released", "timed_out", "refused"}

// fragTable is a worker's fragment state: one fragDir per port.
type fragTable struct {
	dir [NumPorts]fragDir
	// release is the entry whose first fragment just arrived while later
	// fragments were held; releaseHeld sends them on.
	release     *fragEntry
	releasePort uint8
	count       [NumFragCounters]uint64
}

func (t *fragTable) init() {
	for d := range t.dir {
		fd := &t.dir[d]
		mem := make([]byte, fragHoldSlots*fragHoldSize)
		fd.freeHold = make([]uint8, 0, fragHoldSlots)
		fd.inflight = make([]uint8, 0, fragHoldSlots)
		for i := range fd.hold {
			fd.hold[i].Data = mem[i*fragHoldSize : i*fragHoldSize : (i+1)*fragHoldSize]
			fd.freeHold = append(fd.freeHold, uint8(i))
		}
	}
}

// find returns the live entry of k, or nil; an expired entry of k is freed
// on the way.
func (w *Worker) fragFind(d *fragDir, k fragKey, h uint64, now nat.Tick) *fragEntry {
	set := d.entries[int(uint32(h)%fragSets)*fragWays:][:fragWays]
	for i := range set {
		e := &set[i]
		if e.used && e.key == k {
			if int32(now-e.expires) > 0 {
				w.fragFree(d, e)
				return nil
			}
			return e
		}
	}
	return nil
}

// fragNew takes a free way of k's set for a new datagram (or the way of a
// complete datagram, whose entry only lingers for duplicates), or returns
// nil when the source holds its share or the set is full of live entries.
func (w *Worker) fragNew(d *fragDir, k fragKey, h uint64, now nat.Tick) *fragEntry {
	src := sourceSlot(k.src)
	if d.srcUse[src] >= fragSourceLimit {
		return nil
	}
	set := d.entries[int(uint32(h)%fragSets)*fragWays:][:fragWays]
	var free, done *fragEntry
	for i := range set {
		e := &set[i]
		if e.used && int32(now-e.expires) > 0 {
			w.fragFree(d, e)
		}
		if !e.used && free == nil {
			free = e
		}
		if e.used && e.complete() && e.nheld == 0 && done == nil {
			done = e
		}
	}
	if free == nil && done != nil {
		w.fragFree(d, done)
		free = done
	}
	if free != nil {
		*free = fragEntry{key: k, expires: now + fragTimeout, src: src, used: true, counted: true}
		d.srcUse[src]++
		d.live++
	}
	return free
}

// fragFree frees an entry, dropping the fragments it still holds.
func (w *Worker) fragFree(d *fragDir, e *fragEntry) {
	if n := uint64(e.nheld); n > 0 {
		w.frags.count[FragTimedOut] += n
		w.drops[nat.DropFragment] += n
		d.freeHold = append(d.freeHold, e.held[:e.nheld]...)
	}
	n := uint16(e.nheld)
	if e.counted {
		n++
	}
	d.srcUse[e.src] -= n
	d.live--
	*e = fragEntry{}
}

// complete reports whether every byte of the datagram went through.
func (e *fragEntry) complete() bool { return e.total != 0 && e.seen >= e.total }

// account counts a fragment that goes on; once every byte of the datagram
// went through, the entry lives only fragLinger more and no longer counts
// against its source.
func (e *fragEntry) account(d *fragDir, l3 []byte, now nat.Tick) {
	ip := nat.IPv4(l3)
	n := max(ipTotalLen(l3)-ip.HeaderLen(), 0)
	e.seen += uint32(n)
	if !ip.MF() { // the last fragment
		e.total = uint32(ip.FragOffset() + n)
	}
	if e.complete() {
		e.expires = min(e.expires, now+fragLinger)
		if e.counted {
			e.counted = false
			d.srcUse[e.src]--
		}
	}
}

// fragment runs a fragment through the table of the port it came in on. It
// reports true when the packet goes on (a first fragment, or a later one
// stamped with its datagram's ports: FlagFragPorts); false when it was
// held or dropped (the caller must not touch it then).
func (w *Worker) fragment(p *Packet, l3 []byte) bool {
	ip, ok := nat.ParseIPv4(l3)
	if !ok || p.Port >= NumPorts {
		w.drop(p, nat.DropMalformed)
		return false
	}
	now := w.clock()
	t := &w.frags
	d := &t.dir[p.Port]
	k := fragKeyOf(l3)
	h := k.hash()
	e := w.fragFind(d, k, h, now)
	if ip.FragOffset() == 0 {
		dir := nat.DirOut
		if p.Port == PortOutside {
			dir = nat.DirIn
		}
		sport, dport, ok := nat.FlowPorts(ip, dir)
		if !ok {
			return true // the translator decides
		}
		if e == nil {
			if e = w.fragNew(d, k, h, now); e == nil {
				t.count[FragRefused]++ // it goes on; its later fragments won't
				return true
			}
		}
		e.sport, e.dport, e.ports = sport, dport, true
		e.account(d, l3, now)
		if e.nheld > 0 {
			t.release, t.releasePort = e, p.Port
		}
		return true
	}
	if e != nil && e.ports {
		p.Flags |= FlagFragPorts
		p.FragSport, p.FragDport = e.sport, e.dport
		e.account(d, l3, now)
		return true
	}
	// A later fragment before its first: hold it.
	if e == nil {
		e = w.fragNew(d, k, h, now)
	}
	if e == nil || e.nheld == fragMaxHeld || len(d.freeHold) == 0 || len(p.Data) > fragHoldSize ||
		d.srcUse[e.src] >= fragSourceLimit {
		if e != nil && e.nheld == 0 {
			w.fragFree(d, e) // don't keep an empty entry
		}
		t.count[FragRefused]++
		w.drop(p, nat.DropFragment)
		return false
	}
	slot := d.freeHold[len(d.freeHold)-1]
	d.freeHold = d.freeHold[:len(d.freeHold)-1]
	hp := &d.hold[slot]
	hp.Data = hp.Data[:len(p.Data)]
	copy(hp.Data, p.Data)
	e.held[e.nheld] = slot
	e.nheld++
	d.srcUse[e.src]++
	t.count[FragHeld]++
	w.free(p)
	return false
}

// releaseHeld sends on the fragments held for the datagram whose first
// fragment fragment has just seen, in their arrival order, after that
// first fragment (the caller has queued or handed it over already): to the
// flow's owner, or through classify here.
func (w *Worker) releaseHeld() {
	t := &w.frags
	e := t.release
	if e == nil {
		return
	}
	t.release = nil
	port := t.releasePort
	d := &t.dir[port]
	n := e.nheld
	e.nheld = 0
	d.srcUse[e.src] -= uint16(n)
	t.count[FragReleased] += uint64(n)
	now := w.clock()
	for _, slot := range e.held[:n] {
		hp := &d.hold[slot]
		hp.Flags = FlagOwned | FlagFragPorts
		hp.Port = port
		hp.FragSport, hp.FragDport = e.sport, e.dport
		l3 := hp.Data[nat.EthernetLen:]
		e.account(d, l3, now)
		owner := w.id
		if w.workers > 1 {
			owner = w.portOwner(hp, l3, e.sport, e.dport)
		}
		if owner != w.id {
			w.pushTo(owner, hp)
			d.freeHold = append(d.freeHold, slot)
			continue
		}
		d.inflight = append(d.inflight, slot)
		w.classify(hp)
	}
}

// fragPoll ends a poll: hold slots translated here this poll are free again
// (their frames were transmitted, so copied, or dropped), and a few entries
// are checked for expiry, dropping the fragments they held.
func (w *Worker) fragPoll(now nat.Tick) {
	for i := range w.frags.dir {
		d := &w.frags.dir[i]
		if len(d.inflight) > 0 {
			d.freeHold = append(d.freeHold, d.inflight...)
			d.inflight = d.inflight[:0]
		}
		for j := 0; j < fragSweepBudget && d.live > 0; j++ {
			e := &d.entries[d.sweep]
			d.sweep = (d.sweep + 1) % len(d.entries)
			if e.used && int32(now-e.expires) > 0 {
				w.fragFree(d, e)
			}
		}
	}
}

// publishFrags copies the fragment table's counters to the published ones.
func (w *Worker) publishFrags() {
	for i := range w.frags.count {
		w.Counters.Frag[i].Store(w.frags.count[i])
	}
}

// fragCounters is the published form of the fragment table's counters.
type fragCounters = [NumFragCounters]atomic.Uint64
