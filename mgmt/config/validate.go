package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/natgw/natgw/portalloc"
)

// Limits checked by Validate.
const (
	// MaxWorkers is the largest dataplane.workers.
	MaxWorkers = 64
	// MaxCPU bounds the CPU numbers of dataplane.worker_cpus.
	MaxCPU = 1023
	// MaxWorkerPriority is the largest dataplane.worker_priority (the
	// kernel's highest SCHED_FIFO priority).
	MaxWorkerPriority = 99
	// MaxFlowCapacity is the largest dataplane.flow_capacity.
	MaxFlowCapacity = 100_000_000
	// MinDescriptors and MaxDescriptors bound dataplane.rx_descriptors
	// and tx_descriptors.
	MinDescriptors = 64
	MaxDescriptors = 32768
	// MinTimeout is the shortest idle timeout.
	MinTimeout = time.Second
	// MinHistoryRetention and MaxHistoryRetention bound nat_log.retention.
	MinHistoryRetention = time.Hour
	MaxHistoryRetention = 3650 * 24 * time.Hour
	// MinHistoryMaxSize and MaxHistoryMaxSize bound nat_log.history_max_size.
	MinHistoryMaxSize ByteSize = 1 << 20
	MaxHistoryMaxSize ByteSize = 1 << 40
	// MaxTimeout is the longest idle timeout: the packet path's millisecond
	// clock compares times within half its 49-day wrap, and a day is plenty.
	MaxTimeout = 24 * time.Hour
)

// Validate checks the whole configuration and returns Errors listing every
// problem found, one per offending value, each naming its TOML key; or nil
// when the configuration is valid. It expects defaults to be applied
// (ApplyDefaults); Parse does both. Validate does not touch the file system
// or the network.
func (c *Config) Validate() error {
	v := validator{
		c:            c,
		own:          make(map[netip.Addr]string),
		publics:      make(map[netip.Addr]string),
		frontends:    make(map[string]netip.Addr),
		frontendUser: make(map[string]string),
		members:      make(map[netip.Addr]memberRef),
	}
	v.dataplane()
	v.ports()
	v.routed()
	v.neighbors()
	v.timeouts()
	v.frontendList()
	v.pools()
	v.instances()
	v.defaultSNAT()
	v.denyRules()
	v.mgmt()
	v.limits()
	v.natLog()
	v.bgp()
	v.reload()
	return v.p.err()
}

// validator holds what one Validate call has learnt so far, so later
// sections can be checked against earlier ones.
type validator struct {
	c *Config
	p problems
	// inside and outside are the ports' addresses, or the zero Prefix when
	// invalid (checks against them are then skipped).
	inside, outside netip.Prefix
	// own maps natgw's own addresses to their keys.
	own map[netip.Addr]string
	// publics maps every public address seen so far (own addresses,
	// frontends, instance publics) to its key.
	publics map[netip.Addr]string
	// frontends maps each frontend name to its address (the zero Addr when
	// the address is invalid).
	frontends map[string]netip.Addr
	// frontendUser maps a frontend name to the scenario that uses it.
	frontendUser map[string]string
	// members maps every pool member address to where it is listed.
	members map[netip.Addr]memberRef
}

// memberRef says where a pool member address is listed.
type memberRef struct {
	pool int
	name string
	key  string
}

// add records a problem.
func (v *validator) add(key, msg string) { v.p.add(key, msg) }

// addf records a problem with a formatted message.
func (v *validator) addf(key, format string, args ...any) {
	v.p.add(key, fmt.Sprintf(format, args...))
}

// required reports whether s is non-empty, recording a problem when not.
func (v *validator) required(key, s, what string) bool {
	if s == "" {
		v.add(key, "missing: "+what)
		return false
	}
	return true
}

