package natlog

import (
	"time"

	"github.com/natgw/natgw/nat"
)

// NATEvent is the value of the IPFIX natEvent information element (IANA
// "NAT Event Type" registry, RFC 8158 section 4.1): what a record says
// happened. Syslog records name it too (Record.Event.Name).
type NATEvent uint8

// The NAT events natgw reports.
const (
	// EventSessionCreate: a flow was created (NAT44 session create).
	EventSessionCreate NATEvent = 4
	// EventSessionDelete: a flow ended (NAT44 session delete).
	EventSessionDelete NATEvent = 5
	// EventPortsExhausted: a new flow was dropped for lack of a port
	// (NAT ports exhausted).
	EventPortsExhausted NATEvent = 12
	// EventQuotaExceeded: a new flow was dropped because the flow table
	// was full (Quota Exceeded, natQuotaExceededEvent 1: maximum session
	// entries).
	EventQuotaExceeded NATEvent = 13
	// EventBindingCreate: an instance's 1:1 mapping is in force
	// (Address binding create).
	EventBindingCreate NATEvent = 14
	// EventBindingDelete: an instance's 1:1 mapping ended (Address
	// binding delete).
	EventBindingDelete NATEvent = 15
	// EventBlockAllocate: a port block was assigned (Port block
	// allocation).
	EventBlockAllocate NATEvent = 16
	// EventBlockRelease: a port block was released (Port block
	// de-allocation).
	EventBlockRelease NATEvent = 17
)

// Name returns the event's name as syslog records spell it.
func (e NATEvent) Name() string {
	switch e {
	case EventSessionCreate:
		return "session_create"
	case EventSessionDelete:
		return "session_delete"
	case EventPortsExhausted:
		return "ports_exhausted"
	case EventQuotaExceeded:
		return "flow_table_full"
	case EventBindingCreate:
		return "binding_create"
	case EventBindingDelete:
		return "binding_delete"
	case EventBlockAllocate:
		return "block_allocate"
	case EventBlockRelease:
		return "block_release"
	}
	return "unknown"
}

// EndReason is the IPFIX flowEndReason of a deleted session (IANA
// flowEndReason registry).
type EndReason uint8

// The end reasons natgw reports.
const (
	// EndIdle: the flow idled out (idle timeout).
	EndIdle EndReason = 1
	// EndDetected: TCP FINs both ways or a RST (end of Flow detected).
	EndDetected EndReason = 3
	// EndForced: a reload took the flow's port back [S7] (forced end).
	EndForced EndReason = 4
)

// EndReasonOf maps a flow table expiry reason to flowEndReason.
func EndReasonOf(r nat.ExpireReason) EndReason {
	switch r {
	case nat.ExpireClosed, nat.ExpireReset:
		return EndDetected
	case nat.ExpireReclaimed:
		return EndForced
	}
	return EndIdle
}

// Name returns the reason as syslog records spell it.
func (r EndReason) Name() string {
	switch r {
	case EndIdle:
		return "idle"
	case EndDetected:
		return "closed"
	case EndForced:
		return "reclaimed"
	}
	return "unknown"
}

// Record is one NAT event as the exporters encode it. Addresses are IPv4
// in host byte order. Which fields are meaningful depends on Event:
//
//   - blocks (16, 17): Private, Public, First, Last, Pool, Generation;
//   - bindings (14, 15): Private, Public, Generation;
//   - sessions (4, 5): Proto, Private, PrivatePort, Public, PublicPort,
//     Remote, RemotePort, and Reason for a delete;
//   - ports exhausted (12): Proto, Private, Public (the address whose
//     ports ran out), Remote, RemotePort, Pool;
//   - quota exceeded (13): MaxEntries.
type Record struct {
	Time        time.Time
	Event       NATEvent
	Proto       uint8
	Reason      EndReason
	Private     uint32
	Public      uint32
	Remote      uint32
	PrivatePort uint16
	PublicPort  uint16
	RemotePort  uint16
	First, Last uint16
	Pool        string
	Generation  uint64
	MaxEntries  uint32
}

// BlockRecord returns the record of a block event: a port block
// allocation or de-allocation, or for an instance an address binding.
// Default-SNAT blocks are reported under the pool name "default_snat".
func BlockRecord(ev BlockEvent) Record {
	r := Record{Time: ev.Time, Private: ev.Private, Public: ev.Public, First: ev.First, Last: ev.Last,
		Pool: ev.Name, Generation: ev.Generation}
	switch {
	case ev.Scope == ScopeInstance && ev.Kind == BlockAssigned:
		r.Event = EventBindingCreate
	case ev.Scope == ScopeInstance:
		r.Event = EventBindingDelete
	case ev.Kind == BlockAssigned:
		r.Event = EventBlockAllocate
	default:
		r.Event = EventBlockRelease
	}
	if ev.Scope == ScopeDefaultSNAT && r.Pool == "" {
		r.Pool = nat.DefaultSNATPoolName
	}
	return r
}
