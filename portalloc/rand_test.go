package portalloc

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRandDeterministic(t *testing.T) {
	tests := []struct {
		name   string
		a, b   uint64
		wantEq bool
	}{
		{"same seed gives same sequence", 42, 42, true},
		{"zero seed works", 0, 0, true},
		{"different seeds differ", 1, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra, rb := NewRand(tt.a), NewRand(tt.b)
			same := true
			for range 100 {
				if ra.Uint64() != rb.Uint64() {
					same = false
				}
			}
			assert.Equal(t, tt.wantEq, same)
		})
	}
}

func TestRandIntnRange(t *testing.T) {
	tests := []struct {
		name string
		n    int
		want func(v int) bool
	}{
		{"zero gives zero", 0, func(v int) bool { return v == 0 }},
		{"negative gives zero", -5, func(v int) bool { return v == 0 }},
		{"one gives zero", 1, func(v int) bool { return v == 0 }},
		{"small", 7, func(v int) bool { return v >= 0 && v < 7 }},
		{"block size", 1024, func(v int) bool { return v >= 0 && v < 1024 }},
		{"whole address", PortsPerAddress, func(v int) bool { return v >= 0 && v < PortsPerAddress }},
		{"huge", 1<<62 + 1, func(v int) bool { return v >= 0 && v < 1<<62+1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRand(7)
			for range 10000 {
				v := r.Intn(tt.n)
				require.True(t, tt.want(v), "Intn(%d) = %d", tt.n, v)
			}
		})
	}
}

// TestRandUniform checks that every outcome of Intn comes up about equally
// often. The seed is fixed, so the test is deterministic; a biased or
// broken generator fails it.
func TestRandUniform(t *testing.T) {
	for _, n := range []int{2, 3, 10, 100, 1000} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			r := NewRand(uint64(n) * 0x9e3779b97f4a7c15)
			const perBucket = 2000
			counts := make([]int, n)
			for range n * perBucket {
				counts[r.Intn(n)]++
			}
			// Chi-square against the uniform distribution; for n-1 degrees
			// of freedom the statistic has mean n-1 and standard deviation
			// sqrt(2(n-1)); allow 6 standard deviations.
			var chi2 float64
			for _, c := range counts {
				d := float64(c - perBucket)
				chi2 += d * d / perBucket
			}
			df := float64(n - 1)
			assert.Less(t, chi2, df+6*math.Sqrt(2*df), "n=%d", n)
		})
	}
	t.Run("uint32 high bits", func(t *testing.T) {
		r := NewRand(99)
		var ones [32]int
		const draws = 20000
		for range draws {
			v := r.Uint32()
			for b := range 32 {
				ones[b] += int(v >> b & 1)
			}
		}
		for b, c := range ones {
			assert.InDelta(t, draws/2, c, draws*0.02, "bit %d", b)
		}
	})
}

func TestRandNoAllocs(t *testing.T) {
	r := NewRand(1)
	allocs := testing.AllocsPerRun(1000, func() {
		_ = r.Uint32()
		_ = r.Intn(1000)
	})
	assert.Zero(t, allocs)
}

func BenchmarkRandIntn(b *testing.B) {
	r := NewRand(1)
	b.ReportAllocs()
	var sink int
	for b.Loop() {
		sink += r.Intn(1024)
	}
	_ = sink
}
