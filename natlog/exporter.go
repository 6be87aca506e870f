package natlog

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file is the exporter: it takes records from the management core
// (block events from the Tracker, session and exhaustion events drained
// from the workers) into a bounded queue, and one goroutine of its own
// encodes them and sends them over ordinary kernel sockets: IPFIX over
// UDP to each collector, syslog over UDP or TCP. Nothing here runs on a
// worker, and a slow or absent collector never blocks the caller: a full
// queue drops the record and counts it.

// Exporter defaults.
const (
	// DefaultTemplateRefresh is how often the IPFIX templates are sent
	// again to each collector (RFC 7011 section 8.4: over UDP, templates
	// are re-sent periodically so a collector that starts late or lost
	// them learns them).
	DefaultTemplateRefresh = time.Minute
	// DefaultQueue is the number of records the exporter queue holds.
	DefaultQueue = 16384
	// MaxMessage is the largest IPFIX message natgw sends: records are
	// packed into datagrams that fit a 1500-byte path without
	// fragmentation (RFC 7011 section 10.3.3).
	MaxMessage = 1400
	// syslogWriteTimeout bounds a write to a TCP syslog collector.
	syslogWriteTimeout = time.Second
	// reconnectInterval is how often a lost TCP syslog connection is
	// dialled again.
	reconnectInterval = time.Second
)

// Formats index Counters' per-format arrays.
const (
	FormatIPFIX = iota
	FormatSyslog
	numFormats
)

// FormatNames name the formats in metrics.
var FormatNames = [numFormats]string{"ipfix", "syslog"}

// Events selects the kinds of events exported ([nat_log] events).
type Events struct {
	// Blocks: port blocks and instance bindings assigned and released.
	Blocks bool
	// Sessions: flows created and deleted.
	Sessions bool
	// Exhaustion: ports exhausted, flow table full.
	Exhaustion bool
}

// wants reports whether e selects records of event ev.
func (e Events) wants(ev NATEvent) bool {
	switch ev {
	case EventSessionCreate, EventSessionDelete:
		return e.Sessions
	case EventPortsExhausted, EventQuotaExceeded:
		return e.Exhaustion
	}
	return e.Blocks
}

// ExporterConfig configures an Exporter.
type ExporterConfig struct {
	// IPFIX are the collectors' "host:port" (UDP).
	IPFIX []string
	// Syslog is "udp://host:port", "tcp://host:port" or empty.
	Syslog string
	// Events are the kinds of events exported.
	Events Events
	// Hostname is the syslog HOSTNAME (os.Hostname by the caller).
	Hostname string
	// Domain is the IPFIX observation domain ID (1 when 0).
	Domain uint32
	// TemplateRefresh is how often templates are re-sent
	// (DefaultTemplateRefresh when 0).
	TemplateRefresh time.Duration
	// Queue is the queue's capacity in records (DefaultQueue when 0).
	Queue int
}

// Enabled reports whether the configuration exports anything.
func (c *ExporterConfig) Enabled() bool { return len(c.IPFIX) != 0 || c.Syslog != "" }

func (c *ExporterConfig) equal(o *ExporterConfig) bool {
	return slices.Equal(c.IPFIX, o.IPFIX) && c.Syslog == o.Syslog && c.Events == o.Events &&
		c.Hostname == o.Hostname && c.Domain == o.Domain && c.TemplateRefresh == o.TemplateRefresh && c.Queue == o.Queue
}

// ParseSyslogURL splits "udp://host:port" or "tcp://host:port" into
// network and address.
func ParseSyslogURL(s string) (network, addr string, err error) {
	network, addr, ok := strings.Cut(s, "://")
	if !ok || (network != "udp" && network != "tcp") {
		return "", "", fmt.Errorf("%q: want udp://host:port or tcp://host:port", s)
	}
	if err := CheckHostPort(addr); err != nil {
		return "", "", fmt.Errorf("%q: %w", s, err)
	}
	return network, addr, nil
}

// CheckHostPort checks a collector address: "host:port" with a host and
// a port from 1 to 65535.
func CheckHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	n, err := net.LookupPort("udp", port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	if strings.Trim(port, "0123456789") != "" {
		return fmt.Errorf("%q: port %q is not a number", s, port)
	}
	return nil
}

