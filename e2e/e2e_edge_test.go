package e2e

// TestE2EEdge attacks natgw at the edge (issue 14) with crafted frames
// sent through raw AF_PACKET sockets from the far end of its links, on
// both drivers: each attack must fail, its drop must be counted in
// natgw_drops_total by its reason, and legitimate traffic sent beside it
// must still pass.

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/nat"
)

// edgeCheck is one attack of TestE2EEdge.
type edgeCheck struct {
	name string
	run  func(t *testing.T, r *e2eRun, token string)
}

// edgeChecks are the attacks, run in order against one natgw per driver.
var edgeChecks = []edgeCheck{
	{"API: every /v1/ path needs the token", edgeAPIToken},
	{"frames for other hosts", edgeForeignMAC},
	{"martian destinations", edgeMartian},
	{"ICMP errors from the inside", edgeICMPErrors},
	{"ARP poisoning", edgeARP},
	{"gratuitous ARP on link up", edgeGratuitousARP},
}

// edgeToken is the bearer token of the runs.
const edgeToken = "edge-secret-token"

func TestE2EEdge(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	for slot, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) {
			tok := filepath.Join(t.TempDir(), "token")
			require.NoError(t, os.WriteFile(tok, []byte(edgeToken+"\n"), 0o600))
			edgeGARP = watchGARP(t, tb, edgeOutside)
			r := tb.startRun(t, e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers, TokenFile: tok})
			r.slot = 20 + slot
			for _, c := range edgeChecks {
				t.Run(c.name, func(t *testing.T) {
					require.True(t, r.natgw.alive(), "natgw is not running: %v", r.natgw.waitErr)
					c.run(t, r, tok)
				})
			}
			t.Run("SIGTERM stops natgw cleanly", func(t *testing.T) { r.stopCleanly(t) })
		})
	}
}

// edgePort is one of natgw's links seen from its far end.
type edgePort struct {
	ns, ifname string
	// natgw is natgw's MAC on the link, peer the sender's.
	natgw, peer [6]byte
}

var (
	edgeInside  = edgePort{ns: "in", ifname: "eth0", natgw: e2eFloodPorts[0].dst, peer: e2eFloodPorts[0].src}
	edgeOutside = edgePort{ns: "rt", ifname: "to-gw", natgw: e2eFloodPorts[1].dst, peer: e2eFloodPorts[1].src}
)

// udpFrame builds an Ethernet frame to MAC dst carrying a UDP datagram.
func (p edgePort) udpFrame(t *testing.T, dst [6]byte, src, dstIP string, sport, dport uint16) []byte {
	t.Helper()
	b := make([]byte, 256)
	n := nat.BuildUDP(b[nat.EthernetLen:], nat.U32(netip.MustParseAddr(src)), nat.U32(netip.MustParseAddr(dstIP)), sport, dport, 64, []byte("edge-attack"))
	require.NotZero(t, n)
	nat.WriteEthernet(b, dst, p.peer, nat.EtherTypeIPv4)
	return b[:nat.EthernetLen+n]
}

// send sends frames, each copies times, from the far end of the link,
// with a 20 ms pause after each round.
func (p edgePort) send(t *testing.T, tb *testbed, copies int, frames ...[]byte) {
	t.Helper()
	var all [][]byte
	for range copies {
		all = append(all, frames...)
	}
	require.NoError(t, p.sendRaw(tb, all, len(frames), 20*time.Millisecond))
}

