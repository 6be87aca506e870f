package attrib

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/natgw/natgw/natlog"
)

// The store.
//
// Layout: one bbolt file with four buckets. "intervals" holds every
// interval (record.go): keyed by public address, port range and start, so
// a lookup seeks straight to the public address and walks only the port
// ranges that address ever had, and in each only the intervals near the
// time asked about. "open" holds the keys of the intervals still open, so
// a restart finds them without a scan. "ends" indexes closed intervals by
// their end, oldest first, for retention and the size bound. "meta" holds
// the format version and the boot counter (one more at every Open).
//
// Writes: Block queues the event (bounded, never blocks); the writer
// goroutine takes up to maxBatch queued messages and applies them in one
// read-write transaction, which bbolt commits with an fsync. bbolt's
// copy-on-write B+tree writes new pages and then the meta page that points
// at them, so a crash at any point leaves the previous commit intact: no
// half-written record, no recovery step. A failed transaction (disk full)
// is counted and logged, its events are lost, and the writer's in-memory
// view of the open intervals is read back from the file.
//
// Restarts: natgw stopped cleanly closes every open interval at the stop
// (reason "stopped"). After a crash or kill -9 the intervals that were
// open are still open in the file; Open loads them as pending. natgw then
// announces its pool blocks and instance mappings; an announcement of the
// very holding a pending interval records (same public address, port
// range, private address, scope and name) adopts that interval, which
// stays open: the assignment never changed, and while natgw was down no
// one else could hold those ports. When the start's announcements are
// done (Started), every pending interval not adopted is closed at the
// restart time, the time of Open (reason "restart"); default-SNAT blocks
// always end so, since a restart forgets them. The crash itself happened
// between the interval's last event and the restart.
//
// Retention and size: every PruneInterval (and at Open) closed intervals
// that ended before now minus the retention are deleted. After every
// write, when the data in the file (its size less bbolt's free pages)
// passes 90% of the size bound, the closed intervals that ended first are
// deleted until it is under 80%. Open intervals are never deleted: they
// are what is true now. bbolt reuses freed pages, so the file stops
// growing near the bound; it does not shrink.

// Defaults and limits of a Store.
const (
	// DefaultRetention is how long closed intervals are kept.
	DefaultRetention = 180 * 24 * time.Hour
	// DefaultMaxSize bounds the store's data, in bytes.
	DefaultMaxSize = 1 << 30
	// MinMaxSize is the smallest size bound.
	MinMaxSize = 1 << 20
	// DefaultQueueLen is the number of events the queue to the writer holds.
	DefaultQueueLen = 8192
	// PruneInterval is how often retention is applied.
	PruneInterval = time.Hour
	// maxBatch bounds the messages applied in one transaction.
	maxBatch = 1024
	// pruneChunk bounds the intervals deleted in one transaction.
	pruneChunk = 512
	// dropLogInterval spaces the log lines about dropped events.
	dropLogInterval = 10 * time.Second
	// formatVersion is the layout described above.
	formatVersion = 1
)

var (
	bucketMeta      = []byte("meta")
	bucketIntervals = []byte("intervals")
	bucketOpen      = []byte("open")
	bucketEnds      = []byte("ends")
	keyVersion      = []byte("version")
	keyBoot         = []byte("boot")
)

// ErrClosed is returned by the methods of a closed Store.
var ErrClosed = errors.New("attribution history is closed")

// Options configure a Store.
type Options struct {
	// Path is the store's file; its directory is created if missing.
	Path string
	// Retention is how long closed intervals are kept (DefaultRetention
	// when 0).
	Retention time.Duration
	// MaxSize bounds the data in the file, in bytes (DefaultMaxSize when
	// 0, at least MinMaxSize).
	MaxSize int64
	// QueueLen is the capacity of the queue to the writer
	// (DefaultQueueLen when 0).
	QueueLen int
	// Log receives the store's log lines.
	Log *slog.Logger
	// Now is the clock (time.Now when nil); tests set it.
	Now func() time.Time
}

// Stats are a Store's counters.
type Stats struct {
	// FileBytes is the size of the file.
	FileBytes int64
	// DataBytes is the file's size less bbolt's free pages, at the last
	// commit: what the size bound applies to.
	DataBytes int64
	// RecordsWritten counts interval records written: opened, closed, or
	// adopted after a crash.
	RecordsWritten uint64
	// WriteErrors counts transactions that failed (their events are lost).
	WriteErrors uint64
	// Dropped counts events dropped because the queue was full (or that
	// came after Close).
	Dropped uint64
	// PrunedRetention and PrunedSize count intervals deleted for their age
	// and for the size bound.
	PrunedRetention, PrunedSize uint64
	// Unmatched counts release events that closed nothing (no interval
	// of that holding was open).
	Unmatched uint64
	// Open is the number of open intervals.
	Open int64
}

