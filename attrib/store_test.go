package attrib

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/natgw/natgw/natlog"
)

// clock is a settable clock for a Store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ip(s string) uint32 {
	a := netip.MustParseAddr(s).As4()
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}

func openStore(t *testing.T, path string, clk *clock, o Options) *Store {
	t.Helper()
	o.Path, o.Now = path, clk.Now
	s, err := Open(o)
	require.NoError(t, err)
	return s
}

// ev builds a block event.
func ev(kind natlog.BlockKind, scope natlog.Scope, name, private, public string, first, last uint16, at time.Time, gen uint64) natlog.BlockEvent {
	return natlog.BlockEvent{Time: at, Kind: kind, Scope: scope, Name: name, Private: ip(private),
		Public: ip(public), First: first, Last: last, Generation: gen}
}

// who returns the private addresses holding public:port at at.
func who(t *testing.T, s *Store, public string, port uint16, at time.Time) []string {
	t.Helper()
	hs, err := s.Lookup(ip(public), port, at)
	require.NoError(t, err)
	var out []string
	for _, h := range hs {
		out = append(out, netip.AddrFrom4([4]byte{byte(h.Private >> 24), byte(h.Private >> 16), byte(h.Private >> 8), byte(h.Private)}).String())
	}
	return out
}

func flush(t *testing.T, s *Store) {
	t.Helper()
	require.NoError(t, s.Flush(30*time.Second))
}

// abandon stops the writer and closes the file without closing the open
// intervals, as a crash would leave them.
func (s *Store) abandon(t *testing.T) {
	t.Helper()
	require.NoError(t, s.send(message{kind: msgAbandon}, nil))
	s.closed.Store(true)
	<-s.stopped
	require.NoError(t, s.db.Close())
}

func TestAssignRelease(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, Options{})
	defer s.Close()
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, t0, 1))
	s.Block(ev(natlog.BlockReleased, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, t0.Add(time.Hour), 2))
	flush(t, s)
	for _, c := range []struct {
		name   string
		public string
		port   uint16
		at     time.Time
		want   []string
	}{
		{"before", "198.19.1.10", 1500, t0.Add(-time.Nanosecond), nil},
		{"at start", "198.19.1.10", 1500, t0, []string{"10.0.1.4"}},
		{"first port", "198.19.1.10", 1024, t0.Add(time.Minute), []string{"10.0.1.4"}},
		{"last port", "198.19.1.10", 2047, t0.Add(time.Minute), []string{"10.0.1.4"}},
		{"below the block", "198.19.1.10", 1023, t0.Add(time.Minute), nil},
		{"above the block", "198.19.1.10", 2048, t0.Add(time.Minute), nil},
		{"just before the end", "198.19.1.10", 1500, t0.Add(time.Hour - time.Nanosecond), []string{"10.0.1.4"}},
		{"at the end", "198.19.1.10", 1500, t0.Add(time.Hour), nil},
		{"other public", "198.19.1.11", 1500, t0.Add(time.Minute), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, who(t, s, c.public, c.port, c.at))
		})
	}
	hs, err := s.Lookup(ip("198.19.1.10"), 1500, t0)
	require.NoError(t, err)
	require.Len(t, hs, 1)
	h := hs[0]
	assert.Equal(t, natlog.ScopePool, h.Scope)
	assert.Equal(t, "web", h.Name)
	assert.Equal(t, uint64(1), h.Generation)
	assert.Equal(t, [2]uint16{1024, 2047}, [2]uint16{h.First, h.Last})
	assert.True(t, h.Start.Equal(t0))
	assert.True(t, h.End.Equal(t0.Add(time.Hour)))
	assert.Equal(t, ReasonReleased, h.Reason)
	assert.Equal(t, uint64(2), s.Stats().RecordsWritten)
}

func TestInstanceMapping(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, Options{})
	defer s.Close()
	s.Block(ev(natlog.BlockAssigned, natlog.ScopeInstance, "10.0.3.7", "10.0.3.7", "198.19.1.50", 0, 65535, t0, 1))
	flush(t, s)
	for _, port := range []uint16{0, 22, 65535} {
		assert.Equal(t, []string{"10.0.3.7"}, who(t, s, "198.19.1.50", port, t0.Add(24*time.Hour)), "port %d", port)
	}
	assert.Empty(t, who(t, s, "198.19.1.49", 22, t0.Add(time.Hour)))
	assert.Empty(t, who(t, s, "198.19.1.51", 22, t0.Add(time.Hour)))
}

