package nat

// The per-worker flow table (docs/DESIGN.md, "Flow table"). A FlowTable is
// owned by one worker lcore: every method runs on that worker only, with no
// locks, and the packet-path methods (lookups, Flow, Insert, Touch,
// SetState, Remove, Expire) never allocate. Other cores see flows only
// through what the worker exports (statistics, Range on request).
//
// Layout: a preallocated array of Flow records (index 0 unused, so 0 means
// "none"), a free list threaded through the records, two open-addressing
// indexes (flowtable_index.go: out by private 5-tuple, in by public
// 5-tuple) and the timer wheel (wheel.go). Records never handed out are
// not on the free list (used marks the high-water mark), so a new table
// touches no memory until flows arrive.

import (
	"math/rand/v2"
	"reflect"
)

// Flow is one NAT flow: the translation of a private 5-tuple to a public
// one, its TCP state and its last activity. Records live in the table and
// are reached by index. A record is 64 bytes, one cache line (the table's
// array is page-aligned by the Go allocator once it is larger than 32 KiB),
// so a lookup and the refresh that follows cost one memory access to the
// record, never two: 62 bytes of fields and 2 of padding, which costs
// less than the second cache miss a 52-byte record straddling two lines
// would cost on 80% of lookups.
type Flow struct {
	// Priv, Pub and Remote are the private, public and remote IPv4
	// addresses (host byte order).
	Priv, Pub, Remote uint32
	// PrivPort, PubPort and RemotePort are the private, public and remote
	// ports; for ICMP echo the identifier, the translated identifier and 0.
	PrivPort, PubPort, RemotePort uint16
	// Proto is the IP protocol number.
	Proto uint8
	// State is one of the State constants; it selects the idle timeout.
	State uint8
	// Flags holds Flag bits (FIN seen per direction, RST, reclaim).
	Flags uint8
	// wscale holds each side's window scale as learnt from its SYN, plus
	// one (low nibble private, high nibble remote; 0 = not seen). It sits
	// here, in what was alignment padding.
	wscale uint8
	// LastSeen is the time of the flow's last packet.
	LastSeen Tick
	// Gen is the policy generation the flow was last validated against
	// (maintained by the translator).
	Gen uint32
	// AckPriv and AckRemote are the acknowledgement numbers of the last
	// TCP segments from the private and the remote side (0 = none seen):
	// each is the sequence number that side expects next, so a RST sent
	// to it with that number is accepted (tcp_reset_on_idle).
	AckPriv, AckRemote uint32
	// Scope is the translator's small tag (pool index etc.); the table
	// ignores it.
	Scope uint16

	// slot is the wheel slot the flow is filed in.
	slot uint16
	// next and prev link the flow into its wheel slot's list; next also
	// links free records.
	next, prev uint32

	// dAddr and dL4 are the checksum deltas of the outbound translation
	// (RFC 1624): the one's complement sum that replacing Priv by Pub
	// adds to a checksum covering the address (IPv4 header), and that
	// replacing Priv:PrivPort by Pub:PubPort adds to one covering both
	// (TCP/UDP with the pseudo-header). Inbound adds their complements.
	// Set by Insert, so a packet pays one addition per checksum.
	dAddr, dL4 uint16

	// snat names the default-SNAT allocator a default-SNAT flow is counted
	// on (the translator's table of them; 0 = none): the flow releases on
	// the allocator that counted it, even after a reload replaced it.
	snat uint8

	// winPriv and winRemote are the (unscaled) windows of the last TCP
	// segments with ACK from the private and the remote side, stored with
	// AckPriv and AckRemote. With wscale they bound the sequence numbers
	// a RST or FIN may carry (tcpseq.go).
	winPriv, winRemote uint16

	// drain names the drain epoch of a draining flow (the translator's
	// table of them, drain.go; 0 = not draining): its deadline.
	drain uint8

	_ [1]byte // to 64 bytes: one record, one cache line
}