// dataplane checks [dataplane].
func (v *validator) dataplane() {
	d := &v.c.Dataplane
	switch d.Driver {
	case "dpdk", "afpacket":
	default:
		v.addf("dataplane.driver", "unknown driver %q: write \"dpdk\" or \"afpacket\"", d.Driver)
	}
	if d.Workers < 1 || d.Workers > MaxWorkers {
		v.addf("dataplane.workers", "%d workers: must be 1 to %d", d.Workers, MaxWorkers)
	}
	if len(d.WorkerCPUs) != 0 {
		if len(d.WorkerCPUs) != d.Workers {
			v.addf("dataplane.worker_cpus", "%d CPUs for %d workers: give one CPU per worker, or leave the key out", len(d.WorkerCPUs), d.Workers)
		}
		seen := map[int]bool{}
		for _, c := range d.WorkerCPUs {
			switch {
			case c < 0 || c > MaxCPU:
				v.addf("dataplane.worker_cpus", "CPU %d: must be 0 to %d", c, MaxCPU)
			case seen[c]:
				v.addf("dataplane.worker_cpus", "CPU %d is given twice: each worker needs a CPU of its own", c)
			}
			seen[c] = true
		}
	}
	switch {
	case d.WorkerPriority < 0 || d.WorkerPriority > MaxWorkerPriority:
		v.addf("dataplane.worker_priority", "%d: must be 1 to %d (SCHED_FIFO priority), or 0 for the normal scheduling policy", d.WorkerPriority, MaxWorkerPriority)
	case d.WorkerPriority > 0 && len(d.WorkerCPUs) == 0:
		v.add("dataplane.worker_priority", "needs dataplane.worker_cpus: a spinning real-time worker without a CPU of its own would starve the management core and the kernel's work on the CPU it lands on")
	}
	switch {
	case d.FlowCapacity < 1 || d.FlowCapacity > MaxFlowCapacity:
		v.addf("dataplane.flow_capacity", "%d: must be 1 to %d", d.FlowCapacity, MaxFlowCapacity)
	case d.FlowCapacity < d.Workers:
		v.addf("dataplane.flow_capacity", "%d is less than dataplane.workers (%d): the flows are split over the workers, each needs room for one at least", d.FlowCapacity, d.Workers)
	}
	v.descriptors("dataplane.rx_descriptors", d.RxDescriptors)
	v.descriptors("dataplane.tx_descriptors", d.TxDescriptors)
}

// descriptors checks a ring size key: DPDK only, MinDescriptors to
// MaxDescriptors. The device may round it to its own alignment and
// limits; natgw logs what it asked for and what it got.
func (v *validator) descriptors(key string, n *int) {
	switch {
	case n == nil:
	case v.c.Dataplane.Driver == "afpacket":
		v.addf(key, "set with driver \"afpacket\": ring sizes are a DPDK setting (the afpacket driver sizes its own rings); remove the key")
	case *n < MinDescriptors || *n > MaxDescriptors:
		v.addf(key, "%d frames: must be %d to %d", *n, MinDescriptors, MaxDescriptors)
	}
}

// ports checks [inside] and [outside], and learns the subnets and natgw's own
// addresses for the later sections.
func (v *validator) ports() {
	in, out := &v.c.Inside, &v.c.Outside
	const portHelp = "name the NIC (dpdk: PCI address or vdev name; afpacket: interface name)"
	inPort := v.required("inside.port", in.Port, portHelp)
	outPort := v.required("outside.port", out.Port, portHelp)
	if inPort && outPort && in.Port == out.Port {
		v.addf("outside.port", "%q is also inside.port: the inside and outside need different ports", out.Port)
	}

	if v.required("inside.address", in.Address, `natgw's address on the inside link with its prefix length, like "10.0.0.1/16"`) {
		if p, err := ParseInterfaceAddress(in.Address); err != nil {
			v.add("inside.address", err.Error())
		} else {
			v.inside = p
			v.own[p.Addr()] = "inside.address"
			v.claimPublic(p.Addr(), "inside.address")
		}
	}
	if v.required("outside.address", out.Address, `natgw's address on the outside link with its prefix length, like "198.19.0.2/24"`) {
		if p, err := ParseInterfaceAddress(out.Address); err != nil {
			v.add("outside.address", err.Error())
		} else if v.inside.IsValid() && p.Masked().Overlaps(v.inside.Masked()) {
			v.addf("outside.address", "subnet %s overlaps the inside subnet %s (inside.address): the links need separate subnets", p.Masked(), v.inside.Masked())
		} else if v.claimPublic(p.Addr(), "outside.address") {
			v.outside = p
			v.own[p.Addr()] = "outside.address"
		}
	}

	if !v.required("outside.gateway", out.Gateway, `the next hop's address, like "198.19.0.1"`) {
		return
	}
	gw, err := v.unicast("outside.gateway", out.Gateway)
	if err != nil || !v.outside.IsValid() {
		return
	}
	subnet := v.outside.Masked()
	switch {
	case gw == v.outside.Addr():
		v.addf("outside.gateway", "%s is natgw's own outside address (outside.address): the gateway is the next-hop router", gw)
	case !subnet.Contains(gw):
		v.addf("outside.gateway", "%s is not in the outside subnet %s (outside.address): the next hop must be on the link", gw, subnet)
	case subnet.Bits() <= 30 && (gw == subnet.Addr() || gw == lastAddr(subnet)):
		v.addf("outside.gateway", "%s is the network or broadcast address of the outside subnet %s", gw, subnet)
	}
}

