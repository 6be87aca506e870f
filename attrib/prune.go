package attrib

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// prune deletes the closed intervals older than the retention, in
// transactions of at most pruneChunk intervals, then applies the size
// bound. It runs on the writer goroutine.
func (s *Store) prune() {
	now := s.o.Now()
	s.lastPrune = now
	cutoff := stamp(now.Add(-time.Duration(s.retention.Load())))
	for {
		n, err := s.deleteOldest(func(end uint64) bool { return end < cutoff })
		s.prunedRet.Add(uint64(n))
		if err != nil || n < pruneChunk {
			break
		}
	}
	s.pruneSize()
}

// pruneSize deletes the closed intervals that ended first while the data
// is over 80% of the size bound, once it passed 90%.
func (s *Store) pruneSize() {
	limit := s.maxSize.Load()
	if s.dataBytes.Load() <= limit/10*9 {
		s.sizeWarned = false
		return
	}
	for s.dataBytes.Load() > limit/10*8 {
		n, err := s.deleteOldest(func(uint64) bool { return true })
		s.prunedSize.Add(uint64(n))
		if err != nil {
			return
		}
		if n == 0 {
			if !s.sizeWarned {
				s.sizeWarned = true
				s.o.Log.Warn("attribution history: over its size bound with only open intervals left: raise nat_log.history_max_size",
					"path", s.o.Path, "data_bytes", s.dataBytes.Load(), "history_max_size", limit, "open", s.open.Load())
			}
			return
		}
	}
}

// deleteOldest deletes, in one transaction, up to pruneChunk closed
// intervals in order of their end while del(end) says so, and returns
// how many it deleted.
func (s *Store) deleteOldest(del func(end uint64) bool) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		ends, iv := tx.Bucket(bucketEnds), tx.Bucket(bucketIntervals)
		var keys [][]byte
		c := ends.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < pruneChunk; k, _ = c.Next() {
			if len(k) != endKeyLen || !del(binary.BigEndian.Uint64(k)) {
				break
			}
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := iv.Delete(k[8:]); err != nil {
				return err
			}
			if err := ends.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		s.writeErrors.Add(1)
		s.o.Log.Error("attribution history: pruning failed", "path", s.o.Path, "error", err)
		return 0, err
	}
	if n > 0 {
		s.measure()
	}
	return n, nil
}