// OutKey is the key of the out index: the private 5-tuple of a flow (for
// ICMP echo, the identifier as PrivPort and 0 as RemotePort).
type OutKey struct {
	Priv, Remote         uint32
	PrivPort, RemotePort uint16
	Proto                uint8
}

// InKey is the key of the in index: the public 5-tuple of a flow (for ICMP
// echo, the translated identifier as PubPort and 0 as RemotePort).
type InKey struct {
	Pub, Remote         uint32
	PubPort, RemotePort uint16
	Proto               uint8
}

// MaxFlowCapacity is the largest capacity of one FlowTable.
const MaxFlowCapacity = 1 << 28

// lookupBurst is the number of keys whose memory accesses a batched lookup
// overlaps.
const lookupBurst = 64

// FlowTable is a worker's fixed-capacity flow table with its timer wheel.
// It is not safe for concurrent use: one worker owns it.
type FlowTable struct {
	flows []Flow
	out   flowIndex
	in    flowIndex

	free uint32 // head of the free list of released records, 0 = empty
	used uint32 // records 1..used have been handed out at least once
	n    int    // live flows
	// removals counts records freed, modulo 2^32: a caller holding a
	// record number from before a removal looks the flow up again (a
	// freed record may already be another flow's).
	removals uint32

	to       Timeouts
	timeouts [8]Tick // timeout by state, from to

	cursor Tick // start of the next wheel slot to process
	heads  [wheelSlots]uint32
}

// NewFlowTable returns an empty table for capacity flows (clamped to
// [1, MaxFlowCapacity]) whose timeouts are to and whose wheel starts at now.
// All memory is allocated here; nothing grows later.
func NewFlowTable(capacity int, to Timeouts, now Tick) *FlowTable {
	capacity = max(1, min(capacity, MaxFlowCapacity))
	t := &FlowTable{
		flows:  make([]Flow, capacity+1),
		out:    newFlowIndex(capacity, rand.Uint64(), rand.Uint64()),
		in:     newFlowIndex(capacity, rand.Uint64(), rand.Uint64()),
		cursor: now &^ (wheelSlotTicks - 1),
	}
	t.SetTimeouts(to)
	return t
}

// SetTimeouts replaces the table's timeouts (each cut to MaxTimeout). Flows
// are not re-filed: a flow's deadline is computed from its state's timeout
// when its wheel slot comes up, so a longer timeout takes effect at once
// and a shorter one at the latest when the old deadline is reached.
func (t *FlowTable) SetTimeouts(to Timeouts) {
	to.TCPEstablished = min(to.TCPEstablished, MaxTimeout)
	to.TCPTransitory = min(to.TCPTransitory, MaxTimeout)
	to.TCPClosing = min(to.TCPClosing, MaxTimeout)
	to.UDP = min(to.UDP, MaxTimeout)
	to.ICMP = min(to.ICMP, MaxTimeout)
	t.to = to
	for s := range t.timeouts {
		t.timeouts[s] = Timeout(uint8(s), &to)
	}
}

// Timeouts returns the table's timeouts.
func (t *FlowTable) Timeouts() Timeouts { return t.to }

// LookupOut returns the index of the flow whose private 5-tuple is k, or 0.
func (t *FlowTable) LookupOut(k *OutKey) uint32 {
	return t.findOut(k, t.out.tag(k.Priv, k.Remote, k.PrivPort, k.RemotePort, k.Proto))
}

// LookupIn returns the index of the flow whose public 5-tuple is k, or 0.
func (t *FlowTable) LookupIn(k *InKey) uint32 {
	return t.findIn(k, t.in.tag(k.Pub, k.Remote, k.PubPort, k.RemotePort, k.Proto))
}

// LookupOutBatch looks up every key of keys in the out index and writes the
// flow indexes (0 = none) to out, which must be at least as long as keys.
// Keys are processed in bursts of 32 whose hashes, index slots and records
// are loaded in three passes, so their cache misses overlap.
func (t *FlowTable) LookupOutBatch(keys []OutKey, out []uint32) {
	out = out[:len(keys)]
	for len(keys) > 0 {
		n := min(len(keys), lookupBurst)
		t.lookupOutBurst(keys[:n], out[:n])
		keys, out = keys[n:], out[n:]
	}
}

