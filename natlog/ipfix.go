package natlog

import (
	"encoding/binary"
)

// This file encodes NAT records as IPFIX (RFC 7011) with the information
// elements of RFC 8158. It is pure encoding, used by the exporter on the
// management side: no sockets here.
//
// A message is a 16-byte header (version 10, length, export time,
// sequence number, observation domain) and sets. The template set (ID 2)
// describes one template per kind of record; data sets carry records of
// one template each. Every field has a fixed length except natPoolName,
// a string sent with the variable-length encoding (length 65535 in the
// template; a one-byte length, or 255 and a two-byte length, before the
// value: RFC 7011 section 7).

// IPFIX protocol numbers (RFC 7011 section 3).
const (
	ipfixVersion      = 10
	ipfixHeaderLen    = 16
	ipfixSetHeaderLen = 4
	templateSetID     = 2
	variableLength    = 0xFFFF
)

// Information element identifiers (IANA IPFIX registry; RFC 8158 section
// 4 for the NAT elements).
const (
	ieProtocolIdentifier          = 4
	ieSourceTransportPort         = 7
	ieSourceIPv4Address           = 8
	ieDestinationTransportPort    = 11
	ieDestinationIPv4Address      = 12
	ieFlowEndReason               = 136
	iePostNATSourceIPv4Address    = 225
	iePostNAPTSourceTransportPort = 227
	ieNATEvent                    = 230
	ieNATPoolName                 = 284
	ieObservationTimeMilliseconds = 323
	iePortRangeStart              = 361
	iePortRangeEnd                = 362
	ieNATQuotaExceededEvent       = 466
	ieMaxSessionEntries           = 471
)

// quotaMaxSessionEntries is natQuotaExceededEvent 1: the maximum number
// of sessions (flows) was reached.
const quotaMaxSessionEntries = 1

// Template IDs natgw uses (256 and up are data sets: RFC 7011 section 3.4.3).
const (
	templateBlock         = 256
	templateBinding       = 257
	templateSessionCreate = 258
	templateSessionDelete = 259
	templateExhausted     = 260
	templateQuota         = 261
)

// field is one field specifier of a template: element and length.
type field struct{ id, length uint16 }

// templates are natgw's templates, after RFC 8158's section 4.4 (each
// starts with observationTimeMilliseconds and natEvent).
var templates = []struct {
	id     uint16
	fields []field
}{
	{templateBlock, []field{{ieObservationTimeMilliseconds, 8}, {ieNATEvent, 1}, {ieSourceIPv4Address, 4},
		{iePostNATSourceIPv4Address, 4}, {iePortRangeStart, 2}, {iePortRangeEnd, 2}, {ieNATPoolName, variableLength}}},
	{templateBinding, []field{{ieObservationTimeMilliseconds, 8}, {ieNATEvent, 1}, {ieSourceIPv4Address, 4},
		{iePostNATSourceIPv4Address, 4}}},
	{templateSessionCreate, []field{{ieObservationTimeMilliseconds, 8}, {ieNATEvent, 1}, {ieProtocolIdentifier, 1},
		{ieSourceIPv4Address, 4}, {ieSourceTransportPort, 2}, {iePostNATSourceIPv4Address, 4},
		{iePostNAPTSourceTransportPort, 2}, {ieDestinationIPv4Address, 4}, {ieDestinationTransportPort, 2}}},
	{templateSessionDelete, []field{{ieObservationTimeMilliseconds, 8}, {ieNATEvent, 1}, {ieProtocolIdentifier, 1},
		{ieSourceIPv4Address, 4}, {ieSourceTransportPort, 2}, {iePostNATSourceIPv4Address, 4},
		{iePostNAPTSourceTransportPort, 2}, {ieDestinationIPv4Address, 4}, {ieDestinationTransportPort, 2},
		{ieFlowEndReason, 1}}},
	{templateExhausted, []field{{ieObservationTimeMilliseconds, 8}, {ieNATEvent, 1}, {ieProtocolIdentifier, 1},
		{ieSourceIPv4Address, 4}, {iePostNATSourceIPv4Address, 4}, {ieDestinationIPv4Address, 4},
		{ieDestinationTransportPort, 2}, {ieNATPoolName, variableLength}}},
	{templateQuota, []field{{ieObservationTimeMilliseconds, 8}, {ieNATEvent, 1}, {ieNATQuotaExceededEvent, 4},
		{ieMaxSessionEntries, 4}}},
}

// templateOf returns the template of a record's event (0: none).
func templateOf(e NATEvent) uint16 {
	switch e {
	case EventBlockAllocate, EventBlockRelease:
		return templateBlock
	case EventBindingCreate, EventBindingDelete:
		return templateBinding
	case EventSessionCreate:
		return templateSessionCreate
	case EventSessionDelete:
		return templateSessionDelete
	case EventPortsExhausted:
		return templateExhausted
	case EventQuotaExceeded:
		return templateQuota
	}
	return 0
}

// appendHeader appends a message header; its length and sequence number
// are set by finishMessage.
func appendHeader(b []byte, exportTime uint32, domain uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, ipfixVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, exportTime)
	b = binary.BigEndian.AppendUint32(b, 0)
	return binary.BigEndian.AppendUint32(b, domain)
}

// setLength sets the length of a message (msg begins with its header).
func setLength(msg []byte) { binary.BigEndian.PutUint16(msg[2:], uint16(len(msg))) }

// setSequence sets the sequence number of a message: the number of data
// records sent in the transport session before it (RFC 7011 section 3.1).
func setSequence(msg []byte, seq uint32) { binary.BigEndian.PutUint32(msg[8:], seq) }

