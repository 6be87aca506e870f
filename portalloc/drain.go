package portalloc

// LayoutDraining is LayoutStable for a pool some of whose frontends are
// set to drain (issue 19): draining reports them. Members' blocks go to
// the other frontends where room allows: a block already there stays, a
// block on a draining frontend (or a new member's) moves to a free slot
// of the other frontends while they have one; the rest keep their block
// on the draining frontend, or get one there, so that every member still
// has a block. The caller finds those by the blocks' addresses. With no
// draining frontend it is LayoutStable.
func LayoutDraining(frontends []uint32, draining func(uint32) bool, size int, prev []Block) ([]Block, error) {
	var active, drain []uint32
	for _, fe := range frontends {
		if draining(fe) {
			drain = append(drain, fe)
		} else {
			active = append(active, fe)
		}
	}
	if len(drain) == 0 {
		return LayoutStable(frontends, size, prev)
	}
	if err := CheckBlockSize(size); err != nil {
		return nil, err
	}
	onActive := make(map[uint32]bool, len(active))
	for _, fe := range active {
		onActive[fe] = true
	}
	room := PortsPerAddress / size * len(active)
	for _, b := range prev {
		if onActive[b.Public] {
			room--
		}
	}
	moved := make([]Block, len(prev))
	for i, b := range prev {
		moved[i] = b
		if !onActive[b.Public] && room > 0 {
			moved[i] = Block{} // laid out afresh: the first free slot, on an active frontend
			room--
		}
	}
	// Active frontends first, so fresh blocks fill them before the
	// draining ones.
	return LayoutStable(append(active, drain...), size, moved)
}
