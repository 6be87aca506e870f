package nat

// Fragmenting at egress (RFC 4787 REQ-13a, RFC 791 §3.2): a translated
// packet without DF that is larger than the egress MTU is cut into
// fragments of at most the MTU. The first fragment keeps the whole header,
// options included; later fragments carry only the options whose copy flag
// is set. Each fragment's data is a multiple of 8 bytes except the last;
// offsets add to the packet's own offset and the last fragment keeps the
// packet's own MF, so a packet that was already a fragment is cut
// correctly too. Nothing here allocates: the caller brings the buffers.

import "encoding/binary"

// FragmentedHeaderLen returns the header length of the fragments of ip:
// first is the first fragment's (the whole header), later the length of
// later fragments' headers (20 bytes plus the copied options, padded to a
// multiple of 4). ok is false when the options are malformed (an option
// length under 2 or running past the header).
func FragmentedHeaderLen(ip IPv4) (first, later int, ok bool) {
	hl := ip.HeaderLen()
	n, ok := copiedOptions(nil, ip[IPv4MinLen:hl])
	if !ok {
		return 0, 0, false
	}
	return hl, IPv4MinLen + (n+3)&^3, true
}

// copiedOptions walks an IPv4 options area and returns the total length
// of the options whose copy flag (the type's top bit) is set; when dst is
// not nil it also copies them there. End of options (type 0) stops the
// walk; no-operation (type 1) is one byte and never copied.
func copiedOptions(dst, opts []byte) (int, bool) {
	n := 0
	for i := 0; i < len(opts); {
		typ := opts[i]
		if typ == 0 {
			break
		}
		if typ == 1 {
			i++
			continue
		}
		if i+1 >= len(opts) {
			return 0, false
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return 0, false
		}
		if typ&0x80 != 0 {
			if dst != nil {
				copy(dst[n:], opts[i:i+l])
			}
			n += l
		}
		i += l
	}
	return n, true
}

// FragmentCount returns how many fragments of at most mtu bytes ip is cut
// into, or 0 when it can't be (malformed options, or an MTU too small to
// carry 8 bytes of data after a header). A packet that fits is 1.
func FragmentCount(ip IPv4, mtu int) int {
	first, later, ok := FragmentedHeaderLen(ip)
	if !ok {
		return 0
	}
	data := len(ip.Payload())
	if first+data <= mtu {
		return 1
	}
	if ip.FragOffset()+data > 0xffff-IPv4MinLen {
		return 0 // offsets would not fit the field
	}
	firstData := (mtu - first) &^ 7
	laterData := (mtu - later) &^ 7
	if firstData <= 0 || laterData <= 0 {
		return 0
	}
	rest := data - firstData
	return 1 + (rest+laterData-1)/laterData
}

// WriteFragment writes into dst the fragment of ip whose data starts at
// off bytes into ip's payload (0 for the first fragment, then each call's
// next), at most mtu bytes long, and returns its length and the offset of
// the next fragment's data (len(ip.Payload()) after the last). The header
// checksum is computed; the transport header and checksum are left as
// they are (they cover the whole datagram). dst may be ip itself for the
// first fragment (off 0), written last: the first fragment's data stays
// where it is and only header fields change. n is 0 when ip can't be cut
// (see FragmentCount) or dst is too short.
func WriteFragment(dst []byte, ip IPv4, off, mtu int) (n, next int) {
	first, later, ok := FragmentedHeaderLen(ip)
	if !ok {
		return 0, 0
	}
	payload := ip.Payload()
	hl := later
	if off == 0 {
		hl = first
	}
	room := (mtu - hl) &^ 7
	if room <= 0 || off < 0 || off&7 != 0 || off >= len(payload) && len(payload) > 0 ||
		ip.FragOffset()+len(payload) > 0xffff-IPv4MinLen {
		return 0, 0
	}
	chunk := min(room, len(payload)-off)
	if hl+chunk > len(dst) {
		return 0, 0
	}
	frag := binary.BigEndian.Uint16(ip[ipv4FragOff:])
	if off == 0 {
		copy(dst, ip[:hl+chunk]) // a no-op when dst is ip
	} else {
		copy(dst, ip[:IPv4MinLen])
		k, _ := copiedOptions(dst[IPv4MinLen:hl], ip[IPv4MinLen:ip.HeaderLen()])
		clear(dst[IPv4MinLen+k : hl]) // end of options, padding
		copy(dst[hl:], payload[off:off+chunk])
		dst[ipv4VerIHLOff] = 0x40 | byte(hl>>2)
	}
	out := IPv4(dst[:hl+chunk])
	offset := int(frag&ipv4FragOffsetMask) + off>>3
	flags := frag &^ (ipv4FlagMF | ipv4FragOffsetMask)
	if off+chunk < len(payload) || frag&ipv4FlagMF != 0 {
		flags |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(out[ipv4FragOff:], flags|uint16(offset)&ipv4FragOffsetMask)
	out.SetTotalLen(uint16(hl + chunk))
	out.SetChecksum(0)
	out.SetChecksum(out.ComputeChecksum())
	return hl + chunk, off + chunk
}
