package portalloc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLayoutDraining(t *testing.T) {
	const fa, fb = 0xC6130A01, 0xC6130A02
	drainA := func(a uint32) bool { return a == fa }
	none := func(uint32) bool { return false }
	size := 4032 // 16 blocks per address
	prev, err := LayoutStable([]uint32{fa, fb}, size, make([]Block, 20))
	require.NoError(t, err)
	require.Equal(t, uint32(fa), prev[0].Public)
	require.Equal(t, uint32(fb), prev[16].Public)

	t.Run("no draining frontend is LayoutStable", func(t *testing.T) {
		got, err := LayoutDraining([]uint32{fa, fb}, none, size, prev)
		require.NoError(t, err)
		assert.Equal(t, prev, got)
	})
	t.Run("members move off the draining frontend where room allows", func(t *testing.T) {
		got, err := LayoutDraining([]uint32{fa, fb}, drainA, size, prev)
		require.NoError(t, err)
		onA := 0
		for i, b := range got {
			if b.Public == fa {
				onA++
				assert.Equal(t, prev[i], b, "a member that stays keeps its block")
			}
		}
		// fb holds 16 blocks: its 4, and 12 moved; 8 stay on fa.
		assert.Equal(t, 4, onA)
		for i := 16; i < 20; i++ {
			assert.Equal(t, prev[i], got[i], "blocks already on the other frontend stay")
		}
		assertDisjoint(t, got)
	})
	t.Run("with room, nothing stays", func(t *testing.T) {
		got, err := LayoutDraining([]uint32{fa, fb}, drainA, size, prev[:10])
		require.NoError(t, err)
		for _, b := range got {
			assert.Equal(t, uint32(fb), b.Public)
		}
		assertDisjoint(t, got)
	})
	t.Run("new members go to the other frontend first", func(t *testing.T) {
		got, err := LayoutDraining([]uint32{fa, fb}, drainA, size, make([]Block, 3))
		require.NoError(t, err)
		for _, b := range got {
			assert.Equal(t, uint32(fb), b.Public)
		}
	})
	t.Run("more members than both frontends hold", func(t *testing.T) {
		_, err := LayoutDraining([]uint32{fa, fb}, drainA, size, make([]Block, 33))
		var se *ShortfallError
		assert.ErrorAs(t, err, &se)
	})
}
