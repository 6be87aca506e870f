package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestTableFullWatch(t *testing.T) {
	var w tableFullWatch
	t0 := time.Unix(1_700_000_000, 0)
	assert.False(t, w.check(t0, 0), "no drops")
	assert.True(t, w.check(t0.Add(time.Second), 5), "drops: an event")
	assert.False(t, w.check(t0.Add(2*time.Second), 9), "more drops within 10 s: no event")
	assert.False(t, w.check(t0.Add(20*time.Second), 9), "no new drops")
	assert.True(t, w.check(t0.Add(21*time.Second), 10), "new drops after 10 s: an event")
}