// A default-SNAT block released by one host and given to another: each
// holds it in its own interval. A lost release is repaired by the next
// assignment of the same block (superseded).
func TestDefaultSNATReassigned(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, Options{})
	defer s.Close()
	const pub = "198.19.2.1"
	s.Block(ev(natlog.BlockAssigned, natlog.ScopeDefaultSNAT, "", "10.5.0.1", pub, 1024, 2047, t0, 1))
	s.Block(ev(natlog.BlockReleased, natlog.ScopeDefaultSNAT, "", "10.5.0.1", pub, 1024, 2047, t0.Add(10*time.Minute), 1))
	s.Block(ev(natlog.BlockAssigned, natlog.ScopeDefaultSNAT, "", "10.5.0.2", pub, 1024, 2047, t0.Add(11*time.Minute), 1))
	// The release of 10.5.0.2 is lost; 10.5.0.3 gets the block.
	s.Block(ev(natlog.BlockAssigned, natlog.ScopeDefaultSNAT, "", "10.5.0.3", pub, 1024, 2047, t0.Add(20*time.Minute), 1))
	flush(t, s)
	assert.Equal(t, []string{"10.5.0.1"}, who(t, s, pub, 2000, t0.Add(5*time.Minute)))
	assert.Empty(t, who(t, s, pub, 2000, t0.Add(10*time.Minute+30*time.Second)))
	assert.Equal(t, []string{"10.5.0.2"}, who(t, s, pub, 2000, t0.Add(15*time.Minute)))
	assert.Equal(t, []string{"10.5.0.3"}, who(t, s, pub, 2000, t0.Add(20*time.Minute)))
	assert.Equal(t, []string{"10.5.0.3"}, who(t, s, pub, 1024, t0.Add(48*time.Hour)))
	hs, err := s.Lookup(ip(pub), 2000, t0.Add(15*time.Minute))
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, ReasonSuperseded, hs[0].Reason)
	assert.True(t, hs[0].End.Equal(t0.Add(20*time.Minute)))
}

// [S7]: a pool growing into the next tier halves its members' blocks; a
// port moves from one member to another at the reload.
func TestReloadMovesBlock(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, Options{})
	defer s.Close()
	const pub = "198.19.1.10"
	gen1 := []struct {
		private     string
		first, last uint16
	}{{"10.0.1.4", 1024, 2047}, {"10.0.1.5", 2048, 3071}}
	for _, b := range gen1 {
		s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", b.private, pub, b.first, b.last, t0, 1))
	}
	reload := t0.Add(time.Hour)
	gen2 := []struct {
		private     string
		first, last uint16
	}{{"10.0.1.4", 1024, 1535}, {"10.0.1.5", 1536, 2047}, {"10.0.1.6", 2048, 2559}}
	for _, b := range gen1 {
		s.Block(ev(natlog.BlockReleased, natlog.ScopePool, "web", b.private, pub, b.first, b.last, reload, 2))
	}
	for _, b := range gen2 {
		s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", b.private, pub, b.first, b.last, reload, 2))
	}
	flush(t, s)
	before, after := reload.Add(-time.Second), reload.Add(time.Second)
	assert.Equal(t, []string{"10.0.1.4"}, who(t, s, pub, 1600, before))
	assert.Equal(t, []string{"10.0.1.5"}, who(t, s, pub, 1600, after))
	assert.Equal(t, []string{"10.0.1.5"}, who(t, s, pub, 2100, before))
	assert.Equal(t, []string{"10.0.1.6"}, who(t, s, pub, 2100, after))
	assert.Equal(t, []string{"10.0.1.5"}, who(t, s, pub, 3000, before))
	assert.Empty(t, who(t, s, pub, 3000, after))
	assert.Equal(t, []string{"10.0.1.5"}, who(t, s, pub, 1600, reload), "the new holder from the reload's instant on")
	hs, err := s.Lookup(ip(pub), 1600, after)
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, uint64(2), hs[0].Generation)
	assert.Equal(t, [2]uint16{1536, 2047}, [2]uint16{hs[0].First, hs[0].Last})
}

// A reload that leaves a block alone announces it again: the interval
// goes on, nothing is written.
func TestReannouncedHoldingContinues(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, Options{})
	defer s.Close()
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, t0, 1))
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, t0.Add(time.Hour), 2))
	flush(t, s)
	hs, err := s.Lookup(ip("198.19.1.10"), 1024, t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.True(t, hs[0].Start.Equal(t0))
	assert.Equal(t, uint64(1), s.Stats().RecordsWritten)
}

