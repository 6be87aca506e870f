package nat

import (
	"math/bits"
	"math/rand/v2"
	"reflect"
)

// Per-host flow limits (issue 14 item 7, RFC 6888 REQ-4). Each worker
// counts the flows each host has opened: outbound flows by their inside
// host, inbound flows (opened through an instance's inbound rules) by
// their outside host, and inbound flows in all. A new flow is refused when
// its opener already holds the policy's host limit (DropHostLimit) or,
// opened from the outside, when inbound flows already hold their share of
// the table (DropInboundLimit). So no host, inside or outside, can fill
// the table and lock the others out, and the outside can't fill the part
// the inside needs. The counts change only when a flow is created or
// released; established packets never touch them.

// hostSlot is one entry of a hostCounts table: an address and, in n, the
// number of flows it opened (bits 0-30) and whether it is an outside host
// (bit 31). n == 0 marks an empty slot.
type hostSlot struct {
	addr uint32
	n    uint32
}

// hostOutside marks the count of an outside host in hostSlot.n.
const hostOutside = 1 << 31

// hostCounts is a fixed-capacity open-addressing table of per-host flow
// counts with linear probing and backward-shift deletion, like
// portalloc.Usage: all memory is allocated by newHostCounts, entries are 8
// bytes and there are 5/4 as many slots as flows the table can hold (10
// bytes per flow of capacity). Every live flow is counted on at most one
// host, so the table holds at most as many hosts as there are flows; the
// hash is seeded at random so that outside hosts can't choose colliding
// addresses.
type hostCounts struct {
	slots []hostSlot
	size  uint64
	seed  uint64
	len   int
}

func newHostCounts(capacity int) hostCounts {
	size := max(2, capacity+capacity/4+1)
	return hostCounts{slots: make([]hostSlot, size), size: uint64(size), seed: rand.Uint64() | 1}
}

// home returns the home slot of a host.
func (h *hostCounts) home(addr uint32, kind uint32) uint64 {
	hi, lo := bits.Mul64(uint64(addr)|uint64(kind)<<1, h.seed)
	x := hi ^ lo
	x ^= x >> 29
	hi, _ = bits.Mul64(x, h.size)
	return hi
}

// homeAddr returns the address of a host's home slot, a prefetch hint.
func (h *hostCounts) homeAddr(addr, kind uint32) uintptr {
	return addrOf(&h.slots[h.home(addr, kind)])
}

// find returns the slot of a host, or the empty slot where it would go.
func (h *hostCounts) find(addr, kind uint32) uint64 {
	i := h.home(addr, kind)
	for {
		s := &h.slots[i]
		if s.n == 0 || (s.addr == addr && s.n&hostOutside == kind) {
			return i
		}
		if i++; i == h.size {
			i = 0
		}
	}
}

// count returns the flows the host opened.
func (h *hostCounts) count(addr, kind uint32) int {
	return int(h.slots[h.find(addr, kind)].n &^ hostOutside)
}

// inc counts one more flow of the host; it reports false, counting
// nothing, when the table has no room for another host.
func (h *hostCounts) inc(addr, kind uint32) bool {
	return h.incAt(&h.slots[h.find(addr, kind)], addr, kind)
}

// incAt is inc on the slot find returned for addr and kind.
func (h *hostCounts) incAt(s *hostSlot, addr, kind uint32) bool {
	if s.n == 0 {
		if uint64(h.len+1) >= h.size {
			return false
		}
		h.len++
		s.addr, s.n = addr, kind
	}
	s.n++
	return true
}

// dec counts one flow of the host less, removing it at zero.
func (h *hostCounts) dec(addr, kind uint32) {
	i := h.find(addr, kind)
	s := &h.slots[i]
	if s.n == 0 {
		return // not counted (a flow from before the limits existed)
	}
	if s.n--; s.n&^hostOutside != 0 {
		return
	}
	// Backward-shift deletion: move later entries of the probe run into
	// the hole when their home slot allows it.
	h.len--
	h.slots[i] = hostSlot{}
	for j := i; ; {
		if j++; j == h.size {
			j = 0
		}
		e := h.slots[j]
		if e.n == 0 {
			return
		}
		home := h.home(e.addr, e.n&hostOutside)
		// e may move to i if its home is not in (i, j] cyclically.
		if (j-home+h.size)%h.size >= (j-i+h.size)%h.size {
			h.slots[i], h.slots[j] = e, hostSlot{}
			i = j
		}
	}
}

// memoryBytes returns the size of the table's storage.
func (h *hostCounts) memoryBytes() int {
	return len(h.slots) * int(reflect.TypeFor[hostSlot]().Size())
}

// hostLimits are a translator's limits in flows, from the policy's
// percentages of its table (0 = no limit).
type hostLimits struct {
	perHost, inbound int
}

// limitsFor computes the limits of a table of capacity flows.
func limitsFor(p *Policy, capacity int) hostLimits {
	var l hostLimits
	if p.HostFlowPercent > 0 && p.HostFlowPercent < 100 {
		l.perHost = max(1, capacity*p.HostFlowPercent/100)
	}
	if p.InboundFlowPercent > 0 && p.InboundFlowPercent < 100 {
		l.inbound = max(1, capacity*p.InboundFlowPercent/100)
	}
	return l
}

// admit checks the limits for a new flow opened by host (an outside host
// when inbound) and counts it; the flow must then be counted off with
// hostRelease when it goes.
func (t *Translator) admit(host uint32, inbound bool) Verdict {
	kind := uint32(0)
	if inbound {
		kind = hostOutside
		if t.limits.inbound > 0 && t.inbound >= t.limits.inbound {
			return DropInboundLimit
		}
	}
	// One probe for the check and the count.
	s := &t.hosts.slots[t.hosts.find(host, kind)]
	if t.limits.perHost > 0 && int(s.n&^hostOutside) >= t.limits.perHost {
		return DropHostLimit
	}
	if !t.hosts.incAt(s, host, kind) {
		return DropFlowTableFull
	}
	if inbound {
		t.inbound++
	}
	return VerdictForward
}

// unadmit counts off a flow admit counted (on release, or when inserting
// it failed).
func (t *Translator) unadmit(host uint32, inbound bool) {
	if inbound {
		t.hosts.dec(host, hostOutside)
		t.inbound--
		return
	}
	t.hosts.dec(host, 0)
}

// HostFlows returns the flows an inside host (outside false) or an outside
// host (outside true) has opened on this worker, as the limits count them.
func (t *Translator) HostFlows(host uint32, outside bool) int {
	kind := uint32(0)
	if outside {
		kind = hostOutside
	}
	return t.hosts.count(host, kind)
}

// InboundFlows returns the flows opened from the outside on this worker.
func (t *Translator) InboundFlows() int { return t.inbound }
