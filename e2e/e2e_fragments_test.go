package e2e

// TestE2EFragments sends fragmented UDP through natgw with two workers on
// every driver of e2eDrivers: datagrams the sending kernel fragments (in
// order), and fragments crafted with natgw's own writers and sent later
// fragments first (out of order), outbound and inbound. With the outside
// link's MTU below the inside's, natgw itself must cut DF-clear packets
// (RFC 4787 REQ-13a); a DF-set packet over the MTU gets ICMP
// fragmentation needed.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/nat"
)

// e2eFragSize is the UDP payload of the fragmented datagrams: three
// fragments on a 1500-byte link.
const e2eFragSize = 3000

func TestE2EFragments(t *testing.T) {
	skipUnlessE2E(t)
	tb := newTestbed(t)
	for _, driver := range e2eDrivers() {
		t.Run("driver="+driver, func(t *testing.T) {
			r := tb.startRun(t, e2eConfig{Driver: driver, Workers: 2, Members: e2ePoolMembers})
			api := tb.api()
			m0 := api.scrape(t)
			t.Cleanup(func() {
				m1 := api.scrape(t)
				for _, reason := range e2eDropReasons {
					if d := m1.sum("natgw_drops_total", "reason", reason) - m0.sum("natgw_drops_total", "reason", reason); d != 0 {
						t.Logf("natgw_drops_total{reason=%q} +%v", reason, d)
					}
				}
				t.Logf("natgw_fragmented_packets_total +%v, natgw_fragments_sent_total +%v",
					m1.sum("natgw_fragmented_packets_total")-m0.sum("natgw_fragmented_packets_total"),
					m1.sum("natgw_fragments_sent_total")-m0.sum("natgw_fragments_sent_total"))
			})
			// Several sources, so both workers own some of the flows and
			// the fragment-tracking worker differs from the flow owner
			// for some IP ids.
			sources := []string{"10.0.1.4", "10.0.1.5", "10.0.2.3", "10.0.9.9"}
			t.Run("in order both ways", func(t *testing.T) {
				for _, src := range sources {
					c := tb.newFragClient(t, src)
					for i := range 4 {
						c.exchange(t, e2eServer+":9000", fmt.Sprintf("in-order %s %d", src, i))
					}
				}
			})
			t.Run("out of order outbound", func(t *testing.T) {
				for _, src := range sources {
					c := tb.newFragClient(t, src)
					c.exchange(t, e2eServer+":9000", "flow") // the reply comes back
					for i := range 4 {
						c.sendCrafted(t, e2eServer+":9000", fmt.Sprintf("reversed %s %d", src, i), 1500, true)
						c.expectEcho(t, fmt.Sprintf("reversed %s %d", src, i))
					}
				}
			})
			t.Run("out of order inbound", func(t *testing.T) {
				for _, src := range sources {
					c := tb.newFragClient(t, src)
					pub := c.exchange(t, e2eServer+":9000", "flow")
					for i := range 4 {
						payload := fmt.Sprintf("inbound reversed %s %d", src, i)
						tb.sendCraftedFrom(t, "srv", netip.MustParseAddrPort(e2eServer+":9000"), pub, fragPayload(payload), 1400, true)
						c.expectDatagram(t, fragPayload(payload))
					}
				}
			})
			t.Run("natgw fragments for a smaller outside MTU", func(t *testing.T) {
				checkEgressFragmentation(t, r, api, sources)
			})
		})
	}
}