// Overlapping intervals on the same ports: one long holding (open) and
// many short ones after it. The walk back from a time must go past the
// short closed ones to find the long one, and must find both when both
// hold.
func TestOverlappingIntervals(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, Options{})
	defer s.Close()
	const pub = "198.19.1.10"
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "old", "10.0.9.9", pub, 1024, 2047, t0, 1))
	for i := range 100 {
		start := t0.Add(time.Duration(i+1) * time.Minute)
		private := fmt.Sprintf("10.0.2.%d", i+1)
		s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", private, pub, 1024, 2047, start, 2))
		s.Block(ev(natlog.BlockReleased, natlog.ScopePool, "web", private, pub, 1024, 2047, start.Add(30*time.Second), 2))
	}
	// A range that contains the port but starts elsewhere.
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "wide", "10.0.7.7", pub, 1024, 4095, t0.Add(50*time.Minute+10*time.Second), 3))
	s.Block(ev(natlog.BlockReleased, natlog.ScopePool, "wide", "10.0.7.7", pub, 1024, 4095, t0.Add(50*time.Minute+20*time.Second), 3))
	flush(t, s)
	assert.Equal(t, []string{"10.0.9.9"}, who(t, s, pub, 1500, t0.Add(50*time.Minute+45*time.Second)))
	assert.Equal(t, []string{"10.0.9.9", "10.0.2.50"}, who(t, s, pub, 1500, t0.Add(50*time.Minute+5*time.Second)))
	assert.Equal(t, []string{"10.0.9.9", "10.0.2.50", "10.0.7.7"}, who(t, s, pub, 1500, t0.Add(50*time.Minute+15*time.Second)))
	assert.Equal(t, []string{"10.0.7.7"}, who(t, s, pub, 3000, t0.Add(50*time.Minute+15*time.Second)))
	assert.Equal(t, []string{"10.0.9.9"}, who(t, s, pub, 1500, t0.Add(1000*time.Hour)))

	// A holding that begins before the ones already stored (the clock
	// went back) and stays open reaches every later time.
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.8.8", pub, 1024, 2047, t0.Add(30*time.Second), 4))
	flush(t, s)
	assert.Equal(t, []string{"10.0.9.9", "10.0.8.8"}, who(t, s, pub, 1500, t0.Add(1000*time.Hour)))
	// Released later: the time after its release no longer finds it.
	s.Block(ev(natlog.BlockReleased, natlog.ScopePool, "web", "10.0.8.8", pub, 1024, 2047, t0.Add(200*time.Minute), 4))
	flush(t, s)
	assert.Equal(t, []string{"10.0.9.9"}, who(t, s, pub, 1500, t0.Add(1000*time.Hour)))
	assert.Equal(t, []string{"10.0.9.9", "10.0.8.8"}, who(t, s, pub, 1500, t0.Add(150*time.Minute)))
}

// A holding that begins before the ended ones of its range (the clock went
// back) and goes on: the ended ones' running maximum of ends must take it
// in, or a walk back from a later time stops before reaching it.
func TestEarlierOpenHoldingAfterEndedOnes(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, Options{})
	defer s.Close()
	const pub = "198.19.1.11"
	for i := range 5 {
		start := t0.Add(time.Duration(i+1) * time.Minute)
		private := fmt.Sprintf("10.0.4.%d", i+1)
		s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", private, pub, 1024, 2047, start, 1))
		s.Block(ev(natlog.BlockReleased, natlog.ScopePool, "web", private, pub, 1024, 2047, start.Add(30*time.Second), 1))
	}
	flush(t, s)
	assert.Empty(t, who(t, s, pub, 1500, t0.Add(10*time.Hour)))
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.4.99", pub, 1024, 2047, t0.Add(30*time.Second), 2))
	flush(t, s)
	assert.Equal(t, []string{"10.0.4.99"}, who(t, s, pub, 1500, t0.Add(10*time.Hour)))
	assert.Equal(t, []string{"10.0.4.99", "10.0.4.3"}, who(t, s, pub, 1500, t0.Add(3*time.Minute+10*time.Second)))
}

func TestReleaseWithoutAssignmentIsCounted(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, Options{})
	defer s.Close()
	s.Block(ev(natlog.BlockReleased, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, t0, 1))
	s.Block(natlog.BlockEvent{Time: t0, Kind: natlog.BlockAssigned, Scope: natlog.ScopePool, First: 10, Last: 5})
	flush(t, s)
	st := s.Stats()
	assert.Equal(t, uint64(1), st.Unmatched)
	assert.Equal(t, uint64(0), st.RecordsWritten)
}

