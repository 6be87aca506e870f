package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2ESpoof attacks natgw from the inside with spoofed sources (issue
// 14 item 3), through raw AF_PACKET frames from another MAC than the
// inside hosts', on both drivers with two workers and 8-port blocks. With
// inside.source_check on (the default) the attacks fail and are counted
// as spoofed, and the real hosts' traffic beside them works.
func TestE2ESpoof(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	for slot, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) {
			r := tb.startRun(t, e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers, PortsPerMember: 8})
			r.slot = 30 + slot
			checks := []struct {
				name string
				run  func(t *testing.T, r *e2eRun)
			}{
				{"spoofed pool member takes none of its ports", spoofPoolMember},
				{"spoofed default-SNAT sources take no block", spoofDefaultSNAT},
				{"sources outside the inside network", spoofOutsideInside},
			}
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) {
					require.True(t, r.natgw.alive(), "natgw is not running: %v", r.natgw.waitErr)
					c.run(t, r)
				})
			}
			t.Run("SIGTERM stops natgw cleanly", r.stopCleanly)
		})
	}
}

// spoofer is the inside link's far end sending from a MAC no inside host
// has.
var spoofer = edgePort{ns: "in", ifname: "eth0", natgw: edgeInside.natgw, peer: [6]byte{0x02, 0x4e, 0x47, 0x0e, 0x00, 0x66}}

// spoofPoolMember: once the member 10.0.1.5 has talked (natgw confirmed
// it by ARP), 16 UDP datagrams claiming its address from another MAC to
// one server port, each from another source port (twice its 8-port
// block), open no flow: none reaches the server, 16 spoofed drops are
// counted, and the member's own exchanges with that server port still get
// ports of its block.
func spoofPoolMember(t *testing.T, r *e2eRun) {
	const member = "10.0.1.5"
	dst := netip.MustParseAddrPort(e2eServer + ":9000")
	_, _, err := r.tb.udpExchange("in", netip.MustParseAddrPort(member+":0"), dst, "before")
	require.NoError(t, err, "the member talks first")
	// Its datagram made natgw ask for it by ARP; the kernel answers at
	// once. A second exchange leaves the answer time to arrive.
	time.Sleep(500 * time.Millisecond)
	_, _, err = r.tb.udpExchange("in", netip.MustParseAddrPort(member+":0"), dst, "before-2")
	require.NoError(t, err)
	base := uint16(44000 + r.slot*20)
	var frames [][]byte
	for i := range 16 {
		frames = append(frames, spoofer.udpFrame(t, spoofer.natgw, member, e2eServer, base+uint16(i), 9000))
	}
	var captured string
	d := dropDelta(t, r, "spoofed", 16, func() {
		captured = r.tb.capture(t, "srv", fmt.Sprintf("udp and dst port 9000 and src host %s", e2ePoolPublic), func() {
			spoofer.send(t, r.tb, 1, frames...)
		})
	})
	assert.Empty(t, captured, "a spoofed datagram was translated")
	assert.GreaterOrEqual(t, d, 16.0, "natgw_drops_total{reason=spoofed}")
	first, last := smallBlock(t, member)
	flows := r.tb.openUDPFlows(t, member, dst, 4)
	seen, errs := exchangeAll(flows, 3, 2*time.Second)
	for i := range flows {
		require.NoError(t, errs[i])
		assert.True(t, int(seen[i].Port()) >= first && int(seen[i].Port()) <= last, "port %d in %d-%d", seen[i].Port(), first, last)
	}
}

// spoofDefaultSNAT: 63 default-SNAT sources nobody has (10.0.50.1-63),
// enough for every default-SNAT block, send from another MAC: natgw asks
// for them by ARP, nobody answers, none gets a block (63 spoofed drops,
// nothing at the server), and a new real host (10.0.9.10, which answers
// ARP) still gets one.
func spoofDefaultSNAT(t *testing.T, r *e2eRun) {
	base := uint16(45000 + r.slot*10)
	var frames [][]byte
	for i := 1; i <= 63; i++ {
		frames = append(frames, spoofer.udpFrame(t, spoofer.natgw, fmt.Sprintf("10.0.50.%d", i), e2eServer, base, 9000))
	}
	var captured string
	d := dropDelta(t, r, "spoofed", 63, func() {
		captured = r.tb.capture(t, "srv", fmt.Sprintf("udp and dst port 9000 and src host %s", e2eDefaultPublic), func() {
			spoofer.send(t, r.tb, 1, frames...)
		})
	})
	assert.Empty(t, captured, "a spoofed default-SNAT source was translated")
	assert.GreaterOrEqual(t, d, 63.0, "natgw_drops_total{reason=spoofed}")
	r.tb.inAddr(t, "10.0.9.10")
	out, err := r.tb.curl(15*time.Second, "10.0.9.10", "http://"+e2eServer+":8080/", "-m", "10")
	require.NoError(t, err, out)
	expectFor(t, "10.0.9.10", 0).check(t, out)
}

// spoofOutsideInside: sources neither on the inside link nor in a routed
// prefix (10.99.0.1 is in default_snat.sources, 10.0.0.0/8, but not in
// the inside /16) are spoofed, even from an inside host's own MAC.
func spoofOutsideInside(t *testing.T, r *e2eRun) {
	base := uint16(46000 + r.slot*10)
	frames := [][]byte{
		spoofer.udpFrame(t, spoofer.natgw, "10.99.0.1", e2eServer, base, 9000),
		edgeInside.udpFrame(t, edgeInside.natgw, "10.99.0.2", e2eServer, base+1, 9000),
	}
	var captured string
	d := dropDelta(t, r, "spoofed", 4, func() {
		captured = r.tb.capture(t, "srv", "udp and dst port 9000 and src host "+e2eDefaultPublic+"", func() {
			spoofer.send(t, r.tb, 2, frames...)
		})
	})
	assert.Empty(t, captured)
	assert.GreaterOrEqual(t, d, 4.0, "natgw_drops_total{reason=spoofed}")
	r.assertHTTP(t, "10.0.1.4", e2eServer)
}
