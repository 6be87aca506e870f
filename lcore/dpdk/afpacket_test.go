//go:build dpdk

package dpdk

import (
	"encoding/binary"
	"net"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/lcore"
)

// TestAFPacketRoundTrip drives net_af_packet on one end of a veth pair in
// a test namespace; the other end is a plain AF_PACKET socket (and, for
// the checksum case, the kernel's UDP stack).
func TestAFPacketRoundTrip(t *testing.T) {
	ns := ""
	if !isChild(t) {
		needEAL(t)
		ns = netnsVeth(t, "dp0", "peer0")
	}
	runChild(t, ns, func(t *testing.T) {
		s := startSession(t, 1, "net_af_packet0,iface=dp0,qpairs=2")
		p := openPort(t, s, "net_af_packet0", lcore.PortInside)
		assert.True(t, p.LinkUp())
		peer := peerSocket(t, "peer0")

		t.Run("MTU is the kernel interface's, at run time too", func(t *testing.T) {
			assert.Equal(t, 1500, p.MTU())
			dp0, err := net.InterfaceByName("dp0")
			require.NoError(t, err)
			require.NoError(t, exec.Command("ip", "link", "set", "dev", "dp0", "mtu", "1280").Run())
			t.Cleanup(func() { exec.Command("ip", "link", "set", "dev", "dp0", "mtu", "1500").Run() })
			assert.Equal(t, dp0.Index, p.Info().IfIndex)
			assert.Equal(t, 1280, p.MTU(), "the MTU natgw uses follows the link")
		})
		q := p.Queue(0)
		var rx [lcore.Burst]*lcore.Packet
		recv := func(want int) []*lcore.Packet {
			var got []*lcore.Packet
			for i := 0; i < 200000 && len(got) < want; i++ {
				n := q.RxBurst(rx[:])
				got = append(got, rx[:n]...)
			}
			return got
		}

		t.Run("peer to dpdk", func(t *testing.T) {
			for i := 0; i < 20; i++ {
				_, err := unix.Write(peer, udpFrame(uint32(i), 4000+uint16(i), 100))
				require.NoError(t, err)
			}
			// Fanout spreads the frames over both qpairs; queue 0
			// drains the management core's qpair too.
			got := recv(20)
			require.Len(t, got, 20)
			seen := map[uint32]bool{}
			for _, pk := range got {
				seq, ok := frameSeq(pk.Data)
				require.True(t, ok)
				seen[seq] = true
				assert.Len(t, pk.Data, 100)
			}
			assert.Len(t, seen, 20)
			q.Free(got)
		})

		t.Run("dpdk to peer", func(t *testing.T) {
			pool := lcore.NewPacketPool(8, 2048)
			for _, qi := range []int{0, 1} { // a worker's and the management queue
				pk := pool.Get()
				pk.Data = append(pk.Data, udpFrame(100+uint32(qi), 5000, 80)...)
				require.Equal(t, 1, p.Queue(qi).TxBurst([]*lcore.Packet{pk}))
				buf := make([]byte, 2048)
				n, err := unix.Read(peer, buf)
				require.NoError(t, err)
				seq, ok := frameSeq(buf[:n])
				require.True(t, ok)
				assert.Equal(t, 100+uint32(qi), seq)
			}
		})

		t.Run("partial checksum from the kernel", func(t *testing.T) {
			mac := p.MAC()
			out, err := exec.Command("ip", "addr", "add", "10.0.0.2/24", "dev", "peer0").CombinedOutput()
			require.NoError(t, err, "%s", out)
			out, err = exec.Command("ip", "neigh", "replace", "10.0.0.1", "lladdr",
				net.HardwareAddr(mac[:]).String(), "dev", "peer0").CombinedOutput()
			require.NoError(t, err, "%s", out)
			c, err := net.Dial("udp4", "10.0.0.1:9000")
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte("natgw checksum probe"))
			require.NoError(t, err)
			var udp *lcore.Packet
			for _, pk := range recv(1) {
				if len(pk.Data) >= 14+20+8 && pk.Data[14+9] == 17 {
					udp = pk
				}
			}
			require.NotNil(t, udp, "the kernel's UDP datagram arrived")
			sum := binary.BigEndian.Uint16(udp.Data[14+20+6:])
			partial := !udpChecksumOK(udp.Data[14:])
			t.Logf("RECORD net_af_packet: kernel UDP frame checksum %#04x valid=%v FlagCsumNotReady=%v",
				sum, !partial, udp.Flags&lcore.FlagCsumNotReady != 0)
			if udp.Flags&lcore.FlagCsumNotReady != 0 {
				assert.True(t, partial, "the flag is only set for partial checksums")
			}
			q.Free([]*lcore.Packet{udp})
		})
	})
}

// peerSocket opens a raw AF_PACKET socket bound to ifname (in the calling
// thread's namespace: the child runs wholly inside the test namespace).
func peerSocket(t *testing.T, ifname string) int {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	require.NoError(t, err)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}))
	require.NoError(t, unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1))
	tv := unix.Timeval{Sec: 5}
	require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// udpChecksumOK verifies the UDP checksum of an IPv4 packet (a zero
// checksum, "none", counts as valid).
func udpChecksumOK(ip []byte) bool {
	hl := int(ip[0]&0x0F) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if total > len(ip) || hl+8 > total {
		return false
	}
	udp := ip[hl:total]
	if binary.BigEndian.Uint16(udp[6:]) == 0 {
		return true
	}
	var sum uint32
	sum += uint32(binary.BigEndian.Uint16(ip[12:])) + uint32(binary.BigEndian.Uint16(ip[14:]))
	sum += uint32(binary.BigEndian.Uint16(ip[16:])) + uint32(binary.BigEndian.Uint16(ip[18:]))
	sum += 17 + uint32(len(udp))
	for i := 0; i+1 < len(udp); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(udp[i:]))
	}
	if len(udp)%2 == 1 {
		sum += uint32(udp[len(udp)-1]) << 8
	}
	for sum > 0xFFFF {
		sum = sum&0xFFFF + sum>>16
	}
	return uint16(sum) == 0xFFFF
}
