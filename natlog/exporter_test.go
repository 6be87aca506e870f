package natlog

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// udpCollector listens on loopback and returns its address and a
// function reading the next datagram (failing the test after a
// generous deadline).
func udpCollector(t *testing.T) (string, func() []byte) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String(), func() []byte {
		t.Helper()
		buf := make([]byte, 65536)
		require.NoError(t, pc.SetReadDeadline(time.Now().Add(10*time.Second)))
		n, _, err := pc.ReadFrom(buf)
		require.NoError(t, err)
		return buf[:n]
	}
}

func setID(msg []byte) uint16    { return binary.BigEndian.Uint16(msg[16:]) }
func sequence(msg []byte) uint32 { return binary.BigEndian.Uint32(msg[8:]) }

func blockEvent(i int) BlockEvent {
	return BlockEvent{Time: t0, Kind: BlockAssigned, Scope: ScopePool, Name: "web",
		Private: 0x0A000100 + uint32(i), Public: 0xC6130A0A, First: uint16(1024 + 8*i), Last: uint16(1031 + 8*i), Generation: 1}
}

func TestExporterIPFIX(t *testing.T) {
	a1, read1 := udpCollector(t)
	a2, read2 := udpCollector(t)
	c := &Counters{}
	e, err := NewExporter(ExporterConfig{IPFIX: []string{a1, a2}, Events: Events{Blocks: true}}, c, nil)
	require.NoError(t, err)
	defer e.Close()
	for _, read := range []func() []byte{read1, read2} {
		msg := read()
		assert.Equal(t, uint16(templateSetID), setID(msg), "templates first")
		assert.Equal(t, uint32(0), sequence(msg))
	}
	// 60 block records: 25 bytes each, 55 fit a 1400-byte message.
	for i := range 60 {
		e.Block(blockEvent(i))
	}
	// Sessions are not selected: not exported.
	e.Record(Record{Time: t0, Event: EventSessionCreate})
	var total uint32
	for total < 60 {
		msg := read1()
		require.Equal(t, uint16(templateBlock), setID(msg))
		assert.LessOrEqual(t, len(msg), MaxMessage)
		assert.Equal(t, total, sequence(msg), "the count of data records sent before")
		n := uint32(binary.BigEndian.Uint16(msg[18:])-4) / 25
		total += n
		msg2 := read2()
		assert.Equal(t, msg, msg2, "every collector gets the same records")
	}
	assert.Equal(t, uint32(60), total)
	require.Eventually(t, func() bool { return c.Records[FormatIPFIX].Load() == 120 }, 10*time.Second, time.Millisecond)
	assert.Zero(t, c.Errors[FormatIPFIX].Load())

}

// Templates are sent again once the refresh interval has passed, before
// the next records; the sequence number doesn't count them.
func TestExporterTemplateRefresh(t *testing.T) {
	addr, read := udpCollector(t)
	e, err := NewExporter(ExporterConfig{IPFIX: []string{addr}, Events: Events{Blocks: true},
		TemplateRefresh: time.Nanosecond}, nil, nil)
	require.NoError(t, err)
	defer e.Close()
	assert.Equal(t, uint16(templateSetID), setID(read()))
	for i := range 2 {
		e.Block(blockEvent(i))
		templates := 0
		msg := read()
		for setID(msg) == templateSetID { // the 1 s tick may send some too
			templates++
			assert.Equal(t, uint32(i), sequence(msg))
			msg = read()
		}
		assert.Positive(t, templates, "templates again before the next data")
		assert.Equal(t, uint16(templateBlock), setID(msg))
		assert.Equal(t, uint32(i), sequence(msg))
	}
}

func TestExporterSyslogUDP(t *testing.T) {
	addr, read := udpCollector(t)
	c := &Counters{}
	e, err := NewExporter(ExporterConfig{Syslog: "udp://" + addr, Hostname: "gw1",
		Events: Events{Blocks: true, Exhaustion: true}}, c, nil)
	require.NoError(t, err)
	e.Block(blockEvent(1))
	e.Record(Record{Time: t0, Event: EventQuotaExceeded, MaxEntries: 10})
	e.Close()
	m1, m2 := string(read()), string(read())
	assert.True(t, strings.HasPrefix(m1, "<134>1 2026-12-05T23:59:00.123Z gw1 natgw "), m1)
	assert.Contains(t, m1, `NAT_BLOCK [nat@32473 event="block_allocate" private="10.0.1.1"`)
	assert.Contains(t, m2, `event="flow_table_full" maxEntries="10"]`)
	assert.Equal(t, uint64(2), c.Records[FormatSyslog].Load())
}

func TestExporterSyslogTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan string, 100)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		for {
			// Octet counting: MSG-LEN SP SYSLOG-MSG.
			l, err := r.ReadString(' ')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSuffix(l, " "))
			if err != nil {
				got <- "bad length " + l
				return
			}
			msg := make([]byte, n)
			if _, err := io.ReadFull(r, msg); err != nil {
				return
			}
			got <- string(msg)
		}
	}()
	c := &Counters{}
	e, err := NewExporter(ExporterConfig{Syslog: "tcp://" + ln.Addr().String(), Events: Events{Blocks: true}}, c, nil)
	require.NoError(t, err)
	for i := range 3 {
		e.Block(blockEvent(i))
	}
	e.Close()
	for i := range 3 {
		select {
		case m := <-got:
			assert.Contains(t, m, "private=\"10.0.1."+strconv.Itoa(i)+"\"")
			assert.True(t, strings.HasPrefix(m, "<134>1 "), m)
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
		}
	}
	assert.Equal(t, uint64(3), c.Records[FormatSyslog].Load())
}

func TestExporterTCPUnreachableCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	c := &Counters{}
	e, err := NewExporter(ExporterConfig{Syslog: "tcp://" + addr, Events: Events{Blocks: true}}, c, nil)
	require.NoError(t, err, "a TCP collector down at start is dialled again later")
	e.Block(blockEvent(1))
	e.Close()
	assert.Equal(t, uint64(1), c.Errors[FormatSyslog].Load())
	assert.Zero(t, c.Records[FormatSyslog].Load())
}

func TestExporterQueueFullDrops(t *testing.T) {
	// An exporter whose goroutine does not run: the queue fills.
	c := &Counters{}
	e := &Exporter{cfg: ExporterConfig{Events: Events{Blocks: true}}, counters: c, queue: make(chan Record, 2)}
	for i := range 5 {
		e.Block(blockEvent(i))
	}
	assert.Equal(t, uint64(3), c.QueueDropped.Load())
	assert.Len(t, e.queue, 2)
}

func TestOutputApply(t *testing.T) {
	a1, read1 := udpCollector(t)
	a2, read2 := udpCollector(t)
	o := NewOutput(nil)
	o.Block(blockEvent(0)) // nothing configured: nothing happens
	require.NoError(t, o.Apply(ExporterConfig{}))
	assert.Nil(t, o.cur.Load())

	require.NoError(t, o.Apply(ExporterConfig{IPFIX: []string{a1}, Events: Events{Blocks: true}}))
	first := o.cur.Load()
	require.NotNil(t, first)
	assert.Equal(t, uint16(templateSetID), setID(read1()))
	require.NoError(t, o.Apply(ExporterConfig{IPFIX: []string{a1}, Events: Events{Blocks: true}}))
	assert.Same(t, first, o.cur.Load(), "the same configuration keeps the exporter")
	o.Block(blockEvent(1))
	assert.Equal(t, uint16(templateBlock), setID(read1()))

	require.NoError(t, o.Apply(ExporterConfig{IPFIX: []string{a2}, Events: Events{Blocks: true, Sessions: true}}))
	assert.True(t, o.Events().Sessions)
	assert.Equal(t, uint16(templateSetID), setID(read2()))
	o.Record(Record{Time: t0, Event: EventSessionCreate})
	msg := read2()
	assert.Equal(t, uint16(templateSessionCreate), setID(msg))
	assert.Equal(t, uint32(0), sequence(msg), "a new collector's session counts from 0")

	err := o.Apply(ExporterConfig{IPFIX: []string{"no-such-host.invalid:4739"}, Events: Events{Blocks: true}})
	assert.Error(t, err)
	assert.NotNil(t, o.cur.Load(), "a failed apply keeps the running exporter")
	o.Close()
	assert.Equal(t, Events{}, o.Events())
	assert.Equal(t, uint64(2), o.Counters.Records[FormatIPFIX].Load())
}

func TestOutputMetrics(t *testing.T) {
	o := NewOutput(nil)
	o.Counters.Records[FormatIPFIX].Add(7)
	o.Counters.Records[FormatSyslog].Add(3)
	o.Counters.Errors[FormatSyslog].Add(2)
	o.Counters.QueueDropped.Add(5)
	o.WorkerDropped = func() uint64 { return 11 }
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(o))
	fams, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	var names []string
	for _, f := range fams {
		names = append(names, f.GetName())
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	assert.ElementsMatch(t, MetricNames, names)
	assert.Equal(t, map[string]float64{
		"natgw_natlog_records_total,format=ipfix":        7,
		"natgw_natlog_records_total,format=syslog":       3,
		"natgw_natlog_export_errors_total,format=ipfix":  0,
		"natgw_natlog_export_errors_total,format=syslog": 2,
		"natgw_natlog_dropped_total,stage=worker":        11,
		"natgw_natlog_dropped_total,stage=exporter":      5,
	}, got)
}
