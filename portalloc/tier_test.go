package portalloc

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTierPorts(t *testing.T) {
	tests := []struct {
		members int
		want    int
		wantErr error
	}{
		{-1, 0, ErrNoMembers},
		{0, 0, ErrNoMembers},
		{1, 1024, nil},
		{50, 1024, nil},
		{51, 512, nil},
		{100, 512, nil},
		{101, 256, nil},
		{200, 256, nil},
		{201, 128, nil},
		{400, 128, nil},
		{401, 64, nil},
		{800, 64, nil},
		{801, 32, nil},
		{1000, 32, nil},
		{1001, 0, ErrPoolTooLarge},
		{1 << 30, 0, ErrPoolTooLarge},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.members), func(t *testing.T) {
			got, err := TierPorts(tt.members)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("every tier fits one address", func(t *testing.T) {
		for _, tier := range tiers {
			ports, err := TierPorts(tier.maxMembers)
			require.NoError(t, err)
			assert.NoError(t, CheckBlockSize(ports))
			assert.LessOrEqual(t, tier.maxMembers*ports, 2*PortsPerAddress,
				"a full tier of %d needs at most two frontends", tier.maxMembers)
		}
	})
	t.Run("too large names the count", func(t *testing.T) {
		_, err := TierPorts(1001)
		assert.EqualError(t, err, "pool has more than 1000 members: 1001 members")
	})
}

func TestCheckBlockSize(t *testing.T) {
	tests := []struct {
		size    int
		wantErr string
	}{
		{8, ""},
		{16, ""},
		{1024, ""},
		{PortsPerAddress, ""},
		{0, "not a multiple of 8 of at least 8"},
		{-8, "not a multiple of 8 of at least 8"},
		{4, "not a multiple of 8 of at least 8"},
		{1001, "not a multiple of 8 of at least 8"},
		{PortsPerAddress + 8, "more than the 64512 ports"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			err := CheckBlockSize(tt.size)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestBlock(t *testing.T) {
	b := Block{Public: 1, First: 1024, Last: 2047}
	tests := []struct {
		port uint16
		want bool
	}{
		{1023, false}, {1024, true}, {1500, true}, {2047, true}, {2048, false}, {0, false}, {65535, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.port), func(t *testing.T) {
			assert.Equal(t, tt.want, b.Contains(tt.port))
		})
	}
	assert.Equal(t, 1024, b.Size())
	assert.Equal(t, PortsPerAddress, Block{First: FirstPort, Last: LastPort}.Size())
}

const (
	tierFE1 = 0xC6130A01 // 198.19.10.1
	tierFE2 = 0xC6130A02
	tierFE3 = 0xC6130A03
)

func TestLayout(t *testing.T) {
	fes := []uint32{tierFE1, tierFE2, tierFE3}
	tests := []struct {
		name        string
		frontends   []uint32
		count, size int
		perFrontend []int // blocks expected on each frontend, in order
	}{
		{"none", fes, 0, 1024, []int{0, 0, 0}},
		{"one block", fes, 1, 1024, []int{1, 0, 0}},
		{"first frontend full", fes, 63, 1024, []int{63, 0, 0}},
		{"spills to the second", fes, 64, 1024, []int{63, 1, 0}},
		{"all three", fes, 63*2 + 5, 1024, []int{63, 63, 5}},
		{"tier 1000 members", fes[:1], 1000, 32, []int{1000}},
		{"8-port blocks fill an address", fes[:1], 8064, 8, []int{8064}},
		{"a block of a whole address each", fes, 3, PortsPerAddress, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := Layout(tt.frontends, tt.count, tt.size)
			require.NoError(t, err)
			require.Len(t, blocks, tt.count)
			on := make(map[uint32]int)
			for i, b := range blocks {
				assert.Equal(t, tt.size, b.Size(), "block %d", i)
				assert.GreaterOrEqual(t, int(b.First), FirstPort)
				assert.LessOrEqual(t, int(b.Last), LastPort)
				on[b.Public]++
				if i > 0 {
					prev := blocks[i-1]
					if prev.Public == b.Public {
						assert.Equal(t, prev.Last+1, b.First, "blocks %d and %d are not adjacent", i-1, i)
					} else {
						assert.Equal(t, uint16(FirstPort), b.First, "a new frontend starts at FirstPort")
					}
				}
			}
			for i, want := range tt.perFrontend {
				assert.Equal(t, want, on[tt.frontends[i]], "blocks on frontend %d", i)
			}
			if tt.count > 0 {
				assert.Equal(t, Block{Public: tt.frontends[0], First: FirstPort, Last: uint16(FirstPort + tt.size - 1)}, blocks[0])
			}
		})
	}
}

func TestLayoutErrors(t *testing.T) {
	tests := []struct {
		name        string
		frontends   []uint32
		count, size int
		wantErr     string
		shortfall   *ShortfallError
	}{
		{"one block too many", []uint32{tierFE1}, 64, 1024,
			"64 blocks of 1024 ports don't fit on 1 frontend(s): they hold 63, short by 1 blocks (1024 ports); 2 frontend(s) needed",
			&ShortfallError{Blocks: 64, Size: 1024, Fit: 63, Frontends: 1}},
		{"many missing", []uint32{tierFE1, tierFE2}, 1000, 1024,
			"1000 blocks of 1024 ports don't fit on 2 frontend(s): they hold 126, short by 874 blocks (894976 ports); 16 frontend(s) needed",
			&ShortfallError{Blocks: 1000, Size: 1024, Fit: 126, Frontends: 2}},
		{"no frontends", nil, 1, 1024,
			"1 blocks of 1024 ports don't fit on 0 frontend(s): they hold 0, short by 1 blocks (1024 ports); 1 frontend(s) needed",
			&ShortfallError{Blocks: 1, Size: 1024, Fit: 0, Frontends: 0}},
		{"bad size", []uint32{tierFE1}, 1, 12, "not a multiple of 8", nil},
		{"negative count", []uint32{tierFE1}, -1, 1024, "negative", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := Layout(tt.frontends, tt.count, tt.size)
			require.Error(t, err)
			assert.Nil(t, blocks)
			assert.Contains(t, err.Error(), tt.wantErr)
			var se *ShortfallError
			if tt.shortfall == nil {
				assert.False(t, errors.As(err, &se))
				return
			}
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.shortfall, se)
			assert.Equal(t, tt.wantErr, err.Error())
		})
	}
}