// sendRaw sends frames from the far end of p's link through an AF_PACKET
// socket in its namespace, pausing for pause after every `every` frames.
func (p edgePort) sendRaw(tb *testbed, frames [][]byte, every int, pause time.Duration) error {
	return tb.inNetns(p.ns, func() error {
		ifi, err := net.InterfaceByName(p.ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		defer unix.Close(fd)
		for i, f := range frames {
			sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
			copy(sa.Addr[:], f[:6])
			if err := unix.Sendto(fd, f, 0, sa); err != nil {
				return err
			}
			if every > 0 && i%every == every-1 {
				time.Sleep(pause)
			}
		}
		return nil
	})
}

// dropDelta runs probe and returns how much natgw_drops_total{reason}
// rose meanwhile. Counters are published within a poll loop; a second
// scrape waits for them up to a generous deadline when want > 0.
func dropDelta(t *testing.T, r *e2eRun, reason string, want float64, probe func()) float64 {
	t.Helper()
	api := r.tb.api()
	before := api.scrape(t).sum("natgw_drops_total", "reason", reason)
	probe()
	var d float64
	waitFor(10*time.Second, func() error {
		d = api.scrape(t).sum("natgw_drops_total", "reason", reason) - before
		if d < want {
			return fmt.Errorf("natgw_drops_total{reason=%q} rose by %v, want %v", reason, d, want)
		}
		return nil
	})
	return d
}

// edgeAPIToken: with mgmt.token_file, the flows and mappings (who talks
// to whom) answer only with the token; the probes and the metrics stay
// open; natgw ctl sends the token.
func edgeAPIToken(t *testing.T, r *e2eRun, tokenFile string) {
	api := r.tb.api()
	get := func(path, auth string) int {
		req, err := http.NewRequest(http.MethodGet, e2eMgmtURL+path, nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := api.client.Do(req)
		require.NoError(t, err, "GET %s", path)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/v1/flows", "/v1/flows?limit=100000", "/v1/mappings/10.0.1.4", "/v1/status", "/v1/nothing"} {
		assert.Equal(t, http.StatusUnauthorized, get(p, ""), "GET %s without the token", p)
		assert.Equal(t, http.StatusUnauthorized, get(p, "Bearer wrong"), "GET %s with a wrong token", p)
	}
	for _, p := range []string{"/v1/flows", "/v1/mappings/10.0.1.4", "/v1/status"} {
		assert.Equal(t, http.StatusOK, get(p, "Bearer "+edgeToken), "GET %s with the token", p)
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		assert.Equal(t, http.StatusOK, get(p, ""), "GET %s stays open", p)
	}
	ctl := func(args ...string) (string, error) {
		return r.tb.run(20*time.Second, "gw", append([]string{r.tb.natgw, "ctl", "--mgmt", e2eMgmtURL}, args...)...)
	}
	out, err := ctl("flows")
	assert.Error(t, err, "ctl without the token: %s", out)
	assert.Contains(t, out, "HTTP 401")
	out, err = ctl("--token-file", tokenFile, "flows", "--private", "10.0.1.4")
	assert.NoError(t, err, out)
	out, err = ctl("mapping", "10.0.1.4", "--token-file", tokenFile)
	assert.NoError(t, err, out)
	assert.Contains(t, out, e2ePoolPublic)
}

// edgeForeignMAC: frames to another host's MAC, to a multicast MAC and
// IPv4 to the broadcast MAC are not translated in either direction and
// are counted as not_for_us; the same frames to natgw's MAC pass.
func edgeForeignMAC(t *testing.T, r *e2eRun, _ string) {
	foreign := [6]byte{0x02, 0x4e, 0x47, 0x0f, 0x00, 0x99}
	mcast := [6]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x09}
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	base := uint16(42000 + r.slot*10)
	t.Run("outbound", func(t *testing.T) {
		// The instance keeps its ports, so the translated datagram is
		// recognised at the server by its public source port.
		var frames [][]byte
		var ports []string
		for i, dst := range [][6]byte{foreign, mcast, bcast} {
			frames = append(frames, edgeInside.udpFrame(t, dst, "10.0.3.7", e2eServer, base+uint16(i), 9000))
			ports = append(ports, fmt.Sprintf("src port %d", base+uint16(i)))
		}
		var captured string
		d := dropDelta(t, r, "not_for_us", 9, func() {
			captured = r.tb.capture(t, "srv", "udp and src host "+e2eInstancePublic+" and ("+strings.Join(ports, " or ")+")", func() {
				edgeInside.send(t, r.tb, 3, frames...)
			})
		})
		assert.Empty(t, captured, "a frame for another host was translated")
		assert.GreaterOrEqual(t, d, 9.0, "natgw_drops_total{reason=not_for_us}")
		legit := edgeInside.udpFrame(t, edgeInside.natgw, "10.0.3.7", e2eServer, base+5, 9000)
		captured = r.tb.capture(t, "srv", fmt.Sprintf("udp and src host %s and src port %d", e2eInstancePublic, base+5), func() {
			edgeInside.send(t, r.tb, 3, legit)
		})
		assert.NotEmpty(t, captured, "the same frame to natgw's MAC was not translated")
	})
	t.Run("inbound", func(t *testing.T) {
		var frames [][]byte
		var ports []string
		for i, dst := range [][6]byte{foreign, mcast, bcast} {
			frames = append(frames, edgeOutside.udpFrame(t, dst, "198.18.0.99", e2eInstancePublic, base+uint16(i), 9000))
			ports = append(ports, fmt.Sprintf("src port %d", base+uint16(i)))
		}
		var captured string
		d := dropDelta(t, r, "not_for_us", 9, func() {
			captured = r.tb.captureInside(t, "udp and dst host 10.0.3.7 and dst port 9000 and ("+strings.Join(ports, " or ")+")", func() {
				edgeOutside.send(t, r.tb, 3, frames...)
			})
		})
		assert.Empty(t, captured, "a frame for another host reached the instance")
		assert.GreaterOrEqual(t, d, 9.0, "natgw_drops_total{reason=not_for_us}")
		legit := edgeOutside.udpFrame(t, edgeOutside.natgw, "198.18.0.99", e2eInstancePublic, base+5, 9000)
		captured = r.tb.captureInside(t, fmt.Sprintf("udp and dst host 10.0.3.7 and dst port 9000 and src port %d", base+5), func() {
			edgeOutside.send(t, r.tb, 3, legit)
		})
		assert.NotEmpty(t, captured, "the same frame to natgw's MAC did not reach the instance")
	})
	t.Run("TCP through natgw still works", func(t *testing.T) { r.assertHTTP(t, "10.0.1.4", e2eServer) })
}

// edgeMartians are destinations no outbound packet may be translated to.
var edgeMartians = []string{"255.255.255.255", "10.0.255.255", "198.19.0.255", "224.0.0.251",
	"239.255.255.250", "127.0.0.1", "0.1.2.3", "169.254.169.254", "240.0.0.1", "10.0.1.5"}

// edgeMartian: UDP from the instance to broadcast, multicast, loopback,
// this-network, link-local, reserved and inside destinations never leaves
// the outside port and is counted as martian; the same datagram to a
// server does.
func edgeMartian(t *testing.T, r *e2eRun, _ string) {
	base := uint16(43000 + r.slot*20)
	var frames [][]byte
	var ports []string
	for i, d := range edgeMartians {
		frames = append(frames, edgeInside.udpFrame(t, edgeInside.natgw, "10.0.3.7", d, base+uint16(i), 9000))
		ports = append(ports, fmt.Sprintf("src port %d", base+uint16(i)))
	}
	want := float64(2 * len(frames))
	var captured string
	d := dropDelta(t, r, "martian", want, func() {
		captured = r.tb.captureOn(t, "rt", "to-gw", "udp and src host "+e2eInstancePublic+" and ("+strings.Join(ports, " or ")+")", func() {
			edgeInside.send(t, r.tb, 2, frames...)
		})
	})
	assert.Empty(t, captured, "a packet to a martian destination left natgw")
	assert.GreaterOrEqual(t, d, want, "natgw_drops_total{reason=martian}")
	legit := edgeInside.udpFrame(t, edgeInside.natgw, "10.0.3.7", e2eServer, base+19, 9000)
	captured = r.tb.captureOn(t, "rt", "to-gw", fmt.Sprintf("udp and src host %s and src port %d", e2eInstancePublic, base+19), func() {
		edgeInside.send(t, r.tb, 2, legit)
	})
	assert.NotEmpty(t, captured, "the datagram to a server did not leave natgw")
}

// edgeICMPErrors: the instance has a live flow from a server (an inbound
// UDP exchange); an ICMP port unreachable quoting that flow's datagram
// but addressed to other destinations (the TCP-denied 198.18.0.12, an
// address with no flow) never leaves natgw and is counted as no_flow; the
// same error to the flow's remote leaves with the public source.
func edgeICMPErrors(t *testing.T, r *e2eRun, _ string) {
	sport := uint16(44000 + r.slot)
	client := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.11"), sport)
	_, _, err := r.tb.udpExchange("srv", client, netip.MustParseAddrPort(e2eInstancePublic+":9000"), "edge-icmp")
	require.NoError(t, err, "the inbound flow to the instance")
	quoted := make([]byte, 128)
	qn := nat.BuildUDP(quoted, nat.U32(client.Addr()), nat.U32(netip.MustParseAddr("10.0.3.7")), sport, 9000, 63, []byte("edge-icmp"))
	require.NotZero(t, qn)
	icmpFrame := func(dst string) []byte {
		b := make([]byte, 512)
		n := nat.BuildICMPError(b[nat.EthernetLen:], nat.U32(netip.MustParseAddr("10.0.3.7")), nat.U32(netip.MustParseAddr(dst)),
			nat.ICMPDestUnreachable, 3, 0, nat.IPv4(quoted[:qn]), 64)
		require.NotZero(t, n)
		nat.WriteEthernet(b, edgeInside.natgw, edgeInside.peer, nat.EtherTypeIPv4)
		return b[:nat.EthernetLen+n]
	}
	attacks := [][]byte{icmpFrame("198.18.0.12"), icmpFrame("203.0.113.9")}
	var captured string
	d := dropDelta(t, r, "no_flow", 6, func() {
		captured = r.tb.captureOn(t, "rt", "to-gw", "icmp and src host "+e2eInstancePublic+" and not dst host 198.18.0.11", func() {
			edgeInside.send(t, r.tb, 3, attacks...)
		})
	})
	assert.Empty(t, captured, "an ICMP error left natgw for a destination its quote does not name")
	assert.GreaterOrEqual(t, d, 6.0, "natgw_drops_total{reason=no_flow}")
	captured = r.tb.captureOn(t, "rt", "to-gw", "icmp and src host "+e2eInstancePublic+" and dst host 198.18.0.11", func() {
		edgeInside.send(t, r.tb, 2, icmpFrame("198.18.0.11"))
	})
	assert.NotEmpty(t, captured, "the ICMP error to the flow's remote did not leave natgw")
}

// arpFrame builds an ARP frame to MAC dst from the link's far end.
func (p edgePort) arpFrame(dst [6]byte, op uint16, senderMAC [6]byte, sender string, targetMAC [6]byte, target string) []byte {
	b := make([]byte, nat.EthernetLen+nat.ARPLen)
	nat.WriteEthernet(b, dst, p.peer, nat.EtherTypeARP)
	nat.WriteARP(b[nat.EthernetLen:], op, senderMAC, nat.U32(netip.MustParseAddr(sender)),
		targetMAC, nat.U32(netip.MustParseAddr(target)))
	return b
}

// edgeARP: ARP between third parties and unsolicited replies claiming the
// instance (inside) or the gateway (outside) are at an attacker's MAC
// change nothing: traffic to the instance and to the internet keeps going
// to the real MACs, and the frames are counted as arp_ignored.
func edgeARP(t *testing.T, r *e2eRun, _ string) {
	evil := [6]byte{0x02, 0x4e, 0x47, 0x0e, 0x00, 0x66}
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	evilFilter := "ether dst 02:4e:47:0e:00:66"
	t.Run("inside", func(t *testing.T) {
		poison := [][]byte{
			edgeInside.arpFrame(bcast, nat.ARPRequest, evil, "10.0.3.7", [6]byte{}, "10.0.1.5"),
			edgeInside.arpFrame(edgeInside.natgw, nat.ARPReply, evil, "10.0.3.7", edgeInside.natgw, "10.0.0.1"),
		}
		d := dropDelta(t, r, "arp_ignored", 6, func() { edgeInside.send(t, r.tb, 3, poison...) })
		assert.GreaterOrEqual(t, d, 6.0, "natgw_drops_total{reason=arp_ignored}")
		src := netip.MustParseAddrPort(fmt.Sprintf("198.18.0.11:%d", 44100+r.slot))
		var err error
		captured := r.tb.captureInside(t, evilFilter, func() {
			_, _, err = r.tb.udpExchange("srv", src, netip.MustParseAddrPort(e2eInstancePublic+":9000"), "after-poison")
		})
		assert.NoError(t, err, "the instance no longer answers")
		assert.Empty(t, captured, "natgw sent the instance's traffic to the attacker's MAC")
	})
	t.Run("outside", func(t *testing.T) {
		poison := [][]byte{
			edgeOutside.arpFrame(edgeOutside.natgw, nat.ARPReply, evil, "198.19.0.1", edgeOutside.natgw, "198.19.0.2"),
			edgeOutside.arpFrame(bcast, nat.ARPRequest, evil, "198.19.0.1", [6]byte{}, "198.19.0.77"),
		}
		d := dropDelta(t, r, "arp_ignored", 6, func() { edgeOutside.send(t, r.tb, 3, poison...) })
		assert.GreaterOrEqual(t, d, 6.0, "natgw_drops_total{reason=arp_ignored}")
		captured := r.tb.captureOn(t, "rt", "to-gw", evilFilter, func() { r.assertHTTP(t, "10.0.1.4", e2eServer) })
		assert.Empty(t, captured, "natgw sent outbound traffic to the attacker's MAC")
	})
}

// garpWatch records the gratuitous ARP natgw sends on a link, seen from
// its far end through a raw socket that, unlike tcpdump, survives the
// link going down and up.
type garpWatch struct {
	fd   int
	from [6]byte
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	seen map[string]int
}

// watchGARP starts recording the gratuitous ARP natgw's MAC sends on the
// far end of link p; the watch ends with t.
func watchGARP(t *testing.T, tb *testbed, p edgePort) *garpWatch {
	t.Helper()
	w := &garpWatch{from: p.natgw, stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]int{}}
	proto := uint16(unix.ETH_P_ARP&0xff)<<8 | uint16(unix.ETH_P_ARP)>>8 // network byte order
	err := tb.inNetns(p.ns, func() error {
		ifi, err := net.InterfaceByName(p.ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000}); err != nil {
			unix.Close(fd)
			return err
		}
		w.fd = fd
		return nil
	})
	require.NoError(t, err, "ARP socket on %s/%s", p.ns, p.ifname)
	go w.run()
	t.Cleanup(func() { close(w.stop); <-w.done; unix.Close(w.fd) })
	return w
}

