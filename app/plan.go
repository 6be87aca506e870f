package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/mgmt"
)

// This file is "natgw plan" and the plan step of "natgw ctl reload"
// (issue 18): what a configuration would do to the running appliance,
// from POST /v1/config/plan, printed for an operator.

// planUsage is plan's synopsis.
const planUsage = `usage: natgw plan --config FILE [--mgmt URL] [--json] [--timeout D] [--token-file F]
Asks the running appliance what loading FILE would do, and applies nothing:
members whose blocks change, live flows a reload would reclaim per pool (with
a sample), addresses that change scenario, and each pool's headroom.
Exit status 0 with a plan, 1 when FILE is invalid (every problem is listed)
or the appliance can't be asked, 2 for a wrong command line.`

// ctlStdin and stdinIsTerminal are where "ctl reload" reads its answer and
// whether that is an operator's terminal; tests replace them.
var (
	ctlStdin        io.Reader = os.Stdin
	stdinIsTerminal           = func() bool {
		_, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS)
		return err == nil
	}
)

// cmdPlan runs "natgw plan".
func cmdPlan(args []string, stdout, stderr io.Writer) int {
	c := &ctlClient{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("natgw plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, planUsage) }
	path := fs.String("config", "", "the candidate configuration `FILE`")
	c.flags(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "natgw plan: unexpected argument %q\n%s\n", fs.Arg(0), planUsage)
		return exitUsage
	}
	if *path == "" {
		fmt.Fprintf(stderr, "natgw plan: --config FILE is required\n%s\n", planUsage)
		return exitUsage
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintf(stderr, "natgw plan: %v\n", err)
		return exitFail
	}
	if len(data) == 0 {
		// An empty body would plan the appliance's own file.
		fmt.Fprintf(stderr, "natgw plan: %s is empty\n", *path)
		return exitFail
	}
	u, err := normalizeURL(c.base)
	if err != nil {
		fmt.Fprintf(stderr, "natgw plan: --mgmt %q: %v\n", c.base, err)
		return exitUsage
	}
	c.base = u
	c.body = data
	var p mgmt.PlanResponse
	return c.run(http.MethodPost, "/v1/config/plan", &p, func(w io.Writer) { showPlan(w, &p) })
}

// reload is "ctl reload": with --yes, or when stdin is not a terminal
// (scripts, as before plans existed), it reloads at once; on a terminal
// it shows the plan of the appliance's configuration file first and
// reloads only when the operator says yes.
func (c *ctlClient) reload(args []string) int {
	yes := false
	if _, ok := c.subFlags("reload", args, 0, func(fs *flag.FlagSet) {
		fs.BoolVar(&yes, "yes", false, "reload without showing the plan or asking")
	}); !ok {
		return exitUsage
	}
	if !yes && !c.json && stdinIsTerminal() {
		var p mgmt.PlanResponse
		if code := c.run(http.MethodPost, "/v1/config/plan", &p, func(w io.Writer) { showPlan(w, &p) }); code != exitOK {
			return code
		}
		fmt.Fprintf(c.stdout, "\nreload the appliance's configuration file now? [y/N] ")
		answer, _ := bufio.NewReader(ctlStdin).ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "y", "yes":
		default:
			fmt.Fprintln(c.stdout, "not reloaded: the running configuration is unchanged")
			return exitFail
		}
	}
	var r mgmt.ReloadResponse
	return c.run(http.MethodPost, "/v1/config/reload", &r, func(w io.Writer) {
		fmt.Fprintf(w, "configuration reloaded: generation %d\n", r.Generation)
	})
}

// showPlan prints a plan for an operator.
func showPlan(w io.Writer, p *mgmt.PlanResponse) {
	block := func(b *mgmt.PlanBlock) string {
		if b == nil {
			return "-"
		}
		return fmt.Sprintf("%s:%d-%d", b.Public, b.First, b.Last)
	}
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintf(w, "plan against configuration generation %d (nothing applied)\n", p.Generation)

	fmt.Fprintf(w, "\nblocks that change: %d\n", len(p.BlockChanges))
	if len(p.BlockChanges) > 0 {
		fmt.Fprintln(w, "MEMBER\tCHANGE\tOLD POOL\tNEW POOL\tOLD BLOCK\tNEW BLOCK\tGRACE")
		for _, bc := range p.BlockChanges {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", bc.Member, bc.Change, bc.OldPool, orDash(bc.NewPool),
				block(&bc.Old), block(bc.New), block(bc.Grace))
		}
	}

	fmt.Fprintf(w, "\nlive flows a reload would reclaim: %d of %d\n", p.ReclaimedTotal, p.FlowsExamined)
	if p.FlowsSweeping > 0 {
		fmt.Fprintf(w, "(%d flows are still being checked after the previous reload and are not counted: plan again for an exact count)\n", p.FlowsSweeping)
	}
	for _, r := range p.Reclaimed {
		fmt.Fprintf(w, "pool %s\t%d flows\n", r.Pool, r.Flows)
		for _, f := range r.Sample {
			fmt.Fprintf(w, "  %s\t%s\t-> %s\t-> %s\n", f.Protocol, f.Private, f.Public, f.Remote)
		}
	}

	if p.DrainingTotal > 0 || p.DrainDeadline != "" {
		fmt.Fprintf(w, "\nlive flows that would drain instead (kept until they end, at most %s): %d\n", p.DrainDeadline, p.DrainingTotal)
		for _, r := range p.Draining {
			fmt.Fprintf(w, "pool %s\t%d flows\n", r.Pool, r.Flows)
		}
	}
	for _, d := range p.DrainingFrontends {
		if len(d.Stuck) == 0 {
			fmt.Fprintf(w, "\nfrontend %s drains: every block moved to the pools' other frontends\n", d.Frontend)
			continue
		}
		fmt.Fprintf(w, "\nfrontend %s drains, but its pools' other frontends have no room for %d members: their blocks stay on it and their new flows still use it: %s\n",
			d.Frontend, len(d.Stuck), strings.Join(d.Stuck, ", "))
	}

	fmt.Fprintf(w, "\nscenario changes: %d\n", len(p.Connectivity))
	if len(p.Connectivity) > 0 {
		fmt.Fprintln(w, "PRIVATE\tBEFORE\tAFTER\tPOOL")
		for _, c := range p.Connectivity {
			before := c.Previous
			if before == "none" {
				before = "none (first connectivity)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Private, before, c.Scenario, orDash(c.Pool))
		}
	}
	if len(p.NewDefaultSources) > 0 {
		fmt.Fprintf(w, "new default-SNAT sources\t%s\n", strings.Join(p.NewDefaultSources, ", "))
	}

	fmt.Fprintln(w, "\nPOOL\tMEMBERS\tPORTS/MEMBER\tUNTIL NEXT TIER\tUNTIL FRONTENDS FULL")
	for _, h := range p.Pools {
		tier := "- (ports_per_member set)"
		if h.Tiered {
			tier = "- (last tier)"
		}
		if h.UntilNextTier != nil && h.NextTierPorts != nil {
			tier = fmt.Sprintf("%d members (then %d ports each)", *h.UntilNextTier, *h.NextTierPorts)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d members\n", h.Pool, h.Members, h.PortsPerMember, tier, h.UntilFrontendsFull)
	}
}
