//go:build dpdk

package main

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

// TestNatgwHarness runs the whole natgw subcommand on a small flow count:
// EAL, the pcap source and null sinks, both phases. It needs root and
// free 2 MB hugepages (scripts/install-deps.sh reserves them); EAL can be
// initialised once per process, so it is the only test here that starts
// it.
func TestNatgwHarness(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (DPDK)")
	}
	if free := freeHugepages(); free < 64 {
		t.Skipf("needs 64 free 2 MB hugepages, %d free", free)
	}
	dir := t.TempDir()
	o := natgwOptions{Flows: 2000, Dir: dir, Warmup: 0, Duration: 1, CPU: -1, Lcores: "0", Seed: 3}
	res, err := runNatgw(o, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Len(t, res.Phases, 2)
	for i, dir := range []string{"out", "in"} {
		ph := res.Phases[i]
		t.Run(dir, func(t *testing.T) {
			assert.Equal(t, dir, ph.Direction)
			assert.Positive(t, ph.Mpps)
			assert.Positive(t, ph.Packets)
			assert.Empty(t, ph.Drops, "established flows are never dropped")
			assert.Equal(t, uint64(2000), ph.FlowsActive)
			assert.GreaterOrEqual(t, ph.RxPackets, ph.Packets)
		})
	}
	t.Run("establishment", func(t *testing.T) {
		e := res.Establishment
		require.NotNil(t, e)
		assert.Empty(t, e.Error)
		assert.Equal(t, uint64(2000), e.Created)
		assert.Empty(t, e.Drops, "a pull-based source loses nothing")
		assert.Positive(t, e.FlowsPerSecond)
		assert.GreaterOrEqual(t, e.Seconds, e.UncertaintySeconds)
	})
	t.Run("teardown", func(t *testing.T) {
		td := res.Teardown
		require.NotNil(t, td)
		assert.Equal(t, uint64(2000), td.Flows)
		assert.Equal(t, uint64(2000), td.ExpiredIdle, "every flow expired idle, once")
		assert.Greater(t, td.JumpMs, uint32(2*nat.WheelSlotTicks))
		// 2000 flows are 8 polls of expiry: T_N may not beat T_0's
		// jitter, and then the rate is an error, never negative.
		if td.Error == "" {
			assert.Positive(t, td.FlowsPerSecond)
			assert.Greater(t, td.FullSeconds, td.EmptySeconds)
		} else {
			assert.Contains(t, td.Error, "T_N")
			assert.Zero(t, td.FlowsPerSecond)
		}
	})
	assert.Equal(t, 8191, res.Mbufs, "a small pcap fits natgw's default mempool")
	n, err := countPcap(res.Pcaps.In)
	require.NoError(t, err)
	assert.Equal(t, 2000, n, "one reply per flow")
}

func TestMempoolConfig(t *testing.T) {
	tests := []struct {
		need      int
		wantPorts int
		wantDesc  int
	}{
		{need: 1000, wantPorts: 2, wantDesc: 1024},
		{need: 8191, wantPorts: 2, wantDesc: 1024},
		{need: 8192, wantPorts: 2, wantDesc: maxDesc},
		{need: 1_000_000 + mbufReserve, wantPorts: 3, wantDesc: maxDesc},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.need), func(t *testing.T) {
			c := mempoolConfig(tt.need)
			assert.Equal(t, tt.wantPorts, c.Ports)
			assert.Equal(t, tt.wantDesc, c.RxDesc)
			assert.GreaterOrEqual(t, mempoolSizeOf(c), tt.need)
		})
	}
}

func freeHugepages() int {
	b, err := os.ReadFile("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
