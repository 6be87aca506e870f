package nat

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// redirectTranslator is a translator whose Redirect hook records what it
// was asked and answers with *answer.
func redirectTranslator(t testing.TB, answer *bool, asked *[]OutKey) *Translator {
	return NewTranslator(testPolicy(t, 0), TranslatorOptions{FlowCapacity: 1024, Seed: 1,
		Redirect: func(i int, k *OutKey) bool {
			if asked != nil {
				*asked = append(*asked, *k)
			}
			return *answer
		}}, 1000)
}

// TestRedirectNewFlowsOnly: while redirecting, a packet of an existing
// flow is translated; a packet that would open a flow is left untouched
// with VerdictRedirect and opens nothing; the hook answering false opens
// the flow as usual; off, the hook is never asked.
func TestRedirectNewFlowsOnly(t *testing.T) {
	answer := true
	var asked []OutKey
	tr := redirectTranslator(t, &answer, &asked)
	old := udp(memberA, server, 4000, 53).build(t)
	require.Equal(t, VerdictForward, tr.Outbound(old, 1000))
	assert.Empty(t, asked, "not redirecting: the hook is not asked")

	tr.SetRedirect(true)
	require.True(t, tr.Redirecting())
	again := udp(memberA, server, 4000, 53).build(t)
	assert.Equal(t, VerdictForward, tr.Outbound(again, 1001), "an existing flow is translated")
	assert.Equal(t, fe1, parsed(t, again).ip.Src())

	fresh := udp(memberA, server, 4001, 53).build(t)
	orig := bytes.Clone(fresh)
	assert.Equal(t, VerdictRedirect, tr.Outbound(fresh, 1002))
	assert.Equal(t, orig, fresh, "a redirected packet is left untouched, TTL and all")
	require.Len(t, asked, 1)
	assert.Equal(t, OutKey{Priv: memberA, Remote: server, PrivPort: 4001, RemotePort: 53, Proto: ProtoUDP}, asked[0])
	assert.Equal(t, 1, tr.Flows().Len(), "a redirected packet opens no flow")
	assert.Equal(t, uint64(1), tr.Stats.Verdicts[VerdictRedirect])

	// Mid-flow TCP of a flow this node never had goes too; refused
	// flows stay refused (the policy's checks come first).
	mid := tcp(dflt, server, 5000, 80, TCPFlagACK).build(t)
	assert.Equal(t, VerdictRedirect, tr.Outbound(mid, 1003))
	denied := tcp(memberA, ip4("198.18.99.1"), 5000, 25, TCPFlagSYN).build(t)
	assert.Equal(t, DropDenied, tr.Outbound(denied, 1003))

	// In a burst, the hook gets the packet's index in the burst.
	answer = false
	burst := [][]byte{udp(memberA, server, 4000, 53).build(t), udp(memberB, server, 4002, 53).build(t)}
	verdicts := make([]Verdict, 2)
	tr.OutboundBurst(burst, verdicts, 1004)
	assert.Equal(t, []Verdict{VerdictForward, VerdictForward}, verdicts, "the hook said no: translated here")
	assert.Equal(t, 2, tr.Flows().Len())

	tr.SetRedirect(false)
	n := len(asked)
	assert.Equal(t, VerdictForward, tr.Outbound(udp(memberB, server, 4003, 53).build(t), 1005))
	assert.Len(t, asked, n, "redirection off: the hook is not asked")
}

// TestRedirectWithoutHook: SetRedirect without a Redirect hook changes
// nothing.
func TestRedirectWithoutHook(t *testing.T) {
	tr := newTestTranslator(t, testPolicy(t, 0), 64)
	tr.SetRedirect(true)
	assert.False(t, tr.Redirecting())
	assert.Equal(t, VerdictForward, tr.Outbound(udp(memberA, server, 4000, 53).build(t), 1000))
}

// TestRedirectNoAllocs: the redirect decision allocates nothing.
func TestRedirectNoAllocs(t *testing.T) {
	answer := true
	tr := redirectTranslator(t, &answer, nil)
	tr.SetRedirect(true)
	out := udp(memberA, server, 4000, 53).build(t)
	work := make([]byte, len(out))
	pkts := [][]byte{work}
	verdicts := make([]Verdict, 1)
	allocs := testing.AllocsPerRun(1000, func() {
		copy(work, out)
		tr.OutboundBurst(pkts, verdicts, 1000)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, VerdictRedirect, verdicts[0])
}

// TestRedirectLaterFragments: a later fragment whose datagram has no flow
// follows its redirected first fragment while redirecting, and is dropped
// as before otherwise.
func TestRedirectLaterFragments(t *testing.T) {
	answer := true
	var asked []OutKey
	tr := redirectTranslator(t, &answer, &asked)
	frag := udp(memberA, server, 4001, 53).build(t)
	assert.Equal(t, DropFragment, tr.OutboundFragment(bytes.Clone(frag), 4001, 53, 1000))
	assert.Empty(t, asked)
	tr.SetRedirect(true)
	assert.Equal(t, VerdictRedirect, tr.OutboundFragment(frag, 4001, 53, 1000))
	require.Len(t, asked, 1)
	assert.Equal(t, OutKey{Priv: memberA, Remote: server, PrivPort: 4001, RemotePort: 53, Proto: ProtoUDP}, asked[0])
	assert.Zero(t, tr.Flows().Len())
}
