package natlog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/nat"
)

func TestSessionRecord(t *testing.T) {
	e := lcore.SessionEvent{Priv: 1, Pub: 2, Remote: 3, PrivPort: 4, PubPort: 5, RemotePort: 6, Proto: 17, Reason: nat.SessionCreated}
	at := time.Unix(1_700_000_000, 0)
	want := Record{Time: at, Event: EventSessionCreate, Proto: 17, Private: 1, Public: 2, Remote: 3,
		PrivatePort: 4, PublicPort: 5, RemotePort: 6}
	assert.Equal(t, want, SessionRecord(&e, at))
	for reason, end := range map[nat.ExpireReason]EndReason{
		nat.ExpireIdle: EndIdle, nat.ExpireClosed: EndDetected, nat.ExpireReset: EndDetected, nat.ExpireReclaimed: EndForced,
	} {
		e.Reason = reason
		want.Event, want.Reason = EventSessionDelete, end
		assert.Equal(t, want, SessionRecord(&e, at), reason.String())
	}
}

func TestBlockRecord(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	ev := BlockEvent{Time: at, Kind: BlockAssigned, Scope: ScopeDefaultSNAT, Private: 1, Public: 2, First: 1024, Last: 2047, Generation: 3}
	r := BlockRecord(ev)
	assert.Equal(t, Record{Time: at, Event: EventBlockAllocate, Private: 1, Public: 2, First: 1024, Last: 2047,
		Pool: "default_snat", Generation: 3}, r)
	ev.Kind = BlockReleased
	assert.Equal(t, EventBlockRelease, BlockRecord(ev).Event)
	ev.Scope, ev.Name = ScopeInstance, ""
	assert.Equal(t, EventBindingDelete, BlockRecord(ev).Event)
	ev.Kind = BlockAssigned
	assert.Equal(t, EventBindingCreate, BlockRecord(ev).Event)
	ev.Scope, ev.Name = ScopePool, "web"
	assert.Equal(t, "web", BlockRecord(ev).Pool)
}
