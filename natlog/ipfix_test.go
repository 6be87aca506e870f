package natlog

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// t0 is 2026-12-05T23:59:00.123Z: 1796515140123 ms since the epoch,
// 0x00_00_01_A2_48_A5_92_1B.
var t0 = time.UnixMilli(1796515140123)

func TestIPFIXTemplateMessage(t *testing.T) {
	msg := TemplateMessage(0x6752_3A00, 7, 1)
	require.GreaterOrEqual(t, len(msg), 16+4)
	want := []byte{
		0x00, 0x0A, // version 10
		byte(len(msg) >> 8), byte(len(msg)), // message length
		0x67, 0x52, 0x3A, 0x00, // export time
		0x00, 0x00, 0x00, 0x07, // sequence number
		0x00, 0x00, 0x00, 0x01, // observation domain
		0x00, 0x02, // set ID 2: template set
		byte((len(msg) - 16) >> 8), byte(len(msg) - 16), // set length: the rest
		// Template 256, 7 fields: the port block template.
		0x01, 0x00, 0x00, 0x07,
		0x01, 0x43, 0x00, 0x08, // observationTimeMilliseconds (323), 8
		0x00, 0xE6, 0x00, 0x01, // natEvent (230), 1
		0x00, 0x08, 0x00, 0x04, // sourceIPv4Address (8), 4
		0x00, 0xE1, 0x00, 0x04, // postNATSourceIPv4Address (225), 4
		0x01, 0x69, 0x00, 0x02, // portRangeStart (361), 2
		0x01, 0x6A, 0x00, 0x02, // portRangeEnd (362), 2
		0x01, 0x1C, 0xFF, 0xFF, // natPoolName (284), variable length
		// Template 257, 4 fields: the address binding template.
		0x01, 0x01, 0x00, 0x04,
		0x01, 0x43, 0x00, 0x08,
		0x00, 0xE6, 0x00, 0x01,
		0x00, 0x08, 0x00, 0x04,
		0x00, 0xE1, 0x00, 0x04,
		// Template 258, 9 fields: session create.
		0x01, 0x02, 0x00, 0x09,
		0x01, 0x43, 0x00, 0x08,
		0x00, 0xE6, 0x00, 0x01,
		0x00, 0x04, 0x00, 0x01, // protocolIdentifier (4), 1
		0x00, 0x08, 0x00, 0x04,
		0x00, 0x07, 0x00, 0x02, // sourceTransportPort (7), 2
		0x00, 0xE1, 0x00, 0x04,
		0x00, 0xE3, 0x00, 0x02, // postNAPTSourceTransportPort (227), 2
		0x00, 0x0C, 0x00, 0x04, // destinationIPv4Address (12), 4
		0x00, 0x0B, 0x00, 0x02, // destinationTransportPort (11), 2
		// Template 259, 10 fields: session delete, the same and the reason.
		0x01, 0x03, 0x00, 0x0A,
		0x01, 0x43, 0x00, 0x08,
		0x00, 0xE6, 0x00, 0x01,
		0x00, 0x04, 0x00, 0x01,
		0x00, 0x08, 0x00, 0x04,
		0x00, 0x07, 0x00, 0x02,
		0x00, 0xE1, 0x00, 0x04,
		0x00, 0xE3, 0x00, 0x02,
		0x00, 0x0C, 0x00, 0x04,
		0x00, 0x0B, 0x00, 0x02,
		0x00, 0x88, 0x00, 0x01, // flowEndReason (136), 1
		// Template 260, 8 fields: ports exhausted.
		0x01, 0x04, 0x00, 0x08,
		0x01, 0x43, 0x00, 0x08,
		0x00, 0xE6, 0x00, 0x01,
		0x00, 0x04, 0x00, 0x01,
		0x00, 0x08, 0x00, 0x04,
		0x00, 0xE1, 0x00, 0x04, // postNATSourceIPv4Address: whose ports ran out
		0x00, 0x0C, 0x00, 0x04,
		0x00, 0x0B, 0x00, 0x02,
		0x01, 0x1C, 0xFF, 0xFF,
		// Template 261, 4 fields: quota exceeded.
		0x01, 0x05, 0x00, 0x04,
		0x01, 0x43, 0x00, 0x08,
		0x00, 0xE6, 0x00, 0x01,
		0x01, 0xD2, 0x00, 0x04, // natQuotaExceededEvent (466), 4
		0x01, 0xD7, 0x00, 0x04, // maxSessionEntries (471), 4
	}
	assert.Equal(t, want, msg)
}

