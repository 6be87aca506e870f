package main

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

func TestDueCount(t *testing.T) {
	assert.Equal(t, uint64(0), dueCount(0, 1_000_000))
	assert.Equal(t, uint64(0), dueCount(-5, 1_000_000))
	assert.Equal(t, uint64(0), dueCount(999, 1_000_000), "1 Mpps: the first frame is due after 1 µs")
	assert.Equal(t, uint64(1), dueCount(1000, 1_000_000))
	assert.Equal(t, uint64(14_880_952), dueCount(1e9, 14_880_952))
	assert.Equal(t, uint64(6), dueCount(699_999_999, 10), "floor, not rounding")
	// 60 s at 100 Mpps: elapsed*rate overflows 64 bits, the result does not.
	assert.Equal(t, uint64(6e9), dueCount(60e9, 100_000_000))
	assert.Equal(t, uint64(math.MaxUint64), dueCount(math.MaxInt64, math.MaxUint64))
}

func TestBinarySearch(t *testing.T) {
	for _, limit := range []uint64{0, 1000, 1234, 5_000_000, 9_999_999, 10_000_000} {
		var tried []uint64
		got, steps, err := binarySearch(1000, 10_000_000, 10_000, func(r uint64) (searchStep, error) {
			tried = append(tried, r)
			return searchStep{Pass: r <= limit}, nil
		})
		require.NoError(t, err)
		assert.Len(t, steps, len(tried))
		assert.Equal(t, uint64(10_000_000), tried[0], "RFC 2544: the first step is at the highest rate")
		switch {
		case limit < 1000:
			assert.Equal(t, uint64(0), got, "even the lowest rate fails")
		case limit == 10_000_000:
			assert.Equal(t, limit, got)
			assert.Len(t, tried, 1)
		default:
			assert.LessOrEqual(t, got, limit, "never above the highest passing rate")
			assert.Greater(t, got+10_000, limit, "within the resolution of it")
			assert.Less(t, len(tried), 14, "log2 steps")
		}
		for _, s := range steps {
			assert.Equal(t, s.Rate <= limit, s.Pass, "each step keeps its rate: %d", s.Rate)
		}
	}
}

func TestBinarySearchGeneratorLimited(t *testing.T) {
	// natgw passes everything; the generator cannot offer more than 3 M.
	got, _, err := binarySearch(1000, 10_000_000, 1000, func(r uint64) (searchStep, error) {
		return searchStep{Pass: true, Limited: r > 3_000_000}, nil
	})
	require.NoError(t, err)
	assert.LessOrEqual(t, got, uint64(3_000_000), "a rate the generator could not offer is not a result")
	assert.Greater(t, got, uint64(2_999_000))
	_, _, err = binarySearch(0, 10, 1, nil)
	assert.Error(t, err)
}

func TestLatencyHist(t *testing.T) {
	var h latencyHist
	assert.Equal(t, uint64(0), h.percentile(0.5), "empty")
	for v := uint64(1); v <= 100_000; v++ {
		h.record(v * 100) // 100 ns to 10 ms, uniform
	}
	for _, p := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := p * 1e7
		got := float64(h.percentile(p))
		assert.InEpsilon(t, want, got, 1.0/histSub+1e-3, "p%v", p*100)
		assert.GreaterOrEqual(t, got, want, "upper bound of the bucket")
	}
	assert.Equal(t, uint64(1e7), h.percentile(1))
	h.reset()
	for range 999 {
		h.record(10)
	}
	h.record(5000)
	assert.Equal(t, uint64(10), h.percentile(0.99), "small values are exact")
	assert.Equal(t, uint64(10), h.percentile(0.999))
	assert.Equal(t, uint64(5000), h.percentile(0.9991))
	// Bucket bounds are contiguous and increasing.
	prev := uint64(0)
	for b := 1; b < histBucket(1<<40); b++ {
		u := histUpper(b)
		require.Equal(t, prev+1, histUpper(b-1)+1, "bucket %d", b)
		require.Equal(t, b, histBucket(u), "bucket %d upper %d", b, u)
		require.Equal(t, b, histBucket(histUpper(b-1)+1), "bucket %d lower", b)
		prev = u
	}
	allocs := testing.AllocsPerRun(100, func() { h.record(12345) })
	assert.Zero(t, allocs)
}

