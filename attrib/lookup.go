package attrib

import (
	"bytes"
	"encoding/binary"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/natgw/natgw/natlog"
)

// Holding is an interval of the history: from Start to End, Private held
// ports First..Last of Public.
type Holding struct {
	// Private is the private address, IPv4 in host byte order.
	Private uint32
	// Public is the public address, IPv4 in host byte order.
	Public uint32
	// First and Last are the port range held.
	First, Last uint16
	// Scope is the kind of rule the ports came from.
	Scope natlog.Scope
	// Name is the pool's or instance's name (empty for default SNAT).
	Name string
	// Generation is the configuration generation in force when the
	// interval began (generations count from 1 at every start).
	Generation uint64
	// Start is when the holding began.
	Start time.Time
	// End is when it ended; the zero time while it goes on.
	End time.Time
	// Reason says how it ended (ReasonOpen while it goes on).
	Reason Reason
}

// Lookup returns the holdings of port of public at time at: usually one or
// none; two when holdings overlap (ports a reload moved to another member
// while the previous one's flows still used them as its grace block, if
// the events say so). They are sorted by start. Intervals are half-open:
// a holding that ended at at does not hold at at, the one that began then
// does.
//
// It reads the intervals of public only, and of those only the port ranges
// that contain port, walking each range's intervals back from at until no
// earlier one reaches it (the maxEnd of record.go). Lookup may run on any
// goroutine, concurrently with writes.
func (s *Store) Lookup(public uint32, port uint16, at time.Time) ([]Holding, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	t := stamp(at)
	var out []Holding
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketIntervals).Cursor()
		var prefix [4]byte
		binary.BigEndian.PutUint32(prefix[:], public)
		k, _ := c.Seek(prefix[:])
		for k != nil && bytes.HasPrefix(k, prefix[:]) {
			key, ok := keyOf(k)
			if !ok {
				k, _ = c.Next()
				continue
			}
			first, last := key.first(), key.last()
			if first > port {
				break // ranges are sorted by first port
			}
			if last >= port {
				out = append(out, s.walkSeries(c, key, t)...)
			}
			// Skip to the next range of public.
			var next []byte
			switch {
			case last < 0xffff:
				nk := makeKey(public, first, last+1, 0, 0)
				next = nk[:]
			case first < 0xffff:
				nk := makeKey(public, first+1, 0, 0, 0)
				next = nk[:]
			default:
				return nil
			}
			k, _ = c.Seek(next)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, err
}

// walkSeries returns the intervals of key's series that hold at t.
func (s *Store) walkSeries(c *bolt.Cursor, key ivKey, t uint64) []Holding {
	var out []Holding
	seek := makeKey(key.public(), key.first(), key.last(), t, 0)
	// The first key after every interval that started at or before t.
	if t < openEnd {
		seek = makeKey(key.public(), key.first(), key.last(), t+1, 0)
	}
	k, _ := c.Seek(seek[:])
	var v []byte
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.Equal(k[:seriesLen], key[:seriesLen]); k, v = c.Prev() {
		ik, ok := keyOf(k)
		r, ok2 := decodeRecord(v)
		if !ok || !ok2 {
			continue
		}
		if ik.start() <= t && (r.end == 0 || r.end > t) {
			out = append(out, Holding{
				Private: r.private, Public: ik.public(), First: ik.first(), Last: ik.last(),
				Scope: r.scope, Name: r.name, Generation: r.generation,
				Start: unstamp(ik.start()), End: endTime(r.end), Reason: r.reason,
			})
		}
		if r.maxEnd <= t {
			break // no earlier interval of the series reaches t
		}
	}
	return out
}

func endTime(end uint64) time.Time {
	if end == 0 {
		return time.Time{}
	}
	return unstamp(end)
}