// unicast parses s as an IPv4 address usable as a host's address, recording
// a problem at key when it is not.
func (v *validator) unicast(key, s string) (netip.Addr, error) {
	a, err := ParseIPv4(s)
	if err == nil {
		switch {
		case a.IsUnspecified():
			err = fmt.Errorf("%s is the unspecified address, not a host's", a)
		case a.IsLoopback():
			err = fmt.Errorf("%s is a loopback address, not a host's", a)
		case a.IsMulticast():
			err = fmt.Errorf("%s is a multicast address, not a host's", a)
		case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			err = fmt.Errorf("%s is the broadcast address, not a host's", a)
		}
	}
	if err != nil {
		v.add(key, err.Error())
	}
	return a, err
}

// claimPublic records that the address at key is answered for on a link,
// and reports whether it was free; when not, it records a problem naming
// both keys.
func (v *validator) claimPublic(a netip.Addr, key string) bool {
	if prev, ok := v.publics[a]; ok {
		v.addf(key, "%s is also %s: every address natgw answers for must be used once", a, prev)
		return false
	}
	v.publics[a] = key
	return true
}

// notInside records a problem when a public address at key lies in the
// inside subnet.
func (v *validator) notInside(key string, a netip.Addr) bool {
	if v.inside.IsValid() && v.inside.Masked().Contains(a) {
		v.addf(key, "%s is in the inside subnet %s (inside.address): a public address must be outside it", a, v.inside.Masked())
		return false
	}
	return true
}

// routed checks the [[inside.routed]] prefixes: IPv4 networks outside the
// inside and outside subnets, not overlapping each other, each through a
// router that is a host of the inside subnet other than natgw.
func (v *validator) routed() {
	var seen []netip.Prefix
	for i, r := range v.c.Inside.Routed {
		key := index("inside.routed", i)
		if v.required(key+".prefix", r.Prefix, `the network behind the router, like "10.1.0.0/16"`) {
			p, err := ParseIPv4Prefix(r.Prefix)
			switch {
			case err != nil:
				v.add(key+".prefix", err.Error())
			case v.inside.IsValid() && p.Overlaps(v.inside.Masked()):
				v.addf(key+".prefix", "%s overlaps the inside subnet %s (inside.address): hosts on the link are checked by their own MAC", p, v.inside.Masked())
			case v.outside.IsValid() && p.Overlaps(v.outside.Masked()):
				v.addf(key+".prefix", "%s overlaps the outside subnet %s (outside.address)", p, v.outside.Masked())
			default:
				for _, q := range seen {
					if p.Overlaps(q) {
						v.addf(key+".prefix", "%s overlaps %s, another routed prefix: each source has one router", p, q)
					}
				}
				seen = append(seen, p)
			}
		}
		if v.required(key+".via", r.Via, `the router's address on the inside link, like "10.0.0.254"`) {
			a, err := v.unicast(key+".via", r.Via)
			switch {
			case err != nil:
			case v.inside.IsValid() && !v.inside.Masked().Contains(a):
				v.addf(key+".via", "%s is not in the inside subnet %s (inside.address): the router must be on the inside link", a, v.inside.Masked())
			case v.inside.IsValid() && a == v.inside.Addr():
				v.addf(key+".via", "%s is natgw's own inside address", a)
			}
		}
	}
}

