package mgmt

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
	"github.com/natgw/natgw/portalloc"
)

// This file is POST /v1/config/plan (natgw plan, issue 18): what a
// candidate configuration would do to the running appliance, without
// applying anything. The candidate is compiled against the running
// policy exactly as a reload compiles it (Reloader.Candidate), and the
// workers count the live flows it would reclaim with the predicate
// their sweep uses (nat.Policy.Keeps, lcore.Runtime.Plan).

// PlanBlock is a member's port block in a PlanResponse.
type PlanBlock struct {
	Public string `json:"public"`
	First  uint16 `json:"first"`
	Last   uint16 `json:"last"`
}

// PlanBlockChange is a pool member whose block the candidate moves,
// shrinks, grows or removes.
type PlanBlockChange struct {
	Member string `json:"member"`
	// Change is "moved" (another address or range), "shrunk" (a part of
	// the block, on a pool's step up a tier), "grown" (the block plus
	// more, its flows all stay) or "removed" (no pool member any more).
	Change  string     `json:"change"`
	OldPool string     `json:"old_pool"`
	NewPool string     `json:"new_pool,omitempty"`
	Old     PlanBlock  `json:"old"`
	New     *PlanBlock `json:"new"`
	// Grace is the part of its old blocks its existing flows keep (on
	// the new block's address, after a pool stepped down a tier).
	Grace *PlanBlock `json:"grace,omitempty"`
}

// PlanReclaim is, for one pool of the running configuration (or
// "default_snat", "instance"), the live flows the candidate would reclaim.
type PlanReclaim struct {
	Pool  string `json:"pool"`
	Flows int    `json:"flows"`
	// Sample lists up to lcore.PlanSamples of them.
	Sample []FlowEntry `json:"sample"`
}

// PlanDrainingFrontend is a frontend the candidate sets to drain, with
// the pool members whose blocks still lie on it for lack of room on
// their pools' other frontends (empty when every block moved off).
type PlanDrainingFrontend struct {
	Frontend string `json:"frontend"`
	// Stuck lists those members, "pool/member".
	Stuck []string `json:"stuck"`
}

// DrainingFrontends lists the frontends p sets to drain, each with the
// pool members whose blocks p still lays out on it.
func DrainingFrontends(p *nat.Policy) []PlanDrainingFrontend {
	out := []PlanDrainingFrontend{}
	on := p.BlocksOnDraining()
	for _, fe := range p.DrainingFrontends() {
		d := PlanDrainingFrontend{Frontend: nat.AddrFrom(fe).String(), Stuck: []string{}}
		for _, b := range on {
			if b.Block.Public == fe {
				d.Stuck = append(d.Stuck, b.Pool+"/"+b.Member.String())
			}
		}
		out = append(out, d)
	}
	return out
}

// PlanConnectivity is an address whose scenario the candidate changes:
// Previous "none" means it gets connectivity for the first time.
type PlanConnectivity struct {
	Private  string `json:"private"`
	Previous string `json:"previous"`
	Scenario string `json:"scenario"`
	Pool     string `json:"pool,omitempty"`
}

// PlanHeadroom says, for one pool of the candidate, how many members it
// can still add before its blocks shrink to the next tier and before its
// frontends are full at the current block size.
type PlanHeadroom struct {
	Pool           string `json:"pool"`
	Members        int    `json:"members"`
	PortsPerMember int    `json:"ports_per_member"`
	// Tiered is true when the block size follows the tier table
	// (ports_per_member not set).
	Tiered bool `json:"tiered"`
	// UntilNextTier is how many members can join before the blocks shrink
	// to NextTierPorts; null when the pool is not tiered or at its last
	// tier (then UntilFrontendsFull and the 1000-member limit bound it).
	UntilNextTier *int `json:"until_next_tier"`
	NextTierPorts *int `json:"next_tier_ports"`
	// UntilFrontendsFull is how many more blocks of the current size the
	// pool's frontends hold.
	UntilFrontendsFull int `json:"until_frontends_full"`
}

