package nat

// UDP header view. ParseUDP validates a datagram once; the accessors then
// read and write fields without re-checking. Runs on the worker that owns
// the packet; nothing here allocates.

import "encoding/binary"

// UDPLen is the length of a UDP header.
const UDPLen = 8

// Offsets of the UDP header fields.
const (
	udpSrcPortOff  = 0
	udpDstPortOff  = 2
	udpLengthOff   = 4
	udpChecksumOff = 6
)

// UDP is a view of a UDP datagram: header and data. The accessors need a
// view of at least UDPLen bytes, from ParseUDP or ParseUDPEmbedded.
//
// A checksum field of zero means the sender computed no checksum; it must
// stay zero through translation. A computed checksum of zero is sent as
// 0xFFFF (RFC 768), which is why updates of a UDP checksum must map a
// result of 0 to 0xFFFF.
type UDP []byte

// ParseUDP validates b as a UDP datagram (the IPv4 payload) and returns its
// view cut to the UDP length: b must hold the 8-byte header and the length
// field must be at least 8 and at most len(b).
func ParseUDP(b []byte) (UDP, bool) {
	if len(b) < UDPLen {
		return nil, false
	}
	l := int(binary.BigEndian.Uint16(b[udpLengthOff:]))
	if l < UDPLen || l > len(b) {
		return nil, false
	}
	return UDP(b[:l]), true
}

// ParseUDPEmbedded returns the view of the UDP header quoted in an ICMP
// error, whose data is usually cut off: it checks only that b holds the
// 8-byte header, not the length field.
func ParseUDPEmbedded(b []byte) (UDP, bool) {
	if len(b) < UDPLen {
		return nil, false
	}
	return UDP(b), true
}

// SrcPort returns the source port.
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[udpSrcPortOff:]) }

// DstPort returns the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[udpDstPortOff:]) }

// SetSrcPort sets the source port.
func (u UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(u[udpSrcPortOff:], p) }

// SetDstPort sets the destination port.
func (u UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(u[udpDstPortOff:], p) }

// Length returns the length field: header plus data in bytes.
func (u UDP) Length() int { return int(binary.BigEndian.Uint16(u[udpLengthOff:])) }

// Checksum returns the checksum field (0: no checksum).
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[udpChecksumOff:]) }

// SetChecksum sets the checksum field.
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u[udpChecksumOff:], c) }

// Payload returns the data after the header.
func (u UDP) Payload() []byte { return u[UDPLen:] }