func TestRetention(t *testing.T) {
	clk := &clock{t: t0}
	s := openStore(t, filepath.Join(t.TempDir(), "h.db"), clk, Options{Retention: 180 * 24 * time.Hour})
	defer s.Close()
	const pub = "198.19.2.1"
	day := 24 * time.Hour
	// Ended 200 days before now: pruned. Ended 10 days before: kept.
	// Open since 300 days before: kept.
	s.Block(ev(natlog.BlockAssigned, natlog.ScopeDefaultSNAT, "", "10.5.0.1", pub, 1024, 2047, t0.Add(-201*day), 1))
	s.Block(ev(natlog.BlockReleased, natlog.ScopeDefaultSNAT, "", "10.5.0.1", pub, 1024, 2047, t0.Add(-200*day), 1))
	s.Block(ev(natlog.BlockAssigned, natlog.ScopeDefaultSNAT, "", "10.5.0.2", pub, 1024, 2047, t0.Add(-11*day), 1))
	s.Block(ev(natlog.BlockReleased, natlog.ScopeDefaultSNAT, "", "10.5.0.2", pub, 1024, 2047, t0.Add(-10*day), 1))
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.4", pub, 4096, 5119, t0.Add(-300*day), 1))
	flush(t, s)
	require.Equal(t, []string{"10.5.0.1"}, who(t, s, pub, 1500, t0.Add(-200*day-time.Hour)))
	require.NoError(t, s.send(message{kind: msgPrune}, nil))
	assert.Empty(t, who(t, s, pub, 1500, t0.Add(-200*day-time.Hour)))
	assert.Equal(t, []string{"10.5.0.2"}, who(t, s, pub, 1500, t0.Add(-10*day-time.Hour)))
	assert.Equal(t, []string{"10.0.1.4"}, who(t, s, pub, 5000, t0.Add(-250*day)))
	assert.Equal(t, uint64(1), s.Stats().PrunedRetention)

	// A shorter retention (a reload) applies at the next prune.
	require.NoError(t, s.SetLimits(7*day, 0))
	require.NoError(t, s.send(message{kind: msgPrune}, nil))
	assert.Empty(t, who(t, s, pub, 1500, t0.Add(-10*day-time.Hour)))
	assert.Equal(t, []string{"10.0.1.4"}, who(t, s, pub, 5000, t0))
	assert.Equal(t, uint64(2), s.Stats().PrunedRetention)
}

func TestSizeBound(t *testing.T) {
	clk := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "h.db")
	s := openStore(t, path, clk, Options{MaxSize: MinMaxSize})
	defer s.Close()
	const pub = "198.19.2.1"
	// Far more closed intervals than 1 MiB holds, plus an open one.
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.4", pub, 60000, 60999, t0, 1))
	const n = 40000
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		private := fmt.Sprintf("10.6.%d.%d", i/250, i%250+1)
		first := uint16(1024 + (i%50)*1024)
		s.Block(ev(natlog.BlockAssigned, natlog.ScopeDefaultSNAT, "", private, pub, first, first+1023, at, 1))
		s.Block(ev(natlog.BlockReleased, natlog.ScopeDefaultSNAT, "", private, pub, first, first+1023, at.Add(500*time.Millisecond), 1))
		if i%1000 == 999 {
			flush(t, s)
		}
	}
	flush(t, s)
	st := s.Stats()
	t.Logf("after %d intervals: file %d bytes, data %d bytes, pruned %d for size", n, st.FileBytes, st.DataBytes, st.PrunedSize)
	assert.Greater(t, st.PrunedSize, uint64(0))
	assert.LessOrEqual(t, st.DataBytes, int64(MinMaxSize))
	assert.LessOrEqual(t, st.FileBytes, int64(2*MinMaxSize), "the file stays near its bound")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, st.FileBytes, fi.Size())
	// Oldest first: the first intervals are gone, the last ones and the
	// open one are there.
	assert.Empty(t, who(t, s, pub, 1024, t0))
	last := n - 1
	assert.Equal(t, []string{fmt.Sprintf("10.6.%d.%d", last/250, last%250+1)},
		who(t, s, pub, uint16(1024+(last%50)*1024), t0.Add(time.Duration(last)*time.Second)))
	assert.Equal(t, []string{"10.0.1.4"}, who(t, s, pub, 60500, t0.Add(time.Hour)))
}