// PlanResponse is the body of POST /v1/config/plan.
type PlanResponse struct {
	// Generation is the running configuration's; a reload of the
	// candidate would publish Generation+1.
	Generation uint32 `json:"generation"`
	// BlockChanges lists the members whose blocks change.
	BlockChanges []PlanBlockChange `json:"block_changes"`
	// FlowsExamined is the number of live flows the workers checked.
	FlowsExamined int `json:"flows_examined"`
	// FlowsSweeping counts flows a previous reload's sweep had not
	// decided yet; they are not counted in Reclaimed (plan again).
	FlowsSweeping int `json:"flows_sweeping"`
	// Reclaimed lists, per pool of the running configuration, the live
	// flows the reload would reclaim [S7]; pools that lose none are left
	// out.
	Reclaimed []PlanReclaim `json:"reclaimed"`
	// ReclaimedTotal is the sum over Reclaimed.
	ReclaimedTotal int `json:"reclaimed_total"`
	// Draining lists, per pool of the running configuration, the live
	// flows the reload would not keep but drain (reload.reclaim =
	// "drain", or a frontend set to drain): they are not in Reclaimed;
	// DrainingTotal is their sum and DrainDeadline how long they may
	// drain.
	Draining      []PlanReclaim `json:"draining"`
	DrainingTotal int           `json:"draining_total"`
	DrainDeadline string        `json:"drain_deadline,omitempty"`
	// DrainingFrontends lists, for each frontend the candidate sets to
	// drain, the pool members whose blocks still lie on it because the
	// pool's other frontends have no room: their new flows still take
	// ports there.
	DrainingFrontends []PlanDrainingFrontend `json:"draining_frontends"`
	// Connectivity lists pool members and instances whose scenario
	// changes; NewDefaultSources the default-SNAT source prefixes added.
	Connectivity      []PlanConnectivity `json:"connectivity"`
	NewDefaultSources []string           `json:"new_default_sources"`
	// Pools is the headroom of each pool of the candidate.
	Pools []PlanHeadroom `json:"pools"`
}

// planRetries is how often plan asks the workers again when a reload
// raced the count or a worker had not picked up the running policy yet.
const planRetries = 5

// plan answers POST /v1/config/plan: the body is the candidate TOML (an
// empty body plans the configuration file, what the next reload would
// apply). 400 lists every validation problem; nothing is applied.
func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	if s.o.Reloader == nil {
		writeError(w, http.StatusServiceUnavailable, "plan is not available")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	if len(body) == 0 {
		body = nil
	}
	if !s.acquireQuery(w) {
		return
	}
	defer s.releaseQuery()
	ctx, cancel := context.WithTimeout(r.Context(), s.o.QueryTimeout)
	defer cancel()
	var resp *PlanResponse
	for attempt := 0; ; attempt++ {
		running, next, c, err := s.o.Reloader.Candidate(body)
		if err != nil {
			list := ErrorList(err)
			writeJSON(w, http.StatusBadRequest, ErrorResponse{
				Error:  "the candidate configuration is invalid: " + strings.Join(list, "; "),
				Errors: list,
			})
			return
		}
		resp, err = Plan(ctx, s.o.Runtime, running, next, c)
		if errors.Is(err, lcore.ErrPolicyChanged) && attempt < planRetries {
			time.Sleep(20 * time.Millisecond) // let the workers pick the policy up
			continue
		}
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "asking the workers: "+err.Error())
			return
		}
		break
	}
	writeJSON(w, http.StatusOK, resp)
}

// Plan describes what replacing the running policy by next, compiled
// from c against running, would do; rt, when not nil, counts the live
// flows next would reclaim. It changes nothing.
func Plan(ctx context.Context, rt *lcore.Runtime, running, next *nat.Policy, c *config.Config) (*PlanResponse, error) {
	resp := &PlanResponse{Generation: running.Gen, BlockChanges: []PlanBlockChange{}, Reclaimed: []PlanReclaim{},
		Draining: []PlanReclaim{}, DrainingFrontends: DrainingFrontends(next),
		Connectivity: []PlanConnectivity{}, NewDefaultSources: []string{}, Pools: []PlanHeadroom{}}
	for _, mc := range next.MemberChanges(running) {
		resp.BlockChanges = append(resp.BlockChanges, blockChange(mc))
	}
	if rt != nil {
		p, err := rt.Plan(ctx, running, next)
		if err != nil {
			return nil, err
		}
		resp.FlowsExamined, resp.FlowsSweeping = p.Flows, p.Sweeping
		for k, n := range p.Reclaimed {
			if n == 0 {
				continue
			}
			pr := PlanReclaim{Pool: planScopeName(running, k), Flows: n, Sample: []FlowEntry{}}
			for i := range p.Samples[k] {
				pr.Sample = append(pr.Sample, flowEntry(&p.Samples[k][i]))
			}
			resp.Reclaimed = append(resp.Reclaimed, pr)
			resp.ReclaimedTotal += n
		}
		for k, n := range p.Draining {
			if n > 0 {
				resp.Draining = append(resp.Draining, PlanReclaim{Pool: planScopeName(running, k), Flows: n, Sample: []FlowEntry{}})
				resp.DrainingTotal += n
			}
		}
	}
	if next.ReclaimDrains() || len(next.DrainingFrontends()) > 0 || resp.DrainingTotal > 0 {
		resp.DrainDeadline = (time.Duration(next.DrainDeadline()) * time.Millisecond).String()
	}
	resp.Connectivity = connectivity(running, next)
	old := running.DefaultSources()
	for _, pf := range next.DefaultSources() {
		if !slices.Contains(old, pf) {
			resp.NewDefaultSources = append(resp.NewDefaultSources, pf.String())
		}
	}
	for i, pi := range next.Pools {
		tiered := i < len(c.Pools) && c.Pools[i].PortsPerMember == 0
		resp.Pools = append(resp.Pools, headroom(pi, tiered))
	}
	return resp, nil
}

