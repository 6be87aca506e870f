package nat

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sessionLog records what a session hook is told.
type sessionLog struct {
	flows   []Flow
	reasons []ExpireReason
}

func (l *sessionLog) hook(f *Flow, r ExpireReason) {
	l.flows = append(l.flows, *f)
	l.reasons = append(l.reasons, r)
}

func TestSessionHook(t *testing.T) {
	p := testPolicy(t, 0)
	tr := newTestTranslator(t, p, 1024)
	log := &sessionLog{}
	tr.SetSessionHook(log.hook)

	// An outbound pool flow: created, with its public endpoint.
	require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 40000, 53).build(t), 1000))
	require.Len(t, log.flows, 1)
	f := log.flows[0]
	assert.Equal(t, SessionCreated, log.reasons[0])
	assert.Equal(t, memberA, f.Priv)
	assert.Equal(t, fe1, f.Pub)
	assert.Equal(t, server, f.Remote)
	assert.Equal(t, uint16(40000), f.PrivPort)
	assert.NotZero(t, f.PubPort)
	assert.Equal(t, uint16(53), f.RemotePort)

	// Packets of the flow say nothing more.
	tr.Outbound(udp(memberA, server, 40000, 53).build(t), 1001)
	assert.Len(t, log.flows, 1)

	// An inbound flow an instance's rules allow: created too.
	in := udp(server, instPub, 5353, 9999).build(t)
	require.Equal(t, VerdictForward, tr.Inbound(in, 1002))
	require.Len(t, log.flows, 2)
	assert.Equal(t, instPriv, log.flows[1].Priv)
	assert.Equal(t, instPub, log.flows[1].Pub)
	assert.Equal(t, uint16(9999), log.flows[1].PubPort)

	// A reload that takes the pool member's ports back: the flow is
	// released as reclaimed.
	p2 := compileSpec(t, specWith(0, 4*time.Minute, denyServer), p)
	tr.SetPolicy(p2)
	for !tr.Sweep(1000) {
	}
	require.GreaterOrEqual(t, len(log.flows), 3)
	assert.Equal(t, ExpireReclaimed, log.reasons[2])
	assert.Equal(t, memberA, log.flows[2].Priv)

	// Idle expiry of the rest.
	tr.Expire(1002+p2.Timeouts.UDP+1000, 1000)
	assert.Equal(t, ExpireIdle, log.reasons[len(log.reasons)-1])
	assert.Equal(t, instPriv, log.flows[len(log.flows)-1].Priv)

	// Without a hook nothing is called.
	tr.SetSessionHook(nil)
	n := len(log.flows)
	require.Equal(t, VerdictForward, tr.Outbound(udp(memberA, ip4("198.18.0.11"), 40001, 53).build(t), 5_000_000))
	assert.Len(t, log.flows, n)
}