// LookupInBatch is LookupOutBatch for the in index.
func (t *FlowTable) LookupInBatch(keys []InKey, out []uint32) {
	out = out[:len(keys)]
	for len(keys) > 0 {
		n := min(len(keys), lookupBurst)
		t.lookupInBurst(keys[:n], out[:n])
		keys, out = keys[n:], out[n:]
	}
}

// lookupOutBurst looks up at most lookupBurst keys.
func (t *FlowTable) lookupOutBurst(keys []OutKey, out []uint32) {
	var tags [lookupBurst]uint32
	keys = keys[:min(len(keys), lookupBurst)]
	out = out[:len(keys)]
	for j := range keys {
		k := &keys[j]
		tags[j] = t.out.tag(k.Priv, k.Remote, k.PrivPort, k.RemotePort, k.Proto)
	}
	t.touch(&tags, len(keys), &t.out)
	for j := range keys {
		out[j] = t.findOut(&keys[j], tags[j])
	}
}

// lookupInBurst looks up at most lookupBurst keys.
func (t *FlowTable) lookupInBurst(keys []InKey, out []uint32) {
	var tags [lookupBurst]uint32
	keys = keys[:min(len(keys), lookupBurst)]
	out = out[:len(keys)]
	for j := range keys {
		k := &keys[j]
		tags[j] = t.in.tag(k.Pub, k.Remote, k.PubPort, k.RemotePort, k.Proto)
	}
	t.touch(&tags, len(keys), &t.in)
	for j := range keys {
		out[j] = t.findIn(&keys[j], tags[j])
	}
}

// touch brings into cache the home slot of each of the n tags, then the
// record each key's tag points to: all home slots are prefetched at once,
// then each key's probe run is read (the first read waits for its line,
// the others have arrived meanwhile) up to the slot with the key's tag,
// and the records those slots name are prefetched. The lookups that
// follow find their lines in cache or on their way, so a burst pays
// about two memory latencies instead of two per key. (Prefetching the
// home slot's record instead would miss for the third of the keys that
// linear probing has moved past their home.)
func (t *FlowTable) touch(tags *[lookupBurst]uint32, n int, x *flowIndex) {
	var addrs [lookupBurst]uintptr
	n = min(n, lookupBurst)
	slots := x.slots[:x.size]
	for j := 0; j < n; j++ {
		if h := x.home(tags[j]); h < uint32(len(slots)) {
			addrs[j] = addrOf(&slots[h])
		}
	}
	prefetchAddrs(&addrs[0], n)
	flows := t.flows
	m := 0
	for j := 0; j < n; j++ {
		tag := tags[j]
		for p := x.home(tag); p < uint32(len(slots)); p = x.next(p) {
			s := slots[p]
			if s.tag == tag {
				if s.flow < uint32(len(flows)) {
					addrs[m] = addrOf(&flows[s.flow])
					m++
				}
				break
			}
			if s.tag == 0 {
				break
			}
		}
	}
	prefetchAddrs(&addrs[0], m)
}

// findOut probes the out index for k, whose tag is tag.
//
// findOut and findIn are twins on purpose: they differ only in the index
// they probe and in the record fields they compare with the key (private
// or public address and port). A shared probe loop would take that
// comparison as a func value or as a method of a type parameter, and both
// compile to an indirect call: the loop is too big to inline (cost 121,
// the inliner's budget is 80: go build -gcflags=-m), so a closure is never
// inlined into it; and generic code is compiled once per GC shape with
// method calls through a dictionary (a find[K] tried here called
// K.matches through a register, not inline). That is a call at every tag
// match, so in every lookup that finds its flow, on the packet path. The
// twins compare inline, with no call at all.
func (t *FlowTable) findOut(k *OutKey, tag uint32) uint32 {
	x := &t.out
	slots := x.slots[:x.size]
	for p := x.home(tag); ; p = x.next(p) {
		s := slots[p]
		if s.tag == tag {
			if s.flow < uint32(len(t.flows)) {
				f := &t.flows[s.flow]
				if f.Priv == k.Priv && f.Remote == k.Remote && f.PrivPort == k.PrivPort &&
					f.RemotePort == k.RemotePort && f.Proto == k.Proto {
					return s.flow
				}
			}
		} else if s.tag == 0 {
			return 0
		}
	}
}