// A clean stop closes the open intervals; a reopened store answers for
// the past and records the next run.
func TestReopenAfterClose(t *testing.T) {
	clk := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "h.db")
	s := openStore(t, path, clk, Options{})
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, t0, 1))
	flush(t, s)
	stop := t0.Add(time.Hour)
	clk.Set(stop)
	require.NoError(t, s.Close())
	assert.ErrorIs(t, s.Flush(time.Second), ErrClosed)
	_, err := s.Lookup(ip("198.19.1.10"), 1024, t0)
	assert.ErrorIs(t, err, ErrClosed)

	start := t0.Add(2 * time.Hour)
	clk.Set(start)
	s = openStore(t, path, clk, Options{})
	defer s.Close()
	assert.Equal(t, int64(0), s.Stats().Open)
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.5", "198.19.1.10", 1024, 2047, start, 1))
	require.NoError(t, s.Started())
	hs, err := s.Lookup(ip("198.19.1.10"), 1500, t0.Add(30*time.Minute))
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, ReasonStopped, hs[0].Reason)
	assert.True(t, hs[0].End.Equal(stop))
	assert.Empty(t, who(t, s, "198.19.1.10", 1500, t0.Add(90*time.Minute)), "no one while natgw was stopped")
	assert.Equal(t, []string{"10.0.1.5"}, who(t, s, "198.19.1.10", 1500, start.Add(time.Minute)))
}

// A crash leaves intervals open: at the restart those announced again are
// adopted, the others (default SNAT) close at the restart time.
func TestReopenAfterCrash(t *testing.T) {
	clk := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "h.db")
	s := openStore(t, path, clk, Options{})
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, t0, 1))
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.5", "198.19.1.10", 2048, 3071, t0, 1))
	s.Block(ev(natlog.BlockAssigned, natlog.ScopeDefaultSNAT, "", "10.5.0.1", "198.19.2.1", 1024, 2047, t0.Add(time.Minute), 1))
	flush(t, s)
	s.abandon(t)

	restart := t0.Add(time.Hour)
	clk.Set(restart)
	s = openStore(t, path, clk, Options{})
	defer s.Close()
	assert.Equal(t, int64(3), s.Stats().Open)
	// The start announces 10.0.1.4's block unchanged; 10.0.1.5 left the
	// pool while natgw was down.
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, restart, 1))
	require.NoError(t, s.Started())
	assert.Equal(t, int64(1), s.Stats().Open)

	hs, err := s.Lookup(ip("198.19.1.10"), 1500, restart.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.True(t, hs[0].Start.Equal(t0), "adopted: the interval goes on from its first start")
	assert.Equal(t, ReasonOpen, hs[0].Reason)

	hs, err = s.Lookup(ip("198.19.1.10"), 2500, t0.Add(30*time.Minute))
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, ReasonRestart, hs[0].Reason)
	assert.True(t, hs[0].End.Equal(restart))
	assert.Empty(t, who(t, s, "198.19.1.10", 2500, restart))

	hs, err = s.Lookup(ip("198.19.2.1"), 1024, t0.Add(30*time.Minute))
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, "10.5.0.1", netip.AddrFrom4([4]byte{10, 5, 0, 1}).String())
	assert.Equal(t, ReasonRestart, hs[0].Reason)
	assert.Empty(t, who(t, s, "198.19.2.1", 1024, restart.Add(time.Second)))

	// Released in this run: the adopted interval closes.
	s.Block(ev(natlog.BlockReleased, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, restart.Add(2*time.Hour), 2))
	flush(t, s)
	assert.Empty(t, who(t, s, "198.19.1.10", 1500, restart.Add(3*time.Hour)))
	assert.Equal(t, []string{"10.0.1.4"}, who(t, s, "198.19.1.10", 1500, t0.Add(time.Second)))
}