// planScopeName names index k of an lcore.Plan under policy p.
func planScopeName(p *nat.Policy, k int) string {
	switch {
	case k < len(p.Pools):
		return p.Pools[k].Name
	case k == len(p.Pools):
		return nat.DefaultSNATPoolName
	}
	return "instance"
}

func planBlock(b portalloc.Block) PlanBlock {
	return PlanBlock{Public: nat.AddrFrom(b.Public).String(), First: b.First, Last: b.Last}
}

// blockChange describes one member's block change.
func blockChange(mc nat.MemberChange) PlanBlockChange {
	out := PlanBlockChange{Member: mc.Member.String(), OldPool: mc.OldPool, NewPool: mc.NewPool, Old: planBlock(mc.Old)}
	if mc.New.Public == 0 {
		out.Change = "removed"
		return out
	}
	nb := planBlock(mc.New)
	out.New = &nb
	// A grace on another address than the new block keeps nothing: a
	// flow stays only on the address of its member's block (Keeps).
	if mc.Grace.Public != 0 && mc.Grace.Public == mc.New.Public {
		g := planBlock(mc.Grace)
		out.Grace = &g
	}
	same := mc.New.Public == mc.Old.Public
	switch {
	case same && mc.New.Contains(mc.Old.First) && mc.New.Contains(mc.Old.Last):
		out.Change = "grown"
	case same && mc.Old.Contains(mc.New.First) && mc.Old.Contains(mc.New.Last):
		out.Change = "shrunk"
	default:
		out.Change = "moved"
	}
	return out
}

// connectivity lists the pool members and instances of next whose
// scenario differs under running (Previous "none": connectivity for the
// first time), sorted by address.
func connectivity(running, next *nat.Policy) []PlanConnectivity {
	var addrs []netip.Addr
	for _, pi := range next.Pools {
		addrs = append(addrs, pi.Members...)
	}
	for _, in := range next.Instances() {
		addrs = append(addrs, nat.AddrFrom(in.Private))
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	out := []PlanConnectivity{}
	for _, a := range addrs {
		om, ov := running.Classify(nat.U32(a))
		nm, nv := next.Classify(nat.U32(a))
		prev := "none"
		if ov == nat.VerdictForward {
			prev = om.Scenario.String()
		}
		if nv != nat.VerdictForward || (prev == nm.Scenario.String() && (nm.Scenario != nat.ScenarioPool || running.PoolName(om.Scope) == next.PoolName(nm.Scope))) {
			continue
		}
		pc := PlanConnectivity{Private: a.String(), Previous: prev, Scenario: nm.Scenario.String()}
		if nm.Scenario == nat.ScenarioPool {
			pc.Pool = next.PoolName(nm.Scope)
		}
		out = append(out, pc)
	}
	return out
}

// headroom computes a pool's headroom.
func headroom(pi nat.PoolInfo, tiered bool) PlanHeadroom {
	h := PlanHeadroom{Pool: pi.Name, Members: len(pi.Members), PortsPerMember: pi.PortsPerMember, Tiered: tiered}
	if pi.PortsPerMember > 0 {
		h.UntilFrontendsFull = max(portalloc.PortsPerAddress/pi.PortsPerMember*len(pi.Frontends)-len(pi.Members), 0)
	}
	if tiered {
		if most, next, ok := portalloc.NextTier(len(pi.Members)); ok && next > 0 {
			n := most - len(pi.Members)
			h.UntilNextTier, h.NextTierPorts = &n, &next
		}
	}
	return h
}
