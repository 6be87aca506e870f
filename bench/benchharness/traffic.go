package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// This file is the benchmark's traffic model: which established flows the
// pcap holds (pool members and default-SNAT sources to many destinations),
// the natgw configuration that serves them, and the 64-byte frames of
// both directions.

// Addresses of the benchmark (SPEC §8 ranges).
const (
	insideAddr   = "10.0.0.1/8"
	outsideAddr  = "198.19.0.2/24"
	gatewayAddr  = "198.19.0.1"
	poolBase     = 0x0a010000 // 10.1.0.0: pool members
	defaultBase  = 0x0a020000 // 10.2.0.0: default-SNAT sources
	remoteBase   = 0xc6120000 // 198.18.0.0/16: the "internet" servers (198.19/16 is natgw's)
	remoteCount  = 1 << 16
	remotePort0  = 1000
	privatePort0 = 1024
	maxSources   = 1000
	// frameLen is a 64-byte Ethernet frame without its FCS: 14 Ethernet
	// + 20 IPv4 + 8 UDP + 18 payload.
	frameLen   = 60
	payloadLen = frameLen - nat.EthernetLen - nat.IPv4MinLen - nat.UDPLen
	frameTTL   = 64
)

// MACs of the benchmark's frames: they are addressed to toNatgwMAC, the
// MAC of natgw's ports in the harness (splitPort.MAC: natgw drops frames
// for other MACs as not_for_us), and natgw sends to the static neighbours
// below.
var (
	gatewayMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	toNatgwMAC = [6]byte{0x02, 0, 0, 0, 0, 0xfe}
)

// flowSpec is one established UDP flow of the benchmark, as its private
// host sends it.
type flowSpec struct {
	Src, Dst     uint32
	Sport, Dport uint16
}

// traffic is a benchmark's set of flows.
type traffic struct {
	// Flows is the number of flows.
	Flows int
	// Sources is the number of private hosts: the first half pool
	// members, the rest default-SNAT sources.
	Sources int
	// Capacity, when set, is the flow table's size (flow_capacity): the
	// RFC 9693 method sizes it for the peak, as an operator does.
	Capacity int
}

// newTraffic returns the traffic of flows flows from min(flows/16, 1000)
// sources (at least 2): every flow goes to its own remote endpoint, so it
// takes one SNAT port of its source's block for that destination [S2].
func newTraffic(flows int) (traffic, error) {
	if flows < 2 || flows > remoteCount*60000 {
		return traffic{}, fmt.Errorf("flows %d: must be 2 to %d", flows, remoteCount*60000)
	}
	return traffic{Flows: flows, Sources: max(2, min(flows/16, maxSources))}, nil
}

// poolMembers is the number of sources that are pool members.
func (t traffic) poolMembers() int { return t.Sources / 2 }

// source returns the address of source s.
func (t traffic) source(s int) uint32 {
	if s < t.poolMembers() {
		return poolBase + uint32(s)
	}
	return defaultBase + uint32(s-t.poolMembers())
}

// flow returns flow i (0 <= i < Flows): source i mod Sources, remote
// endpoint i (address i mod 2^16 of 198.18.0.0/16, port 1000 + i/2^16),
// private port 1024 + (i/Sources) mod 64000.
func (t traffic) flow(i int) flowSpec {
	return flowSpec{
		Src:   t.source(i % t.Sources),
		Dst:   remoteBase + uint32(i%remoteCount),
		Sport: uint16(privatePort0 + (i/t.Sources)%64000),
		Dport: uint16(remotePort0 + i/remoteCount),
	}
}

// order returns the flows' order in the pcap: a fixed pseudo-random
// permutation, so consecutive packets belong to unrelated flows (as on a
// busy link) and the lookups of 1 M flows miss the caches as they would.
func (t traffic) order(seed uint64) []int {
	return rand.New(rand.NewPCG(seed, 0x6e617467)).Perm(t.Flows)
}

// sourceMAC is the MAC of a private host: 02:01 then its IPv4 address.
func sourceMAC(addr uint32) [6]byte {
	return [6]byte{0x02, 0x01, byte(addr >> 24), byte(addr >> 16), byte(addr >> 8), byte(addr)}
}

// flowCapacity is the flow table size the benchmark configures: Capacity
// when set, else twice the flows (natgw sizes its indexes from it), at
// least 1024.
func (t traffic) flowCapacity() int {
	if t.Capacity > 0 {
		return t.Capacity
	}
	return max(1024, 2*t.Flows)
}

