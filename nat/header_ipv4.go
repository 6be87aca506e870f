package nat

// IPv4 header view. ParseIPv4 validates a received packet once; the
// accessors then read and write fields without re-checking. Runs on the
// worker that owns the packet; nothing here allocates.

import "encoding/binary"

// IPv4MinLen is the length of an IPv4 header without options.
const IPv4MinLen = 20

// IP protocol numbers natgw translates.
const (
	// ProtoICMP is the IP protocol number of ICMP.
	ProtoICMP = 1
	// ProtoTCP is the IP protocol number of TCP.
	ProtoTCP = 6
	// ProtoUDP is the IP protocol number of UDP.
	ProtoUDP = 17
)

// Offsets of the IPv4 header fields, and flag bits of the fragment field.
const (
	ipv4VerIHLOff   = 0
	ipv4TOSOff      = 1
	ipv4TotalLenOff = 2
	ipv4IDOff       = 4
	ipv4FragOff     = 6
	ipv4TTLOff      = 8
	ipv4ProtoOff    = 9
	ipv4ChecksumOff = 10
	ipv4SrcOff      = 12
	ipv4DstOff      = 16

	ipv4FlagDF         = 0x4000
	ipv4FlagMF         = 0x2000
	ipv4FragOffsetMask = 0x1fff
)

// IPv4 is a view of an IPv4 packet: the header, options included, followed
// by the payload. The accessors need a view obtained from ParseIPv4 or
// ParseIPv4Embedded (or written by WriteIPv4); on anything else they may
// panic. Setters change one field and leave the header checksum alone: the
// caller updates it incrementally (UpdateChecksum16, UpdateChecksum32) or
// recomputes it with ComputeChecksum.
type IPv4 []byte

// ParseIPv4 validates b as a complete IPv4 packet and returns its view. It
// checks that b holds a 20-byte header, that the version is 4, that the
// header length is at least 20 and fits in b, that the total length covers
// the header and fits in b, and that the header checksum is correct. The
// view is b cut to the total length, so Ethernet padding is dropped.
// Fragments are accepted; IsFragment tells them apart.
func ParseIPv4(b []byte) (IPv4, bool) {
	if len(b) < IPv4MinLen {
		return nil, false
	}
	vihl := b[ipv4VerIHLOff]
	hl := int(vihl&0x0f) << 2
	tl := int(binary.BigEndian.Uint16(b[ipv4TotalLenOff:]))
	if vihl>>4 != 4 || hl < IPv4MinLen || tl < hl || tl > len(b) {
		return nil, false
	}
	if !headerChecksumValid(b, hl) {
		return nil, false
	}
	return IPv4(b[:tl]), true
}

// headerChecksumValid checks an IPv4 header checksum. The common 20-byte
// header is five 32-bit words, summed in a 64-bit accumulator that can't
// overflow, so it needs no carry chain.
func headerChecksumValid(b []byte, hl int) bool {
	if hl == IPv4MinLen {
		b = b[:IPv4MinLen]
		s := uint64(binary.BigEndian.Uint32(b[0:])) + uint64(binary.BigEndian.Uint32(b[4:])) +
			uint64(binary.BigEndian.Uint32(b[8:])) + uint64(binary.BigEndian.Uint32(b[12:])) +
			uint64(binary.BigEndian.Uint32(b[16:]))
		return Fold(fold64(s)) == 0
	}
	return Fold(Sum(b[:hl], 0)) == 0
}

// ParseIPv4Embedded validates b as the IPv4 packet quoted inside an ICMP
// error, which is usually truncated to its header and the first 8 bytes of
// its payload. It checks that b holds a 20-byte header, that the version is
// 4, that the header length is at least 20 and fits in b, and that the total
// length field is at least the header length; the total length may exceed
// len(b) and the header checksum is not required to be valid (ChecksumValid
// reports it). The view is b cut to the total length when b is longer.
//
// TotalLen of an embedded view is the original packet's length, which may
// exceed len(view); Payload returns only the quoted bytes. Quoted payloads
// are often just 8 bytes: on such a slice a TCP view (ParseTCPEmbedded)
// only gives the ports and sequence number — its checksum field is at bytes
// 16-17, beyond the quote — and a UDP view (ParseUDPEmbedded) gives ports,
// length and checksum.
func ParseIPv4Embedded(b []byte) (IPv4, bool) {
	if len(b) < IPv4MinLen {
		return nil, false
	}
	vihl := b[ipv4VerIHLOff]
	hl := int(vihl&0x0f) << 2
	tl := int(binary.BigEndian.Uint16(b[ipv4TotalLenOff:]))
	if vihl>>4 != 4 || hl < IPv4MinLen || hl > len(b) || tl < hl {
		return nil, false
	}
	if tl < len(b) {
		b = b[:tl]
	}
	return IPv4(b), true
}