func (w *garpWatch) run() {
	defer close(w.done)
	buf := make([]byte, 2048)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		if err != nil || n < nat.EthernetLen+nat.ARPLen {
			continue // timeouts, and ENETDOWN while the link is down
		}
		eth := nat.Ethernet(buf[:n])
		a := nat.ARP(buf[nat.EthernetLen:n])
		if eth.Src() != w.from || eth.Dst() != [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} ||
			!a.IsValid() || a.Op() != nat.ARPRequest || a.SenderIP() != a.TargetIP() {
			continue
		}
		w.mu.Lock()
		w.seen[nat.AddrFrom(a.SenderIP()).String()]++
		w.mu.Unlock()
	}
}

// waitAll waits until every address was announced since the last reset.
func (w *garpWatch) waitAll(addrs []string, timeout time.Duration) error {
	return waitFor(timeout, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, a := range addrs {
			if w.seen[a] == 0 {
				return fmt.Errorf("no gratuitous ARP for %s (seen %v)", a, w.seen)
			}
		}
		return nil
	})
}

// reset forgets what was seen.
func (w *garpWatch) reset() {
	w.mu.Lock()
	w.seen = map[string]int{}
	w.mu.Unlock()
}

// edgeGARP is the current run's watch of the outside link (TestE2EEdge
// starts it before natgw).
var edgeGARP *garpWatch