func TestIPFIXDataMessage(t *testing.T) {
	m := NewMessageBuilder(1400, 1)
	m.Start(0x6752_3A00)
	block := BlockRecord(BlockEvent{Time: t0, Kind: BlockAssigned, Scope: ScopePool, Name: "web",
		Private: 0x0A000104, Public: 0xC6130A0A, First: 1024, Last: 2047, Generation: 3})
	released := block
	released.Event = EventBlockRelease
	del := Record{Time: t0, Event: EventSessionDelete, Proto: 17, Reason: EndIdle,
		Private: 0x0A000104, PrivatePort: 40000, Public: 0xC6130A0A, PublicPort: 1500,
		Remote: 0xC612000A, RemotePort: 53}
	require.True(t, m.Add(&block))
	require.True(t, m.Add(&released))
	require.True(t, m.Add(&del))
	assert.Equal(t, uint32(3), m.Records())
	msg := m.Finish()
	SetSequence(msg, 41)
	ms := []byte{0x00, 0x00, 0x01, 0xA2, 0x48, 0xA5, 0x92, 0x1B}
	blockRec := func(event byte) []byte {
		return append(append([]byte{}, ms...),
			event,
			0x0A, 0x00, 0x01, 0x04, // 10.0.1.4
			0xC6, 0x13, 0x0A, 0x0A, // 198.19.10.10
			0x04, 0x00, // 1024
			0x07, 0xFF, // 2047
			0x03, 'w', 'e', 'b', // natPoolName, one-byte length
		)
	}
	want := []byte{
		0x00, 0x0A, 0x00, 0x67, // version, length 103: 16 + 54 + 33
		0x67, 0x52, 0x3A, 0x00,
		0x00, 0x00, 0x00, 0x29, // sequence 41
		0x00, 0x00, 0x00, 0x01,
		0x01, 0x00, 0x00, 0x36, // set 256, length 54: 4 + 2*25
	}
	want = append(want, blockRec(16)...)        // port block allocation
	want = append(want, blockRec(17)...)        // port block de-allocation
	want = append(want, 0x01, 0x03, 0x00, 0x21) // set 259, length 33: 4 + 29
	want = append(want, ms...)
	want = append(want,
		5,                      // NAT44 session delete
		17,                     // UDP
		0x0A, 0x00, 0x01, 0x04, // private
		0x9C, 0x40, // 40000
		0xC6, 0x13, 0x0A, 0x0A, // public
		0x05, 0xDC, // 1500
		0xC6, 0x12, 0x00, 0x0A, // remote 198.18.0.10
		0x00, 0x35, // 53
		1, // idle timeout
	)
	assert.Equal(t, want, msg)
	assert.Equal(t, len(want), int(binary.BigEndian.Uint16(msg[2:])))
}

func TestIPFIXRecordsOfEveryTemplate(t *testing.T) {
	// Each record is as long as its template says.
	lengths := map[uint16]int{}
	for _, tm := range templates {
		n := 0
		for _, f := range tm.fields {
			if f.length != variableLength {
				n += int(f.length)
			} else {
				n++ // an empty string: its length byte
			}
		}
		lengths[tm.id] = n
	}
	for _, e := range []NATEvent{EventSessionCreate, EventSessionDelete, EventPortsExhausted, EventQuotaExceeded,
		EventBindingCreate, EventBindingDelete, EventBlockAllocate, EventBlockRelease} {
		r := Record{Time: t0, Event: e}
		got := appendRecord(nil, &r)
		assert.Len(t, got, lengths[templateOf(e)], e.Name())
		assert.Equal(t, byte(e), got[8], "natEvent follows the time")
	}
	q := Record{Time: t0, Event: EventQuotaExceeded, MaxEntries: 500000}
	assert.Equal(t, append(append([]byte{}, 0, 0, 1, 0xA2, 0x48, 0xA5, 0x92, 0x1B), 13, 0, 0, 0, 1, 0, 0x07, 0xA1, 0x20),
		appendRecord(nil, &q))
}

func TestIPFIXLongPoolName(t *testing.T) {
	name := strings.Repeat("p", 300)
	b := appendString(nil, name)
	assert.Equal(t, []byte{255, 0x01, 0x2C}, b[:3], "255, then a two-byte length")
	assert.Len(t, b, 303)
	assert.Equal(t, []byte{254}, appendString(nil, strings.Repeat("p", 254))[:1])
}

func TestIPFIXMessageBound(t *testing.T) {
	m := NewMessageBuilder(512, 1)
	m.Start(1)
	r := Record{Time: t0, Event: EventSessionCreate}
	n := 0
	for m.Add(&r) {
		n++
	}
	msg := m.Finish()
	assert.LessOrEqual(t, len(msg), 512)
	assert.Equal(t, (512-16-4)/28, n, "28-byte records after the header and one set header")
	assert.Equal(t, uint32(n), m.Records())
	m.Start(2)
	assert.Equal(t, uint32(0), m.Records())
	assert.False(t, m.Add(&Record{Event: 99}), "no template: not added")
}
