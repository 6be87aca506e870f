package mgmt

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/nat"
)

// This file holds the HTTP handlers of SPEC §6 and the JSON shapes they
// answer with. Every answer, errors included, is JSON except /metrics;
// errors are {"error": "..."} with a 4xx or 5xx status.

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	// Error says what went wrong.
	Error string `json:"error"`
	// Errors lists every problem, when there are several (a reload's
	// validation errors).
	Errors []string `json:"errors,omitempty"`
}

// StatusResponse is the body of GET /v1/status.
type StatusResponse struct {
	Version          string         `json:"version"`
	Driver           string         `json:"driver"`
	UptimeSeconds    float64        `json:"uptime_seconds"`
	ConfigGeneration uint32         `json:"config_generation"`
	ConfigSource     string         `json:"config_source"`
	Ports            []PortStatus   `json:"ports"`
	Workers          []WorkerStatus `json:"workers"`
	// BGP is the announcement state when [bgp] is configured.
	BGP any `json:"bgp,omitempty"`
}

// PortStatus is one port in StatusResponse.
type PortStatus struct {
	// Role is "inside" or "outside"; Name the configured port name.
	Role      string `json:"role"`
	Name      string `json:"name"`
	Link      bool   `json:"link"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	// NICDrops counts packets the NIC dropped (RX missed).
	NICDrops uint64 `json:"nic_drops"`
	// RSS says how packets reach their owner worker: "hardware", or
	// "software: <reason>" (SPEC §3).
	RSS string `json:"rss"`
}

// WorkerStatus is one worker in StatusResponse.
type WorkerStatus struct {
	ID int `json:"id"`
	// Flows is the number of flows in the worker's table.
	Flows uint64 `json:"flows"`
	// Packets counts packets translated in both directions.
	Packets uint64 `json:"packets"`
	// RxPackets counts frames the worker received.
	RxPackets uint64  `json:"rx_packets"`
	BusyRatio float64 `json:"busy_ratio"`
}

// PortRange is a block of ports, inclusive.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// MappingResponse is the body of GET /v1/mappings/{ip} [S9]. Public and
// Ports are null for a default-SNAT source that holds no block (yet, or
// any more).
type MappingResponse struct {
	Private    string     `json:"private"`
	Scenario   string     `json:"scenario"`
	Pool       string     `json:"pool"`
	Public     *string    `json:"public"`
	Ports      *PortRange `json:"ports"`
	Flows      int        `json:"flows"`
	PortsInUse int        `json:"ports_in_use"`
}

// FlowEntry is one flow in FlowsResponse. Endpoints are "address:port";
// for ICMP echo the port is the identifier (the remote's is 0).
type FlowEntry struct {
	Protocol    string  `json:"protocol"`
	Private     string  `json:"private"`
	Public      string  `json:"public"`
	Remote      string  `json:"remote"`
	State       string  `json:"state"`
	IdleSeconds float64 `json:"idle_seconds"`
	Worker      int     `json:"worker"`
}

// FlowsResponse is the body of GET /v1/flows.
type FlowsResponse struct {
	Flows []FlowEntry `json:"flows"`
}

// ReloadResponse is the body of a successful POST /v1/config/reload.
type ReloadResponse struct {
	Generation uint32 `json:"generation"`
}

// route is one API endpoint. Every /v1/ endpoint needs the bearer token
// when one is configured: flows and mappings tell who talks to whom.
type route struct {
	pattern string
	method  string
	handler http.HandlerFunc
}

// needsToken reports whether a request path needs the bearer token (when
// one is configured): every /v1/ path, known or not, so an unauthorised
// client cannot even learn which endpoints exist.
func needsToken(path string) bool { return strings.HasPrefix(path, "/v1/") }

// routes builds the API's handler.
func (s *Server) routes() http.Handler {
	metrics := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	table := []route{
		{"/metrics", http.MethodGet, metrics.ServeHTTP},
		{"/healthz", http.MethodGet, s.healthz},
		{"/readyz", http.MethodGet, s.readyz},
		{"/v1/status", http.MethodGet, s.status},
		{"/v1/mappings/{ip}", http.MethodGet, s.mapping},
		{"/v1/flows", http.MethodGet, s.flows},
		{"/v1/attribution", http.MethodGet, s.attribution},
		{"/v1/hotspots", http.MethodGet, s.hotspots},
		{"/v1/config/reload", http.MethodPost, s.reload},
		{"/v1/config/plan", http.MethodPost, s.plan},
		{"/v1/drain", http.MethodPost, s.drain},
		{"/v1/frontends/{name}/drain", http.MethodPost, s.drainFrontend},
		{"/v1/frontends/{name}/undrain", http.MethodPost, s.drainFrontend},
	}
	mux := http.NewServeMux()
	for _, rt := range table {
		mux.HandleFunc(rt.pattern, s.endpoint(rt))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !s.checkToken(w, r) {
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
	})
	return s.guard(mux)
}

// endpoint wraps a route's handler with the bearer token check, its
// method check and the body size limit.
func (s *Server) endpoint(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.checkToken(w, r) {
			return
		}
		if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", rt.method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: method not allowed (use %s)", r.Method, r.URL.Path, rt.method))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", MaxBodyBytes))
				return
			}
			writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
			return
		}
		// The handler may read the body (POST /v1/config/plan); it is
		// read here so its size limit answers alike everywhere.
		r.Body = io.NopCloser(bytes.NewReader(body))
		rt.handler(w, r)
	}
}

// checkToken answers 401 and reports false when the request's path needs
// the bearer token and the request does not carry the configured one.
func (s *Server) checkToken(w http.ResponseWriter, r *http.Request) bool {
	if s.o.Token == "" || !needsToken(r.URL.Path) || s.authorized(r) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="natgw"`)
	writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (Authorization: Bearer <token from mgmt.token_file>; natgw ctl --token-file)")
	return false
}

