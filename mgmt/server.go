package mgmt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/natgw/natgw/attrib"
	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// This file is the management server: the HTTP endpoint of SPEC §6 and the
// management core's periodic work (busy-ratio sampling, default-SNAT block
// reclamation). HTTP handlers run on net/http's goroutines and only read
// what workers publish with atomics or ask workers through their query
// slots (lcore/query.go); the maintenance loop is one goroutine.

// Server limits and timeouts.
const (
	// MaxBodyBytes is the largest request body accepted.
	MaxBodyBytes = 64 << 10
	// DefaultQueryTimeout bounds how long a handler waits for the workers.
	DefaultQueryTimeout = 2 * time.Second
	// DefaultFlowsLimit is the number of flows GET /v1/flows returns when
	// the request names no limit.
	DefaultFlowsLimit = 100
	// ReclaimInterval is how often idle default-SNAT blocks are reclaimed,
	// or default_snat.reclaim_idle when that is shorter.
	ReclaimInterval = 10 * time.Second
	// ReadyPollAge is the longest a worker may go without polling while
	// the appliance reports ready.
	ReadyPollAge = time.Second
	// MaxConcurrentQueries is how many requests that ask the workers
	// (GET /v1/flows, GET /v1/mappings/{ip}) or the attribution history
	// (GET /v1/attribution) may run at once; more are
	// answered 429 at once. Each holds a query per worker, whose buffers
	// are sized by the worker's table (lcore.QuerySlack).
	MaxConcurrentQueries = 4
)

// Options configure a Server.
type Options struct {
	// Listen is the address to listen on (mgmt.listen).
	Listen string
	// Token, when not empty, is required as "Authorization: Bearer
	// <token>" on every /v1/ request, GET included (read it with
	// ReadToken); /metrics, /healthz and /readyz stay open.
	Token string
	// Runtime is the running dataplane.
	Runtime *lcore.Runtime
	// Ports are the inside and outside ports.
	Ports [lcore.NumPorts]lcore.Port
	// Policy holds the running policy.
	Policy *nat.PolicyHolder
	// Reloader reloads the configuration (POST /v1/config/reload).
	Reloader *Reloader
	// Version and Driver are reported by /v1/status.
	Version, Driver string
	// Started is when the appliance started.
	Started time.Time
	// Log receives the server's log lines.
	Log *slog.Logger
	// QueryTimeout bounds worker queries (DefaultQueryTimeout when 0).
	QueryTimeout time.Duration
	// History is the attribution history (nat_log.history), nil when
	// none is kept: GET /v1/attribution reads it.
	History *attrib.Store
	// BGPStatus, when set, gives the "bgp" part of /v1/status (natgw
	// behind ECMP announced by BGP).
	BGPStatus func() any
	// Drain, when set, starts draining the node (POST /v1/drain): it
	// withdraws its routes and exits once its flows ended.
	Drain func() error
}

// Server is natgw's management server.
type Server struct {
	o       Options
	reg     *prometheus.Registry
	handler http.Handler
	history policyHistory
	hot     hotTracker // hotspots.go

	busyMu   sync.Mutex
	busyPrev []busySample
	busy     []float64

	lastReclaim time.Time

	// queries holds a token per worker query in flight (at most
	// MaxConcurrentQueries).
	queries chan struct{}

	http *http.Server
	ln   net.Listener
	stop chan struct{}
	wg   sync.WaitGroup
}

type busySample struct{ polls, busy uint64 }

// NewServer builds a server; Start makes it listen.
func NewServer(o Options) (*Server, error) {
	if o.Policy == nil || o.Policy.Load() == nil {
		return nil, errors.New("mgmt: no policy")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.Started.IsZero() {
		o.Started = time.Now()
	}
	s := &Server{o: o, stop: make(chan struct{}), queries: make(chan struct{}, MaxConcurrentQueries)}
	s.history.note(o.Policy.Load())
	s.reg = newRegistry(s)
	s.handler = s.routes()
	return s, nil
}

// ReadToken reads a bearer token file: its content without surrounding
// white space, which must not be empty.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("mgmt.token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("mgmt.token_file: %s is empty", path)
	}
	return tok, nil
}

// NotReady returns why natgw is not ready (what /readyz answers), or
// nothing when it is.
func (s *Server) NotReady() []string { return s.notReady() }

// Handler returns the HTTP handler of the API (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Registry returns natgw's Prometheus registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Start listens on Options.Listen and serves the API and the maintenance
// loop on their own goroutines until Close.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("mgmt.listen: %w", err)
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.o.Log.Handler(), slog.LevelWarn),
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.o.Log.Error("management server stopped", "error", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.loop()
	}()
	s.o.Log.Info("management API listening", "address", ln.Addr().String(), "token", s.o.Token != "")
	return nil
}

// Addr returns the address the server listens on (nil before Start).
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the server, waiting briefly for requests in flight.
func (s *Server) Close() error {
	if s.http == nil {
		return nil
	}
	close(s.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	s.wg.Wait()
	return err
}

// loop runs Maintain once a second until Close.
func (s *Server) loop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.Maintain(now)
		}
	}
}

// Maintain does the management core's periodic work; the server calls it
// once a second. It samples the workers' busy ratios, remembers the
// running policy's pool names for the metrics, and every ReclaimInterval
// (or default_snat.reclaim_idle, when shorter) reclaims default-SNAT
// blocks idle for default_snat.reclaim_idle. Only one goroutine may call
// it at a time.
func (s *Server) Maintain(now time.Time) {
	pol := s.o.Policy.Load()
	s.history.note(pol)
	s.sampleBusy()
	s.hot.sample(now, s.o.Runtime)
	// A policy built in code may leave ReclaimIdle out: the default then.
	idle := cmp.Or(pol.DefaultSNATReclaimIdle(), config.DefaultSNATReclaimIdle)
	if d := pol.DefaultSNAT(); d != nil && now.Sub(s.lastReclaim) >= min(ReclaimInterval, idle) {
		s.lastReclaim = now
		if n := d.Reclaim(now, idle); n > 0 {
			s.o.Log.Info("default SNAT blocks reclaimed", "blocks", n)
		}
	}
}

// sampleBusy updates each worker's busy ratio from the polls since the
// previous sample.
func (s *Server) sampleBusy() {
	rt := s.o.Runtime
	if rt == nil {
		return
	}
	s.busyMu.Lock()
	defer s.busyMu.Unlock()
	n := len(rt.Workers)
	if len(s.busyPrev) != n {
		s.busyPrev = make([]busySample, n)
		s.busy = make([]float64, n)
	}
	for i, w := range rt.Workers {
		cur := busySample{w.Counters.Polls.Load(), w.Counters.BusyPolls.Load()}
		prev := s.busyPrev[i]
		if dp := cur.polls - prev.polls; dp > 0 {
			s.busy[i] = float64(cur.busy-prev.busy) / float64(dp)
		} else {
			s.busy[i] = 0
		}
		s.busyPrev[i] = cur
	}
}

// busyRatios returns each worker's busy ratio over the last sample period,
// or over its whole life before the first sample.
func (s *Server) busyRatios() []float64 {
	rt := s.o.Runtime
	out := make([]float64, len(rt.Workers))
	s.busyMu.Lock()
	sampled := len(s.busy) == len(out)
	if sampled {
		copy(out, s.busy)
	}
	s.busyMu.Unlock()
	if !sampled {
		for i, w := range rt.Workers {
			if p := w.Counters.Polls.Load(); p > 0 {
				out[i] = float64(w.Counters.BusyPolls.Load()) / float64(p)
			}
		}
	}
	return out
}
