//go:build dpdk

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/natlog"
)

// This file is the harness's -session-log option: natgw runs with NAT
// session logging on (issue 16), as the appliance does, so the lead can
// quote the connection establishment rate with and without it. Every
// flow created or deleted goes through the worker's session ring, the
// management loop and the exporter, which sends IPFIX over UDP to a sink
// of the harness's own on the loopback (it reads and discards, so the
// kernel never refuses a datagram).

// sessionLog is the exporter side of -session-log.
type sessionLog struct {
	sink      net.PacketConn
	out       *natlog.Output
	datagrams atomic.Uint64
	bytes     atomic.Uint64
	done      chan struct{}
}

// startSessionLog opens the sink and returns the [nat_log] section that
// sends sessions to it.
func startSessionLog() (*sessionLog, string, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	s := &sessionLog{sink: pc, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.datagrams.Add(1)
			s.bytes.Add(uint64(n))
		}
	}()
	section := fmt.Sprintf("\n[nat_log]\nipfix = [%q]\nevents = [\"blocks\", \"sessions\"]\n", pc.LocalAddr().String())
	return s, section, nil
}

// wire starts the exporter for cfg and hands it the runtime's session
// events (before the management loop runs).
func (s *sessionLog) wire(rt *lcore.Runtime, cfg natlog.ExporterConfig, log *slog.Logger) error {
	s.out = natlog.NewOutput(log)
	if err := s.out.Apply(cfg); err != nil {
		return err
	}
	if !cfg.Events.Sessions {
		return errors.New("session logging is not configured")
	}
	rt.Manager.OnSession = func(e *lcore.SessionEvent) { s.out.Record(natlog.SessionRecord(e, rt.WallTime(e.Time))) }
	s.out.WorkerDropped = rt.SessionsDropped
	return nil
}

// result stops the exporter (it sends what is queued) and the sink, and
// returns the counts.
func (s *sessionLog) result(rt *lcore.Runtime) *sessionLogResult {
	if s.out != nil {
		s.out.Close()
	}
	s.sink.Close()
	<-s.done
	r := &sessionLogResult{Collector: s.sink.LocalAddr().String(), Datagrams: s.datagrams.Load(), Bytes: s.bytes.Load()}
	if s.out != nil {
		r.Records = s.out.Counters.Records[natlog.FormatIPFIX].Load()
		r.Errors = s.out.Counters.Errors[natlog.FormatIPFIX].Load()
		r.QueueDropped = s.out.Counters.QueueDropped.Load()
	}
	if rt != nil {
		r.WorkerDropped = rt.SessionsDropped()
	}
	return r
}
