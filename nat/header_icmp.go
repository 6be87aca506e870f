package nat

// ICMP header view. ParseICMP validates a message once; the accessors then
// read and write fields without re-checking. Runs on the worker that owns
// the packet; nothing here allocates.

import "encoding/binary"

// ICMPHeaderLen is the length of the ICMP header: type, code, checksum and
// the 4-byte rest-of-header (identifier and sequence number of an echo,
// next-hop MTU of a fragmentation-needed error).
const ICMPHeaderLen = 8

// ICMPErrorMaxLen is the largest ICMP error natgw originates, IP header
// included (RFC 1812 4.3.2.3).
const ICMPErrorMaxLen = 576

// ICMP message types natgw handles.
const (
	// ICMPEchoReply is the type of an echo reply.
	ICMPEchoReply = 0
	// ICMPDestUnreachable is the type of a destination-unreachable error.
	ICMPDestUnreachable = 3
	// ICMPEchoRequest is the type of an echo request.
	ICMPEchoRequest = 8
	// ICMPTimeExceeded is the type of a time-exceeded error.
	ICMPTimeExceeded = 11
	// ICMPParamProblem is the type of a parameter-problem error.
	ICMPParamProblem = 12
)

// ICMP codes natgw originates or inspects.
const (
	// ICMPCodeHostUnreachable is the destination-unreachable code for an
	// unreachable host.
	ICMPCodeHostUnreachable = 1
	// ICMPCodePortUnreachable is the destination-unreachable code for an
	// unreachable port.
	ICMPCodePortUnreachable = 3
	// ICMPCodeFragNeeded is the destination-unreachable code for
	// "fragmentation needed and DF set"; the next-hop MTU is in MTU.
	ICMPCodeFragNeeded = 4
	// ICMPCodeAdminProhibited is the destination-unreachable code for
	// "communication administratively prohibited" (RFC 1812), natgw's
	// answer to a flow refused for lack of a port (on_exhaustion).
	ICMPCodeAdminProhibited = 13
	// ICMPCodeTTLExceeded is the time-exceeded code for a TTL that reached
	// zero in transit.
	ICMPCodeTTLExceeded = 0
)

// Offsets of the ICMP header fields.
const (
	icmpTypeOff     = 0
	icmpCodeOff     = 1
	icmpChecksumOff = 2
	icmpIDOff       = 4
	icmpSeqOff      = 6
	icmpMTUOff      = 6
)

// IsICMPError reports whether ICMP type t is an error that quotes the
// packet that caused it and that natgw translates back [S8]: destination
// unreachable, time exceeded or parameter problem.
func IsICMPError(t uint8) bool {
	return t == ICMPDestUnreachable || t == ICMPTimeExceeded || t == ICMPParamProblem
}

// ICMP is a view of an ICMP message: the 8-byte header and its payload.
// The accessors need a view from ParseICMP (at least ICMPHeaderLen bytes).
type ICMP []byte

// ParseICMP validates b as an ICMP message (the IPv4 payload) and returns
// its view: b must hold the 8-byte header. The payload of an error is the
// quoted packet; parse it with ParseIPv4Embedded.
func ParseICMP(b []byte) (ICMP, bool) {
	if len(b) < ICMPHeaderLen {
		return nil, false
	}
	return ICMP(b), true
}

// Type returns the message type.
func (c ICMP) Type() uint8 { return c[icmpTypeOff] }

// Code returns the message code.
func (c ICMP) Code() uint8 { return c[icmpCodeOff] }

// Checksum returns the checksum field.
func (c ICMP) Checksum() uint16 { return binary.BigEndian.Uint16(c[icmpChecksumOff:]) }

// SetChecksum sets the checksum field.
func (c ICMP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(c[icmpChecksumOff:], v) }

// ID returns the identifier of an echo request or reply.
func (c ICMP) ID() uint16 { return binary.BigEndian.Uint16(c[icmpIDOff:]) }

// SetID sets the identifier of an echo request or reply.
func (c ICMP) SetID(id uint16) { binary.BigEndian.PutUint16(c[icmpIDOff:], id) }

// Seq returns the sequence number of an echo request or reply.
func (c ICMP) Seq() uint16 { return binary.BigEndian.Uint16(c[icmpSeqOff:]) }

// MTU returns the next-hop MTU of a fragmentation-needed error (RFC 1191).
func (c ICMP) MTU() uint16 { return binary.BigEndian.Uint16(c[icmpMTUOff:]) }

// SetMTU sets the next-hop MTU of a fragmentation-needed error.
func (c ICMP) SetMTU(mtu uint16) { binary.BigEndian.PutUint16(c[icmpMTUOff:], mtu) }

// Payload returns the bytes after the 8-byte header: the echo data, or for
// an error the quoted original IP header and at least 8 bytes of its
// payload.
func (c ICMP) Payload() []byte { return c[ICMPHeaderLen:] }
