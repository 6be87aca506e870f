package natlog

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natgw/natgw/mgmt/config"
)

// processID is the syslog PROCID.
var processID = os.Getpid()

// ConfigFrom converts [nat_log] to an exporter configuration.
func ConfigFrom(n config.NatLog, hostname string) ExporterConfig {
	return ExporterConfig{
		IPFIX: n.IPFIX, Syslog: n.Syslog, Hostname: hostname,
		Events: Events{Blocks: n.Has("blocks"), Sessions: n.Has("sessions"), Exhaustion: n.Has("exhaustion")},
	}
}

// Output is NAT event logging's front on the management core: it holds
// the running Exporter (none when no collector is configured), replaces
// it when a reload changes [nat_log], and counts across replacements.
// Records and block events given to it go to the exporter of the moment.
//
// Threading: every method may be called from any goroutine.
type Output struct {
	mu  sync.Mutex // serialises Apply and Close
	cur atomic.Pointer[Exporter]
	log *slog.Logger
	// Counters are the exporters' counters (metrics).
	Counters Counters
	// WorkerDropped, when set, returns the session events the workers'
	// rings dropped so far (natgw_natlog_dropped_total{stage="worker"}).
	WorkerDropped func() uint64
}

// NewOutput returns an Output exporting nothing yet.
func NewOutput(log *slog.Logger) *Output {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Output{log: log}
}

// Apply makes cfg the running configuration: a new exporter when it
// differs from the running one's (the old one sends what it has queued
// and closes), none when it exports nothing. When the new exporter
// can't start (a collector's name does not resolve) the running one is
// kept and the error returned.
func (o *Output) Apply(cfg ExporterConfig) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.cur.Load()
	if old != nil && old.given.equal(&cfg) {
		return nil
	}
	if old == nil && !cfg.Enabled() {
		return nil
	}
	var next *Exporter
	if cfg.Enabled() {
		var err error
		if next, err = NewExporter(cfg, &o.Counters, o.log); err != nil {
			return err
		}
		o.log.Info("NAT event logging", "ipfix", cfg.IPFIX, "syslog", cfg.Syslog,
			"blocks", cfg.Events.Blocks, "sessions", cfg.Events.Sessions, "exhaustion", cfg.Events.Exhaustion)
	} else {
		o.log.Info("NAT event logging off")
	}
	o.cur.Store(next)
	if old != nil {
		old.Close()
	}
	return nil
}

// Events returns the kinds of events the running exporter exports
// (none when there is none).
func (o *Output) Events() Events {
	if e := o.cur.Load(); e != nil {
		return e.cfg.Events
	}
	return Events{}
}

// Record exports r (see Exporter.Record); without an exporter it does
// nothing.
func (o *Output) Record(r Record) {
	if e := o.cur.Load(); e != nil {
		e.Record(r)
	}
}

// Block exports a block event (BlockSink).
func (o *Output) Block(ev BlockEvent) {
	if e := o.cur.Load(); e != nil {
		e.Block(ev)
	}
}

// Close sends what is queued and stops exporting.
func (o *Output) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.cur.Swap(nil); e != nil {
		e.Close()
	}
}

// Metric descriptions of NAT event logging.
var (
	recordsDesc = prometheus.NewDesc("natgw_natlog_records_total",
		"NAT event records sent, by format (ipfix, syslog), once per collector.", []string{"format"}, nil)
	errorsDesc = prometheus.NewDesc("natgw_natlog_export_errors_total",
		"NAT event records or messages that could not be sent, by format (a failed send or connection).", []string{"format"}, nil)
	droppedDesc = prometheus.NewDesc("natgw_natlog_dropped_total",
		"NAT events dropped before encoding, by stage: worker (a worker's session event ring was full), exporter (the exporter's queue was full).", []string{"stage"}, nil)
)

// MetricNames are the metrics Output's collector exports.
var MetricNames = []string{"natgw_natlog_records_total", "natgw_natlog_export_errors_total", "natgw_natlog_dropped_total"}

// Describe implements prometheus.Collector.
func (o *Output) Describe(ch chan<- *prometheus.Desc) {
	ch <- recordsDesc
	ch <- errorsDesc
	ch <- droppedDesc
}

// Collect implements prometheus.Collector: the counters at scrape time.
func (o *Output) Collect(ch chan<- prometheus.Metric) {
	for f := range numFormats {
		ch <- prometheus.MustNewConstMetric(recordsDesc, prometheus.CounterValue, float64(o.Counters.Records[f].Load()), FormatNames[f])
		ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(o.Counters.Errors[f].Load()), FormatNames[f])
	}
	var worker uint64
	if o.WorkerDropped != nil {
		worker = o.WorkerDropped()
	}
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(worker), "worker")
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(o.Counters.QueueDropped.Load()), "exporter")
}