// HeaderLen returns the header length in bytes, options included.
func (ip IPv4) HeaderLen() int { return int(ip[ipv4VerIHLOff]&0x0f) << 2 }

// TotalLen returns the total length field: header plus payload in bytes.
func (ip IPv4) TotalLen() int { return int(binary.BigEndian.Uint16(ip[ipv4TotalLenOff:])) }

// TOS returns the type-of-service (DSCP and ECN) byte.
func (ip IPv4) TOS() uint8 { return ip[ipv4TOSOff] }

// ID returns the identification field.
func (ip IPv4) ID() uint16 { return binary.BigEndian.Uint16(ip[ipv4IDOff:]) }

// DF reports whether the don't-fragment flag is set.
func (ip IPv4) DF() bool { return binary.BigEndian.Uint16(ip[ipv4FragOff:])&ipv4FlagDF != 0 }

// MF reports whether the more-fragments flag is set.
func (ip IPv4) MF() bool { return binary.BigEndian.Uint16(ip[ipv4FragOff:])&ipv4FlagMF != 0 }

// FragOffset returns the fragment offset in bytes.
func (ip IPv4) FragOffset() int {
	return int(binary.BigEndian.Uint16(ip[ipv4FragOff:])&ipv4FragOffsetMask) << 3
}

// IsFragment reports whether the packet is a fragment: more fragments
// follow it or it does not start at offset 0.
func (ip IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(ip[ipv4FragOff:])&(ipv4FlagMF|ipv4FragOffsetMask) != 0
}

// TTL returns the time-to-live field.
func (ip IPv4) TTL() uint8 { return ip[ipv4TTLOff] }

// Protocol returns the protocol field (ProtoTCP, ProtoUDP, ProtoICMP, ...).
func (ip IPv4) Protocol() uint8 { return ip[ipv4ProtoOff] }

// Checksum returns the header checksum field.
func (ip IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(ip[ipv4ChecksumOff:]) }

// Src returns the source address in host byte order.
func (ip IPv4) Src() uint32 { return binary.BigEndian.Uint32(ip[ipv4SrcOff:]) }

// Dst returns the destination address in host byte order.
func (ip IPv4) Dst() uint32 { return binary.BigEndian.Uint32(ip[ipv4DstOff:]) }

// Payload returns the bytes after the header, up to the total length or the
// end of the view, whichever comes first.
func (ip IPv4) Payload() []byte {
	hl := ip.HeaderLen()
	end := ip.TotalLen()
	if end > len(ip) {
		end = len(ip)
	}
	if end < hl {
		end = hl
	}
	return ip[hl:end]
}

// SetSrc sets the source address (host byte order).
func (ip IPv4) SetSrc(a uint32) { binary.BigEndian.PutUint32(ip[ipv4SrcOff:], a) }

// SetDst sets the destination address (host byte order).
func (ip IPv4) SetDst(a uint32) { binary.BigEndian.PutUint32(ip[ipv4DstOff:], a) }

// SetTTL sets the time-to-live field.
func (ip IPv4) SetTTL(ttl uint8) { ip[ipv4TTLOff] = ttl }

// SetChecksum sets the header checksum field.
func (ip IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(ip[ipv4ChecksumOff:], c) }

// SetTotalLen sets the total length field.
func (ip IPv4) SetTotalLen(n uint16) { binary.BigEndian.PutUint16(ip[ipv4TotalLenOff:], n) }

// SetID sets the identification field.
func (ip IPv4) SetID(id uint16) { binary.BigEndian.PutUint16(ip[ipv4IDOff:], id) }

// ComputeChecksum returns the header checksum computed from scratch over
// the whole header, options included, as if the checksum field were zero.
// The view must hold the whole header.
func (ip IPv4) ComputeChecksum() uint16 {
	h := ip[:ip.HeaderLen()]
	return Fold(Sum(h[ipv4ChecksumOff+2:], Sum(h[:ipv4ChecksumOff], 0)))
}

// ChecksumValid reports whether the header checksum field is correct. The
// view must hold the whole header.
func (ip IPv4) ChecksumValid() bool {
	return Fold(Sum(ip[:ip.HeaderLen()], 0)) == 0
}
