package portalloc

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const feA, feB = 0xC6130A0A, 0xC6130A0B // 198.19.10.10, 198.19.10.11

func TestLayoutStable(t *testing.T) {
	fresh := func(n, size int) []Block {
		b, err := LayoutStable([]uint32{feA, feB}, size, make([]Block, n))
		require.NoError(t, err)
		return b
	}
	t.Run("new pool fills the first frontend first like Layout", func(t *testing.T) {
		want, err := Layout([]uint32{feA, feB}, 70, 1024)
		require.NoError(t, err)
		assert.Equal(t, want, fresh(70, 1024))
	})
	t.Run("unchanged pool keeps every block", func(t *testing.T) {
		old := fresh(50, 1024)
		again, err := LayoutStable([]uint32{feA, feB}, 1024, old)
		require.NoError(t, err)
		assert.Equal(t, old, again)
	})
	t.Run("a 51st member halves every block and keeps its first half [S7]", func(t *testing.T) {
		old := fresh(50, 1024)
		prev := append(append([]Block(nil), old...), Block{})
		now, err := LayoutStable([]uint32{feA, feB}, 512, prev)
		require.NoError(t, err)
		for i, b := range old {
			assert.Equal(t, Block{Public: b.Public, First: b.First, Last: b.First + 511}, now[i], "member %d", i)
		}
		// The new member gets a freed half of an old block, overlapping no one.
		assertDisjoint(t, now)
		assert.Equal(t, 512, now[50].Size())
	})
	t.Run("shrinking back to one tier down grows blocks without overlap", func(t *testing.T) {
		old := fresh(51, 512)
		now, err := LayoutStable([]uint32{feA, feB}, 1024, old[:50])
		require.NoError(t, err)
		assertDisjoint(t, now)
		for i := range now {
			assert.Equal(t, 1024, now[i].Size())
		}
		// Member 0 grows in place: its old block is inside its new one.
		assert.True(t, now[0].Contains(old[0].First) && now[0].Contains(old[0].Last))
	})
	t.Run("a removed member frees its slot for a new one", func(t *testing.T) {
		old := fresh(3, 1024)
		prev := []Block{old[0], {}, old[2]}
		now, err := LayoutStable([]uint32{feA}, 1024, prev)
		require.NoError(t, err)
		assert.Equal(t, old[0], now[0])
		assert.Equal(t, old[2], now[2])
		assert.Equal(t, old[1], now[1])
	})
	t.Run("blocks on a frontend no longer offered move", func(t *testing.T) {
		now, err := LayoutStable([]uint32{feB}, 1024, []Block{{Public: feA, First: 1024, Last: 2047}})
		require.NoError(t, err)
		assert.Equal(t, Block{Public: feB, First: 1024, Last: 2047}, now[0])
	})
	t.Run("shortfall", func(t *testing.T) {
		_, err := LayoutStable([]uint32{feA}, 1024, make([]Block, 64))
		var se *ShortfallError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 63, se.Fit)
	})
}

func assertDisjoint(t *testing.T, blocks []Block) {
	t.Helper()
	for i := range blocks {
		for j := i + 1; j < len(blocks); j++ {
			a, b := blocks[i], blocks[j]
			overlap := a.Public == b.Public && a.First <= b.Last && b.First <= a.Last
			assert.False(t, overlap, fmt.Sprintf("blocks %d %v and %d %v overlap", i, a, j, b))
		}
	}
}
