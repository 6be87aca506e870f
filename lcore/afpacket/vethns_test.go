//go:build linux

package afpacket

// Test fixtures: a network namespace per test with one veth pair, frame
// builders and plain AF_PACKET sockets used as the independent peer.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Interface names inside every test namespace: natIf is the end natgw
// drives, peerIf the other end of the veth pair.
const (
	natIf  = "ngw0"
	peerIf = "peer0"
)

// vethNS is one network namespace holding the veth pair natIf-peerIf.
type vethNS struct {
	ns string
}

// newVethNS creates a namespace named ngwt-afp-<random> with the veth pair
// up and IPv6 off (no stray router solicitations), deleted in t.Cleanup.
// It skips the test when not root. It does not enter the namespace.
func newVethNS(t testing.TB) *vethNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and AF_PACKET sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command")
	}
	tb := &vethNS{ns: fmt.Sprintf("ngwt-afp-%08x", rand.Uint32())}
	ipCmd(t, "netns", "add", tb.ns)
	t.Cleanup(func() {
		out, err := exec.Command("ip", "netns", "del", tb.ns).CombinedOutput()
		if err != nil {
			t.Errorf("ip netns del %s: %v: %s", tb.ns, err, out)
		}
	})
	for _, key := range []string{"all", "default"} {
		tb.sysctl(t, "net/ipv6/conf/"+key+"/disable_ipv6", "1")
	}
	ipCmd(t, "-n", tb.ns, "link", "add", natIf, "type", "veth", "peer", "name", peerIf)
	for _, dev := range []string{"lo", natIf, peerIf} {
		ipCmd(t, "-n", tb.ns, "link", "set", dev, "up")
	}
	return tb
}

// sysctl writes value to /proc/sys/<key> inside the namespace.
func (tb *vethNS) sysctl(t testing.TB, key, value string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", tb.ns, "sh", "-c",
		fmt.Sprintf("echo %s > /proc/sys/%s", value, key)).CombinedOutput()
	require.NoError(t, err, "sysctl %s=%s: %s", key, value, out)
}

// enter moves the calling goroutine's OS thread into the namespace for the
// rest of the goroutine's life: the thread stays locked and is discarded by
// the runtime when the goroutine ends, so no other goroutine ever runs in
// the test namespace. Every goroutine that opens sockets must call it.
func (tb *vethNS) enter(t testing.TB) {
	t.Helper()
	runtime.LockOSThread()
	fd, err := unix.Open("/run/netns/"+tb.ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err, "open namespace %s", tb.ns)
	defer unix.Close(fd)
	require.NoError(t, unix.Setns(fd, unix.CLONE_NEWNET), "setns %s", tb.ns)
}

// ip runs ip -n <ns> args.
func (tb *vethNS) ip(t testing.TB, args ...string) {
	t.Helper()
	ipCmd(t, append([]string{"-n", tb.ns}, args...)...)
}

// ipCmd runs the ip command and fails the test on error.
func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// openPort opens a Port in the namespace (the caller has entered it) and
// closes it in t.Cleanup.
func openPort(t testing.TB, opts Options) *Port {
	t.Helper()
	p, err := Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// Test frame layout: Ethernet, IPv4 10.99.0.1 -> 10.99.0.2, UDP to
// testPort, then testMagic and a 4-byte sequence number.
const (
	testPort   = 40000
	testMagic  = "NGWT"
	testHdrLen = 14 + 20 + 8
	testMinLen = testHdrLen + len(testMagic) + 4
)

// testFrame builds a test frame of size bytes (at least testMinLen) with
// sequence number seq and UDP source port sport, padded with a pattern.
func testFrame(dst, src [6]byte, sport uint16, seq uint32, size int) []byte {
	size = max(size, testMinLen)
	b := make([]byte, size)
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	ip[8] = 64
	ip[9] = unix.IPPROTO_UDP
	copy(ip[12:16], []byte{10, 99, 0, 1})
	copy(ip[16:20], []byte{10, 99, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	udp := b[34:42]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], testPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(size-34))
	copy(b[testHdrLen:], testMagic)
	binary.BigEndian.PutUint32(b[testHdrLen+len(testMagic):], seq)
	for i := testMinLen; i < size; i++ {
		b[i] = byte(i*7 + int(seq))
	}
	return b
}

// ipChecksum returns the IPv4 header checksum of h (checksum field zero).
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// testSeq returns the sequence number of a test frame, or false for any
// other frame.
func testSeq(b []byte) (uint32, bool) {
	if len(b) < testMinLen || binary.BigEndian.Uint16(b[12:]) != 0x0800 ||
		b[23] != unix.IPPROTO_UDP || binary.BigEndian.Uint16(b[36:]) != testPort ||
		string(b[testHdrLen:testHdrLen+len(testMagic)]) != testMagic {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[testHdrLen+len(testMagic):]), true
}

// macOf returns the MAC address of interface name (caller in namespace).
func macOf(t testing.TB, name string) [6]byte {
	t.Helper()
	ifc, err := net.InterfaceByName(name)
	require.NoError(t, err)
	var mac [6]byte
	copy(mac[:], ifc.HardwareAddr)
	return mac
}

// rawSocket is a plain AF_PACKET socket on one interface, the reference
// the driver is checked against.
type rawSocket struct {
	fd      int
	ifindex int
}

// newRawSocket opens a plain AF_PACKET socket bound to interface name,
// with a receive timeout that bounds how long a test waits for a frame.
func newRawSocket(t testing.TB, name string) *rawSocket {
	t.Helper()
	ifc, err := net.InterfaceByName(name)
	require.NoError(t, err)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}))
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
	return &rawSocket{fd: fd, ifindex: ifc.Index}
}

// send transmits frame on the socket's interface.
func (r *rawSocket) send(t testing.TB, frame []byte) {
	t.Helper()
	require.NoError(t, unix.Sendto(r.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: r.ifindex, Halen: 6}))
}

// recvTest returns up to want incoming test frames, stopping early when
// none arrives within the receive timeout.
func (r *rawSocket) recvTest(t testing.TB, want int) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, 65536)
	for len(got) < want {
		n, from, err := unix.Recvfrom(r.fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			if err == unix.EAGAIN {
				break
			}
			continue
		}
		require.NoError(t, err)
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if _, ok := testSeq(buf[:n]); ok {
			got = append(got, append([]byte(nil), buf[:n]...))
		}
	}
	return got
}

// received is one frame returned by Recv.
type received struct {
	data  []byte
	flags uint8
}

// recvTest reads up to want test frames from q with bursts of burst
// buffers of bufSize bytes, waiting while the queue is idle; it gives up
// after a bounded number of idle waits.
func recvTest(t testing.TB, q *Queue, want, burst, bufSize int) []received {
	t.Helper()
	bufs := make([][]byte, burst)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	sizes := make([]int, burst)
	flags := make([]uint8, burst)
	var got []received
	for idle := 0; len(got) < want && idle < 40; {
		n := q.Recv(bufs, sizes, flags)
		if n == 0 {
			if !q.Wait(50 * time.Millisecond) {
				idle++
			}
			continue
		}
		for i := 0; i < n; i++ {
			if _, ok := testSeq(bufs[i][:sizes[i]]); ok || flags[i]&FlagTruncated != 0 {
				got = append(got, received{append([]byte(nil), bufs[i][:sizes[i]]...), flags[i]})
			}
		}
	}
	return got
}