// neighbors checks the [[neighbor]] entries.
func (v *validator) neighbors() {
	seen := make(map[netip.Addr]string)
	for i, n := range v.c.Neighbors {
		key := index("neighbor", i)
		if v.required(key+".address", n.Address, `the neighbour's IPv4 address`) {
			v.neighborAddr(key+".address", n.Address, seen)
		}
		if v.required(key+".mac", n.MAC, `the neighbour's Ethernet address, like "02:00:00:00:00:01"`) {
			if _, err := ParseMAC(n.MAC); err != nil {
				v.add(key+".mac", err.Error())
			}
		}
	}
}

// uniqueAddr parses key's value as a unicast IPv4 address that is not one
// of natgw's own and not already in seen (rule says why it must be unique),
// records it in seen and returns it; otherwise it reports the problem.
func (v *validator) uniqueAddr(key, s string, seen map[netip.Addr]string, rule string) (netip.Addr, bool) {
	a, err := v.unicast(key, s)
	if err != nil {
		return a, false
	}
	if own, ok := v.own[a]; ok {
		v.addf(key, "%s is natgw's own address (%s)", a, own)
		return a, false
	}
	if prev, ok := seen[a]; ok {
		v.addf(key, "%s is also %s: %s", a, prev, rule)
		return a, false
	}
	seen[a] = key
	return a, true
}

// neighborAddr checks one static neighbour's address.
func (v *validator) neighborAddr(key, s string, seen map[netip.Addr]string) {
	a, ok := v.uniqueAddr(key, s, seen, "one static entry per address")
	if !ok {
		return
	}
	if v.inside.IsValid() && v.outside.IsValid() &&
		!v.inside.Masked().Contains(a) && !v.outside.Masked().Contains(a) {
		v.addf(key, "%s is in neither the inside subnet %s nor the outside subnet %s: a neighbour must be on one of natgw's links",
			a, v.inside.Masked(), v.outside.Masked())
	}
}

// timeouts checks that every timeout is within MinTimeout and MaxTimeout.
func (v *validator) timeouts() {
	t := &v.c.Timeouts
	for _, d := range []struct {
		key string
		d   time.Duration
	}{
		{"timeouts.tcp_established", t.TCPEstablished.Duration},
		{"timeouts.tcp_transitory", t.TCPTransitory.Duration},
		{"timeouts.tcp_closing", t.TCPClosing.Duration},
		{"timeouts.udp", t.UDP.Duration},
		{"timeouts.icmp", t.ICMP.Duration},
	} {
		switch {
		case d.d < MinTimeout:
			v.addf(d.key, "%s is too short: timeouts are at least %s", d.d, MinTimeout)
		case d.d > MaxTimeout:
			v.addf(d.key, "%s is too long: timeouts are at most %s", d.d, "24h")
		}
	}
}

// frontendList checks the [[frontend]] entries and records their names and
// addresses.
func (v *validator) frontendList() {
	names := make(map[string]int)
	for i, f := range v.c.Frontends {
		key := index("frontend", i)
		if v.required(key+".name", f.Name, "a name for pools and default_snat to refer to") {
			if prev, ok := names[f.Name]; ok {
				v.addf(key+".name", "frontend %q is also frontend[%d].name: names must be unique", f.Name, prev)
			} else {
				names[f.Name] = i
				v.frontends[f.Name] = netip.Addr{}
			}
		}
		if !v.required(key+".address", f.Address, `the frontend's public IPv4 address`) {
			continue
		}
		a, err := v.unicast(key+".address", f.Address)
		if err != nil || !v.notInside(key+".address", a) || !v.claimPublic(a, key+".address") {
			continue
		}
		if names[f.Name] == i && f.Name != "" {
			v.frontends[f.Name] = a
		}
	}
}

