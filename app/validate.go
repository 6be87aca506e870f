package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/natgw/natgw/mgmt"
	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/portalloc"
)

// cmdValidate implements "natgw validate --config FILE": it prints
// "FILE: ok" and returns exitOK for a valid configuration, or prints each
// problem on its own line to stderr and returns exitFail.
func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("natgw validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `FILE` to check")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: natgw validate --config FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "natgw validate: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if *path == "" {
		fmt.Fprintln(stderr, "natgw validate: --config FILE is required")
		fs.Usage()
		return exitUsage
	}
	c, err := config.Load(*path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stderr, e)
			}
		} else {
			fmt.Fprintf(stderr, "natgw validate: %v\n", err)
		}
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	for _, l := range mappingCapacity(c) {
		fmt.Fprintln(stdout, l)
	}
	drainNotes(stdout, c)
	return exitOK
}

// mappingCapacity describes the capacity trade-off of every
// endpoint-independent pool and of default SNAT when it maps so
// (docs/OPERATIONS.md, "Mapping behaviours"): a member maps at most as
// many private endpoints at once as its block has ports, whatever the
// destinations, where address-and-port-dependent mapping reuses every
// port towards each destination.
func mappingCapacity(c *config.Config) []string {
	var lines []string
	say := func(scope, who string, ports int, filtering string) {
		if filtering == "" {
			filtering = config.FilteringAddressPortDependent
		}
		l := fmt.Sprintf("%s: endpoint-independent mapping, %s filtering: a %s maps at most %d private endpoints (protocol, address, port) at once, whatever the destinations; address-and-port-dependent mapping would give it %d ports towards each destination",
			scope, filtering, who, ports, ports)
		if w := c.Dataplane.Workers; w > 1 {
			l += fmt.Sprintf(". With %d workers each endpoint's mapping lives on one worker (a hash of the endpoint) and takes a port of that worker's share: at most %d endpoints of a %s on each worker", w, ports/w, who)
		}
		lines = append(lines, l)
	}
	for _, p := range c.Pools {
		if !config.EndpointIndependent(p.Mapping) {
			continue
		}
		ports := p.PortsPerMember
		if ports == 0 {
			members, err := p.MemberAddrs()
			if err != nil {
				continue
			}
			if ports, err = portalloc.TierPorts(len(members)); err != nil {
				continue
			}
		}
		say(fmt.Sprintf("pool %q", p.Name), "member", ports, p.Filtering)
	}
	if d := c.DefaultSNAT; d != nil && config.EndpointIndependent(d.Mapping) {
		say("default_snat", "source", cmp.Or(d.PortsPerMember, config.DefaultSNATPortsPerMember), d.Filtering)
	}
	return lines
}

// drainNotes prints, for each frontend c sets to drain, whether its pools'
// members all have blocks on other frontends, laid out from scratch (a
// running node keeps blocks where it can: natgw plan says what a reload
// would do).
func drainNotes(w io.Writer, c *config.Config) {
	if !slices.ContainsFunc(c.Frontends, func(f config.Frontend) bool { return f.Drain }) {
		return
	}
	p, err := mgmt.CompilePolicy(c, nil)
	if err != nil {
		fmt.Fprintf(w, "note: the draining frontends could not be checked: %v\n", err)
		return
	}
	for _, d := range mgmt.DrainingFrontends(p) {
		if len(d.Stuck) == 0 {
			fmt.Fprintf(w, "note: frontend %s drains: every pool block is on another frontend\n", d.Frontend)
			continue
		}
		fmt.Fprintf(w, "note: frontend %s drains, but its pools' other frontends have no room for %d members, whose blocks stay on it (new flows still use it): %s\n",
			d.Frontend, len(d.Stuck), strings.Join(d.Stuck, ", "))
	}
}
