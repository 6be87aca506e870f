package natlog

import (
	"time"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/nat"
)

// SessionRecord returns the record of a worker's session event that
// happened at wall-clock time at (lcore.Runtime.WallTime of its tick):
// NAT44 session create, or delete with its end reason.
func SessionRecord(e *lcore.SessionEvent, at time.Time) Record {
	r := Record{Time: at, Event: EventSessionCreate, Proto: e.Proto,
		Private: e.Priv, PrivatePort: e.PrivPort, Public: e.Pub, PublicPort: e.PubPort,
		Remote: e.Remote, RemotePort: e.RemotePort}
	if e.Reason != nat.SessionCreated {
		r.Event, r.Reason = EventSessionDelete, EndReasonOf(e.Reason)
	}
	return r
}