// fragPayload is the datagram sent for tag: the tag, then filler up to
// e2eFragSize bytes.
func fragPayload(tag string) []byte {
	b := bytes.Repeat([]byte{'.'}, e2eFragSize)
	copy(b, tag+" ")
	for i := len(tag) + 1; i < len(b); i++ {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// fragClient is a UDP socket of an inside host, whose port crafted
// fragments use as their source.
type fragClient struct {
	conn *net.UDPConn
	tb   *testbed
	src  netip.AddrPort
}

func (tb *testbed) newFragClient(t *testing.T, src string) *fragClient {
	t.Helper()
	var conn *net.UDPConn
	require.NoError(t, tb.inNetns("in", func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)})
		return err
	}))
	t.Cleanup(func() { conn.Close() })
	return &fragClient{conn: conn, tb: tb, src: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// exchange sends a datagram of e2eFragSize bytes (the kernel fragments
// it) and checks the echo server's reply, itself fragmented by the
// server's kernel: "IP:PORT " then the datagram. It returns the public
// address and port the server saw. Up to three tries.
func (c *fragClient) exchange(t *testing.T, dst, tag string) netip.AddrPort {
	t.Helper()
	payload := fragPayload(tag)
	var lastErr error
	for range 3 {
		if _, err := c.conn.WriteToUDPAddrPort(payload, netip.MustParseAddrPort(dst)); err != nil {
			lastErr = err
			continue
		}
		pub, err := c.readEcho(payload, 3*time.Second)
		if err == nil {
			return pub
		}
		lastErr = err
	}
	require.NoError(t, lastErr, "%s -> %s: %q", c.src, dst, tag)
	return netip.AddrPort{}
}

// expectEcho waits for the echo of the datagram tagged tag.
func (c *fragClient) expectEcho(t *testing.T, tag string) {
	t.Helper()
	_, err := c.readEcho(fragPayload(tag), 5*time.Second)
	require.NoError(t, err, "%s: %q", c.src, tag)
}

// readEcho reads datagrams until the echo of payload arrives (earlier
// echoes of retried datagrams are skipped) and returns the address the
// server saw.
func (c *fragClient) readEcho(payload []byte, wait time.Duration) (netip.AddrPort, error) {
	buf := make([]byte, 8192)
	deadline := time.Now().Add(wait)
	for {
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			return netip.AddrPort{}, err
		}
		n, _, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return netip.AddrPort{}, err
		}
		seen, rest, ok := strings.Cut(string(buf[:n]), " ")
		if !ok || rest != string(payload) {
			continue
		}
		return netip.ParseAddrPort(seen)
	}
}

// expectDatagram waits for a datagram equal to payload.
func (c *fragClient) expectDatagram(t *testing.T, payload []byte) {
	t.Helper()
	buf := make([]byte, 8192)
	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	for {
		n, from, err := c.conn.ReadFromUDPAddrPort(buf)
		require.NoError(t, err, "%s: waiting for %.30q", c.src, payload)
		if bytes.Equal(buf[:n], payload) {
			assert.Equal(t, e2eServer+":9000", netip.AddrPortFrom(from.Addr().Unmap(), from.Port()).String())
			return
		}
	}
}

// sendCrafted sends the datagram tagged tag from the client's address and
// port as fragments of at most mtu bytes, written with natgw's own
// writers; reversed sends the last fragment first and the first last.
func (c *fragClient) sendCrafted(t *testing.T, dst, tag string, mtu int, reversed bool) {
	t.Helper()
	c.tb.sendCraftedFrom(t, "in", c.src, netip.MustParseAddrPort(dst), fragPayload(tag), mtu, reversed)
}

// sendCraftedFrom sends a UDP datagram from src to dst in namespace ns as
// DF-clear fragments of at most mtu bytes through a raw socket.
func (tb *testbed) sendCraftedFrom(t *testing.T, ns string, src, dst netip.AddrPort, payload []byte, mtu int, reversed bool) {
	t.Helper()
	frags := craftFragments(t, src, dst, payload, mtu)
	if reversed {
		for i, j := 0, len(frags)-1; i < j; i, j = i+1, j-1 {
			frags[i], frags[j] = frags[j], frags[i]
		}
	}
	var fd int
	require.NoError(t, tb.inNetns(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		return err
	}))
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Addr: dst.Addr().As4()}
	for _, f := range frags {
		require.NoError(t, unix.Sendto(fd, f, 0, to), "sendto")
	}
}