// acquireQuery takes one of the MaxConcurrentQueries query tokens, or
// answers 429 and reports false when all are taken. The caller releases
// it with releaseQuery.
func (s *Server) acquireQuery(w http.ResponseWriter) bool {
	select {
	case s.queries <- struct{}{}:
		return true
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many flow, mapping and attribution queries in flight (at most %d at once): retry later", MaxConcurrentQueries))
		return false
	}
}

func (s *Server) releaseQuery() { <-s.queries }

// authorized compares the request's bearer token with the configured one
// in constant time.
func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := strings.TrimSpace(h[len(prefix):])
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.o.Token)) == 1
}

// guard turns a panic in a handler into a 500 JSON answer and a log line:
// bad input must never take the management server down.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.o.Log.Error("management API handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		// The mux would redirect unclean paths with an HTML body: no
		// such endpoint exists, say so in JSON.
		if p := r.URL.Path; p == "" || (p != "/" && path.Clean(p) != p) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %q", p))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when both ports' links are up and every worker polled
// within ReadyPollAge, else 503 with the reasons.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if reasons := s.notReady(); len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "not ready: " + strings.Join(reasons, "; "), Errors: reasons})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) notReady() []string {
	var reasons []string
	for i, p := range s.o.Ports {
		switch {
		case p == nil:
			reasons = append(reasons, fmt.Sprintf("%s port is not open", lcore.PortName(uint8(i))))
		case !p.LinkUp():
			reasons = append(reasons, fmt.Sprintf("%s port %s: link down", lcore.PortName(uint8(i)), p.Name()))
		}
	}
	rt := s.o.Runtime
	if rt == nil {
		return append(reasons, "dataplane not running")
	}
	now := rt.Now()
	maxAge := int32(ReadyPollAge / time.Millisecond)
	for i, wk := range rt.Workers {
		last := wk.Counters.LastPoll.Load()
		if last == 0 {
			reasons = append(reasons, fmt.Sprintf("worker %d has not polled yet", i))
		} else if age := int32(now - nat.Tick(last)); age > maxAge {
			reasons = append(reasons, fmt.Sprintf("worker %d last polled %d ms ago", i, age))
		}
	}
	return reasons
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	pol := s.o.Policy.Load()
	resp := StatusResponse{
		Version: s.o.Version, Driver: s.o.Driver,
		UptimeSeconds:    time.Since(s.o.Started).Seconds(),
		ConfigGeneration: pol.Gen,
		Ports:            []PortStatus{},
		Workers:          []WorkerStatus{},
	}
	if s.o.Reloader != nil {
		resp.ConfigSource = s.o.Reloader.Path()
	}
	if s.o.BGPStatus != nil {
		resp.BGP = s.o.BGPStatus()
	}
	for i, p := range s.o.Ports {
		if p == nil {
			continue
		}
		st := p.Stats()
		resp.Ports = append(resp.Ports, PortStatus{Role: lcore.PortName(uint8(i)), Name: p.Name(), Link: p.LinkUp(),
			RxPackets: st.RxPackets, TxPackets: st.TxPackets, NICDrops: st.RxMissed, RSS: lcore.RSSMode(p)})
	}
	if rt := s.o.Runtime; rt != nil {
		busy := s.busyRatios()
		for i, wk := range rt.Workers {
			c := &wk.Counters
			ws := WorkerStatus{ID: i, RxPackets: c.RxPackets.Load(), BusyRatio: busy[i],
				Packets: c.Packets[nat.DirOut].Load() + c.Packets[nat.DirIn].Load()}
			for p := range c.FlowsActive {
				ws.Flows += c.FlowsActive[p].Load()
			}
			resp.Workers = append(resp.Workers, ws)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// parseIPv4 parses an IPv4 address from the API (no IPv6, no zones).
func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return a, nil
}

// mapping answers [S9]: the scenario, public address and port block of a
// private address, with its flows and ports in use.
func (s *Server) mapping(w http.ResponseWriter, r *http.Request) {
	a, err := parseIPv4(r.PathValue("ip"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	pol := s.o.Policy.Load()
	priv := nat.U32(a)
	m, v := pol.Classify(priv)
	if v != nat.VerdictForward {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s: no outbound scenario applies (not an instance, pool member or default-SNAT source)", a))
		return
	}
	resp := MappingResponse{Private: a.String(), Scenario: m.Scenario.String()}
	if m.Scenario != nat.ScenarioInstance {
		resp.Pool = pol.PoolName(m.Scope)
	}
	if m.Block.Public != 0 {
		pub := nat.AddrFrom(m.Block.Public).String()
		resp.Public = &pub
		resp.Ports = &PortRange{First: m.Block.First, Last: m.Block.Last}
	}
	if rt := s.o.Runtime; rt != nil {
		if !s.acquireQuery(w) {
			return
		}
		defer s.releaseQuery()
		ctx, cancel := context.WithTimeout(r.Context(), s.o.QueryTimeout)
		defer cancel()
		resp.Flows, resp.PortsInUse, err = rt.MappingUsage(ctx, priv)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "asking the workers: "+err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// flows lists flows, optionally of one private address, at most limit.
func (s *Server) flows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var priv uint32
	hasPriv := false
	if v := q.Get("private"); v != "" {
		a, err := parseIPv4(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "private: "+err.Error())
			return
		}
		priv, hasPriv = nat.U32(a), true
	}
	limit := DefaultFlowsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > lcore.MaxQueryFlows {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: %q is not a number from 1 to %d", v, lcore.MaxQueryFlows))
			return
		}
		limit = n
	}
	for k := range q {
		if k != "private" && k != "limit" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q (use private and limit)", k))
			return
		}
	}
	resp := FlowsResponse{Flows: []FlowEntry{}}
	if rt := s.o.Runtime; rt != nil {
		if !s.acquireQuery(w) {
			return
		}
		defer s.releaseQuery()
		ctx, cancel := context.WithTimeout(r.Context(), s.o.QueryTimeout)
		defer cancel()
		list, err := rt.Flows(ctx, priv, hasPriv, limit)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "asking the workers: "+err.Error())
			return
		}
		for _, f := range list {
			resp.Flows = append(resp.Flows, flowEntry(&f))
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func flowEntry(f *lcore.FlowInfo) FlowEntry {
	ep := func(a uint32, p uint16) string { return netip.AddrPortFrom(nat.AddrFrom(a), p).String() }
	return FlowEntry{
		Protocol:    nat.ProtoName(f.Proto),
		Private:     ep(f.Private, f.PrivatePort),
		Public:      ep(f.Public, f.PublicPort),
		Remote:      ep(f.Remote, f.RemotePort),
		State:       stateName(f.State),
		IdleSeconds: float64(f.Idle) / 1000,
		Worker:      f.Worker,
	}
}

// stateName names a flow state for the API.
func stateName(s uint8) string {
	switch s {
	case nat.StateTCPSynSent:
		return "syn_sent"
	case nat.StateTCPEstablished:
		return "established"
	case nat.StateTCPClosing:
		return "closing"
	case nat.StateUDP:
		return "udp"
	case nat.StateICMP:
		return "icmp"
	}
	return "unknown"
}

// reload re-reads the configuration file: 200 with the new generation, or
// 400 with every problem and nothing changed.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.o.Reloader == nil {
		writeError(w, http.StatusServiceUnavailable, "reload is not available")
		return
	}
	gen, err := s.o.Reloader.Reload()
	if err != nil {
		list := ErrorList(err)
		writeJSON(w, http.StatusBadRequest, ErrorResponse{
			Error:  "reload failed, the running configuration is unchanged: " + strings.Join(list, "; "),
			Errors: list,
		})
		return
	}
	writeJSON(w, http.StatusOK, ReloadResponse{Generation: gen})
}

// drain starts draining the node (natgw ctl drain): 202 when it started
// (or was already under way), 409 when the node has nothing to drain
// from ([bgp] is not configured).
func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	if s.o.Drain == nil {
		writeError(w, http.StatusConflict, "drain needs [bgp]: without it no router sends this node traffic by announcement, so there is nothing to withdraw")
		return
	}
	if err := s.o.Drain(); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "draining"})
}
