package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
	"github.com/natgw/natgw/nat"
)

func TestNewTraffic(t *testing.T) {
	tests := []struct {
		flows       int
		wantErr     bool
		wantSources int
	}{
		{flows: 1, wantErr: true},
		{flows: -5, wantErr: true},
		{flows: 2, wantSources: 2},
		{flows: 1000, wantSources: 62},
		{flows: 1_000_000, wantSources: maxSources},
	}
	for _, tt := range tests {
		t.Run(flowsLabel(tt.flows), func(t *testing.T) {
			tr, err := newTraffic(tt.flows)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantSources, tr.Sources)
			assert.Equal(t, tt.wantSources/2, tr.poolMembers())
		})
	}
}

// TestTrafficFlowsAreDistinct checks the traffic model: private 5-tuples
// and remote endpoints are unique (one SNAT port per destination, no
// exhaustion), remotes stay in 198.18.0.0/16 (198.19.0.0/16 holds natgw's
// own addresses, whose packets it would answer instead of translating),
// and the frame order is a permutation.
func TestTrafficFlowsAreDistinct(t *testing.T) {
	for _, n := range []int{2, 1000, 200_000} {
		t.Run(flowsLabel(n), func(t *testing.T) {
			tr, err := newTraffic(n)
			require.NoError(t, err)
			type endpoint struct {
				addr uint32
				port uint16
			}
			private := make(map[flowSpec]bool, n)
			remote := make(map[endpoint]bool, n)
			for i := 0; i < n; i++ {
				f := tr.flow(i)
				assert.False(t, private[f], "flow %d repeats a private 5-tuple", i)
				private[f] = true
				e := endpoint{f.Dst, f.Dport}
				assert.False(t, remote[e], "flow %d repeats a remote endpoint", i)
				remote[e] = true
				assert.Equal(t, uint32(0xc612), f.Dst>>16, "flow %d: remote %v outside 198.18.0.0/16", i, nat.AddrFrom(f.Dst))
			}
			order := tr.order(7)
			seen := make([]bool, n)
			for _, i := range order {
				require.False(t, seen[i])
				seen[i] = true
			}
			assert.Len(t, order, n)
		})
	}
}

// TestTrafficThroughTranslator runs the benchmark's frames through a
// translator compiled from the benchmark's configuration: every flow is
// created (pool members and default-SNAT sources alike), and the reply
// built from the flow table is translated back to the original flow.
func TestTrafficThroughTranslator(t *testing.T) {
	tr, err := newTraffic(4000)
	require.NoError(t, err)
	cfg, err := tr.config("net_pcap0", "net_null0", []string{"-l", "0"})
	require.NoError(t, err)
	pol, err := mgmt.CompilePolicy(cfg, nil)
	require.NoError(t, err)
	require.Len(t, pol.Pools, 1)
	static, err := staticNeighbors(cfg)
	require.NoError(t, err)
	assert.Len(t, static, tr.Sources+1, "the gateway and every source")

	const now = 1000
	x := nat.NewTranslator(pol, nat.TranslatorOptions{FlowCapacity: tr.flowCapacity(), Seed: 1}, now)
	buf := make([]byte, frameLen)
	for i := 0; i < tr.Flows; i++ {
		frame := outboundFrame(buf, tr.flow(i))
		require.Len(t, frame, frameLen)
		require.Equal(t, nat.VerdictForward, x.Outbound(frame[nat.EthernetLen:], now), "flow %d", i)
	}
	require.Equal(t, tr.Flows, x.Flows().Len())
	pools, defaults := 0, 0
	x.Flows().Range(func(_ uint32, f *nat.Flow) bool {
		if f.Priv>>16 == poolBase>>16 {
			pools++
		} else {
			defaults++
		}
		reply := replyFrame(buf, f)
		require.Len(t, reply, frameLen)
		ip := nat.IPv4(reply[nat.EthernetLen:])
		require.Equal(t, nat.VerdictForward, x.Inbound(ip, now))
		u, ok := nat.ParseUDP(ip.Payload())
		require.True(t, ok)
		assert.Equal(t, f.Priv, ip.Dst())
		assert.Equal(t, f.PrivPort, u.DstPort())
		return true
	})
	assert.Positive(t, pools)
	assert.Positive(t, defaults)
	assert.Equal(t, uint64(tr.Flows), x.Stats.Packets[nat.DirIn])
}

func TestFramesAreValid(t *testing.T) {
	tr, err := newTraffic(1000)
	require.NoError(t, err)
	f := tr.flow(123)
	buf := make([]byte, 128)
	frame := outboundFrame(buf, f)
	require.Len(t, frame, frameLen)
	eth := nat.Ethernet(frame)
	assert.Equal(t, uint16(nat.EtherTypeIPv4), eth.EtherType())
	assert.Equal(t, sourceMAC(f.Src), eth.Src())
	ip, ok := nat.ParseIPv4(frame[nat.EthernetLen:])
	require.True(t, ok)
	assert.Zero(t, nat.Fold(nat.Sum(ip[:nat.IPv4MinLen], 0)), "IPv4 header checksum")
	u := ip.Payload()
	assert.Zero(t, nat.Fold(nat.Sum(u, nat.PseudoHeaderSum(ip.Src(), ip.Dst(), nat.ProtoUDP, uint16(len(u))))), "UDP checksum")
	assert.Equal(t, f.Src, ip.Src())
	assert.Equal(t, f.Dst, ip.Dst())
	assert.Len(t, u, nat.UDPLen+payloadLen)
}
