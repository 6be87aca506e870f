package lcore

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/portalloc"
)

func TestHotCountersRoundTrip(t *testing.T) {
	var h portalloc.Hot
	var c HotCounters
	got, ok := c.Load(nil)
	require.True(t, ok)
	assert.Empty(t, got)
	k := portalloc.Key{Private: 0x0a000104, Remote: 0xc612000a, RemotePort: 53, Proto: 17}
	for n := 1; n <= 7; n++ {
		h.Created(k, n, 2016, 3)
	}
	h.Released(k, 6)
	c.store(&h)
	got, ok = c.Load(nil)
	require.True(t, ok)
	require.Len(t, got, 1)
	assert.Equal(t, portalloc.HotEntry{Key: k, Scope: 3, InUse: 6, Size: 2016, Created: 7, Released: 1, Serial: 1}, got[0])
}

// TestHotCountersConsistent stores sets whose every entry has InUse ==
// Created - Released while another goroutine loads: a torn copy would
// break the invariant (run with -race too).
func TestHotCountersConsistent(t *testing.T) {
	var c HotCounters
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		var h portalloc.Hot
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := portalloc.Key{Private: 1, Remote: uint32(i % 20), Proto: 6}
			if i%3 == 2 {
				for _, e := range h.Entries() {
					if e.Key == k && e.InUse > 1 {
						h.Released(k, int(e.InUse)-1)
					}
				}
			} else {
				n := 1
				for _, e := range h.Entries() {
					if e.Key == k {
						n = int(e.InUse) + 1
					}
				}
				h.Created(k, n, 1000, 0)
			}
			c.store(&h)
		}
	}()
	loads := 0
	for range 2000 {
		got, ok := c.Load(nil)
		if !ok {
			continue
		}
		loads++
		for _, e := range got {
			// Entries enter with InUse 1 and Created 1.
			require.Equal(t, uint64(e.InUse), e.Created-e.Released, "%+v", e)
		}
	}
	close(stop)
	wg.Wait()
	assert.NotZero(t, loads)
}

// TestWorkerHotSetNoAllocs opens a new flow of the member to one
// destination on every poll and publishes the changed hot set each time:
// neither allocates, and the published set counts every flow.
func TestWorkerHotSetNoAllocs(t *testing.T) {
	tb := newFakeGateway(t, 1)
	good := udpFrame(t, macIn, macHost, member, server, 40000, 53, 64)
	tb.in.Inject(0, good)
	tb.poll()
	require.Len(t, tb.out.Sent(), 1)
	lq := &loopQueue{orig: good, pkt: Packet{Data: make([]byte, len(good), 2048)}}
	w := tb.rt.Workers[0]
	w.q[PortInside] = lq
	w.q[PortOutside] = &loopQueue{orig: nil, pkt: Packet{Data: make([]byte, 0, 2048)}}
	sport := uint16(40000)
	next := func() {
		// A new source port: a new flow towards the same destination.
		sport++
		lq.orig[34], lq.orig[35] = byte(sport>>8), byte(sport)
		lq.orig[40], lq.orig[41] = 0, 0 // UDP checksum 0: none
		w.PollOnce()
		w.publish()
	}
	next()
	allocs := testing.AllocsPerRun(200, next)
	assert.Zero(t, allocs)
	got, ok := w.Counters.Hot.Load(nil)
	require.True(t, ok)
	require.Len(t, got, 1)
	e := got[0]
	assert.Equal(t, portalloc.Key{Private: member, Remote: server, RemotePort: 53, Proto: 17}, e.Key)
	flows := int(sport-40000) + 1
	assert.Equal(t, uint32(flows), e.InUse, "one port per flow")
	assert.Equal(t, uint64(flows), e.Created)
	assert.Equal(t, uint32(w.Translator().Usage().Count(e.Key)), e.InUse)
}
