package lcore

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/natgw/natgw/nat"
)

// eventRing is a bounded SPSC ring of exhaustion events from one worker to
// the management core; a full ring drops (the drop is counted by the
// port_exhausted counter already).
type eventRing struct {
	head, tail atomic.Uint64
	ev         [256]nat.ExhaustEvent
}

func (r *eventRing) push(e nat.ExhaustEvent) {
	h := r.head.Load()
	if h-r.tail.Load() >= uint64(len(r.ev)) {
		return
	}
	r.ev[h%uint64(len(r.ev))] = e
	r.head.Store(h + 1)
}

func (r *eventRing) drain(fn func(nat.ExhaustEvent)) {
	t, h := r.tail.Load(), r.head.Load()
	for ; t != h; t++ {
		fn(r.ev[t%uint64(len(r.ev))])
	}
	r.tail.Store(t)
}

// exhaustLogInterval is the shortest interval between two log lines for
// one member and destination [S4].
const exhaustLogInterval = 10 * time.Second

type exhaustKey struct {
	priv, remote uint32
	port         uint16
	proto        uint8
}

// exhaustLogger logs SNAT port exhaustion, rate-limited per member and
// destination (management core only).
type exhaustLogger struct {
	log  *slog.Logger
	last map[exhaustKey]time.Time
}

// event logs e unless the same member and destination was logged less
// than exhaustLogInterval ago; it reports whether it logged.
func (l *exhaustLogger) event(p *nat.Policy, e nat.ExhaustEvent, now time.Time) bool {
	k := exhaustKey{e.Private, e.Remote, e.RemotePort, e.Proto}
	if t, ok := l.last[k]; ok && now.Sub(t) < exhaustLogInterval {
		return false
	}
	if len(l.last) > 100_000 { // bound the memory of a flood
		for k, t := range l.last {
			if now.Sub(t) >= exhaustLogInterval {
				delete(l.last, k)
			}
		}
	}
	l.last[k] = now
	l.log.Warn("SNAT ports exhausted: new flow dropped",
		"member", nat.AddrFrom(e.Private).String(), "pool", p.PoolName(e.Scope),
		"destination", fmt.Sprintf("%s:%d", nat.AddrFrom(e.Remote), e.RemotePort),
		"protocol", nat.ProtoName(e.Proto))
	return true
}