// holding identifies an open interval: who holds which ports how.
type holding struct {
	public      uint32
	first, last uint16
	private     uint32
	scope       natlog.Scope
	name        string
}

// span is a port range of a public address.
type span struct {
	public      uint32
	first, last uint16
}

// msgKind is what a queued message asks of the writer.
type msgKind uint8

const (
	msgEvent msgKind = iota
	msgStarted
	msgFlush
	msgClose
	// msgPrune applies retention and the size bound now (tests).
	msgPrune
	// msgAbandon stops the writer and closes the file without closing
	// the open intervals: what a crash leaves (tests).
	msgAbandon
)

// message is one entry of the writer's queue.
type message struct {
	kind msgKind
	ev   natlog.BlockEvent
	done chan error
}

// Store is the attribution history. Block, Started, Flush, Lookup,
// SetLimits and Stats may be called from any goroutine; Close once.
type Store struct {
	o       Options
	db      *bolt.DB
	boot    uint64
	opened  uint64 // the restart time: when Open ran
	q       chan message
	stopped chan struct{} // closed when the writer exits
	closed  atomic.Bool
	once    sync.Once

	retention atomic.Int64
	maxSize   atomic.Int64

	written, writeErrors, dropped atomic.Uint64
	prunedRet, prunedSize         atomic.Uint64
	unmatched                     atomic.Uint64
	fileBytes, dataBytes, open    atomic.Int64
	lastDropLog                   atomic.Int64

	// The writer's own state.
	live       map[holding]ivKey // open intervals of this run
	pending    map[holding]ivKey // open intervals found at Open, not yet adopted or closed
	spans      map[span][]holding
	reconciled bool
	lastPrune  time.Time
	sizeWarned bool
	batchWrote uint64
	// hold, when not nil, is received from before each batch (tests).
	hold chan struct{}
}

// Open opens (creating it if needed) the store at o.Path and starts its
// writer. Another process holding the file is an error after a second.
func Open(o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("attribution history: no path")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.QueueLen <= 0 {
		o.QueueLen = DefaultQueueLen
	}
	s := &Store{o: o, q: make(chan message, o.QueueLen), stopped: make(chan struct{}),
		live: map[holding]ivKey{}, pending: map[holding]ivKey{}, spans: map[span][]holding{}}
	if err := s.SetLimits(o.Retention, o.MaxSize); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
		return nil, fmt.Errorf("attribution history: %w", err)
	}
	// As etcd does: the free-page list is not written at each commit but
	// rebuilt from the tree at Open, so a crash can't leave a free list
	// that disagrees with the tree (leaked or twice-freed pages), and
	// commits write less.
	db, err := bolt.Open(o.Path, 0o600, &bolt.Options{Timeout: time.Second,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("attribution history %s: in use by another process (another natgw?)", o.Path)
		}
		return nil, fmt.Errorf("attribution history %s: %w", o.Path, err)
	}
	// Grow the file in steps of at most 1/16 of the bound, so it stays
	// near the bound (bbolt's default step is 16 MiB).
	db.AllocSize = int(min(int64(db.AllocSize), max(s.maxSize.Load()/16, 64<<10)))
	s.db = db
	s.opened = stamp(o.Now())
	if err := db.Update(s.init); err != nil {
		db.Close()
		return nil, fmt.Errorf("attribution history %s: %w", o.Path, err)
	}
	if err := s.loadOpen(); err != nil {
		db.Close()
		return nil, fmt.Errorf("attribution history %s: %w", o.Path, err)
	}
	s.measure()
	s.open.Store(int64(len(s.pending)))
	if n := len(s.pending); n > 0 {
		o.Log.Info("attribution history: intervals left open by the last run (natgw did not stop cleanly); those not announced again are closed at this restart",
			"path", o.Path, "open", n)
	}
	go s.run()
	return s, nil
}

// init creates the buckets, checks the format and counts the boot.
func (s *Store) init(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketIntervals, bucketOpen, bucketEnds} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyVersion); v != nil {
		if len(v) != 8 || binary.BigEndian.Uint64(v) != formatVersion {
			return fmt.Errorf("not an attribution history of format %d (written by another natgw version?)", formatVersion)
		}
	} else if err := meta.Put(keyVersion, binary.BigEndian.AppendUint64(nil, formatVersion)); err != nil {
		return err
	}
	if v := meta.Get(keyBoot); len(v) == 8 {
		s.boot = binary.BigEndian.Uint64(v)
	}
	s.boot++
	return meta.Put(keyBoot, binary.BigEndian.AppendUint64(nil, s.boot))
}

