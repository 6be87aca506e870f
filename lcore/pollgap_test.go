package lcore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestPollGapsCounted: a worker counts the gaps between the starts of two
// polls over each limit and publishes the longest of the last windows;
// an idle wait is not a gap. The clock is the test's, so no assertion
// depends on how fast the test runs.
func TestPollGapsCounted(t *testing.T) {
	tb := newFakeGatewayClock(t, 1, true)
	w := tb.rt.Workers[0]
	now := int64(1)
	w.gaps.nanos = func() int64 { return now }
	poll := func(after time.Duration) {
		now += int64(after)
		w.PollOnce() // an idle poll publishes the counters
	}
	gaps := func() [NumPollGapLimits]uint64 {
		var c [NumPollGapLimits]uint64
		for i := range c {
			c[i] = w.Counters.PollGaps[i].Load()
		}
		return c
	}
	assert.Equal(t, [NumPollGapLimits]time.Duration{100 * time.Microsecond, time.Millisecond, 10 * time.Millisecond}, PollGapLimits())

	poll(0)
	poll(50 * time.Microsecond)
	assert.Equal(t, [NumPollGapLimits]uint64{0, 0, 0}, gaps())
	assert.Equal(t, int64(50*time.Microsecond), w.Counters.PollGapMax.Load())

	poll(2 * time.Millisecond)
	assert.Equal(t, [NumPollGapLimits]uint64{1, 1, 0}, gaps())
	poll(20 * time.Millisecond)
	assert.Equal(t, [NumPollGapLimits]uint64{2, 2, 1}, gaps())
	poll(300 * time.Microsecond)
	assert.Equal(t, [NumPollGapLimits]uint64{3, 2, 1}, gaps())
	assert.Equal(t, int64(20*time.Millisecond), w.Counters.PollGapMax.Load())

	// Waiting idle in the driver (Run) is not a stall.
	w.gaps.skip()
	poll(time.Second)
	assert.Equal(t, [NumPollGapLimits]uint64{3, 2, 1}, gaps())

	// The longest gap is kept for the rest of its window and the next.
	w.gaps.skip()
	poll(PollGapWindow)
	poll(10 * time.Microsecond)
	assert.Equal(t, int64(20*time.Millisecond), w.Counters.PollGapMax.Load(), "the previous window's longest gap")
	w.gaps.skip()
	poll(PollGapWindow)
	poll(10 * time.Microsecond)
	assert.Equal(t, int64(10*time.Microsecond), w.Counters.PollGapMax.Load(), "two windows later")
	assert.Equal(t, [NumPollGapLimits]uint64{3, 2, 1}, gaps())
}
