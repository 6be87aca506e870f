package config

import "time"

// Reload is the [reload] section: what a reload does with the flows whose
// ports it takes from their pool member (a tier step up, a block moved
// off a draining frontend; issue 19).
type Reload struct {
	// Reclaim is "immediate" (the default: such flows end at the reload,
	// as [S7] has it) or "drain" (they live until they close, idle out or
	// ReclaimDeadline passes, while the ports' new owner already uses
	// them towards every other destination).
	Reclaim string `toml:"reclaim,omitempty"`
	// ReclaimDeadline bounds how long a flow drains, from the reload.
	ReclaimDeadline Duration `toml:"reclaim_deadline,omitempty"`
}

// Reload.Reclaim values.
const (
	ReclaimImmediate = "immediate"
	ReclaimDrain     = "drain"
)

// Bounds and default of reload.reclaim_deadline.
const (
	// DefaultReclaimDeadline is reload.reclaim_deadline: 5 minutes, more
	// than the default UDP and established-TCP idle timeouts (4m), so a
	// flow that goes quiet idles out before it is cut.
	DefaultReclaimDeadline = 5 * time.Minute
	// MinReclaimDeadline and MaxReclaimDeadline bound it (the packet
	// path's clock compares times within a day, as for timeouts).
	MinReclaimDeadline = time.Second
	MaxReclaimDeadline = 24 * time.Hour
)

// Drains reports whether reload.reclaim is "drain".
func (r *Reload) Drains() bool { return r.Reclaim == ReclaimDrain }

// applyDefaults fills in [reload]'s defaults.
func (r *Reload) applyDefaults(leftOut func(key string, zero bool) bool) {
	if leftOut("reload.reclaim", r.Reclaim == "") {
		r.Reclaim = ReclaimImmediate
	}
	defaultDuration(&r.ReclaimDeadline, DefaultReclaimDeadline)
}

// reload checks [reload] and the frontends set to drain.
func (v *validator) reload() {
	r := &v.c.Reload
	switch r.Reclaim {
	case ReclaimImmediate, ReclaimDrain:
	default:
		v.addf("reload.reclaim", "unknown value %q: write %q or %q", r.Reclaim, ReclaimImmediate, ReclaimDrain)
	}
	switch d := r.ReclaimDeadline.Duration; {
	case d < MinReclaimDeadline:
		v.addf("reload.reclaim_deadline", "%s is too short: at least %s", d, MinReclaimDeadline)
	case d > MaxReclaimDeadline:
		v.addf("reload.reclaim_deadline", "%s is too long: at most %s", d, "24h")
	}
	if d := v.c.DefaultSNAT; d != nil {
		for i, f := range v.c.Frontends {
			if f.Drain && f.Name != "" && containsString(d.Frontends, f.Name) {
				v.addf(index("frontend", i)+".drain", "frontend %q is in default_snat.frontends: natgw can't drain a default-SNAT frontend yet; remove it from default_snat.frontends first (that reclaims its default-SNAT flows)", f.Name)
			}
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
