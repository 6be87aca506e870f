package portalloc

import (
	"errors"
	"fmt"
)

// The SNAT port range of every public address [S3].
const (
	// FirstPort is the lowest port handed out for SNAT.
	FirstPort = 1024
	// LastPort is the highest port handed out for SNAT.
	LastPort = 65535
	// PortsPerAddress is the number of SNAT ports of one public address.
	PortsPerAddress = LastPort - FirstPort + 1
	// MaxPoolMembers is the largest pool the tier table allows.
	MaxPoolMembers = 1000
	// BlockAlign is the granularity of manual block sizes.
	BlockAlign = 8
)

// ErrPoolTooLarge is returned by TierPorts for a pool over MaxPoolMembers.
var ErrPoolTooLarge = errors.New("pool has more than 1000 members")

// ErrNoMembers is returned by TierPorts for an empty pool.
var ErrNoMembers = errors.New("pool has no members")

// tiers is the preallocation table of [S3]: pools up to maxMembers members
// give each member ports ports.
var tiers = [...]struct{ maxMembers, ports int }{
	{50, 1024},
	{100, 512},
	{200, 256},
	{400, 128},
	{800, 64},
	{1000, 32},
}

// TierPorts returns the ports preallocated to each member of a pool of
// members members, per the tier table of [S3].
func TierPorts(members int) (int, error) {
	if members < 1 {
		return 0, ErrNoMembers
	}
	for _, t := range tiers {
		if members <= t.maxMembers {
			return t.ports, nil
		}
	}
	return 0, fmt.Errorf("%w: %d members", ErrPoolTooLarge, members)
}

// CheckBlockSize reports whether size is a valid manual block size: a
// multiple of BlockAlign, at least BlockAlign, at most PortsPerAddress.
func CheckBlockSize(size int) error {
	if size < BlockAlign || size%BlockAlign != 0 {
		return fmt.Errorf("ports per member %d is not a multiple of %d of at least %d", size, BlockAlign, BlockAlign)
	}
	if size > PortsPerAddress {
		return fmt.Errorf("ports per member %d is more than the %d ports of a public address", size, PortsPerAddress)
	}
	return nil
}

// Block is a contiguous range of SNAT ports on one public address, owned by
// one member.
type Block struct {
	// Public is the public IPv4 address, host byte order.
	Public uint32
	// First and Last are the first and last port of the block, inclusive.
	First, Last uint16
}

// Size returns the number of ports in the block.
func (b Block) Size() int { return int(b.Last) - int(b.First) + 1 }

// Contains reports whether port lies in the block.
func (b Block) Contains(port uint16) bool { return port >= b.First && port <= b.Last }

// ShortfallError says that a pool's blocks don't fit on its frontends.
type ShortfallError struct {
	// Blocks is the number of blocks needed, of Size ports each.
	Blocks, Size int
	// Fit is how many of them the frontends hold.
	Fit int
	// Frontends is the number of frontends offered.
	Frontends int
}

// Error says how many blocks are missing and what would make them fit.
func (e *ShortfallError) Error() string {
	perAddr := 0
	if e.Size > 0 {
		perAddr = PortsPerAddress / e.Size
	}
	if perAddr == 0 {
		// Not made by Layout: blocks that fit no address at all.
		return fmt.Sprintf("%d blocks of %d ports don't fit on %d frontend(s): a block must hold %d to %d ports",
			e.Blocks, e.Size, e.Frontends, BlockAlign, PortsPerAddress)
	}
	need := (e.Blocks + perAddr - 1) / perAddr
	return fmt.Sprintf("%d blocks of %d ports don't fit on %d frontend(s): they hold %d, short by %d blocks (%d ports); %d frontend(s) needed",
		e.Blocks, e.Size, e.Frontends, e.Fit, e.Blocks-e.Fit, (e.Blocks-e.Fit)*e.Size, need)
}

// Layout places count blocks of size ports on the frontends, in order: the
// first frontend is filled from FirstPort upward before the next is used
// [S3]. It returns a *ShortfallError when they don't fit.
func Layout(frontends []uint32, count, size int) ([]Block, error) {
	if err := CheckBlockSize(size); err != nil {
		return nil, err
	}
	if count < 0 {
		return nil, fmt.Errorf("negative block count %d", count)
	}
	perAddr := PortsPerAddress / size
	if fit := perAddr * len(frontends); count > fit {
		return nil, &ShortfallError{Blocks: count, Size: size, Fit: fit, Frontends: len(frontends)}
	}
	blocks := make([]Block, count)
	for i := range blocks {
		fe, slot := i/perAddr, i%perAddr
		first := FirstPort + slot*size
		blocks[i] = Block{Public: frontends[fe], First: uint16(first), Last: uint16(first + size - 1)}
	}
	return blocks, nil
}

// NextTier returns, for a pool of members members whose blocks follow the
// tier table, the most members its tier holds and the block size of the
// tier after it. ok is false when members is out of the table's range;
// next is 0 at the last tier, where maxMembers is MaxPoolMembers.
func NextTier(members int) (maxMembers, next int, ok bool) {
	if members < 1 {
		return 0, 0, false
	}
	for i, t := range tiers {
		if members <= t.maxMembers {
			if i+1 < len(tiers) {
				next = tiers[i+1].ports
			}
			return t.maxMembers, next, true
		}
	}
	return 0, 0, false
}