// configTOML returns the natgw configuration of the benchmark: one worker,
// a pool of the first half of the sources with the tier table's blocks, a
// default SNAT for the others, static neighbours for the gateway and
// every source (so no ARP is needed on sinks that never answer).
func (t traffic) configTOML(insidePort, outsidePort string, ealArgs []string) string {
	var b strings.Builder
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	quoted := make([]string, len(ealArgs))
	for i, a := range ealArgs {
		quoted[i] = q(a)
	}
	fmt.Fprintf(&b, "# natgw configuration of the DPDK throughput benchmark (bench/benchharness): %d flows.\n", t.Flows)
	fmt.Fprintf(&b, "[dataplane]\ndriver = \"dpdk\"\nworkers = 1\nflow_capacity = %d\neal_args = [%s]\n\n",
		t.flowCapacity(), strings.Join(quoted, ", "))
	fmt.Fprintf(&b, "[inside]\nport = %s\naddress = %s\n\n", q(insidePort), q(insideAddr))
	fmt.Fprintf(&b, "[outside]\nport = %s\naddress = %s\ngateway = %s\n\n", q(outsidePort), q(outsideAddr), q(gatewayAddr))
	fmt.Fprintf(&b, "[[neighbor]]\naddress = %s\nmac = %s\n\n", q(gatewayAddr), q(macString(gatewayMAC)))
	for s := 0; s < t.Sources; s++ {
		a := t.source(s)
		fmt.Fprintf(&b, "[[neighbor]]\naddress = %s\nmac = %s\n", q(nat.AddrFrom(a).String()), q(macString(sourceMAC(a))))
	}
	b.WriteString("\n[[frontend]]\nname = \"fe-pool1\"\naddress = \"198.19.1.10\"\n")
	b.WriteString("[[frontend]]\nname = \"fe-pool2\"\naddress = \"198.19.1.11\"\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, "[[frontend]]\nname = \"fe-default%d\"\naddress = \"198.19.1.%d\"\n", i+1, 20+i)
	}
	members := make([]string, t.poolMembers())
	for s := range members {
		members[s] = q(nat.AddrFrom(t.source(s)).String())
	}
	fmt.Fprintf(&b, "\n[[pool]]\nname = \"bench\"\nfrontends = [\"fe-pool1\", \"fe-pool2\"]\nmembers = [%s]\n", strings.Join(members, ", "))
	b.WriteString("\n[default_snat]\nsources = [\"10.2.0.0/16\"]\n")
	b.WriteString("frontends = [\"fe-default1\", \"fe-default2\", \"fe-default3\", \"fe-default4\"]\nports_per_member = 256\n")
	b.WriteString("\n[mgmt]\nlisten = \"127.0.0.1:9650\"\n")
	return b.String()
}

// config parses configTOML (validating it as natgw does).
func (t traffic) config(insidePort, outsidePort string, ealArgs []string) (*config.Config, error) {
	return config.Parse([]byte(t.configTOML(insidePort, outsidePort, ealArgs)), "benchmark configuration")
}

// macString formats a MAC as natgw's configuration writes it.
func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// outboundFrame writes flow f's 60-byte frame, as its private host sends
// it to natgw, into b (at least frameLen bytes) and returns it.
func outboundFrame(b []byte, f flowSpec) []byte {
	return udpFrame(b, toNatgwMAC, sourceMAC(f.Src), f.Src, f.Dst, f.Sport, f.Dport)
}

// replyFrame writes the 60-byte reply to a translated flow (from the
// remote endpoint to the flow's public address and port, through the
// gateway) into b and returns it.
func replyFrame(b []byte, f *nat.Flow) []byte {
	return udpFrame(b, toNatgwMAC, gatewayMAC, f.Remote, f.Pub, f.RemotePort, f.PubPort)
}

func udpFrame(b []byte, dstMAC, srcMAC [6]byte, src, dst uint32, sport, dport uint16) []byte {
	b = b[:frameLen]
	clear(b)
	nat.WriteEthernet(b, dstMAC, srcMAC, nat.EtherTypeIPv4)
	var payload [payloadLen]byte
	nat.BuildUDP(b[nat.EthernetLen:], src, dst, sport, dport, frameTTL, payload[:])
	return b
}

// staticNeighbors converts the configuration's [[neighbor]] entries.
func staticNeighbors(c *config.Config) ([]lcore.StaticNeighbor, error) {
	var out []lcore.StaticNeighbor
	for _, n := range c.Neighbors {
		a, err := netip.ParseAddr(n.Address)
		if err != nil {
			return nil, err
		}
		hw, err := net.ParseMAC(n.MAC)
		if err != nil || len(hw) != 6 {
			return nil, fmt.Errorf("neighbor %s: bad MAC %q", n.Address, n.MAC)
		}
		out = append(out, lcore.StaticNeighbor{Addr: nat.U32(a), MAC: [6]byte(hw)})
	}
	return out, nil
}