// knownFrontends lists the frontend names for error messages.
func (v *validator) knownFrontends() string {
	if len(v.frontends) == 0 {
		return "no [[frontend]] is defined"
	}
	names := make([]string, 0, len(v.frontends))
	for name := range v.frontends {
		names = append(names, fmt.Sprintf("%q", name))
	}
	slices.Sort(names)
	return "the frontends are " + strings.Join(names, ", ")
}

// scenarioFrontends checks the frontends list at key of one scenario (a pool
// or default SNAT, described by user) and returns their addresses, with ok
// false when any of them is unusable.
func (v *validator) scenarioFrontends(key string, names []string, user string) (addrs []uint32, ok bool) {
	if len(names) == 0 {
		v.addf(key, "no frontends: list at least one [[frontend]] name (%s)", v.knownFrontends())
		return nil, false
	}
	ok = true
	seen := make(map[string]bool, len(names))
	for j, name := range names {
		k := index(key, j)
		a, known := v.frontends[name]
		switch {
		case seen[name]:
			v.addf(k, "frontend %q is listed twice", name)
			ok = false
			continue
		case !known:
			v.addf(k, "unknown frontend %q; %s", name, v.knownFrontends())
			ok = false
			continue
		}
		seen[name] = true
		if prev, used := v.frontendUser[name]; used {
			v.addf(k, "frontend %q is already used by %s: a frontend serves one pool or default SNAT, since each lays out its port blocks from port %d", name, prev, portalloc.FirstPort)
			ok = false
		} else {
			v.frontendUser[name] = user
		}
		if !a.IsValid() {
			ok = false // its address is wrong, already reported
			continue
		}
		addrs = append(addrs, addrUint32(a))
	}
	return addrs, ok
}

// pools checks the [[pool]] entries: names, frontends, members, block size
// and layout [S3], and records every member address.
func (v *validator) pools() {
	names := make(map[string]int)
	for i := range v.c.Pools {
		pool := &v.c.Pools[i]
		key := index("pool", i)
		label := key
		if v.required(key+".name", pool.Name, "a name for the pool") {
			label = fmt.Sprintf("pool %q", pool.Name)
			if prev, ok := names[pool.Name]; ok {
				v.addf(key+".name", "pool %q is also pool[%d].name: names must be unique", pool.Name, prev)
			} else {
				names[pool.Name] = i
			}
		}
		frontends, frontendsOK := v.scenarioFrontends(key+".frontends", pool.Frontends, label+" ("+key+")")
		v.behaviour(key, pool.Mapping, pool.Filtering)

		if len(pool.Members) == 0 {
			v.add(key+".members", `no members: list private addresses or prefixes, like ["10.0.1.4", "10.0.2.0/28"]`)
			continue
		}
		prefixes := make([]netip.Prefix, len(pool.Members))
		membersOK := true
		var total uint64
		for j, s := range pool.Members {
			p, err := ParseIPv4Prefix(s)
			if err != nil {
				v.add(index(key+".members", j), err.Error())
				membersOK = false
				continue
			}
			prefixes[j] = p
			total += prefixSize(p)
		}
		if total == 0 {
			continue
		}
		tierPorts, err := portalloc.TierPorts(int(min(total, portalloc.MaxPoolMembers+1)))
		if err != nil {
			v.addf(key+".members", "%s has %d member addresses: a pool has at most %d [S3]", label, total, portalloc.MaxPoolMembers)
			continue
		}
		switch pool.OnExhaustion {
		case "", OnExhaustionDrop, OnExhaustionReject:
		default:
			v.addf(key+".on_exhaustion", "%q: use %q or %q", pool.OnExhaustion, OnExhaustionDrop, OnExhaustionReject)
		}
		size := tierPorts
		if pool.PortsPerMember != 0 {
			size = pool.PortsPerMember
			if err := portalloc.CheckBlockSize(size); err != nil {
				v.add(key+".ports_per_member", err.Error()+" (or 0 for the tier table)")
				size = 0
			}
		}
		if frontendsOK && membersOK && size > 0 {
			if _, err := portalloc.Layout(frontends, int(total), size); err != nil {
				var short *portalloc.ShortfallError
				if errors.As(err, &short) {
					v.addf(key, "%s: %v; add frontends or lower ports_per_member", label, err)
				} else {
					v.addf(key, "%s: %v", label, err)
				}
			}
		}
		for j, p := range prefixes {
			if p.IsValid() {
				v.poolMember(i, pool.Name, index(key+".members", j), p)
			}
		}
	}
}

