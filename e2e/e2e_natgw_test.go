package e2e

// This file runs natgw under test: the testbed's configuration (the
// tests' example configuration, configtest, with the suite's variations),
// the natgw process in the gateway namespace with its log, and
// the expected translations computed from the configuration and SPEC [S3].

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/mgmt/config/configtest"
)

// e2ePoolMembers are the members of pool "web", in configuration order.
var e2ePoolMembers = configtest.PoolMembers()

// Public addresses of the testbed configuration.
const (
	e2ePoolPublic     = configtest.PoolPublic
	e2eDefaultPublic  = configtest.DefaultPublic
	e2eInstancePublic = configtest.InstancePublic
)

// e2eConfig is what varies between the configurations the suite writes.
type e2eConfig struct {
	// Driver is dataplane.driver: "afpacket", or "dpdk" over net_af_packet
	// vdevs on the same veths.
	Driver string
	// Workers is dataplane.workers.
	Workers int
	// Members are the pool members.
	Members []string
	// DenyTCP are destinations denied for TCP, beside 198.18.0.12.
	DenyTCP []string
	// FlowCapacity is dataplane.flow_capacity; 0 keeps the suite's 200000.
	FlowCapacity int
	// PortsPerMember is the pool's ports_per_member; 0 is the tier table
	// of [S3].
	PortsPerMember int
	// UDP, TCPEstablished, TCPTransitory, TCPClosing and ICMP are the
	// [timeouts]; an empty one keeps the suite's value (4m, 4m, 30s, 10s,
	// 60s).
	UDP, TCPEstablished, TCPTransitory, TCPClosing, ICMP string
	// WorkerCPUs is dataplane.worker_cpus; empty: none.
	WorkerCPUs []int
	// TokenFile is mgmt.token_file; empty: no token.
	TokenFile string
	// HostFlowPercent and InboundFlowPercent are [limits]; 0 keeps the
	// default (25 and 50).
	HostFlowPercent, InboundFlowPercent int
	// Mapping and Filtering are the mapping behaviour of the pool and of
	// default SNAT (issue 19); empty keeps the default.
	Mapping, Filtering string
	// ReclaimIdle is default_snat.reclaim_idle; empty keeps the default
	// (2m).
	ReclaimIdle string
	// Reclaim and ReclaimDeadline are [reload]; empty keeps the defaults
	// (issue 19).
	Reclaim, ReclaimDeadline string
	// FE2 adds frontend fe2 (e2eFE2) to pool web after fe1; DrainFE1 sets
	// fe1 to drain; NoFE1 removes fe1 (pool web on fe2 alone).
	FE2, DrainFE1, NoFE1 bool
}

// e2eFE2 is the address of the second pool frontend of e2eConfig.FE2
// (the router sends all of 198.19.1.0/24 to natgw).
const e2eFE2 = "198.19.1.11"

