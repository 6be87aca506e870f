package mgmt

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/natgw/natgw/mgmt/config"
)

// This file is draining a frontend at run time (issue 19 part 3: natgw
// ctl drain-frontend, POST /v1/frontends/{name}/drain): the running
// configuration with the frontend set to drain (frontend.drain = true)
// goes through the Reloader's one publish path, like a reload. The
// Reloader remembers the frontends drained this way and applies them to
// every configuration it loads later (reloads and plans), until the
// frontend leaves the configuration file or the drain is cancelled; they
// are not written to the file, so a restart forgets them.

// ErrNoFrontend is returned by DrainFrontend for a name the running
// configuration has no frontend of.
var ErrNoFrontend = errors.New("no such frontend")

// DrainFrontend sets frontend name of the running configuration to drain
// (drain true) or cancels a drain set at run time (drain false), and
// publishes the result as a reload does: counted in the reload results,
// the running configuration untouched on error. It returns the new
// generation.
func (r *Reloader) DrainFrontend(name string, drain bool) (uint32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gen, err := r.drainFrontend(name, drain)
	if err != nil {
		r.fail.Add(1)
		r.o.Log.Error("drain-frontend failed: the running configuration is unchanged", "frontend", name, "error", err)
		return 0, err
	}
	r.ok.Add(1)
	r.o.Log.Info("frontend drain set", "frontend", name, "drain", drain, "generation", gen)
	return gen, nil
}

func (r *Reloader) drainFrontend(name string, drain bool) (uint32, error) {
	if r.running == nil {
		return 0, errors.New("there is no running configuration")
	}
	i := slices.IndexFunc(r.running.Frontends, func(f config.Frontend) bool { return f.Name == name })
	if i < 0 {
		return 0, fmt.Errorf("%w %q", ErrNoFrontend, name)
	}
	if !drain && r.running.Frontends[i].Drain && !r.drains[name] {
		return 0, fmt.Errorf("frontend %q drains by the configuration file (drain = true): remove that and reload", name)
	}
	c := *r.running
	c.Frontends = slices.Clone(r.running.Frontends)
	c.Frontends[i].Drain = drain
	if err := c.Validate(); err != nil {
		return 0, err
	}
	gen, err := r.publish(&c)
	if err != nil {
		return 0, err
	}
	if drain {
		if r.drains == nil {
			r.drains = make(map[string]bool)
		}
		r.drains[name] = true
	} else {
		delete(r.drains, name)
	}
	return gen, nil
}

// RuntimeDrains returns the frontends set to drain at run time, sorted.
func (r *Reloader) RuntimeDrains() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n := range r.drains {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// applyDrains sets the frontends drained at run time to drain in c, a
// configuration just loaded, and validates it again when that changed
// it. Frontends c no longer has are forgotten only when c is published;
// until then they are skipped.
func (r *Reloader) applyDrains(c *config.Config) error {
	changed := false
	for i := range c.Frontends {
		if r.drains[c.Frontends[i].Name] && !c.Frontends[i].Drain {
			c.Frontends[i].Drain = true
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("with the frontends drained at run time (%s): %w", strings.Join(r.drainNames(), ", "), err)
	}
	return nil
}

// drainNames lists r.drains; mu is held.
func (r *Reloader) drainNames() []string {
	var out []string
	for n := range r.drains {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// forgetDrains drops the run-time drains of frontends c does not have;
// mu is held.
func (r *Reloader) forgetDrains(c *config.Config) {
	for n := range r.drains {
		if !slices.ContainsFunc(c.Frontends, func(f config.Frontend) bool { return f.Name == n }) {
			delete(r.drains, n)
		}
	}
}

// DrainFrontendResponse is the body of a successful POST
// /v1/frontends/{name}/drain or /undrain.
type DrainFrontendResponse struct {
	Generation uint32 `json:"generation"`
	Frontend   string `json:"frontend"`
	Draining   bool   `json:"draining"`
	// Stuck lists the pool members ("pool/member") whose blocks stay on
	// the frontend for lack of room on their pools' other frontends.
	Stuck []string `json:"stuck"`
}

// drainFrontend answers POST /v1/frontends/{name}/drain and /undrain.
func (s *Server) drainFrontend(w http.ResponseWriter, r *http.Request) {
	if s.o.Reloader == nil {
		writeError(w, http.StatusServiceUnavailable, "drain-frontend is not available")
		return
	}
	name := r.PathValue("name")
	drain := strings.HasSuffix(r.URL.Path, "/drain")
	gen, err := s.o.Reloader.DrainFrontend(name, drain)
	if errors.Is(err, ErrNoFrontend) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		list := ErrorList(err)
		writeJSON(w, http.StatusBadRequest, ErrorResponse{
			Error:  "drain-frontend failed, the running configuration is unchanged: " + strings.Join(list, "; "),
			Errors: list,
		})
		return
	}
	resp := DrainFrontendResponse{Generation: gen, Frontend: name, Draining: drain, Stuck: []string{}}
	if p := s.o.Policy.Load(); p != nil && drain {
		for _, d := range DrainingFrontends(p) {
			if fe := frontendAddr(s.o.Reloader, name); fe == d.Frontend {
				resp.Stuck = d.Stuck
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// frontendAddr returns the address of frontend name in the running
// configuration, or "".
func frontendAddr(r *Reloader, name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running == nil {
		return ""
	}
	for _, f := range r.running.Frontends {
		if f.Name == name {
			return f.Address
		}
	}
	return ""
}
