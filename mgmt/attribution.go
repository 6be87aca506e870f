package mgmt

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natgw/natgw/attrib"
	"github.com/natgw/natgw/nat"
)

// This file answers the abuse question of issue 16, "who had this public
// address and port at that time?" (GET /v1/attribution), from the
// attribution history (package attrib), and exports the history's
// metrics. Handlers run on net/http's goroutines and read the history in
// its own read transactions.

// MaxAttributionFuture is how far ahead of now GET /v1/attribution
// accepts a time: a little, for clocks that disagree, never a guess about
// the future.
const MaxAttributionFuture = time.Minute

// AttributionResponse is the body of GET /v1/attribution: who held
// Public:Port at At. Holders is empty when no one did.
type AttributionResponse struct {
	Public  string       `json:"public"`
	Port    uint16       `json:"port"`
	At      time.Time    `json:"at"`
	Holders []HolderInfo `json:"holders"`
}

// HolderInfo is one holding in AttributionResponse: from Start to End
// (null while it goes on), Private held ports Ports of the public address.
type HolderInfo struct {
	Private string    `json:"private"`
	Ports   PortRange `json:"ports"`
	// Scope is "pool", "default_snat" or "instance"; Name the pool's or
	// instance's name (empty for default SNAT).
	Scope string `json:"scope"`
	Name  string `json:"name"`
	// Generation is the configuration generation in force when the
	// holding began (generations count from 1 at every start).
	Generation uint64     `json:"generation"`
	Start      time.Time  `json:"start"`
	End        *time.Time `json:"end"`
	// EndReason is "open" while the holding goes on, else "released",
	// "superseded" (the block went to another address), "restart" (natgw
	// stopped without recording the end: it ended at the latest then)
	// or "stopped" (natgw stopped cleanly).
	EndReason string `json:"end_reason"`
}

// attribution answers GET /v1/attribution?public=IP&port=P&at=RFC3339.
func (s *Server) attribution(w http.ResponseWriter, r *http.Request) {
	h := s.o.History
	if h == nil {
		writeError(w, http.StatusServiceUnavailable, "no attribution history is kept: set nat_log.history in the configuration and restart natgw")
		return
	}
	q := r.URL.Query()
	for k, v := range q {
		switch k {
		case "public", "port", "at":
			if len(v) != 1 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: give it once", k))
				return
			}
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q (use public, port and at)", k))
			return
		}
	}
	if q.Get("public") == "" {
		writeError(w, http.StatusBadRequest, "public: missing: the public IPv4 address of the report")
		return
	}
	pub, err := parseIPv4(q.Get("public"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "public: "+err.Error())
		return
	}
	pv := q.Get("port")
	if pv == "" {
		writeError(w, http.StatusBadRequest, "port: missing: the public port of the report, 0 to 65535")
		return
	}
	port, err := strconv.ParseUint(pv, 10, 16)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("port: %q is not a port number from 0 to 65535", pv))
		return
	}
	now := time.Now()
	at := now
	if v := q.Get("at"); v != "" {
		if at, err = time.Parse(time.RFC3339Nano, v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("at: %q is not an RFC 3339 time, like \"2026-03-01T03:12:00Z\" or \"2026-03-01T04:12:00+01:00\"", v))
			return
		}
		if at.After(now.Add(MaxAttributionFuture)) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("at: %s is in the future", at.UTC().Format(time.RFC3339)))
			return
		}
	}
	if !s.acquireQuery(w) {
		return
	}
	defer s.releaseQuery()
	list, err := h.Lookup(nat.U32(pub), uint16(port), at)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "reading the attribution history: "+err.Error())
		return
	}
	resp := AttributionResponse{Public: pub.String(), Port: uint16(port), At: at.UTC(), Holders: []HolderInfo{}}
	for _, hd := range list {
		hi := HolderInfo{
			Private: nat.AddrFrom(hd.Private).String(), Ports: PortRange{First: hd.First, Last: hd.Last},
			Scope: hd.Scope.String(), Name: hd.Name, Generation: hd.Generation,
			Start: hd.Start.UTC(), EndReason: hd.Reason.String(),
		}
		if !hd.End.IsZero() {
			end := hd.End.UTC()
			hi.End = &end
		}
		resp.Holders = append(resp.Holders, hi)
	}
	writeJSON(w, http.StatusOK, resp)
}

// historyCollector exports the attribution history's counters.
type historyCollector struct {
	h                                          *attrib.Store
	bytes, open, written, errors, pruned, drop *prometheus.Desc
}

func newHistoryCollector(h *attrib.Store) *historyCollector {
	return &historyCollector{
		h:       h,
		bytes:   optionalDesc("natgw_natlog_history_bytes"),
		open:    optionalDesc("natgw_natlog_history_open_intervals"),
		written: optionalDesc("natgw_natlog_history_records_written_total"),
		errors:  optionalDesc("natgw_natlog_history_write_errors_total"),
		pruned:  optionalDesc("natgw_natlog_history_pruned_total"),
		drop:    optionalDesc("natgw_natlog_history_dropped_total"),
	}
}

// Describe implements prometheus.Collector.
func (c *historyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.open, c.written, c.errors, c.pruned, c.drop} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *historyCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.FileBytes))
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(c.written, prometheus.CounterValue, float64(st.RecordsWritten))
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(st.WriteErrors))
	ch <- prometheus.MustNewConstMetric(c.pruned, prometheus.CounterValue, float64(st.PrunedRetention), "retention")
	ch <- prometheus.MustNewConstMetric(c.pruned, prometheus.CounterValue, float64(st.PrunedSize), "size")
	ch <- prometheus.MustNewConstMetric(c.drop, prometheus.CounterValue, float64(st.Dropped))
}
