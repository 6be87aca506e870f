package lcore

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

var (
	instPriv = a4("10.0.3.7")
	instPub  = a4("198.19.1.50")
	macInst  = [6]byte{2, 0, 0, 0, 1, 7}
)

// newHairpinTestbed is newTestbed with an instance (udp/* inbound) added
// to the policy and the inside hosts' MACs known.
func newHairpinTestbed(t *testing.T, workers int) *testbed {
	t.Helper()
	s := testSpec()
	s.Instances = []nat.InstanceSpec{{Private: instPriv, Public: instPub,
		Inbound: []nat.PortRule{{Proto: nat.ProtoUDP, Lo: 0, Hi: 0xFFFF}}}}
	holder := holderOf(compileSpec(t, s, nil))
	tb := &testbed{in: NewFakePort("in", macIn, workers+1), out: NewFakePort("out", macOut, workers+1)}
	start := time.Now()
	var err error
	tb.rt, err = NewRuntime(RuntimeConfig{
		Clock:   func() nat.Tick { return nat.Tick(time.Since(start)/time.Millisecond+1) + nat.Tick(tb.skew.Load()) },
		Workers: workers, Ports: [NumPorts]Port{tb.in, tb.out}, Policy: holder, FlowCapacity: 4096,
		Static: []StaticNeighbor{{Addr: gateway, MAC: macGw}, {Addr: instPriv, MAC: macInst}, {Addr: member, MAC: macHost}},
		Log:    slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	tb.rt.Manager.applyStatic()
	return tb
}

// TestHairpinAcrossWorkers: a pool member's packets to an instance's
// public address reach the instance from the member's public address and
// port, and the instance's replies reach the member, without a frame on the
// outside port, with two workers where the outbound and the inbound owner
// differ (RFC 4787 REQ-9, RFC 5382 REQ-8).
func TestHairpinAcrossWorkers(t *testing.T) {
	tb := newHairpinTestbed(t, 2)
	const n = 16
	for i := range n {
		tb.in.Inject(0, udpFrame(t, macIn, macHost, member, instPub, uint16(40000+i), uint16(7000+i), 64))
	}
	tb.poll()
	assert.Empty(t, tb.out.Sent(), "nothing leaves natgw")
	got := tb.in.Sent()
	require.Len(t, got, n)
	crossed := 0
	pubOf := map[uint16]uint16{} // member's source port -> its public port
	for _, f := range got {
		eth, ip := parseFrame(t, f)
		assert.Equal(t, macInst, eth.Dst())
		assert.Equal(t, macIn, eth.Src())
		assert.Equal(t, fe1, ip.Src(), "the member's own public address")
		assert.Equal(t, instPriv, ip.Dst())
		u := nat.UDP(ip.Payload())
		dport := u.DstPort()
		pubOf[dport-7000+40000] = u.SrcPort()
		if tb.rt.Owner.Of(instPub, dport) != tb.rt.Owner.Of(fe1, u.SrcPort()) {
			crossed++
		}
	}
	require.Len(t, pubOf, n)
	assert.NotZero(t, crossed, "some flows' inbound owner is the other worker")

	// The instance answers each to the member's public endpoint.
	for i := range n {
		sp := uint16(40000 + i)
		tb.in.Inject(1, udpFrame(t, macIn, macInst, instPriv, fe1, uint16(7000+i), pubOf[sp], 64))
	}
	tb.poll()
	assert.Empty(t, tb.out.Sent())
	got = tb.in.Sent()
	require.Len(t, got, n)
	for _, f := range got {
		eth, ip := parseFrame(t, f)
		assert.Equal(t, macHost, eth.Dst())
		assert.Equal(t, instPub, ip.Src())
		assert.Equal(t, member, ip.Dst())
		u := nat.UDP(ip.Payload())
		assert.Equal(t, u.SrcPort()-7000, u.DstPort()-40000, "each reply to its own flow")
	}
	var drops uint64
	for _, w := range tb.rt.Workers {
		w.publish()
		for v := nat.DropDenied; v < nat.NumVerdicts; v++ {
			drops += w.Counters.Verdicts[v].Load()
		}
	}
	assert.Zero(t, drops)
}

// TestHairpinToNatgwItself: an echo request from the inside to a
// frontend is not answered through the outside port.
func TestHairpinToNatgwItself(t *testing.T) {
	tb := newHairpinTestbed(t, 2)
	tb.in.Inject(0, frame(t, macIn, macHost, func(b []byte) int {
		return nat.BuildICMPEcho(b, member, fe1, nat.ICMPEchoRequest, 9, 1, 64, nil)
	}))
	tb.poll()
	assert.Empty(t, tb.out.Sent())
	assert.Empty(t, tb.in.Sent())
	var noFlow uint64
	for _, w := range tb.rt.Workers {
		w.publish()
		noFlow += w.Counters.Verdicts[nat.DropNoFlow].Load()
	}
	assert.Equal(t, uint64(1), noFlow)
}