func TestGenFlows(t *testing.T) {
	for _, n := range []int{2, 1000, 65536, 100_003} {
		tr, err := newTraffic(n)
		require.NoError(t, err)
		g, err := newGenFlows(tr, 7)
		require.NoError(t, err)
		seen := make([]bool, n)
		cur := g.at(0)
		for k := range uint64(n) {
			i := g.at(k)
			require.Equal(t, i, cur, "next follows at")
			cur = g.next(cur)
			require.Less(t, int(i), n)
			require.False(t, seen[i], "n %d: flow %d twice in a cycle", n, i)
			seen[i] = true
		}
		assert.Equal(t, g.at(0), g.at(uint64(n)), "cycles repeat")
		type ep struct {
			a uint32
			p uint16
		}
		remotes := map[ep]bool{}
		sports := map[uint16]bool{}
		for i := range uint32(min(n, 20000)) {
			f := g.flow(i)
			require.GreaterOrEqual(t, f.Sport, uint16(genPortLo))
			require.GreaterOrEqual(t, f.Dport, uint16(genPortLo))
			require.False(t, remotes[ep{f.Dst, f.Dport}], "each flow has its own remote endpoint")
			remotes[ep{f.Dst, f.Dport}] = true
			sports[f.Sport] = true
		}
		if n >= 1000 {
			assert.Greater(t, len(sports), min(n, 20000)*8/10, "source ports are pseudorandom, not a counter's few values")
		}
	}
	// Remote ports spread over the range too (past 65536 flows).
	tr, _ := newTraffic(16 << 20)
	g, _ := newGenFlows(tr, 1)
	var ports []uint16
	for i := uint32(0); i < 16<<20; i += remoteCount {
		ports = append(ports, g.flow(i).Dport)
	}
	slices.Sort(ports)
	assert.Len(t, slices.Compact(ports), 256)
	assert.Greater(t, int(ports[len(ports)-1])-int(ports[0]), 50000)
}

func TestGenFrame(t *testing.T) {
	b := make([]byte, 64)
	// The same bytes as natgw's own frame builder, checksums included.
	for _, c := range []struct {
		src, dst     uint32
		sport, dport uint16
		kind         uint8
		flow         uint32
		sent         int64
	}{{0xc6120001, 0xc6130a0a, 1000, 40000, kindIn, 123456, 987654321}, {0xffffffff, 0xffffffff, 65535, 65535, 255, 0xffffffff, -1},
		{0, 0, 0, 0, 0, 0, 0}, {0x0a000001, 0xc6120203, 1024, 80, kindFirst, 16<<20 - 1, 3_600_000_000_000}} {
		want := make([]byte, 64)
		var p [payloadLen]byte
		p[0], p[1], p[2] = genMagic>>8, genMagic&0xff, c.kind
		binary.BigEndian.PutUint32(p[payFlow:], c.flow)
		binary.BigEndian.PutUint64(p[payTime:], uint64(c.sent))
		nat.WriteEthernet(want, toNatgwMAC, gatewayMAC, nat.EtherTypeIPv4)
		nat.BuildUDP(want[nat.EthernetLen:], c.src, c.dst, c.sport, c.dport, frameTTL, p[:])
		for i := range b {
			b[i] = 0xa5 // stale bytes of the previous frame
		}
		got := writeGenFrame(b, toNatgwMAC, gatewayMAC, c.src, c.dst, c.sport, c.dport, c.kind, c.flow, c.sent)
		require.Equal(t, want[:frameLen], got, "%+v", c)
	}
	f := writeGenFrame(b, toNatgwMAC, gatewayMAC, 0xc6120001, 0xc6130a0a, 1000, 40000, kindIn, 123456, 987654321)
	require.Len(t, f, frameLen)
	var p genPacket
	require.NoError(t, parseGenFrame(f, &p))
	assert.Equal(t, genPacket{Src: 0xc6120001, Dst: 0xc6130a0a, Sport: 1000, Dport: 40000, Kind: kindIn, Flow: 123456, Sent: 987654321}, p)
	f[len(f)-payloadLen] ^= 1 // the magic
	assert.ErrorIs(t, parseGenFrame(f, &p), errNotGen)
	assert.ErrorIs(t, parseGenFrame(f[:30], &p), errNotGen)
	allocs := testing.AllocsPerRun(100, func() {
		f = writeGenFrame(b, toNatgwMAC, gatewayMAC, 1, 2, 3, 4, kindOut, 5, 6)
		_ = parseGenFrame(f, &p)
	})
	assert.Zero(t, allocs)
}
