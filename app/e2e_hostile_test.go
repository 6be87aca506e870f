package main

// TestE2EHostile attacks natgw from the outside (issue 14 items 4 and 7)
// with frames crafted by the project's writers and sent through raw
// AF_PACKET sockets from the far end of the outside link, on both
// drivers: blind TCP resets against a live connection, and a flood of
// one-packet UDP flows to an instance's udp/* rule. Each attack must fail,
// its drops must be counted by reason in natgw_drops_total, and the
// legitimate traffic beside it must still pass.

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// hostileCapacity is the flow table of the runs (one worker): the
// default limits give one host 25% of it and inbound flows 50%.
const hostileCapacity = 400

func TestE2EHostile(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	for _, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) {
			r := tb.startRun(t, e2eConfig{Driver: driver, Workers: 1, Members: e2ePoolMembers, FlowCapacity: hostileCapacity})
			for _, c := range []struct {
				name string
				run  func(t *testing.T, r *e2eRun)
			}{
				{"blind TCP resets", hostileBlindReset},
				{"inbound UDP flood", hostileInboundFlood},
				{"one inside host", hostileInsideHost},
			} {
				t.Run(c.name, func(t *testing.T) {
					require.True(t, r.natgw.alive(), "natgw is not running: %v", r.natgw.waitErr)
					c.run(t, r)
				})
			}
			t.Run("SIGTERM stops natgw cleanly", func(t *testing.T) { r.stopCleanly(t) })
		})
	}
}

// tcpFrame builds an Ethernet frame to MAC dst carrying a TCP segment.
func (p edgePort) tcpFrame(t *testing.T, dst [6]byte, src, dstIP netip.AddrPort, seq, ack uint32, flags uint8) []byte {
	t.Helper()
	b := make([]byte, 256)
	n := nat.BuildTCP(b[nat.EthernetLen:], nat.TCPSegment{Src: nat.U32(src.Addr()), Dst: nat.U32(dstIP.Addr()), SrcPort: src.Port(), DstPort: dstIP.Port(), Seq: seq, Ack: ack, Flags: flags, TTL: 64})
	require.NotZero(t, n)
	nat.WriteEthernet(b, dst, p.peer, nat.EtherTypeIPv4)
	return b[:nat.EthernetLen+n]
}

// hostileBlindReset: an off-path host that knows a connection's addresses
// and ports but not its sequence numbers sends RSTs with guessed ones to
// the connection's public endpoint. natgw drops them (tcp_invalid_rst),
// the flow stays established and the connection keeps echoing.
func hostileBlindReset(t *testing.T, r *e2eRun) {
	echo, err := r.tb.dialEcho("10.0.1.4", e2eServer+":9001")
	require.NoError(t, err)
	defer echo.conn.Close()
	require.NoError(t, echo.echo(5*time.Second))
	local := echo.conn.LocalAddr().String()
	api := r.tb.api()
	var pub netip.AddrPort
	for _, f := range api.flows(t, "10.0.1.4") {
		if f.Protocol == "tcp" && f.Private == local && f.Remote == e2eServer+":9001" {
			pub = netip.MustParseAddrPort(f.Public)
			require.Equal(t, "established", f.State)
		}
	}
	require.True(t, pub.IsValid(), "no flow for %s", local)

	server := netip.MustParseAddrPort(e2eServer + ":9001")
	var frames [][]byte
	for i := range 8 {
		// Guesses spread over the sequence space: none in the window of
		// the connection's receiver, whose numbers are random.
		seq := uint32(i)*0x20000000 + 0x1234567
		frames = append(frames,
			edgeOutside.tcpFrame(t, edgeOutside.natgw, server, pub, seq, 0, nat.TCPFlagRST),
			edgeOutside.tcpFrame(t, edgeOutside.natgw, server, pub, seq, seq, nat.TCPFlagRST|nat.TCPFlagACK))
	}
	// The guesses' window is known not to hold the receiver's number only
	// with high probability: count the frames natgw passed on instead of
	// assuming none.
	d := dropDelta(t, r, "tcp_invalid_rst", 14, func() { edgeOutside.send(t, r.tb, 1, frames...) })
	assert.GreaterOrEqual(t, d, 14.0, "natgw_drops_total{reason=tcp_invalid_rst}")
	for _, f := range api.flows(t, "10.0.1.4") {
		if f.Private == local && f.Remote == e2eServer+":9001" {
			assert.Equal(t, "established", f.State, "a blind reset must not close the flow")
		}
	}
	require.NoError(t, echo.echo(5*time.Second), "the connection survives")
	// The connection's own close still goes through: the flow closes.
	require.NoError(t, echo.conn.Close())
	require.NoError(t, waitFor(10*time.Second, func() error {
		for _, f := range api.flows(t, "10.0.1.4") {
			if f.Private == local && f.Remote == e2eServer+":9001" && f.State != "closing" {
				return fmt.Errorf("flow %s", f.State)
			}
		}
		return nil
	}))
}