// poolMember records the addresses of one member entry (an address or a
// prefix) of pool i, reporting addresses that are natgw's own or already a
// member. A prefix gets one problem per kind, naming the first address and
// how many more there are.
func (v *validator) poolMember(i int, name, key string, p netip.Prefix) {
	var ownFirst, dupFirst netip.Addr
	var ownKey string
	var dupRef memberRef
	ownCount, dupCount := 0, 0
	a := p.Addr()
	for k := uint64(0); k < prefixSize(p); k, a = k+1, a.Next() {
		if own, ok := v.own[a]; ok {
			if ownCount == 0 {
				ownFirst, ownKey = a, own
			}
			ownCount++
			continue
		}
		if ref, ok := v.members[a]; ok {
			if dupCount == 0 {
				dupFirst, dupRef = a, ref
			}
			dupCount++
			continue
		}
		v.members[a] = memberRef{pool: i, name: name, key: key}
	}
	if ownCount > 0 {
		v.addf(key, "%s is natgw's own address (%s)%s", ownFirst, ownKey, more(ownCount, p))
	}
	if dupCount > 0 {
		if dupRef.pool == i {
			v.addf(key, "%s is listed twice in pool %q: also in %s%s", dupFirst, name, dupRef.key, more(dupCount, p))
		} else {
			v.addf(key, "%s is a member of pool %q (%s) and of pool %q: an address belongs to one pool only%s",
				dupFirst, dupRef.name, dupRef.key, name, more(dupCount, p))
		}
	}
}

// more says how many more addresses of p share a problem, or "" when only
// one does.
func more(count int, p netip.Prefix) string {
	if count <= 1 {
		return ""
	}
	return fmt.Sprintf(" (and %d more addresses of %s)", count-1, p)
}

// instances checks the [[instance]] entries.
func (v *validator) instances() {
	privates := make(map[netip.Addr]string)
	for i, in := range v.c.Instances {
		key := index("instance", i)
		if v.required(key+".private", in.Private, "the instance's private IPv4 address") {
			v.instancePrivate(key+".private", in.Private, privates)
		}
		if v.required(key+".public", in.Public, "the instance's public IPv4 address") {
			if a, err := v.unicast(key+".public", in.Public); err == nil && v.notInside(key+".public", a) {
				v.claimPublic(a, key+".public")
			}
		}
		for j, s := range in.Inbound {
			if _, err := ParseInbound(s); err != nil {
				v.add(index(key+".inbound", j), err.Error())
			}
		}
	}
}

// instancePrivate checks one instance's private address.
func (v *validator) instancePrivate(key, s string, privates map[netip.Addr]string) {
	a, ok := v.uniqueAddr(key, s, privates, "a private address has one instance")
	if !ok {
		return
	}
	if ref, ok := v.members[a]; ok {
		v.addf(key, "%s is also a member of pool %q (%s): a private address in two scenarios; the instance would take precedence and the pool block would be wasted",
			a, ref.name, ref.key)
	}
}

// defaultSNAT checks [default_snat] when it is present.
func (v *validator) defaultSNAT() {
	d := v.c.DefaultSNAT
	if d == nil {
		return
	}
	if len(d.Sources) == 0 {
		v.add("default_snat.sources", `no sources: list the inside prefixes that get default SNAT, like ["10.0.0.0/8"]`)
	}
	for j, s := range d.Sources {
		if _, err := ParseIPv4Prefix(s); err != nil {
			v.add(index("default_snat.sources", j), err.Error())
		}
	}
	v.scenarioFrontends("default_snat.frontends", d.Frontends, "default SNAT (default_snat)")
	v.behaviour("default_snat", d.Mapping, d.Filtering)
	if err := portalloc.CheckBlockSize(d.PortsPerMember); err != nil {
		msg := err.Error()
		if d.PortsPerMember == 0 {
			msg += fmt.Sprintf(" (default SNAT has no tier table: leave the key out for %d)", DefaultSNATPortsPerMember)
		}
		v.add("default_snat.ports_per_member", msg)
	}
	switch idle := d.ReclaimIdle.Duration; {
	case idle < MinSNATReclaimIdle:
		v.addf("default_snat.reclaim_idle", "%s is too short: at least %s", idle, MinSNATReclaimIdle)
	case idle > MaxSNATReclaimIdle:
		v.addf("default_snat.reclaim_idle", "%s is too long: at most %s", idle, "24h")
	}
}