// TemplateMessage returns a message carrying every template in one
// template set, with sequence number seq (template records don't count
// towards it).
func TemplateMessage(exportTime, seq, domain uint32) []byte {
	b := appendHeader(make([]byte, 0, 256), exportTime, domain)
	set := len(b)
	b = binary.BigEndian.AppendUint16(b, templateSetID)
	b = binary.BigEndian.AppendUint16(b, 0)
	for _, t := range templates {
		b = binary.BigEndian.AppendUint16(b, t.id)
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.fields)))
		for _, f := range t.fields {
			b = binary.BigEndian.AppendUint16(b, f.id)
			b = binary.BigEndian.AppendUint16(b, f.length)
		}
	}
	binary.BigEndian.PutUint16(b[set+2:], uint16(len(b)-set))
	setLength(b)
	setSequence(b, seq)
	return b
}

// appendString appends a variable-length string (RFC 7011 section 7),
// at most 65535 bytes of it.
func appendString(b []byte, s string) []byte {
	if len(s) > 0xFFFF {
		s = s[:0xFFFF]
	}
	if len(s) < 255 {
		b = append(b, byte(len(s)))
	} else {
		b = append(b, 255)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	}
	return append(b, s...)
}

// appendRecord appends the data record of r, in the field order of its
// template (templateOf(r.Event), which must not be 0).
func appendRecord(b []byte, r *Record) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixMilli()))
	b = append(b, byte(r.Event))
	switch templateOf(r.Event) {
	case templateBlock:
		b = binary.BigEndian.AppendUint32(b, r.Private)
		b = binary.BigEndian.AppendUint32(b, r.Public)
		b = binary.BigEndian.AppendUint16(b, r.First)
		b = binary.BigEndian.AppendUint16(b, r.Last)
		b = appendString(b, r.Pool)
	case templateBinding:
		b = binary.BigEndian.AppendUint32(b, r.Private)
		b = binary.BigEndian.AppendUint32(b, r.Public)
	case templateSessionCreate, templateSessionDelete:
		b = append(b, r.Proto)
		b = binary.BigEndian.AppendUint32(b, r.Private)
		b = binary.BigEndian.AppendUint16(b, r.PrivatePort)
		b = binary.BigEndian.AppendUint32(b, r.Public)
		b = binary.BigEndian.AppendUint16(b, r.PublicPort)
		b = binary.BigEndian.AppendUint32(b, r.Remote)
		b = binary.BigEndian.AppendUint16(b, r.RemotePort)
		if r.Event == EventSessionDelete {
			b = append(b, byte(r.Reason))
		}
	case templateExhausted:
		b = append(b, r.Proto)
		b = binary.BigEndian.AppendUint32(b, r.Private)
		b = binary.BigEndian.AppendUint32(b, r.Public)
		b = binary.BigEndian.AppendUint32(b, r.Remote)
		b = binary.BigEndian.AppendUint16(b, r.RemotePort)
		b = appendString(b, r.Pool)
	case templateQuota:
		b = binary.BigEndian.AppendUint32(b, quotaMaxSessionEntries)
		b = binary.BigEndian.AppendUint32(b, r.MaxEntries)
	}
	return b
}

// MessageBuilder packs records into IPFIX messages of at most a given
// size, one data set per run of records of the same template. It is
// used by one goroutine.
type MessageBuilder struct {
	max     int
	domain  uint32
	msg     []byte
	set     int // offset of the open data set's header, or -1
	setID   uint16
	records uint32
	scratch []byte
}

// NewMessageBuilder returns a builder of messages of at most size bytes
// (at least 512) for observation domain domain.
func NewMessageBuilder(size int, domain uint32) *MessageBuilder {
	return &MessageBuilder{max: max(size, 512), domain: domain, set: -1}
}

// Start begins a new message with the given export time (seconds since
// the epoch), dropping anything not finished.
func (m *MessageBuilder) Start(exportTime uint32) {
	m.msg = appendHeader(m.msg[:0], exportTime, m.domain)
	m.set, m.setID, m.records = -1, 0, 0
}

// Records returns the number of data records in the message so far.
func (m *MessageBuilder) Records() uint32 { return m.records }

// Add appends r to the message. It returns false, adding nothing, when
// the record does not fit (the caller finishes the message and starts
// another) or has no template. A record too big for an empty message is
// not added either (it can't be, with natgw's templates and pool names
// of validated length).
func (m *MessageBuilder) Add(r *Record) bool {
	id := templateOf(r.Event)
	if id == 0 {
		return false
	}
	m.scratch = appendRecord(m.scratch[:0], r)
	need := len(m.scratch)
	if m.set < 0 || m.setID != id {
		need += ipfixSetHeaderLen
	}
	if len(m.msg)+need > m.max {
		return false
	}
	if m.set < 0 || m.setID != id {
		m.closeSet()
		m.set, m.setID = len(m.msg), id
		m.msg = binary.BigEndian.AppendUint16(m.msg, id)
		m.msg = binary.BigEndian.AppendUint16(m.msg, 0)
	}
	m.msg = append(m.msg, m.scratch...)
	m.records++
	return true
}

func (m *MessageBuilder) closeSet() {
	if m.set >= 0 {
		binary.BigEndian.PutUint16(m.msg[m.set+2:], uint16(len(m.msg)-m.set))
		m.set = -1
	}
}

// Finish completes the message and returns it (valid until the next
// Start); its sequence number is 0 until SetSequence.
func (m *MessageBuilder) Finish() []byte {
	m.closeSet()
	setLength(m.msg)
	return m.msg
}

// SetSequence sets the sequence number of a finished message.
func SetSequence(msg []byte, seq uint32) { setSequence(msg, seq) }