// config returns the testbed's configuration (like scripts/demo.toml):
// the example configuration of the tests (configtest) on the testbed's
// veths with c's variations, denying TCP to 198.18.0.12 and c.DenyTCP.
func (c e2eConfig) config() *config.Config {
	x := configtest.Example()
	d := &x.Dataplane
	d.Driver, d.Workers, d.FlowCapacity, d.WorkerCPUs = c.Driver, c.Workers, cmp.Or(c.FlowCapacity, 200000), c.WorkerCPUs
	x.Inside.Port, x.Outside.Port = "veth-in", "veth-out"
	if c.Driver == "dpdk" {
		x.Inside.Port, x.Outside.Port = "net_af_packet0", "net_af_packet1"
		vdev := fmt.Sprintf("qpairs=%d,framesz=4096", c.Qpairs())
		d.EALArgs = []string{"-l", "0", "--no-pci",
			"--vdev=net_af_packet0,iface=veth-in," + vdev, "--vdev=net_af_packet1,iface=veth-out," + vdev}
	}
	t := &x.Timeouts
	for _, v := range []struct {
		d   *config.Duration
		set string
	}{{&t.TCPEstablished, c.TCPEstablished}, {&t.TCPTransitory, c.TCPTransitory},
		{&t.TCPClosing, c.TCPClosing}, {&t.UDP, c.UDP}, {&t.ICMP, c.ICMP}} {
		if v.set != "" {
			*v.d = configtest.Duration(v.set)
		}
	}
	x.Pools[0].Members, x.Pools[0].PortsPerMember = c.Members, c.PortsPerMember
	x.Pools[0].Mapping, x.Pools[0].Filtering = c.Mapping, c.Filtering
	if x.DefaultSNAT != nil {
		x.DefaultSNAT.Mapping, x.DefaultSNAT.Filtering = c.Mapping, c.Filtering
		if c.ReclaimIdle != "" {
			x.DefaultSNAT.ReclaimIdle = configtest.Duration(c.ReclaimIdle)
		}
	}
	x.Deny = nil
	for _, a := range append([]string{"198.18.0.12"}, c.DenyTCP...) {
		x.Deny = append(x.Deny, config.DenyRule{Destination: a + "/32", Protocol: "tcp", Ports: "*"})
	}
	x.Mgmt.TokenFile = c.TokenFile
	if c.HostFlowPercent != 0 {
		x.Limits.HostFlowPercent = c.HostFlowPercent
	}
	if c.InboundFlowPercent != 0 {
		x.Limits.InboundFlowPercent = c.InboundFlowPercent
	}
	if c.Reclaim != "" {
		x.Reload.Reclaim = c.Reclaim
	}
	if c.ReclaimDeadline != "" {
		x.Reload.ReclaimDeadline = configtest.Duration(c.ReclaimDeadline)
	}
	if c.FE2 {
		x.Frontends = append(x.Frontends, config.Frontend{Name: "fe2", Address: e2eFE2})
		x.Pools[0].Frontends = []string{"fe1", "fe2"}
		x.Frontends[0].Drain = c.DrainFE1
		if c.NoFE1 {
			x.Frontends = x.Frontends[1:]
			x.Pools[0].Frontends = []string{"fe2"}
		}
	}
	return x
}

// Qpairs is the number of queue pairs of a net_af_packet vdev: one per
// worker and one for the management core.
func (c e2eConfig) Qpairs() int { return c.Workers + 1 }

// e2eDrivers lists the drivers the suite runs natgw with: AF_PACKET always,
// DPDK when this test binary (and so the natgw it builds) has it.
func e2eDrivers() []string {
	if _, ok := drivers["dpdk"]; ok {
		return []string{"afpacket", "dpdk"}
	}
	return []string{"afpacket"}
}

// writeConfig renders c to path atomically (write and rename), so natgw
// never reads half a file on reload.
func writeConfig(t *testing.T, path string, c e2eConfig) {
	t.Helper()
	writeFileAtomic(t, path, configtest.Text(c.config()))
}

// writeFileAtomic replaces path's content with data.
func writeFileAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, data, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// e2eTierPorts is the preallocation table of SPEC [S3], written out again
// here as the test's oracle.
func e2eTierPorts(members int) int {
	switch {
	case members <= 50:
		return 1024
	case members <= 100:
		return 512
	case members <= 200:
		return 256
	case members <= 400:
		return 128
	case members <= 800:
		return 64
	default:
		return 32
	}
}

// expandMembers lists every member address of a pool, in order: addresses
// as written, prefixes address by address from the network address.
func expandMembers(members []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, m := range members {
		if !strings.Contains(m, "/") {
			a, err := netip.ParseAddr(m)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
			continue
		}
		p, err := netip.ParsePrefix(m)
		if err != nil {
			return nil, err
		}
		p = p.Masked()
		for a := p.Addr(); p.Contains(a); a = a.Next() {
			out = append(out, a)
		}
	}
	return out, nil
}

// memberBlock returns the first and last port of a pool member's block:
// member i of an n-member pool on one frontend owns
// 1024+i*size .. 1024+(i+1)*size-1 [S3].
func memberBlock(members []string, member string) (first, last int, err error) {
	all, err := expandMembers(members)
	if err != nil {
		return 0, 0, err
	}
	want, err := netip.ParseAddr(member)
	if err != nil {
		return 0, 0, err
	}
	size := e2eTierPorts(len(all))
	for i, a := range all {
		if a == want {
			first = 1024 + i*size
			return first, first + size - 1, nil
		}
	}
	return 0, 0, fmt.Errorf("%s is not a pool member", member)
}

// expectedPublic says how the server must see a private source: the public
// address, and the inclusive port range the public port must lie in
// (wantPort, when non-zero, is the exact port).
type expectedPublic struct {
	addr        string
	first, last int
	wantPort    int
}

