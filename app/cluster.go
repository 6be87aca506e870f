package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/natgw/natgw/mgmt/config"
)

// cmdClusterCheck implements "natgw cluster-check FILE FILE...": each
// node's configuration must be valid, and together they must not share
// a public address (nor inside address, BGP source or router id), since
// nodes behind ECMP share no state (issue 17); their bgp.cluster_peers
// must fit together (checkClusterPeers). It prints every error and
// warning, then "N nodes: ok" (with the number of warnings) unless there
// was an error; it returns exitFail on any error, exitOK with warnings
// only.
func cmdClusterCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("natgw cluster-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), "usage: natgw cluster-check FILE FILE...") }
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() < 2 {
		fmt.Fprintln(stderr, "natgw cluster-check: name the configuration file of every node (two at least)")
		fs.Usage()
		return exitUsage
	}
	var nodes []config.Node
	failed := false
	for _, path := range fs.Args() {
		c, err := config.Load(path)
		if err != nil {
			printConfigError(stderr, err)
			failed = true
			continue
		}
		nodes = append(nodes, config.Node{Name: path, Config: c})
	}
	if failed {
		return exitFail
	}
	err := config.CheckCluster(nodes)
	if err != nil {
		printConfigError(stderr, err)
	}
	peerErrs, warns := checkClusterPeers(nodes)
	for _, e := range peerErrs {
		fmt.Fprintln(stderr, e)
	}
	for _, w := range warns {
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	if err != nil || len(peerErrs) > 0 {
		return exitFail
	}
	switch len(warns) {
	case 0:
		fmt.Fprintf(stdout, "%d nodes: ok\n", len(nodes))
	case 1:
		fmt.Fprintf(stdout, "%d nodes: ok, 1 warning\n", len(nodes))
	default:
		fmt.Fprintf(stdout, "%d nodes: ok, %d warnings\n", len(nodes), len(warns))
	}
	return exitOK
}

// checkClusterPeers checks the nodes' bgp.cluster_peers together (each
// node valid on its own, so no node lists itself and every peer is in
// its own inside subnet). When no node sets cluster_peers there is
// nothing to check: every drain withdraws the inside route first.
// Otherwise:
//
//   - every node's inside subnet must be the one of the first node that
//     sets cluster_peers: a draining node sends new flows to a peer's
//     inside MAC, on the shared link (an error);
//   - an entry that is no other node's inside address is an error: the
//     drain would send untranslated inside traffic to a host that is
//     not one of the nodes checked (give every node's file);
//   - a node that does not list another node's inside address is an
//     error when that node lists it and its inside.source_check is on
//     (the default): it would drop the other node's redirected frames
//     as spoofed, so that node's drain loses new flows; otherwise a
//     warning: this node's drain cannot hand new flows to that node.
//
// It returns the errors and the warnings, naming file and key.
func checkClusterPeers(nodes []config.Node) (errs, warns config.Errors) {
	type node struct {
		name   string
		inside netip.Prefix
		peers  map[netip.Addr]bool
		bgp    bool
		check  bool
	}
	var ns []node
	ref := -1
	for _, n := range nodes {
		c := n.Config
		x := node{name: n.Name, peers: map[netip.Addr]bool{}, check: c.Inside.SourceCheckOn()}
		x.inside, _ = config.ParseInterfaceAddress(c.Inside.Address)
		if c.BGP != nil {
			x.bgp = true
			for _, a := range c.BGP.ClusterPeerAddrs() {
				x.peers[a] = true
			}
			if len(c.BGP.ClusterPeers) > 0 && ref < 0 {
				ref = len(ns)
			}
		}
		ns = append(ns, x)
	}
	if ref < 0 {
		return nil, nil
	}
	add := func(list *config.Errors, name, key, format string, args ...any) {
		*list = append(*list, &config.FieldError{Source: name, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	r := ns[ref]
	for i, x := range ns {
		if i == ref || !x.inside.IsValid() || !r.inside.IsValid() || x.inside.Masked() == r.inside.Masked() {
			continue
		}
		add(&errs, x.name, "inside.address",
			"%s is in %s, not in the inside subnet %s of %s: with bgp.cluster_peers a draining node hands new flows to another node's inside MAC, so all nodes must share the inside link and its subnet",
			x.inside, x.inside.Masked(), r.inside.Masked(), r.name)
	}
	var all []string
	for _, x := range ns {
		if x.inside.IsValid() {
			all = append(all, fmt.Sprintf("%s of %s", x.inside.Addr(), x.name))
		}
	}
	for i, n := range nodes {
		x := ns[i]
		if !x.bgp {
			continue // CheckCluster reports the missing [bgp]
		}
		for j, s := range n.Config.BGP.ClusterPeers {
			a, err := config.ParseIPv4(s)
			if err != nil {
				continue
			}
			known := false
			for k, y := range ns {
				if k != i && y.inside.IsValid() && y.inside.Addr() == a {
					known = true
				}
			}
			if !known {
				add(&errs, x.name, fmt.Sprintf("bgp.cluster_peers[%d]", j),
					"%s is no other node's inside address (nodes checked: %s): a drain would send new flows, untranslated, to a host that is not a natgw node; list only the other nodes' inside addresses, and give every node's file",
					a, strings.Join(all, ", "))
			}
		}
		for k, y := range ns {
			if k == i || !y.inside.IsValid() || x.peers[y.inside.Addr()] {
				continue
			}
			a := y.inside.Addr()
			switch {
			case y.bgp && y.peers[x.inside.Addr()] && x.check:
				add(&errs, x.name, "bgp.cluster_peers",
					"missing %s (inside.address of %s): %s lists this node, so its drain sends new flows here, but inside.source_check (on) drops the frames of a node not in bgp.cluster_peers as spoofed: add %s (or turn the source check off)",
					a, y.name, y.name, a)
			case len(n.Config.BGP.ClusterPeers) == 0:
				add(&warns, x.name, "bgp.cluster_peers",
					"missing %s (inside.address of %s): without cluster_peers this node's drain cannot hand new flows to %s; it withdraws its inside route first and its flows move with it",
					a, y.name, y.name)
			default:
				add(&warns, x.name, "bgp.cluster_peers",
					"missing %s (inside.address of %s): this node's drain cannot hand new flows to %s",
					a, y.name, y.name)
			}
		}
	}
	return errs, warns
}

// printConfigError prints each problem of a configuration error on its
// own line.
func printConfigError(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e)
		}
		return
	}
	fmt.Fprintf(w, "natgw: %v\n", err)
}
