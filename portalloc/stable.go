package portalloc

// LayoutStable places one block of size ports for each member on the
// frontends, like Layout, but keeps members where they were: prev[i] is
// member i's block in the running configuration (the zero Block for a new
// member). Each member first asks for the slot of the new layout that holds
// the first port of its previous block on the same frontend, so
//   - an unchanged pool keeps every block as it is;
//   - a pool that steps up a tier (smaller blocks) keeps the first part of
//     each block, and the rest of the old block is free for new members
//     [S7];
//   - a pool that steps down a tier (larger blocks) grows blocks in place
//     where the neighbouring member has left, and elsewhere moves the later
//     of two neighbours to a free slot.
//
// Members are served in order, so when two want the same slot the earlier
// one keeps it. Members whose slot is taken, and new members, get the lowest
// free slots. It returns a *ShortfallError when the blocks don't fit.
func LayoutStable(frontends []uint32, size int, prev []Block) ([]Block, error) {
	if err := CheckBlockSize(size); err != nil {
		return nil, err
	}
	perAddr := PortsPerAddress / size
	total := perAddr * len(frontends)
	if len(prev) > total {
		return nil, &ShortfallError{Blocks: len(prev), Size: size, Fit: total, Frontends: len(frontends)}
	}
	feIndex := make(map[uint32]int, len(frontends))
	for i, fe := range frontends {
		if _, dup := feIndex[fe]; !dup {
			feIndex[fe] = i
		}
	}
	taken := make([]bool, total)
	slots := make([]int, len(prev))
	for i, b := range prev {
		slots[i] = -1
		fe, ok := feIndex[b.Public]
		if !ok || b.Size() <= 0 || int(b.First) < FirstPort {
			continue
		}
		k := (int(b.First) - FirstPort) / size
		if k >= perAddr {
			continue
		}
		if s := fe*perAddr + k; !taken[s] {
			taken[s] = true
			slots[i] = s
		}
	}
	next := 0
	blocks := make([]Block, len(prev))
	for i := range prev {
		s := slots[i]
		if s < 0 {
			for taken[next] {
				next++
			}
			s = next
			taken[s] = true
		}
		first := FirstPort + (s%perAddr)*size
		blocks[i] = Block{Public: frontends[s/perAddr], First: uint16(first), Last: uint16(first + size - 1)}
	}
	return blocks, nil
}