// expectFor returns the translation natgw must give private address src
// under the base configuration; localPort is the source port the client
// bound (instances keep it).
func expectFor(t *testing.T, src string, localPort int) expectedPublic {
	t.Helper()
	switch {
	case src == "10.0.3.7":
		return expectedPublic{addr: e2eInstancePublic, first: localPort, last: localPort, wantPort: localPort}
	default:
		first, last, err := memberBlock(e2ePoolMembers, src)
		if err == nil {
			return expectedPublic{addr: e2ePoolPublic, first: first, last: last}
		}
		// Default SNAT: a block assigned on first use, somewhere in the
		// SNAT range.
		return expectedPublic{addr: e2eDefaultPublic, first: 1024, last: 65535}
	}
}

// check asserts that the endpoint a server reported ("IP:PORT") matches.
func (e expectedPublic) check(t *testing.T, seen string) bool {
	t.Helper()
	ap, err := netip.ParseAddrPort(strings.TrimSpace(seen))
	if !assert.NoError(t, err, "server reply %q", seen) {
		return false
	}
	ok := assert.Equal(t, e.addr, ap.Addr().String(), "public address seen by the server")
	port := int(ap.Port())
	ok = assert.True(t, port >= e.first && port <= e.last,
		"public port %d outside %d-%d", port, e.first, e.last) && ok
	return ok
}

// natgwProc is natgw running in the gateway namespace.
type natgwProc struct {
	tb   *testbed
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	// waitErr is cmd.Wait's result, set before done is closed.
	waitErr error
}

// startNatgw runs natgw with the configuration at path. On failure of t
// its log is written to the test output; a natgw still running at the end
// of t is killed.
func (tb *testbed) startNatgw(t *testing.T, path string) *natgwProc {
	t.Helper()
	p := startInNetns(t, tb.ns("gw"), filepath.Base(path), tb.natgw, "run", "--config", path)
	p.tb = tb
	return p
}

// startInNetns runs args in namespace ns as a natgwProc (its log kept,
// written to the test output under label if t fails; killed at the end
// of t if still running).
func startInNetns(t *testing.T, ns, label string, args ...string) *natgwProc {
	t.Helper()
	p := &natgwProc{log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	require.NoError(t, p.cmd.Start())
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.alive() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("natgw log (%s):\n%s", label, p.log.String())
		}
	})
	return p
}

// alive reports whether the process is still running.
func (p *natgwProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to natgw.
func (p *natgwProc) signal(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// waitLog waits until the log holds at least n occurrences of s, natgw
// exits, or timeout passes.
func (p *natgwProc) waitLog(s string, n int, timeout time.Duration) error {
	return waitFor(timeout, func() error {
		if strings.Count(p.log.String(), s) >= n {
			return nil
		}
		if !p.alive() {
			return permanentError{fmt.Errorf("natgw exited (%v) before logging %q", p.waitErr, s)}
		}
		return fmt.Errorf("log has %d of %d %q", strings.Count(p.log.String(), s), n, s)
	})
}

// stop sends SIGTERM and waits (bounded) for natgw to exit; it returns the
// exit code, or an error if natgw had to be killed.
func (p *natgwProc) stop(timeout time.Duration) (int, error) {
	if p.alive() {
		if err := p.signal(syscall.SIGTERM); err != nil {
			return -1, err
		}
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return -1, fmt.Errorf("natgw did not exit within %v of SIGTERM: killed", timeout)
	}
	var exit *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exit) {
		return -1, p.waitErr
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// waitReady waits until a pool member's HTTP request gets through natgw.
func (p *natgwProc) waitReady(timeout time.Duration) error {
	return waitFor(timeout, func() error {
		if !p.alive() {
			return fmt.Errorf("natgw exited: %v", p.waitErr)
		}
		out, err := p.tb.curl(3*time.Second, "10.0.1.4", "http://198.18.0.10:8080/", "-m", "1")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
}

// curl runs curl in the inside namespace bound to private address src
// (empty: the default source 10.0.9.9), with -sS and a 5 s limit unless
// extra sets -m again, and returns stdout and stderr together.
func (tb *testbed) curl(timeout time.Duration, src, url string, extra ...string) (string, error) {
	args := []string{"curl", "-sS", "-m", "5"}
	if src != "" {
		args = append(args, "--interface", src)
	}
	args = append(args, extra...)
	args = append(args, url)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := tb.command(ctx, "in", args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("curl timed out after %v: %w", timeout, err)
	}
	return string(out), err
}