// loadOpen reads the open intervals: those this run opened or adopted
// (their record carries this boot) are live, the others were left open by
// an earlier run and are pending. Open calls it, and the writer after a
// failed transaction, to get back to what is committed.
func (s *Store) loadOpen() error {
	s.live, s.pending, s.spans = map[holding]ivKey{}, map[holding]ivKey{}, map[span][]holding{}
	return s.db.View(func(tx *bolt.Tx) error {
		iv := tx.Bucket(bucketIntervals)
		return tx.Bucket(bucketOpen).ForEach(func(kb, _ []byte) error {
			k, ok := keyOf(kb)
			if !ok {
				return nil
			}
			r, ok := decodeRecord(iv.Get(kb))
			if !ok {
				return nil
			}
			h := holding{k.public(), k.first(), k.last(), r.private, r.scope, r.name}
			if r.boot == s.boot {
				s.live[h] = k
				s.addSpan(h)
			} else {
				s.pending[h] = k
			}
			return nil
		})
	})
}

// SetLimits changes the retention and the size bound (0 means the
// default); the writer applies them at its next write or prune.
func (s *Store) SetLimits(retention time.Duration, maxSize int64) error {
	if retention == 0 {
		retention = DefaultRetention
	}
	if maxSize == 0 {
		maxSize = DefaultMaxSize
	}
	if retention < 0 {
		return fmt.Errorf("attribution history: retention %v is negative", retention)
	}
	if maxSize < MinMaxSize {
		return fmt.Errorf("attribution history: size bound %d bytes is under the minimum of %d", maxSize, MinMaxSize)
	}
	s.retention.Store(int64(retention))
	s.maxSize.Store(maxSize)
	return nil
}

// Block queues a block event (natlog.BlockSink). It never blocks: when
// the queue is full the event is dropped, counted and logged (at most
// once per dropLogInterval). An event without a time gets the current one.
func (s *Store) Block(ev natlog.BlockEvent) {
	if s.closed.Load() {
		s.dropped.Add(1)
		return
	}
	if ev.Time.IsZero() {
		ev.Time = s.o.Now()
	}
	select {
	case s.q <- message{kind: msgEvent, ev: ev}:
	default:
		n := s.dropped.Add(1)
		now := time.Now().UnixNano()
		last := s.lastDropLog.Load()
		if now-last >= int64(dropLogInterval) && s.lastDropLog.CompareAndSwap(last, now) {
			s.o.Log.Warn("attribution history: queue full, block event dropped: attribution of its ports is incomplete",
				"event", ev.Kind.String(), "scope", ev.Scope.String(), "dropped_total", n)
		}
	}
}

// Started tells the store that natgw has announced the holdings it starts
// with: the intervals a crash left open that were not announced again
// are closed at the restart time. It waits for the write.
func (s *Store) Started() error { return s.send(message{kind: msgStarted}, nil) }

// Flush waits until every event queued before it is committed to disk,
// or ctx-less for at most timeout; it returns the commit's error.
func (s *Store) Flush(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	return s.send(message{kind: msgFlush}, t.C)
}

// send queues m (waiting for room) and waits for the writer's answer, or
// until timeout fires.
func (s *Store) send(m message, timeout <-chan time.Time) error {
	if s.closed.Load() {
		return ErrClosed
	}
	m.done = make(chan error, 1)
	select {
	case s.q <- m:
	case <-s.stopped:
		return ErrClosed
	case <-timeout:
		return errors.New("attribution history: timed out waiting for the writer")
	}
	select {
	case err := <-m.done:
		return err
	case <-s.stopped:
		return ErrClosed
	case <-timeout:
		return errors.New("attribution history: timed out waiting for the writer")
	}
}

// Close writes what is queued, closes every open interval at the current
// time (natgw stops: no one holds its ports any more) and closes the file.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		m := message{kind: msgClose, done: make(chan error, 1)}
		s.q <- m
		s.closed.Store(true)
		err = <-m.done
		<-s.stopped
		if cerr := s.db.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// Path returns the store's file.
func (s *Store) Path() string { return s.o.Path }

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		FileBytes: s.fileBytes.Load(), DataBytes: s.dataBytes.Load(),
		RecordsWritten: s.written.Load(), WriteErrors: s.writeErrors.Load(), Dropped: s.dropped.Load(),
		PrunedRetention: s.prunedRet.Load(), PrunedSize: s.prunedSize.Load(),
		Unmatched: s.unmatched.Load(), Open: s.open.Load(),
	}
}

