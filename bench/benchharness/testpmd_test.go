package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statsBlock is one periodic statistics block as testpmd 22.11 prints it
// with --stats-period (trimmed to the lines the parser reads and their
// neighbours).
func statsBlock(tx0, tx1 int) string {
	return fmt.Sprintf("\x1b[2J\x1b[1;1H\nPort statistics ====================================\n"+
		"  ######################## NIC statistics for port 0  ########################\n"+
		"  RX-packets: 403968     RX-missed: 0          RX-bytes:  24238080\n"+
		"  Throughput (since last show)\n"+
		"  Rx-pps:     89856466          Rx-bps:  43131103896\n"+
		"  Tx-pps:   %10d          Tx-bps:            0\n"+
		"  ############################################################################\n"+
		"  ######################## NIC statistics for port 1  ########################\n"+
		"  TX-packets: 359158720  TX-errors: 0          TX-bytes:  0\n"+
		"  Rx-pps:            0          Rx-bps:            0\n"+
		"  Tx-pps:   %10d          Tx-bps:            0\n"+
		"  ############################################################################\n", tx0, tx1)
}

const testpmdExit = `
Telling cores to stop...
Waiting for lcores to finish...

  ---------------------- Forward statistics for port 0  ----------------------
  RX-packets: 728682880      RX-dropped: 0             RX-total: 728682880
  TX-packets: 0              TX-dropped: 0             TX-total: 0
  ----------------------------------------------------------------------------
Stopping port 0...
`

func TestParseTestpmdStats(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []float64
		wantErr bool
	}{
		{"none", "EAL: Detected CPU lcores: 2\n", nil, false},
		{"one", statsBlock(0, 0), []float64{0}, false},
		{"samples and exit summary",
			"testpmd: create a new mbuf pool\n" + statsBlock(0, 0) + statsBlock(0, 89856478) + statsBlock(1000000, 92528848) + testpmdExit,
			[]float64{0, 89.856478, 93.528848}, false},
		{"block cut short at the end is dropped", statsBlock(0, 1e6) + strings.Split(statsBlock(0, 5e6), "TX-packets: 359158720")[0],
			[]float64{1}, false},
		{"missing rate", statsBlock(0, 1e6) + "Port statistics ====\n  ######## NIC statistics for port 0 ####\n" + statsBlock(0, 1e6), nil, true},
		{"bad number", strings.Replace(statsBlock(0, 5), "Tx-pps:            5", "Tx-pps: x5", 1), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTestpmdStats(strings.NewReader(tt.out))
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			for i := range got {
				assert.InDelta(t, tt.want[i], got[i], 1e-9, "sample %d", i)
			}
		})
	}
}

func TestCountSamples(t *testing.T) {
	assert.Equal(t, 0, countSamples([]byte("EAL: x\n")))
	assert.Equal(t, 3, countSamples([]byte(statsBlock(1, 2)+statsBlock(1, 2)+statsBlock(1, 2)+testpmdExit)))
}

func TestTestpmdArgs(t *testing.T) {
	tests := []struct {
		name      string
		frames    int
		wantMbufs string
	}{
		{"small pcap keeps the minimum pool", 1000, "--total-num-mbufs=17384"},
		{"1M frames", 1_000_000, "--total-num-mbufs=1016384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := testpmdArgs(testpmdOptions{Pcap: "/w/out.pcap", Spare: "/w/spare.pcap", Frames: tt.frames, Lcores: "0,1", Burst: 32})
			assert.Contains(t, args, tt.wantMbufs)
			for _, want := range []string{"--forward-mode=macswap", "--nb-cores=1", "--rxq=1", "--txq=2", "--burst=32",
				"--stats-period=1", "--vdev=net_pcap0,rx_pcap=/w/out.pcap,rx_pcap=/w/spare.pcap,infinite_rx=1", "--vdev=net_null0,no-rx=1"} {
				assert.Contains(t, args, want)
			}
			sep := slices.Index(args, "--")
			require.Positive(t, sep, "EAL and application arguments are separated")
			assert.Less(t, slices.Index(args, "--no-pci"), sep)
			assert.Greater(t, slices.Index(args, "--forward-mode=macswap"), sep)
		})
	}
}

func TestFieldAfter(t *testing.T) {
	tests := []struct {
		line    string
		want    float64
		wantErr bool
	}{
		{"  Tx-pps:     92528848          Tx-bps:            0", 92528848, false},
		{"  Tx-pps:", 0, true},
		{"  Rx-pps: 5", 0, true},
		{"  Tx-pps: -", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			v, err := fieldAfter(tt.line, "Tx-pps:")
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, tt.want, v, 0)
		})
	}
}
