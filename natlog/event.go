package natlog

import "time"

// BlockKind says whether a block event starts or ends a holding.
type BlockKind uint8

// The kinds of block event.
const (
	// BlockAssigned: from Time on, Private holds ports First..Last of Public.
	BlockAssigned BlockKind = iota + 1
	// BlockReleased: from Time on, Private no longer holds them.
	BlockReleased
)

// String names the kind as logs and records spell it.
func (k BlockKind) String() string {
	switch k {
	case BlockAssigned:
		return "assigned"
	case BlockReleased:
		return "released"
	}
	return "unknown"
}

// Scope says which kind of outbound rule a block belongs to ([S1]-[S3]).
type Scope uint8

// The scopes of a block.
const (
	// ScopePool: a pool member's preallocated block on a frontend.
	ScopePool Scope = iota + 1
	// ScopeDefaultSNAT: a default-SNAT block given to a host on first use.
	ScopeDefaultSNAT
	// ScopeInstance: an instance's 1:1 mapping (every port of Public).
	ScopeInstance
)

// String names the scope as logs and records spell it.
func (s Scope) String() string {
	switch s {
	case ScopePool:
		return "pool"
	case ScopeDefaultSNAT:
		return "default_snat"
	case ScopeInstance:
		return "instance"
	}
	return "unknown"
}

// BlockEvent records that a private address gained or lost a range of
// ports of a public address: the unit of attribution (RFC 7422 block
// records instead of one record per connection). Addresses are IPv4 in
// host byte order, as on the packet path.
type BlockEvent struct {
	Time       time.Time
	Kind       BlockKind
	Scope      Scope
	Name       string // pool or instance name; empty for default SNAT
	Private    uint32 // the private (inside) address
	Public     uint32 // the public address the ports belong to
	First      uint16 // first port of the range
	Last       uint16 // last port of the range (65535 and First 0 for an instance)
	Generation uint64 // configuration generation in force
}

// BlockSink receives block events on the management core. Implementations
// must not block for long: the history store and the exporters are sinks.
type BlockSink interface {
	Block(BlockEvent)
}