// run is the writer goroutine.
func (s *Store) run() {
	defer close(s.stopped)
	s.prune()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	batch := make([]message, 0, maxBatch)
	for {
		var m message
		select {
		case m = <-s.q:
		case <-tick.C:
			if s.o.Now().Sub(s.lastPrune) >= PruneInterval {
				s.prune()
			}
			continue
		}
		batch = append(batch[:0], m)
		if s.hold != nil {
			<-s.hold
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case m := <-s.q:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if batch[0].kind == msgAbandon {
			batch[0].done <- nil
			return
		}
		err := s.apply(batch)
		stop, prune := false, false
		for _, m := range batch {
			stop = stop || m.kind == msgClose
			prune = prune || m.kind == msgPrune
		}
		if prune && !stop {
			s.prune()
		} else if !stop && s.dataBytes.Load() > s.maxSize.Load()/10*9 {
			s.pruneSize()
		}
		for _, m := range batch {
			if m.done != nil {
				m.done <- err
			}
		}
		if stop {
			return
		}
	}
}

// apply writes a batch in one transaction.
func (s *Store) apply(batch []message) error {
	reconciled := s.reconciled
	s.batchWrote = 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		closing := false
		for _, m := range batch {
			var err error
			switch {
			case closing && m.kind == msgEvent:
				s.dropped.Add(1) // queued after Close: natgw has stopped
			case m.kind == msgEvent:
				err = s.applyEvent(tx, m.ev)
			case m.kind == msgStarted:
				err = s.reconcile(tx)
			case m.kind == msgClose:
				err = s.closeAll(tx, stamp(s.o.Now()))
				closing = true
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.writeErrors.Add(1)
		s.o.Log.Error("attribution history: write failed, its block events are lost", "path", s.o.Path, "events", len(batch), "error", err)
		s.reconciled = reconciled
		if lerr := s.loadOpen(); lerr != nil {
			s.o.Log.Error("attribution history: reading the open intervals back failed", "error", lerr)
		}
		s.open.Store(int64(len(s.live) + len(s.pending)))
		return fmt.Errorf("attribution history: %w", err)
	}
	s.written.Add(s.batchWrote)
	s.open.Store(int64(len(s.live) + len(s.pending)))
	s.measure()
	return nil
}

// applyEvent records one event.
func (s *Store) applyEvent(tx *bolt.Tx, ev natlog.BlockEvent) error {
	if ev.First > ev.Last || (ev.Kind != natlog.BlockAssigned && ev.Kind != natlog.BlockReleased) {
		s.o.Log.Warn("attribution history: malformed block event ignored", "event", ev.Kind.String(), "first", ev.First, "last", ev.Last)
		return nil
	}
	h := holding{ev.Public, ev.First, ev.Last, ev.Private, ev.Scope, ev.Name}
	if len(h.name) > maxNameLen {
		h.name = h.name[:maxNameLen]
	}
	t := stamp(ev.Time)
	if ev.Kind == natlog.BlockReleased {
		k, ok := s.live[h]
		if ok {
			delete(s.live, h)
			s.removeSpan(h)
		} else if k, ok = s.pending[h]; ok {
			delete(s.pending, h)
		} else {
			s.unmatched.Add(1)
			return nil
		}
		return s.closeInterval(tx, k, t, ReasonReleased)
	}
	if _, ok := s.live[h]; ok {
		return nil // announced again (a reload): the interval goes on
	}
	if k, ok := s.pending[h]; ok {
		// Left open by a crash and announced again at start: adopted.
		// The record takes this boot, so it is this run's from now on.
		iv := tx.Bucket(bucketIntervals)
		r, ok := decodeRecord(iv.Get(k[:]))
		if !ok {
			return fmt.Errorf("interval %x: malformed record", k)
		}
		r.boot = s.boot
		if err := iv.Put(k[:], r.encode()); err != nil {
			return err
		}
		s.batchWrote++
		delete(s.pending, h)
		s.live[h] = k
		s.addSpan(h)
		return nil
	}
	if h.scope == natlog.ScopeDefaultSNAT {
		// The allocator gives a block to one address at a time: whoever
		// held it no longer does (its release event was lost).
		for _, other := range s.spans[span{h.public, h.first, h.last}] {
			k := s.live[other]
			delete(s.live, other)
			s.removeSpan(other)
			if err := s.closeInterval(tx, k, t, ReasonSuperseded); err != nil {
				return err
			}
		}
	}
	iv := tx.Bucket(bucketIntervals)
	seq, err := iv.NextSequence()
	if err != nil {
		return err
	}
	k := makeKey(h.public, h.first, h.last, t, seq)
	r := record{private: h.private, scope: h.scope, reason: ReasonOpen, maxEnd: openEnd,
		generation: ev.Generation, boot: s.boot, name: h.name}
	if err := iv.Put(k[:], r.encode()); err != nil {
		return err
	}
	if err := tx.Bucket(bucketOpen).Put(k[:], nil); err != nil {
		return err
	}
	s.batchWrote++
	s.live[h] = k
	s.addSpan(h)
	return s.fixSeries(iv, k)
}

// closeInterval ends the open interval k at t (not before its start).
func (s *Store) closeInterval(tx *bolt.Tx, k ivKey, t uint64, reason Reason) error {
	iv := tx.Bucket(bucketIntervals)
	r, ok := decodeRecord(iv.Get(k[:]))
	if !ok {
		return fmt.Errorf("interval %x: malformed record", k)
	}
	t = max(t, k.start(), 1)
	r.end, r.reason = t, reason
	if err := iv.Put(k[:], r.encode()); err != nil {
		return err
	}
	if err := tx.Bucket(bucketOpen).Delete(k[:]); err != nil {
		return err
	}
	if err := tx.Bucket(bucketEnds).Put(endKey(t, k), nil); err != nil {
		return err
	}
	s.batchWrote++
	return s.fixSeries(iv, k)
}

// fixSeries recomputes maxEnd from k on in k's series after k changed or
// was added, stopping at the first later interval whose value holds.
func (s *Store) fixSeries(iv *bolt.Bucket, k ivKey) error {
	type update struct {
		key []byte
		val []byte
	}
	var updates []update
	c := iv.Cursor()
	var running uint64
	c.Seek(k[:])
	if pk, pv := c.Prev(); pk != nil && bytes.Equal(pk[:seriesLen], k[:seriesLen]) {
		if r, ok := decodeRecord(pv); ok {
			running = r.maxEnd
		}
	}
	for ck, cv := c.Seek(k[:]); ck != nil && bytes.Equal(ck[:seriesLen], k[:seriesLen]); ck, cv = c.Next() {
		r, ok := decodeRecord(cv)
		if !ok {
			break
		}
		m := max(running, r.reach())
		if m == r.maxEnd && !bytes.Equal(ck, k[:]) {
			break
		}
		if m != r.maxEnd {
			r.maxEnd = m
			updates = append(updates, update{bytes.Clone(ck), r.encode()})
		}
		running = m
	}
	for _, u := range updates {
		if err := iv.Put(u.key, u.val); err != nil {
			return err
		}
	}
	return nil
}

// reconcile closes, at the restart time, the intervals a crash left open
// that the start did not announce again.
func (s *Store) reconcile(tx *bolt.Tx) error {
	if s.reconciled {
		return nil
	}
	for h, k := range s.pending {
		if err := s.closeInterval(tx, k, s.opened, ReasonRestart); err != nil {
			return err
		}
		delete(s.pending, h)
	}
	s.reconciled = true
	return nil
}

// closeAll closes every open interval: natgw stops.
func (s *Store) closeAll(tx *bolt.Tx, now uint64) error {
	if err := s.reconcile(tx); err != nil {
		return err
	}
	for h, k := range s.live {
		if err := s.closeInterval(tx, k, now, ReasonStopped); err != nil {
			return err
		}
		delete(s.live, h)
		s.removeSpan(h)
	}
	return nil
}

func (s *Store) addSpan(h holding) {
	if h.scope != natlog.ScopeDefaultSNAT {
		return
	}
	sp := span{h.public, h.first, h.last}
	s.spans[sp] = append(s.spans[sp], h)
}

func (s *Store) removeSpan(h holding) {
	if h.scope != natlog.ScopeDefaultSNAT {
		return
	}
	sp := span{h.public, h.first, h.last}
	list := s.spans[sp]
	for i, o := range list {
		if o == h {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.spans, sp)
	} else {
		s.spans[sp] = list
	}
}

// measure updates the size figures after a commit.
func (s *Store) measure() {
	var size int64
	_ = s.db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	st := s.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(s.db.Info().PageSize)
	s.dataBytes.Store(max(size-free, 0))
	if fi, err := os.Stat(s.o.Path); err == nil {
		s.fileBytes.Store(fi.Size())
	}
}