// Counters count what the exporters did; they outlive reconfiguration.
type Counters struct {
	// Records counts records sent, by format, once per collector.
	Records [numFormats]atomic.Uint64
	// Errors counts failed sends (and failed connections), by format.
	Errors [numFormats]atomic.Uint64
	// QueueDropped counts records dropped because the queue was full.
	QueueDropped atomic.Uint64
}

// collector is one IPFIX collector's transport session.
type collector struct {
	addr      string
	conn      net.Conn
	seq       uint32 // data records sent so far (RFC 7011 section 3.1)
	templates time.Time
}

// Exporter sends records to the configured collectors.
//
// Threading: Record, Block and Close may be called from any goroutine;
// the exporter's own goroutine does all encoding and sending.
type Exporter struct {
	cfg      ExporterConfig
	given    ExporterConfig // as given, before defaults (Output.Apply compares)
	counters *Counters
	log      *slog.Logger
	queue    chan Record
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once

	ipfix   []*collector
	builder *MessageBuilder
	header  SyslogHeader
	slNet   string
	slAddr  string
	slConn  net.Conn
	slDial  time.Time
	slBuf   []byte
	now     func() time.Time
}

// NewExporter opens the collectors' sockets (UDP sockets are connected,
// so a name is resolved once, here) and starts the exporter. A TCP
// syslog collector that can't be reached now is dialled again later.
func NewExporter(cfg ExporterConfig, counters *Counters, log *slog.Logger) (*Exporter, error) {
	given := cfg
	cfg.IPFIX = slices.Clone(cfg.IPFIX)
	given.IPFIX = cfg.IPFIX
	if cfg.Domain == 0 {
		cfg.Domain = 1
	}
	if cfg.TemplateRefresh <= 0 {
		cfg.TemplateRefresh = DefaultTemplateRefresh
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if counters == nil {
		counters = &Counters{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Exporter{
		cfg: cfg, given: given, counters: counters, log: log, queue: make(chan Record, cfg.Queue),
		stop: make(chan struct{}), done: make(chan struct{}),
		builder: NewMessageBuilder(MaxMessage, cfg.Domain),
		header:  SyslogHeader{Hostname: cfg.Hostname, AppName: "natgw", ProcID: processID},
		now:     time.Now,
	}
	var errs []error
	for _, a := range cfg.IPFIX {
		conn, err := net.Dial("udp", a)
		if err != nil {
			errs = append(errs, fmt.Errorf("nat_log.ipfix %s: %w", a, err))
			continue
		}
		e.ipfix = append(e.ipfix, &collector{addr: a, conn: conn})
	}
	if cfg.Syslog != "" {
		network, addr, err := ParseSyslogURL(cfg.Syslog)
		if err != nil {
			errs = append(errs, fmt.Errorf("nat_log.syslog: %w", err))
		} else {
			e.slNet, e.slAddr = network, addr
			if network == "udp" {
				if e.slConn, err = net.Dial("udp", addr); err != nil {
					errs = append(errs, fmt.Errorf("nat_log.syslog %s: %w", cfg.Syslog, err))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		e.closeConns()
		return nil, err
	}
	go e.run()
	return e, nil
}

// Config returns the configuration the exporter runs with.
func (e *Exporter) Config() ExporterConfig { return e.cfg }

// Record queues r for export if its kind is selected; when the queue is
// full it drops r and counts it. It never blocks.
func (e *Exporter) Record(r Record) {
	if !e.cfg.Events.wants(r.Event) {
		return
	}
	select {
	case e.queue <- r:
	default:
		e.counters.QueueDropped.Add(1)
	}
}

// Block exports a block event (BlockSink).
func (e *Exporter) Block(ev BlockEvent) { e.Record(BlockRecord(ev)) }

// Close sends what is queued, closes the sockets and stops. Records
// given after Close are dropped, uncounted.
func (e *Exporter) Close() {
	e.once.Do(func() { close(e.stop) })
	<-e.done
}

func (e *Exporter) run() {
	defer close(e.done)
	defer e.closeConns()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	batch := make([]Record, 0, 256)
	e.sendTemplates(true)
	for {
		select {
		case <-e.stop:
			for {
				batch = e.take(batch[:0])
				if len(batch) == 0 {
					return
				}
				e.send(batch)
			}
		case r := <-e.queue:
			batch = e.take(append(batch[:0], r))
			e.send(batch)
		case <-tick.C:
			e.sendTemplates(false)
		}
	}
}

// take appends what is queued, up to the batch's capacity.
func (e *Exporter) take(batch []Record) []Record {
	for len(batch) < cap(batch) {
		select {
		case r := <-e.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// sendTemplates sends the templates to each collector whose refresh is
// due (all of them when force).
func (e *Exporter) sendTemplates(force bool) {
	now := e.now()
	for _, c := range e.ipfix {
		if !force && now.Sub(c.templates) < e.cfg.TemplateRefresh {
			continue
		}
		msg := TemplateMessage(uint32(now.Unix()), c.seq, e.cfg.Domain)
		if _, err := c.conn.Write(msg); err != nil {
			e.counters.Errors[FormatIPFIX].Add(1)
			continue // tried again at the next tick
		}
		c.templates = now
	}
}

func (e *Exporter) send(batch []Record) {
	if len(e.ipfix) != 0 {
		e.sendTemplates(false)
		e.sendIPFIX(batch)
	}
	if e.slNet != "" {
		e.sendSyslog(batch)
	}
}

// sendIPFIX packs the batch into messages and sends each to every
// collector, with that collector's sequence number.
func (e *Exporter) sendIPFIX(batch []Record) {
	now := uint32(e.now().Unix())
	m := e.builder
	m.Start(now)
	flush := func() {
		if m.Records() == 0 {
			return
		}
		msg := m.Finish()
		n := m.Records()
		for _, c := range e.ipfix {
			SetSequence(msg, c.seq)
			if _, err := c.conn.Write(msg); err != nil {
				e.counters.Errors[FormatIPFIX].Add(1)
			} else {
				e.counters.Records[FormatIPFIX].Add(uint64(n))
			}
			// The records count whether or not this datagram arrived:
			// a collector tells a loss from the gap (RFC 7011 10.3.2).
			c.seq += n
		}
		m.Start(now)
	}
	for i := range batch {
		if !m.Add(&batch[i]) {
			flush()
			m.Add(&batch[i]) // fits an empty message (or has no template)
		}
	}
	flush()
}

// sendSyslog sends one message per record: a datagram each over UDP,
// one write of octet-counted frames over TCP.
func (e *Exporter) sendSyslog(batch []Record) {
	if e.slNet == "udp" {
		for i := range batch {
			e.slBuf = AppendSyslog(e.slBuf[:0], e.header, &batch[i])
			if _, err := e.slConn.Write(e.slBuf); err != nil {
				e.counters.Errors[FormatSyslog].Add(1)
			} else {
				e.counters.Records[FormatSyslog].Add(1)
			}
		}
		return
	}
	if e.slConn == nil {
		if now := e.now(); now.Sub(e.slDial) < reconnectInterval {
			e.counters.Errors[FormatSyslog].Add(uint64(len(batch)))
			return
		} else {
			e.slDial = now
		}
		conn, err := net.DialTimeout("tcp", e.slAddr, syslogWriteTimeout)
		if err != nil {
			e.counters.Errors[FormatSyslog].Add(uint64(len(batch)))
			e.log.Warn("syslog collector unreachable: NAT records lost", "collector", e.cfg.Syslog, "error", err)
			return
		}
		e.slConn = conn
	}
	e.slBuf = e.slBuf[:0]
	var msg []byte
	for i := range batch {
		msg = AppendSyslog(msg[:0], e.header, &batch[i])
		e.slBuf = AppendOctetCounted(e.slBuf, msg)
	}
	_ = e.slConn.SetWriteDeadline(e.now().Add(syslogWriteTimeout))
	if _, err := e.slConn.Write(e.slBuf); err != nil {
		e.counters.Errors[FormatSyslog].Add(uint64(len(batch)))
		e.log.Warn("syslog collector write failed: reconnecting", "collector", e.cfg.Syslog, "error", err)
		e.slConn.Close()
		e.slConn = nil
		return
	}
	e.counters.Records[FormatSyslog].Add(uint64(len(batch)))
}

func (e *Exporter) closeConns() {
	for _, c := range e.ipfix {
		c.conn.Close()
	}
	if e.slConn != nil {
		e.slConn.Close()
		e.slConn = nil
	}
}