// craftFragments builds a UDP datagram (checksums valid, DF clear, a
// random IP id) and cuts it into fragments of at most mtu bytes with
// nat.WriteFragment.
func craftFragments(t *testing.T, src, dst netip.AddrPort, payload []byte, mtu int) [][]byte {
	t.Helper()
	b := make([]byte, nat.IPv4MinLen+nat.UDPLen+len(payload))
	n := nat.BuildUDP(b, nat.U32(src.Addr()), nat.U32(dst.Addr()), src.Port(), dst.Port(), 64, payload)
	require.Equal(t, len(b), n)
	ip := nat.IPv4(b)
	b[6] = 0 // DF clear
	ip.SetID(uint16(1 + rand.IntN(65535)))
	ip.SetChecksum(0)
	ip.SetChecksum(ip.ComputeChecksum())
	var frags [][]byte
	_, off := nat.WriteFragment(make([]byte, mtu), append(nat.IPv4(nil), ip...), 0, mtu)
	for off < len(ip.Payload()) {
		f := make([]byte, mtu)
		k, next := nat.WriteFragment(f, ip, off, mtu)
		require.NotZero(t, k)
		frags = append(frags, f[:k])
		off = next
	}
	k, _ := nat.WriteFragment(ip, ip, 0, mtu)
	return append([][]byte{b[:k]}, frags...)
}

// checkEgressFragmentation lowers the MTU of natgw's outside link (and of
// the router's end) to 1280 while natgw runs: natgw must follow it,
// cutting DF-clear 1500-byte fragments from the inside into fragments of
// 1280 (counted), and answering DF-set 1500-byte packets with ICMP
// fragmentation needed quoting 1280.
func checkEgressFragmentation(t *testing.T, r *e2eRun, api *apiClient, sources []string) {
	tb := r.tb
	setMTU := func(mtu int) {
		for _, end := range []struct{ ns, dev string }{{"gw", "veth-out"}, {"rt", "to-gw"}} {
			out, err := tb.run(5*time.Second, end.ns, "ip", "link", "set", "dev", end.dev, "mtu", fmt.Sprint(mtu))
			require.NoError(t, err, out)
		}
	}
	setMTU(1280)
	t.Cleanup(func() { setMTU(1500) })
	// natgw polls the link: wait until the MTU it publishes is 1280.
	_, err := api.waitMetric(20*time.Second, func(v float64) bool { return v == 1280 }, "natgw_port_mtu", "port", "outside")
	require.NoError(t, err, "natgw never saw the outside MTU change")
	m0 := api.scrape(t)
	for _, src := range sources {
		c := tb.newFragClient(t, src)
		for i := range 3 {
			c.exchange(t, e2eServer+":9000", fmt.Sprintf("egress %s %d", src, i))
		}
	}
	// Every datagram sent had to be cut by natgw at least once: as two
	// 1500-byte fragments (AF_PACKET), or whole (net_af_packet hands
	// natgw the datagram its kernel reassembled). Workers publish their
	// counters between polls: wait for them.
	base := m0.sum("natgw_fragmented_packets_total")
	_, err = api.waitMetric(10*time.Second, func(v float64) bool { return v-base >= float64(len(sources)*3) }, "natgw_fragmented_packets_total")
	assert.NoError(t, err, "natgw_fragmented_packets_total: at least one cut per datagram sent")

	t.Run("DF set gets fragmentation needed with the new MTU", func(t *testing.T) {
		flush := func() {
			out, err := tb.run(5*time.Second, "in", "ip", "route", "flush", "cache")
			require.NoError(t, err, out)
		}
		flush()
		t.Cleanup(flush) // the learned path MTU must not outlive the check
		out, err := tb.run(20*time.Second, "in", "ping", "-c", "1", "-W", "3", "-M", "do", "-s", "1472", "-I", "10.0.1.4", e2eServer)
		require.Error(t, err, "a DF-set 1500-byte ping passed a 1280 link: %s", out)
		assert.Contains(t, strings.ReplaceAll(out, " ", ""), "mtu=1280", "the ICMP error quotes the outside MTU")
		out, err = tb.run(5*time.Second, "in", "ip", "route", "get", e2eServer, "from", "10.0.1.4")
		require.NoError(t, err, out)
		assert.Contains(t, out, "mtu 1280", "the host learned the MTU from natgw's ICMP error")
	})
}
