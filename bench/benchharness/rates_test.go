package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/nat"
)

func samplesAt(ms ...float64) func(created ...uint64) []flowSample {
	return func(created ...uint64) []flowSample {
		out := make([]flowSample, len(ms))
		for i := range ms {
			out[i] = flowSample{At: time.Duration(ms[i] * float64(time.Millisecond)), Created: created[i]}
		}
		return out
	}
}

func TestEstablishment(t *testing.T) {
	tests := []struct {
		name            string
		samples         []flowSample
		want            uint64
		drops           map[string]uint64
		wantSeconds     float64
		wantUncertainty float64
		wantRate        float64
		wantErr         string
	}{
		{
			// 0 flows at 1 ms, all 1000 at 3 ms: the whole pass lies
			// between two samples, nothing is known inside.
			name: "one step", samples: samplesAt(0, 1, 3)(0, 0, 1000), want: 1000,
			wantSeconds: 0.002, wantUncertainty: 0.002, wantRate: 500_000,
		},
		{
			// Flows seen from 2 ms to 5 ms, all at 6 ms: span 1..6 ms,
			// 3 ms of it observed under way.
			name: "several samples", samples: samplesAt(0, 1, 2, 3, 4, 5, 6)(0, 0, 100, 400, 700, 900, 1000), want: 1000,
			wantSeconds: 0.005, wantUncertainty: 0.002, wantRate: 200_000,
		},
		{
			name: "drops", samples: samplesAt(0, 1)(0, 10), want: 10, drops: map[string]uint64{"no_route": 2},
			wantErr: "drops during the first pass (no_route 2)",
		},
		{name: "too few flows", samples: samplesAt(0, 1)(0, 9), want: 10, wantErr: "created 9 flows, want 10"},
		{name: "too many flows", samples: samplesAt(0, 1)(0, 11), want: 10, wantErr: "created 11 flows, want 10"},
		{name: "no flows", samples: samplesAt(0, 1)(0, 0), want: 0, wantErr: "no flows"},
		{name: "started late", samples: samplesAt(0, 1)(5, 10), want: 10, wantErr: "start before the first flow"},
		{name: "one sample", samples: samplesAt(0)(0), want: 10, wantErr: "start before the first flow"},
		{name: "no time", samples: samplesAt(0, 0)(0, 10), want: 10, wantErr: "no measurable time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := establishment(tt.samples, tt.want, tt.drops)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Zero(t, r.FlowsPerSecond, "no rate with an error")
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, tt.wantSeconds, r.Seconds, 1e-12)
			assert.InDelta(t, tt.wantUncertainty, r.UncertaintySeconds, 1e-12)
			assert.InDelta(t, tt.wantRate, r.FlowsPerSecond, 1e-6)
			assert.Equal(t, tt.want, r.Created)
			assert.Equal(t, len(tt.samples), r.Samples)
		})
	}
}

func TestTeardownRate(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		n        uint64
		tN, t0   time.Duration
		wantRate float64
		wantErr  string
	}{
		{name: "overhead cancels", n: 1_000_000, tN: 510 * ms, t0: 10 * ms, wantRate: 2e6},
		{name: "no overhead", n: 1000, tN: ms, wantRate: 1e6},
		{name: "equal", n: 1000, tN: 5 * ms, t0: 5 * ms, wantErr: "T_N 5ms <= T_0 5ms"},
		{name: "faster than the empty table", n: 1000, tN: 4 * ms, t0: 5 * ms, wantErr: "less than the measurement's jitter"},
		{name: "no flows", n: 0, tN: 5 * ms, t0: ms, wantErr: "no flows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rate, err := teardownRate(tt.n, tt.tN, tt.t0)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Zero(t, rate)
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, tt.wantRate, rate, 1e-6)
		})
	}
}

func TestBenchClock(t *testing.T) {
	tests := []struct {
		name string
		jump nat.Tick
	}{
		{"no jump", 0},
		{"udp timeout", teardownJump(300_000)},
		{"wraps", ^nat.Tick(0) - 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newBenchClock()
			before := c.now()
			require.NotZero(t, before)
			got := c.jump(tt.jump)
			assert.NotZero(t, got, "the clock is never 0")
			assert.True(t, tickReached(got, before+tt.jump), "jumped to %d, want at least %d", got, before+tt.jump)
			assert.True(t, tickReached(c.now(), got), "the clock does not go back after a jump")
		})
	}
}

func TestTeardownJump(t *testing.T) {
	tests := []struct {
		udp, want nat.Tick
	}{
		{udp: 0, want: 256},
		{udp: 300_000, want: 300_256},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(int(tt.udp)), func(t *testing.T) {
			assert.Equal(t, tt.want, teardownJump(tt.udp))
		})
	}
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name         string
		est          *establishResult
		tear         *teardownResult
		wantEst      string
		wantTeardown string
	}{
		{"not measured", nil, nil, "n/a", "n/a"},
		{"errors", &establishResult{Error: "x", Seconds: 1}, &teardownResult{Error: "y", FlowsPerSecond: 5e6}, "n/a", "n/a"},
		{"met", &establishResult{Flows: 1_000_000, Seconds: 0.4, UncertaintySeconds: 0.002, FlowsPerSecond: 2.5e6},
			&teardownResult{FlowsPerSecond: 2e6}, "met", "met"},
		{"missed", &establishResult{Flows: 1_000_000, Seconds: 1, UncertaintySeconds: 0.002, FlowsPerSecond: 1e6},
			&teardownResult{FlowsPerSecond: 1.9e6}, "**missed**", "**missed**"},
		// 1000 flows in 2 ms, all of it sampling uncertainty: the rate
		// may be anything above 0.5 M/s.
		{"too short to tell", &establishResult{Flows: 1000, Seconds: 0.002, UncertaintySeconds: 0.002, FlowsPerSecond: 5e5},
			nil, "inconclusive", "n/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantEst, establishVerdict(tt.est))
			assert.Equal(t, tt.wantTeardown, teardownVerdict(tt.tear))
		})
	}
}
