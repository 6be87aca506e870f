package nat

// Ethernet II and ARP header views. Like every header view in this package
// they are typed byte slices: validate once (ParseEthernet, ARP.IsValid),
// then read and write fields without further checks. They run on the worker
// that owns the frame and never allocate.

import "encoding/binary"

// EthernetLen is the length of an untagged Ethernet II header.
const EthernetLen = 14

// Offsets of the Ethernet II header fields.
const (
	ethDstOff  = 0
	ethSrcOff  = 6
	ethTypeOff = 12
)

// EtherType values of the Ethernet II type field that natgw recognises.
// Only IPv4 and ARP are processed; IPv6 and VLAN-tagged frames are dropped
// as unsupported.
const (
	// EtherTypeIPv4 is the EtherType of IPv4.
	EtherTypeIPv4 = 0x0800
	// EtherTypeARP is the EtherType of ARP.
	EtherTypeARP = 0x0806
	// EtherTypeIPv6 is the EtherType of IPv6.
	EtherTypeIPv6 = 0x86DD
	// EtherTypeVLAN is the EtherType of an IEEE 802.1Q VLAN tag.
	EtherTypeVLAN = 0x8100
)

// Ethernet is a view of an Ethernet II header at the start of a frame. Its
// accessors need len(e) >= EthernetLen; ParseEthernet checks that.
type Ethernet []byte

// ParseEthernet returns the Ethernet view of frame b, or false when b is too
// short to hold an Ethernet II header.
func ParseEthernet(b []byte) (Ethernet, bool) {
	if len(b) < EthernetLen {
		return nil, false
	}
	return Ethernet(b), true
}

// DstMAC returns the destination MAC address; the slice aliases the frame.
func (e Ethernet) DstMAC() []byte { return e[ethDstOff : ethDstOff+6 : ethDstOff+6] }

// SrcMAC returns the source MAC address; the slice aliases the frame.
func (e Ethernet) SrcMAC() []byte { return e[ethSrcOff : ethSrcOff+6 : ethSrcOff+6] }

// Dst returns a copy of the destination MAC address.
func (e Ethernet) Dst() [6]byte { return [6]byte(e[ethDstOff : ethDstOff+6]) }

// Src returns a copy of the source MAC address.
func (e Ethernet) Src() [6]byte { return [6]byte(e[ethSrcOff : ethSrcOff+6]) }

// SetDst sets the destination MAC address.
func (e Ethernet) SetDst(mac [6]byte) { copy(e[ethDstOff:ethDstOff+6], mac[:]) }

// SetSrc sets the source MAC address.
func (e Ethernet) SetSrc(mac [6]byte) { copy(e[ethSrcOff:ethSrcOff+6], mac[:]) }

// EtherType returns the type field.
func (e Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(e[ethTypeOff:]) }

// SetEtherType sets the type field.
func (e Ethernet) SetEtherType(t uint16) { binary.BigEndian.PutUint16(e[ethTypeOff:], t) }

// Payload returns the bytes after the Ethernet header (which may include
// link-layer padding after the network packet).
func (e Ethernet) Payload() []byte { return e[EthernetLen:] }

// ARPLen is the length of an ARP packet for Ethernet and IPv4.
const ARPLen = 28

// ARP operation codes.
const (
	// ARPRequest is the operation code of an ARP request.
	ARPRequest = 1
	// ARPReply is the operation code of an ARP reply.
	ARPReply = 2
)

// Offsets and fixed values of an Ethernet/IPv4 ARP packet (RFC 826).
const (
	arpHTypeOff     = 0
	arpPTypeOff     = 2
	arpHLenOff      = 4
	arpPLenOff      = 5
	arpOpOff        = 6
	arpSenderMACOff = 8
	arpSenderIPOff  = 14
	arpTargetMACOff = 18
	arpTargetIPOff  = 24

	arpHTypeEthernet = 1
)

// ARP is a view of an ARP packet for Ethernet hardware and IPv4 protocol
// addresses. Call IsValid first; the other accessors need a valid view.
type ARP []byte

// IsValid reports whether a is long enough and is an Ethernet/IPv4 ARP
// packet (hardware type 1, protocol type 0x0800, address lengths 6 and 4).
func (a ARP) IsValid() bool {
	return len(a) >= ARPLen &&
		binary.BigEndian.Uint16(a[arpHTypeOff:]) == arpHTypeEthernet &&
		binary.BigEndian.Uint16(a[arpPTypeOff:]) == EtherTypeIPv4 &&
		a[arpHLenOff] == 6 && a[arpPLenOff] == 4
}

// Op returns the operation code (ARPRequest or ARPReply).
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[arpOpOff:]) }

// SenderMAC returns the sender hardware address; the slice aliases the packet.
func (a ARP) SenderMAC() []byte {
	return a[arpSenderMACOff : arpSenderMACOff+6 : arpSenderMACOff+6]
}

// SenderIP returns the sender protocol address in host byte order.
func (a ARP) SenderIP() uint32 { return binary.BigEndian.Uint32(a[arpSenderIPOff:]) }

// TargetMAC returns the target hardware address; the slice aliases the packet.
func (a ARP) TargetMAC() []byte {
	return a[arpTargetMACOff : arpTargetMACOff+6 : arpTargetMACOff+6]
}

// TargetIP returns the target protocol address in host byte order.
func (a ARP) TargetIP() uint32 { return binary.BigEndian.Uint32(a[arpTargetIPOff:]) }

// WriteARP writes an Ethernet/IPv4 ARP packet with operation op into b and
// returns ARPLen, or 0 (writing nothing) when len(b) < ARPLen. The Ethernet
// header is not included: write it with WriteEthernet before b.
func WriteARP(b []byte, op uint16, senderMAC [6]byte, senderIP uint32, targetMAC [6]byte, targetIP uint32) int {
	if len(b) < ARPLen {
		return 0
	}
	a := b[:ARPLen]
	binary.BigEndian.PutUint16(a[arpHTypeOff:], arpHTypeEthernet)
	binary.BigEndian.PutUint16(a[arpPTypeOff:], EtherTypeIPv4)
	a[arpHLenOff] = 6
	a[arpPLenOff] = 4
	binary.BigEndian.PutUint16(a[arpOpOff:], op)
	copy(a[arpSenderMACOff:arpSenderMACOff+6], senderMAC[:])
	binary.BigEndian.PutUint32(a[arpSenderIPOff:], senderIP)
	copy(a[arpTargetMACOff:arpTargetMACOff+6], targetMAC[:])
	binary.BigEndian.PutUint32(a[arpTargetIPOff:], targetIP)
	return ARPLen
}