// TestShortfallErrorDoesNotPanic covers hand-made errors with sizes Layout
// never produces.
func TestShortfallErrorDoesNotPanic(t *testing.T) {
	for _, e := range []*ShortfallError{
		{Blocks: 3, Size: 0},
		{Blocks: 3, Size: -8},
		{Blocks: 3, Size: PortsPerAddress + 8},
	} {
		t.Run(fmt.Sprint(e.Size), func(t *testing.T) {
			assert.NotPanics(t, func() { assert.NotEmpty(t, e.Error()) })
		})
	}
}

func TestNextTier(t *testing.T) {
	for _, tc := range []struct {
		members, max, next int
		ok                 bool
	}{
		{0, 0, 0, false}, {1, 50, 512, true}, {50, 50, 512, true}, {51, 100, 256, true},
		{800, 800, 32, true}, {801, 1000, 0, true}, {1000, 1000, 0, true}, {1001, 0, 0, false},
	} {
		m, n, ok := NextTier(tc.members)
		if m != tc.max || n != tc.next || ok != tc.ok {
			t.Errorf("NextTier(%d) = %d, %d, %v; want %d, %d, %v", tc.members, m, n, ok, tc.max, tc.next, tc.ok)
		}
		if ok {
			if p, _ := TierPorts(tc.members); p <= n {
				t.Errorf("NextTier(%d): next tier %d is not smaller than %d", tc.members, n, p)
			}
		}
	}
}