// denyRules checks the [[deny]] rules.
func (v *validator) denyRules() {
	for i, d := range v.c.Deny {
		key := index("deny", i)
		if v.required(key+".destination", d.Destination, `an IPv4 address or prefix, like "198.18.99.0/24"`) {
			if _, err := ParseIPv4Prefix(d.Destination); err != nil {
				v.add(key+".destination", err.Error())
			}
		}
		proto, protoOK := ProtocolAny, true
		if d.Protocol != "" {
			var err error
			if proto, err = ParseProtocol(d.Protocol); err != nil {
				v.add(key+".protocol", err.Error())
				protoOK = false
			}
		}
		ports, portsOK := AllPorts, true
		if d.Ports != "" {
			var err error
			if ports, err = ParsePortRange(d.Ports); err != nil {
				v.add(key+".ports", err.Error())
				portsOK = false
			}
		}
		if protoOK && portsOK {
			if err := checkDenyPorts(proto, ports); err != nil {
				v.addf(key+".ports", "%q with protocol %q: %v", d.Ports, proto, err)
			}
		}
	}
}

// mgmt checks [mgmt]: the listen address and its protection.
func (v *validator) mgmt() {
	m := &v.c.Mgmt
	host, port, err := net.SplitHostPort(m.Listen)
	if err != nil {
		v.addf("mgmt.listen", "%q is not host:port, like %q", m.Listen, DefaultMgmtListen)
		return
	}
	if _, err := parsePort(port); err != nil {
		v.addf("mgmt.listen", "%q: port %v", m.Listen, err)
		return
	}
	loopback := false
	switch host {
	case "localhost":
		loopback = true
	case "":
		// Every interface.
	default:
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			v.addf("mgmt.listen", "%q: the host must be an IP address or localhost, like %q", m.Listen, DefaultMgmtListen)
			return
		}
		loopback = a.IsLoopback()
	}
	if !loopback && m.TokenFile == "" && !m.AllowInsecure {
		v.addf("mgmt.listen", "%q is reachable from other hosts and mgmt.token_file is not set, so anyone could list who talks to whom and reload the configuration: set token_file, listen on 127.0.0.1, or set allow_insecure = true", m.Listen)
	}
}

// limits checks [limits]: both bounds are percentages of a worker's flow
// table, 1 to 100 (100 turns a bound off).
func (v *validator) limits() {
	l := &v.c.Limits
	if l.HostFlowPercent < 1 || l.HostFlowPercent > 100 {
		v.addf("limits.host_flow_percent", "%d: must be 1 to 100 (percent of a worker's flow table)", l.HostFlowPercent)
	}
	if l.InboundFlowPercent < 1 || l.InboundFlowPercent > 100 {
		v.addf("limits.inbound_flow_percent", "%d: must be 1 to 100 (percent of a worker's flow table)", l.InboundFlowPercent)
	}
}

// natLogHistory checks the attribution history's keys of [nat_log].
func (v *validator) natLogHistory() {
	n := &v.c.NatLog
	if n.History != "" && (!filepath.IsAbs(n.History) || strings.HasSuffix(n.History, "/")) {
		v.addf("nat_log.history", "%q: write the absolute path of a file, like \"/var/lib/natgw/attribution.db\"", n.History)
	}
	if r := n.Retention.Duration; r < MinHistoryRetention || r > MaxHistoryRetention {
		v.addf("nat_log.retention", "%s: must be 1h to 3650d", r)
	}
	if m := n.HistoryMaxSize; m < MinHistoryMaxSize || m > MaxHistoryMaxSize {
		v.addf("nat_log.history_max_size", "%d bytes: must be 1MiB to 1TiB", int64(m))
	}
}
