package attrib

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/natgw/natgw/natlog"
)

// On-disk encoding of intervals. All integers are big-endian, so bbolt's
// byte order of keys is their numeric order.
//
//	interval key (24 bytes): public(4) first(2) last(2) start(8) seq(8)
//	interval value:          private(4) scope(1) reason(1) end(8)
//	                         maxEnd(8) generation(8) boot(8)
//	                         nameLen(1) name(nameLen)
//	end-index key (32 bytes): end(8) interval key(24)
//
// Times are nanoseconds since the Unix epoch. boot is the run of natgw
// (the store's Open count) that opened the interval or, after a crash,
// adopted it (store.go). end is 0 while the interval
// is open. maxEnd is the largest end of this interval and of every
// earlier one (by start) of the same series (public, first, last), with
// an open interval counting as openEnd: a lookup walking a series
// backwards from its time stops at the first interval whose maxEnd is not
// after that time, because no earlier interval of the series reaches it.

const (
	keyLen     = 24
	endKeyLen  = 8 + keyLen
	valueFixed = 39
	// seriesLen is the length of a series prefix: public, first, last.
	seriesLen = 8
	// openEnd stands for "not ended" in maxEnd.
	openEnd = math.MaxUint64
	// maxNameLen bounds the pool or instance name stored.
	maxNameLen = 255
)

// Reason says how an interval ended.
type Reason uint8

// The ways an interval ends.
const (
	// ReasonOpen: the interval has not ended.
	ReasonOpen Reason = iota
	// ReasonReleased: a release event ended it.
	ReasonReleased
	// ReasonSuperseded: the same default-SNAT block was assigned to
	// another address, which the allocator does only after releasing it.
	ReasonSuperseded
	// ReasonRestart: natgw stopped without a record of the release (a
	// crash or kill -9) and the assignment was not announced again when
	// it started; the interval ends at the restart.
	ReasonRestart
	// ReasonStopped: natgw stopped cleanly.
	ReasonStopped
)

// String names the reason as the API spells it.
func (r Reason) String() string {
	switch r {
	case ReasonOpen:
		return "open"
	case ReasonReleased:
		return "released"
	case ReasonSuperseded:
		return "superseded"
	case ReasonRestart:
		return "restart"
	case ReasonStopped:
		return "stopped"
	}
	return "unknown"
}

// ivKey is an interval's key.
type ivKey [keyLen]byte

func makeKey(public uint32, first, last uint16, start, seq uint64) ivKey {
	var k ivKey
	binary.BigEndian.PutUint32(k[0:], public)
	binary.BigEndian.PutUint16(k[4:], first)
	binary.BigEndian.PutUint16(k[6:], last)
	binary.BigEndian.PutUint64(k[8:], start)
	binary.BigEndian.PutUint64(k[16:], seq)
	return k
}

func (k *ivKey) public() uint32 { return binary.BigEndian.Uint32(k[0:]) }
func (k *ivKey) first() uint16  { return binary.BigEndian.Uint16(k[4:]) }
func (k *ivKey) last() uint16   { return binary.BigEndian.Uint16(k[6:]) }
func (k *ivKey) start() uint64  { return binary.BigEndian.Uint64(k[8:]) }

// keyOf copies a key read from the store; ok is false for a key of the
// wrong length (never written by this package).
func keyOf(b []byte) (k ivKey, ok bool) {
	if len(b) != keyLen {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

// record is an interval's value.
type record struct {
	private    uint32
	scope      natlog.Scope
	reason     Reason
	end        uint64 // 0: open
	maxEnd     uint64
	generation uint64
	boot       uint64
	name       string
}

func (r *record) encode() []byte {
	name := r.name
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	b := make([]byte, valueFixed+len(name))
	binary.BigEndian.PutUint32(b[0:], r.private)
	b[4] = byte(r.scope)
	b[5] = byte(r.reason)
	binary.BigEndian.PutUint64(b[6:], r.end)
	binary.BigEndian.PutUint64(b[14:], r.maxEnd)
	binary.BigEndian.PutUint64(b[22:], r.generation)
	binary.BigEndian.PutUint64(b[30:], r.boot)
	b[38] = byte(len(name))
	copy(b[valueFixed:], name)
	return b
}

// decodeRecord reads a value; ok is false when it is malformed.
func decodeRecord(b []byte) (r record, ok bool) {
	if len(b) < valueFixed || len(b) != valueFixed+int(b[38]) {
		return r, false
	}
	r.private = binary.BigEndian.Uint32(b[0:])
	r.scope = natlog.Scope(b[4])
	r.reason = Reason(b[5])
	r.end = binary.BigEndian.Uint64(b[6:])
	r.maxEnd = binary.BigEndian.Uint64(b[14:])
	r.generation = binary.BigEndian.Uint64(b[22:])
	r.boot = binary.BigEndian.Uint64(b[30:])
	r.name = string(b[valueFixed:])
	return r, true
}

// reach is what the interval contributes to maxEnd.
func (r *record) reach() uint64 {
	if r.end == 0 {
		return openEnd
	}
	return r.end
}

func endKey(end uint64, k ivKey) []byte {
	b := make([]byte, endKeyLen)
	binary.BigEndian.PutUint64(b, end)
	copy(b[8:], k[:])
	return b
}

// stamp turns a time into the stored nanoseconds (times before the epoch,
// which natgw never produces, are stored as the epoch).
func stamp(t time.Time) uint64 {
	n := t.UnixNano()
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// unstamp turns stored nanoseconds back into a UTC time.
func unstamp(n uint64) time.Time {
	if n > math.MaxInt64 {
		n = math.MaxInt64
	}
	return time.Unix(0, int64(n)).UTC()
}