// findIn probes the in index for k, whose tag is tag; see findOut for
// why the two are not one function.
func (t *FlowTable) findIn(k *InKey, tag uint32) uint32 {
	x := &t.in
	slots := x.slots[:x.size]
	for p := x.home(tag); ; p = x.next(p) {
		s := slots[p]
		if s.tag == tag {
			if s.flow < uint32(len(t.flows)) {
				f := &t.flows[s.flow]
				if f.Pub == k.Pub && f.Remote == k.Remote && f.PubPort == k.PubPort &&
					f.RemotePort == k.RemotePort && f.Proto == k.Proto {
					return s.flow
				}
			}
		} else if s.tag == 0 {
			return 0
		}
	}
}

// Flow returns the record of flow i, valid until the flow is removed, or
// nil when i is not a record index. i must come from a lookup or Insert.
func (t *FlowTable) Flow(i uint32) *Flow {
	if i == 0 || i >= uint32(len(t.flows)) {
		return nil
	}
	return &t.flows[i]
}

// Insert copies f into a free record, indexes it by its private and public
// 5-tuples, sets its LastSeen to now and files it on the wheel. It returns
// the new flow's index, or false when the table is full, when a live flow
// already has the same private 5-tuple or the same public 5-tuple (the
// caller looks up before inserting, so this is a caller bug it can count),
// or when f.State is StateFree.
func (t *FlowTable) Insert(f *Flow, now Tick) (uint32, bool) {
	if t.n >= len(t.flows)-1 || f.State == StateFree {
		return 0, false
	}
	outTag := t.out.tag(f.Priv, f.Remote, f.PrivPort, f.RemotePort, f.Proto)
	outPos, ok := t.outInsertPos(f, outTag)
	if !ok {
		return 0, false
	}
	inTag := t.in.tag(f.Pub, f.Remote, f.PubPort, f.RemotePort, f.Proto)
	inPos, ok := t.inInsertPos(f, inTag)
	if !ok {
		return 0, false
	}
	i := t.free
	if i != 0 {
		t.free = t.flows[i].next
	} else {
		t.used++
		i = t.used
	}
	r := &t.flows[i]
	*r = *f
	r.LastSeen = now
	r.dAddr, r.dL4 = translationDeltas(r)
	t.out.slots[outPos] = indexSlot{tag: outTag, flow: i}
	t.in.slots[inPos] = indexSlot{tag: inTag, flow: i}
	t.n++
	t.wheelFile(i, now+t.timeouts[r.State&7])
	return i, true
}

// outInsertPos returns the empty out-index slot where a flow with the
// private 5-tuple of f and tag tag goes, or false if a flow with that
// 5-tuple is already there.
func (t *FlowTable) outInsertPos(f *Flow, tag uint32) (uint32, bool) {
	x := &t.out
	slots := x.slots[:x.size]
	for p := x.home(tag); ; p = x.next(p) {
		s := slots[p]
		if s.tag == 0 {
			return p, true
		}
		if s.tag == tag && s.flow < uint32(len(t.flows)) {
			g := &t.flows[s.flow]
			if g.Priv == f.Priv && g.Remote == f.Remote && g.PrivPort == f.PrivPort &&
				g.RemotePort == f.RemotePort && g.Proto == f.Proto {
				return 0, false
			}
		}
	}
}

// inInsertPos is outInsertPos for the public 5-tuple and the in index.
func (t *FlowTable) inInsertPos(f *Flow, tag uint32) (uint32, bool) {
	x := &t.in
	slots := x.slots[:x.size]
	for p := x.home(tag); ; p = x.next(p) {
		s := slots[p]
		if s.tag == 0 {
			return p, true
		}
		if s.tag == tag && s.flow < uint32(len(t.flows)) {
			g := &t.flows[s.flow]
			if g.Pub == f.Pub && g.Remote == f.Remote && g.PubPort == f.PubPort &&
				g.RemotePort == f.RemotePort && g.Proto == f.Proto {
				return 0, false
			}
		}
	}
}

