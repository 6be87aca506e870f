package mgmt

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
)

// This file applies configuration at run time: re-read the file, validate,
// compile against the running policy and publish it with one atomic swap.
// It runs on the management core (the SIGHUP handler or an HTTP handler);
// reloads are serialised so two of them never compile against the same
// running policy.

// ReloadOptions wire a Reloader.
type ReloadOptions struct {
	// Path is the configuration file.
	Path string
	// Policy holds the running policy; the Reloader stores new ones.
	Policy *nat.PolicyHolder
	// Config is the running configuration, the one Policy's policy was
	// compiled from (with CompilePolicy); the Reloader replaces it with
	// each configuration it publishes.
	Config *config.Config
	// Check, when set, refuses a new configuration that the running
	// appliance can't take without a restart (another driver, other
	// ports...). It gets the running and the new configuration; it is
	// not called while there is no running configuration.
	Check func(running, next *config.Config) error
	// Apply, when set, is called after a new policy is published, with
	// the configuration it was compiled from, for the settings that live
	// outside the policy (static neighbours).
	Apply func(c *config.Config, p *nat.Policy)
	// Log receives one line per reload.
	Log *slog.Logger
}

// Reloader re-reads the configuration file on request (SIGHUP, POST
// /v1/config/reload). A reload either publishes a complete new policy or
// changes nothing. It is safe for concurrent use.
type Reloader struct {
	o  ReloadOptions
	mu sync.Mutex
	// running is the running configuration (o.Config, then each
	// configuration published); mu guards it.
	running  *config.Config
	ok, fail atomic.Uint64
	// drains are the frontends set to drain at run time (DrainFrontend,
	// drainfrontend.go), applied to every configuration loaded until the
	// frontend leaves it; mu guards it.
	drains map[string]bool
}

// NewReloader returns a Reloader for o.
func NewReloader(o ReloadOptions) *Reloader {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Reloader{o: o, running: o.Config}
}

// Path returns the configuration file the Reloader reads.
func (r *Reloader) Path() string { return r.o.Path }

// Reload re-reads, validates and compiles the configuration file and
// publishes it. It returns the new generation, or every problem found (a
// config.Errors for validation problems) with the running configuration
// untouched.
func (r *Reloader) Reload() (uint32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gen, err := r.reload()
	if err != nil {
		r.fail.Add(1)
		r.o.Log.Error("reload failed: the running configuration is unchanged", "error", err)
		return 0, err
	}
	r.ok.Add(1)
	r.o.Log.Info("configuration reloaded", "generation", gen)
	return gen, nil
}

func (r *Reloader) reload() (uint32, error) {
	c, err := config.Load(r.o.Path)
	if err != nil {
		return 0, err
	}
	if err := r.applyDrains(c); err != nil {
		return 0, err
	}
	return r.publish(c)
}

// publish checks and compiles c against the running policy and publishes
// it: the one path of Reload and DrainFrontend.
func (r *Reloader) publish(c *config.Config) (uint32, error) {
	if r.o.Check != nil && r.running != nil {
		if err := r.o.Check(r.running, c); err != nil {
			return 0, err
		}
	}
	old := r.o.Policy.Load()
	p, err := CompilePolicy(c, old)
	if err != nil {
		return 0, err
	}
	r.o.Policy.Store(p)
	r.running = c
	r.forgetDrains(c)
	if r.o.Apply != nil {
		r.o.Apply(c, p)
	}
	if changed := p.ChangedMembers(old); len(changed) > 0 {
		r.o.Log.Info("pool blocks changed: flows on reclaimed ports expire", "members", len(changed))
	}
	return p.Gen, nil
}

// Candidate parses, checks and compiles a candidate configuration
// against the running policy, like a reload, and publishes nothing: data
// is a configuration file's content, or nil for the configuration file
// the Reloader reads (what the next reload would apply). It returns the
// running policy, the candidate policy and its configuration, or every
// problem found (natgw plan).
func (r *Reloader) Candidate(data []byte) (running, next *nat.Policy, c *config.Config, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if data == nil {
		c, err = config.Load(r.o.Path)
	} else {
		c, err = config.Parse(data, "candidate")
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if err := r.applyDrains(c); err != nil {
		return nil, nil, nil, err
	}
	if r.o.Check != nil && r.running != nil {
		if err := r.o.Check(r.running, c); err != nil {
			return nil, nil, nil, err
		}
	}
	running = r.o.Policy.Load()
	if next, err = CompilePolicy(c, running); err != nil {
		return nil, nil, nil, err
	}
	return running, next, c, nil
}

// Results returns the number of successful and failed reloads so far.
func (r *Reloader) Results() (ok, failed uint64) { return r.ok.Load(), r.fail.Load() }

// ErrorList splits a reload error into its problems, one string each: the
// entries of a config.Errors or of a joined error, else the error itself.
func ErrorList(err error) []string {
	if err == nil {
		return nil
	}
	var ce config.Errors
	if errors.As(err, &ce) {
		out := make([]string, len(ce))
		for i, fe := range ce {
			out[i] = fe.Error()
		}
		return out
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, ErrorList(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
