package nat

// TCP header view. ParseTCP validates a segment once; the accessors then
// read and write fields without re-checking. Runs on the worker that owns
// the packet; nothing here allocates.

import "encoding/binary"

// TCPMinLen is the length of a TCP header without options.
const TCPMinLen = 20

// TCP flag bits, as returned by TCP.Flags.
const (
	// TCPFlagFIN marks the sender's last byte of data.
	TCPFlagFIN = 0x01
	// TCPFlagSYN synchronises sequence numbers (connection open).
	TCPFlagSYN = 0x02
	// TCPFlagRST resets the connection.
	TCPFlagRST = 0x04
	// TCPFlagPSH asks the receiver to push data to the application.
	TCPFlagPSH = 0x08
	// TCPFlagACK marks the acknowledgment field as significant.
	TCPFlagACK = 0x10
	// TCPFlagURG marks the urgent pointer as significant.
	TCPFlagURG = 0x20
)

// Offsets of the TCP header fields.
const (
	tcpSrcPortOff  = 0
	tcpDstPortOff  = 2
	tcpSeqOff      = 4
	tcpAckOff      = 8
	tcpDataOffOff  = 12
	tcpFlagsOff    = 13
	tcpWindowOff   = 14
	tcpChecksumOff = 16
	tcpUrgentOff   = 18
)

// TCP is a view of a TCP segment: header, options and data. The accessors
// need a view from ParseTCP (at least TCPMinLen bytes). A view from
// ParseTCPEmbedded may be only 8 bytes long: then only SrcPort, DstPort,
// Seq and their setters may be used, and HasChecksumField tells whether
// the checksum field (bytes 16-17) is present.
type TCP []byte

// ParseTCP validates b as a TCP segment (the IPv4 payload) and returns its
// view: b must hold a 20-byte header whose data offset is at least 5 words
// and fits in b.
func ParseTCP(b []byte) (TCP, bool) {
	if len(b) < TCPMinLen {
		return nil, false
	}
	hl := int(b[tcpDataOffOff]>>4) << 2
	if hl < TCPMinLen || hl > len(b) {
		return nil, false
	}
	return TCP(b), true
}

// ParseTCPEmbedded returns the view of the TCP header quoted in an ICMP
// error, which is often only its first 8 bytes. It checks only that b holds
// those 8 bytes; see the TCP type for what such a view allows.
func ParseTCPEmbedded(b []byte) (TCP, bool) {
	if len(b) < 8 {
		return nil, false
	}
	return TCP(b), true
}

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[tcpSrcPortOff:]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[tcpDstPortOff:]) }

// SetSrcPort sets the source port.
func (t TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(t[tcpSrcPortOff:], p) }

// SetDstPort sets the destination port.
func (t TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(t[tcpDstPortOff:], p) }

// Seq returns the sequence number.
func (t TCP) Seq() uint32 { return binary.BigEndian.Uint32(t[tcpSeqOff:]) }

// Ack returns the acknowledgment number.
func (t TCP) Ack() uint32 { return binary.BigEndian.Uint32(t[tcpAckOff:]) }

// HeaderLen returns the header length in bytes (data offset), options
// included.
func (t TCP) HeaderLen() int { return int(t[tcpDataOffOff]>>4) << 2 }

// Flags returns the flag byte (TCPFlagFIN, TCPFlagSYN, ...).
func (t TCP) Flags() uint8 { return t[tcpFlagsOff] }

// Window returns the receive window field.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[tcpWindowOff:]) }

// Checksum returns the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[tcpChecksumOff:]) }

// SetChecksum sets the checksum field.
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[tcpChecksumOff:], c) }

// HasChecksumField reports whether the view is long enough to hold the
// checksum field, which a truncated quote in an ICMP error may lack.
func (t TCP) HasChecksumField() bool { return len(t) >= tcpChecksumOff+2 }

// Payload returns the segment data after the header and options.
func (t TCP) Payload() []byte { return t[t.HeaderLen():] }