// edgeOutsideAddrs are natgw's addresses on the outside link.
var edgeOutsideAddrs = []string{"198.19.0.2", e2ePoolPublic, e2eDefaultPublic, e2eInstancePublic}

// edgeGratuitousARP: natgw announced its outside addresses (outside
// address, frontends, instance public) with gratuitous ARP when it
// started, and again when the outside link comes back up (AF_PACKET only:
// DPDK's net_af_packet reports the link state it had at start).
func edgeGratuitousARP(t *testing.T, r *e2eRun, _ string) {
	require.NotNil(t, edgeGARP)
	assert.NoError(t, edgeGARP.waitAll(edgeOutsideAddrs, 10*time.Second), "at start")
	if r.cfg.Driver != "afpacket" {
		t.Logf("%s driver: link up not exercised (net_af_packet keeps the link state it had at start)", r.cfg.Driver)
		return
	}
	api := r.tb.api()
	edgeGARP.reset()
	require.NoError(t, r.tb.setLink(e2eLinks[1], false))
	assert.NoError(t, api.waitReadyz(false, 20*time.Second), "natgw never saw the link go down")
	time.Sleep(time.Second) // down for a while, not a flap shorter than natgw's link poll
	edgeGARP.reset()
	require.NoError(t, r.tb.setLink(e2eLinks[1], true))
	assert.NoError(t, api.waitReadyz(true, 20*time.Second), "natgw never saw the link come back")
	assert.NoError(t, edgeGARP.waitAll(edgeOutsideAddrs, 10*time.Second), "after link up")
	r.assertHTTP(t, "10.0.1.4", e2eServer)
}