// live reports whether i is the index of a live flow.
func (t *FlowTable) live(i uint32) bool {
	return i != 0 && i < uint32(len(t.flows)) && t.flows[i].State != StateFree
}

// Touch records a packet of flow i at now. It only writes LastSeen: the
// wheel catches up when the flow's slot comes up. An i that is not a
// record index is ignored.
func (t *FlowTable) Touch(i uint32, now Tick) {
	if i < uint32(len(t.flows)) {
		t.flows[i].LastSeen = now
	}
}

// SetState records a state change of flow i caused by a packet seen at now:
// it sets State, Flags and LastSeen. When the new state's timeout is
// shorter than the old one's (Established to Closing, say) the flow is
// re-filed on the wheel at once so it expires on time. Changing a flow to
// StateFree, or changing a flow that is not live, is ignored: use Remove.
func (t *FlowTable) SetState(i uint32, state, flags uint8, now Tick) {
	if !t.live(i) || state == StateFree {
		return
	}
	f := &t.flows[i]
	old := t.timeouts[f.State&7]
	to := t.timeouts[state&7]
	f.State, f.Flags, f.LastSeen = state, flags, now
	if to < old {
		t.wheelUnfile(i)
		t.wheelFile(i, now+to)
	}
}

// Remove takes flow i out of both indexes and the wheel and frees its
// record. An i that is not a live flow is ignored.
func (t *FlowTable) Remove(i uint32) {
	if !t.live(i) {
		return
	}
	t.wheelUnfile(i)
	t.unindex(i)
	t.release(i)
}

// unindex removes live flow i from both indexes.
func (t *FlowTable) unindex(i uint32) {
	f := &t.flows[i]
	t.out.remove(t.out.tag(f.Priv, f.Remote, f.PrivPort, f.RemotePort, f.Proto), i)
	t.in.remove(t.in.tag(f.Pub, f.Remote, f.PubPort, f.RemotePort, f.Proto), i)
}

// release frees the record of flow i, which is off the wheel and the
// indexes.
func (t *FlowTable) release(i uint32) {
	f := &t.flows[i]
	*f = Flow{next: t.free}
	t.free = i
	t.n--
	t.removals++
}

// Range calls fn for every live flow, in record order, until fn returns
// false. fn may Remove the flow it is given, and nothing else. Range is
// for the management API and sweeps, not the packet path.
func (t *FlowTable) Range(fn func(i uint32, f *Flow) bool) {
	for i := uint32(1); i <= t.used; i++ {
		f := &t.flows[i]
		if f.State != StateFree && !fn(i, f) {
			return
		}
	}
}

// Len returns the number of live flows.
func (t *FlowTable) Len() int { return t.n }

// Capacity returns the maximum number of flows.
func (t *FlowTable) Capacity() int { return len(t.flows) - 1 }

// HighWater returns the highest record index ever handed out: records
// above it have never held a flow (they are free and untouched), so a
// pass over the flows (sweep, utilisation scan, queries) stops there.
// Reading the untouched rest would fault in the whole record array, 64
// bytes per flow of capacity, on the worker (issue 20: at 16 M capacity
// that cost the worker 90% of its time for seconds, and made the array
// resident whatever the live flows). It never decreases.
func (t *FlowTable) HighWater() uint32 { return t.used }

// MemoryBytes returns the bytes held by the table: records, both indexes
// and the wheel. Divided by Capacity it is the memory cost of a flow.
func (t *FlowTable) MemoryBytes() int {
	return len(t.flows)*int(reflect.TypeFor[Flow]().Size()) +
		(len(t.out.slots)+len(t.in.slots))*int(reflect.TypeFor[indexSlot]().Size()) +
		int(reflect.TypeFor[FlowTable]().Size())
}
