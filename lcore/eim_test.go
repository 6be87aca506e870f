package lcore

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// newEIMGateway is newFakeGateway with the pool mapping endpoint
// independently and filtering f.
func newEIMGateway(t *testing.T, workers int, f nat.FilteringMode) *fakeGateway {
	t.Helper()
	s := testSpec()
	s.Pools[0].Mapping, s.Pools[0].Filtering = nat.MappingEndpointIndependent, f
	tb := &fakeGateway{in: NewFakePort("in", macIn, workers+1), out: NewFakePort("out", macOut, workers+1)}
	var err error
	tb.rt, err = NewRuntime(RuntimeConfig{
		Clock:   func() nat.Tick { return 1 + nat.Tick(tb.skew.Load()) },
		Workers: workers, Ports: [NumPorts]Port{tb.in, tb.out}, Policy: holderOf(compileSpec(t, s, nil)), FlowCapacity: 4096,
		Static: []StaticNeighbor{{Addr: gateway, MAC: macGw}, {Addr: member, MAC: macHost}},
		Log:    slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	tb.rt.Manager.applyStatic()
	return tb
}

// TestEIMAcrossWorkers: with two workers, a member's private endpoint
// keeps one public port towards destinations whose owners (the RSS hash
// of the remote endpoint) are either worker, the answers of every
// destination reach it, and so does a new remote endpoint that only
// endpoint-independent filtering lets in (issue 19, RFC 4787 REQ-1).
func TestEIMAcrossWorkers(t *testing.T) {
	const workers = 2
	tb := newEIMGateway(t, workers, nat.FilteringEndpointIndependent)
	owner := nat.EIMOwner(nat.ProtoUDP, member, 40000, workers)
	type remote struct {
		addr uint32
		port uint16
	}
	var remotes []remote
	elsewhere := 0
	for i := range 12 {
		r := remote{server + uint32(i), 3478}
		remotes = append(remotes, r)
		if tb.rt.Owner.Of(r.addr, r.port) != owner {
			elsewhere++
		}
	}
	require.NotZero(t, elsewhere, "some destinations hash to the other worker")
	require.Less(t, elsewhere, len(remotes), "some to the mapping's owner")
	for _, r := range remotes {
		// Each frame comes in on the queue RSS would choose.
		tb.in.Inject(tb.rt.Owner.Of(r.addr, r.port), udpFrame(t, macIn, macHost, member, r.addr, 40000, r.port, 64))
	}
	tb.poll()
	sent := tb.out.Sent()
	require.Len(t, sent, len(remotes))
	var pub uint16
	for i, f := range sent {
		_, ip := parseFrame(t, f)
		assert.Equal(t, fe1, ip.Src())
		u := nat.UDP(ip.Payload())
		if i == 0 {
			pub = u.SrcPort()
		}
		assert.Equal(t, pub, u.SrcPort(), "one public port for every destination")
	}
	assert.Equal(t, owner, nat.PortOwner(pub, workers), "the port's inbound owner is the mapping's owner")

	// Every destination answers; so does a stranger (endpoint-independent
	// filtering), each on the queue of its own RSS owner.
	stranger := remote{a4("203.0.113.9"), 5000}
	for tb.rt.Owner.Of(stranger.addr, stranger.port) == owner {
		stranger.port++
	}
	for _, r := range append(remotes, stranger) {
		tb.out.Inject(tb.rt.Owner.Of(r.addr, r.port), udpFrame(t, macOut, macGw, r.addr, fe1, r.port, pub, 64))
	}
	tb.poll()
	got := tb.in.Sent()
	require.Len(t, got, len(remotes)+1)
	for _, f := range got {
		_, ip := parseFrame(t, f)
		assert.Equal(t, member, ip.Dst())
		assert.Equal(t, uint16(40000), nat.UDP(ip.Payload()).DstPort())
	}
	var drops, handoffs uint64
	flows := 0
	for _, w := range tb.rt.Workers {
		w.publish()
		for v := nat.DropDenied; v < nat.NumVerdicts; v++ {
			drops += w.Counters.Verdicts[v].Load()
		}
		handoffs += w.Counters.Verdicts[nat.VerdictHandoff].Load()
		flows += w.Translator().Flows().Len()
		if w.id != owner {
			assert.Zero(t, w.Translator().Flows().Len(), "every flow of the endpoint on its owner")
			assert.Zero(t, w.Translator().Mappings())
		}
	}
	assert.Zero(t, drops)
	assert.Equal(t, len(remotes)+1, flows)
	assert.Equal(t, uint64(2*elsewhere+1), handoffs, "out and back for each remote of the other worker, and the stranger")
}

// TestEIMReloadNoAllocs: a worker's switch to the first policy with an
// endpoint-independent scope allocates nothing (its mapping table, sized
// like the flow table, was made when the policy was stored), and the
// worker then maps endpoint independently.
func TestEIMReloadNoAllocs(t *testing.T) {
	tb := newFakeGateway(t, 1)
	w := tb.rt.Workers[0]
	holder := tb.rt.cfg.Policy
	apd := compileSpec(t, testSpec(), holder.Load())
	holder.Store(apd)
	s := testSpec()
	s.Pools[0].Mapping = nat.MappingEndpointIndependent
	eim := compileSpec(t, s, apd)
	holder.Store(eim)
	// AllocsPerRun's first call is not measured: it switches to apd, the
	// measured one to eim.
	next := []*nat.Policy{apd, eim}
	allocs := testing.AllocsPerRun(1, func() {
		w.switchPolicy(next[0], 1)
		next = next[1:]
	})
	assert.Zero(t, allocs, "the worker's switch to the first endpoint-independent policy")
	tb.poll()
	require.Same(t, eim, w.Translator().Policy())
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server, 40000, 3478, 64))
	tb.in.Inject(0, udpFrame(t, macIn, macHost, member, server+1, 40000, 53, 64))
	tb.poll()
	assert.Equal(t, 1, w.Translator().Mappings(), "one mapping for both destinations")
}