func TestQueueFullDropsAndCounts(t *testing.T) {
	clk := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "h.db")
	s, err := Open(Options{Path: path, Now: clk.Now, QueueLen: 4})
	require.NoError(t, err)
	defer s.Close()
	// Hold the writer: it takes one message and waits before applying.
	// (The writer reads hold after it receives from the queue, so the
	// send below orders this write before that read.)
	hold := make(chan struct{})
	s.hold = hold
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()
	done := make(chan struct{})
	for i := range 10 {
		s.Block(ev(natlog.BlockAssigned, natlog.ScopeDefaultSNAT, "", fmt.Sprintf("10.5.0.%d", i+1), "198.19.2.1",
			uint16(1024+i*1024), uint16(2047+i*1024), t0, 1))
		if i == 0 {
			// Let the writer take the first message and block on hold.
			for len(s.q) != 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	go func() {
		defer close(done)
		close(hold)
	}()
	<-done
	released = true // hold stays closed: the writer no longer waits
	flush(t, s)
	st := s.Stats()
	assert.Equal(t, uint64(5), st.Dropped, "one taken by the writer, four queued, five dropped")
	assert.Equal(t, uint64(5), st.RecordsWritten)
}

// TestKill9 runs a child process that writes intervals and reports each
// commit, kills it with SIGKILL while it writes, and checks that every
// interval the child saw committed is in the store.
func TestKill9(t *testing.T) {
	if os.Getenv("ATTRIB_KILL9_CHILD") != "" {
		kill9Child()
		return
	}
	path := filepath.Join(t.TempDir(), "h.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ATTRIB_KILL9_CHILD="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	committed := 0
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		n, ok := strings.CutPrefix(lines.Text(), "committed ")
		if !ok {
			continue
		}
		committed, err = strconv.Atoi(n)
		require.NoError(t, err)
		if committed >= 2000 {
			break
		}
	}
	require.GreaterOrEqual(t, committed, 2000, "the child stopped early")
	require.NoError(t, cmd.Process.Kill()) // SIGKILL, in the middle of writing
	killed = true
	werr := cmd.Wait()
	t.Logf("child killed after %d committed intervals: %v", committed, werr)

	s, err := Open(Options{Path: path})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}), "the file is consistent without any recovery")
	assert.GreaterOrEqual(t, s.Stats().Open, int64(committed))
	for i := range committed {
		pub, first, at, private := kill9Interval(i)
		hs, err := s.Lookup(pub, first+500, at)
		require.NoError(t, err)
		require.Len(t, hs, 1, "interval %d", i)
		assert.Equal(t, private, hs[0].Private, "interval %d", i)
	}
}

// kill9Interval is the i-th interval the child writes.
func kill9Interval(i int) (public uint32, first uint16, at time.Time, private uint32) {
	return ip("198.19.3.0") + uint32(i/63), uint16(1024 + (i%63)*1024), t0.Add(time.Duration(i) * time.Second), ip("10.7.0.0") + uint32(i)
}

func kill9Child() {
	s, err := Open(Options{Path: os.Getenv("ATTRIB_KILL9_CHILD")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := 0; i < 1_000_000; i++ {
		pub, first, at, private := kill9Interval(i)
		s.Block(natlog.BlockEvent{Time: at, Kind: natlog.BlockAssigned, Scope: natlog.ScopeDefaultSNAT,
			Private: private, Public: pub, First: first, Last: first + 1023, Generation: 1})
		if i%20 == 19 {
			if err := s.Flush(time.Minute); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Printf("committed %d\n", i+1)
		}
	}
	os.Exit(0)
}

// Events queued behind Close (natgw stopping) are not recorded: they would
// open holdings after every holding was closed.
func TestEventsAfterCloseAreDropped(t *testing.T) {
	clk := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "h.db")
	s := openStore(t, path, clk, Options{})
	hold := make(chan struct{})
	s.hold = hold
	s.Block(ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.4", "198.19.1.10", 1024, 2047, t0, 1))
	for len(s.q) != 0 {
		time.Sleep(time.Millisecond) // the writer took it and waits on hold
	}
	done := make(chan error, 1)
	s.q <- message{kind: msgClose, done: done}
	s.q <- message{kind: msgEvent, ev: ev(natlog.BlockAssigned, natlog.ScopePool, "web", "10.0.1.5", "198.19.1.10", 2048, 3071, t0, 1)}
	clk.Set(t0.Add(time.Hour))
	close(hold)
	require.NoError(t, <-done)
	<-s.stopped
	s.closed.Store(true)
	require.NoError(t, s.db.Close())
	assert.Equal(t, uint64(1), s.Stats().Dropped)

	s = openStore(t, path, clk, Options{})
	defer s.Close()
	assert.Equal(t, int64(0), s.Stats().Open)
	assert.Empty(t, who(t, s, "198.19.1.10", 2500, t0.Add(time.Minute)))
	hs, err := s.Lookup(ip("198.19.1.10"), 1500, t0.Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, ReasonStopped, hs[0].Reason)
}