// hostileInboundFlood: one-packet UDP flows from the internet to the
// instance's udp/* rule, from one source and from many, can't fill the
// flow table: one outside host is held at 25% of it (host_limit), all of
// them at 50% (inbound_limit), and pool members still open flows.
func hostileInboundFlood(t *testing.T, r *e2eRun) {
	inst := netip.MustParseAddrPort(e2eInstancePublic + ":5000")
	var one, many [][]byte
	for i := range hostileCapacity / 2 {
		src := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.99"), uint16(20000+i))
		one = append(one, edgeOutside.udpFrame(t, edgeOutside.natgw, src.Addr().String(), inst.Addr().String(), src.Port(), inst.Port()))
	}
	// The many sources are 198.18.1.0-198.18.1.255: routed to the outside,
	// no host of the testbed.
	for i := range hostileCapacity / 2 {
		src := netip.AddrFrom4([4]byte{198, 18, 1 + byte(i/256), byte(i)})
		many = append(many, edgeOutside.udpFrame(t, edgeOutside.natgw, src.String(), inst.Addr().String(), 20000, inst.Port()))
	}
	perHost, inbound := hostileCapacity/4, hostileCapacity/2
	d := dropDelta(t, r, "host_limit", float64(len(one)-perHost), func() { sendPaced(t, r, one) })
	assert.GreaterOrEqual(t, d, float64(len(one)-perHost), "natgw_drops_total{reason=host_limit}: one source")
	// perHost flows of the first source are in; the many sources add
	// inbound-perHost more.
	d = dropDelta(t, r, "inbound_limit", float64(len(many)-(inbound-perHost)), func() { sendPaced(t, r, many) })
	assert.GreaterOrEqual(t, d, float64(len(many)-(inbound-perHost)), "natgw_drops_total{reason=inbound_limit}")
	m := r.tb.api().scrape(t)
	assert.LessOrEqual(t, m.sum("natgw_flows_active"), float64(hostileCapacity), "natgw_flows_active")
	assert.Zero(t, m.sum("natgw_drops_total", "reason", "flow_table_full"), "the table never filled")

	// Beside the flood, pool members open new flows.
	dst := netip.MustParseAddrPort(e2eServer + ":9000")
	for _, src := range []string{"10.0.1.4", "10.0.1.5"} {
		flows := r.tb.openUDPFlows(t, src, dst, 10)
		_, errs := exchangeAll(flows, 3, time.Second)
		for i, err := range errs {
			assert.NoError(t, err, "%s flow %d beside the flood", src, i)
		}
	}
}

// hostileInsideHost: one inside host opening UDP flows without end is
// held at 25% of the table (host_limit); another host still opens flows.
func hostileInsideHost(t *testing.T, r *e2eRun) {
	dst := netip.MustParseAddrPort(e2eServer + ":9000")
	api := r.tb.api()
	before := len(api.flows(t, "10.0.2.3"))
	attempts := hostileCapacity/4 + 20
	flows := r.tb.openUDPFlows(t, "10.0.2.3", dst, attempts)
	var errs []error
	d := dropDelta(t, r, "host_limit", 20, func() { _, errs = exchangeAll(flows, 3, 700*time.Millisecond) })
	assert.GreaterOrEqual(t, d, 20.0, "natgw_drops_total{reason=host_limit}")
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		}
	}
	// Which flows got in depends on the order their first packets
	// arrived; how many is exact in the flow table, and no more answered.
	assert.Len(t, api.flows(t, "10.0.2.3"), hostileCapacity/4, "flows of one host")
	assert.LessOrEqual(t, ok, hostileCapacity/4-before, "flows answered for one host")
	other := r.tb.openUDPFlows(t, "10.0.2.4", dst, 5)
	_, errs = exchangeAll(other, 3, time.Second)
	for i, err := range errs {
		assert.NoError(t, err, "another host's flow %d", i)
	}
}

// sendPaced sends frames from the outside in groups of 20, 20 ms apart,
// so that no receive ring of natgw's overflows.
func sendPaced(t *testing.T, r *e2eRun, frames [][]byte) {
	for len(frames) > 0 {
		n := min(20, len(frames))
		edgeOutside.send(t, r.tb, 1, frames[:n]...)
		frames = frames[n:]
		time.Sleep(20 * time.Millisecond)
	}
}
