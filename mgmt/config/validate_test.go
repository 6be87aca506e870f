package config

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadExample returns a fresh copy of testdata/example.toml, parsed.
func loadExample(t *testing.T) *Config {
	t.Helper()
	c, err := Load("testdata/example.toml")
	require.NoError(t, err)
	return c
}

// members returns n distinct pool member addresses from 10.1.0.0 upward.
func members(n int) []string {
	m := make([]string, n)
	a := netip.MustParseAddr("10.1.0.0")
	for i := range m {
		m[i] = a.String()
		a = a.Next()
	}
	return m
}

func TestValidateExampleIsValid(t *testing.T) {
	c := loadExample(t)
	assert.NoError(t, c.Validate())
}

// TestValidate mutates the valid example one way per case and checks that
// exactly the expected keys are named, with a message saying why.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		// keys are the keys expected, in order; nil means valid.
		keys []string
		// msg is part of the first error's message.
		msg string
	}{
		// dataplane
		{"driver unknown", func(c *Config) { c.Dataplane.Driver = "xdp" }, []string{"dataplane.driver"}, `unknown driver "xdp"`},
		{"driver afpacket", func(c *Config) { c.Dataplane.Driver = "afpacket" }, nil, ""},
		{"workers too many", func(c *Config) { c.Dataplane.Workers = 65 }, []string{"dataplane.workers"}, "1 to 64"},
		{"workers negative", func(c *Config) { c.Dataplane.Workers = -1 }, []string{"dataplane.workers"}, "1 to 64"},
		{"workers 64", func(c *Config) { c.Dataplane.Workers = 64 }, nil, ""},
		{"rx descriptors 4096", func(c *Config) { c.Dataplane.RxDescriptors = ptr(4096) }, nil, ""},
		{"descriptors at the bounds", func(c *Config) { c.Dataplane.RxDescriptors, c.Dataplane.TxDescriptors = ptr(64), ptr(32768) }, nil, ""},
		{"rx descriptors zero", func(c *Config) { c.Dataplane.RxDescriptors = ptr(0) }, []string{"dataplane.rx_descriptors"}, "0 frames: must be 64 to 32768"},
		{"tx descriptors too many", func(c *Config) { c.Dataplane.TxDescriptors = ptr(65536) }, []string{"dataplane.tx_descriptors"}, "65536 frames: must be 64 to 32768"},
		{"rx descriptors negative", func(c *Config) { c.Dataplane.RxDescriptors = ptr(-1) }, []string{"dataplane.rx_descriptors"}, "must be 64 to 32768"},
		{"descriptors with afpacket", func(c *Config) {
			c.Dataplane.Driver, c.Dataplane.RxDescriptors, c.Dataplane.TxDescriptors = "afpacket", ptr(4096), ptr(4096)
		}, []string{"dataplane.rx_descriptors", "dataplane.tx_descriptors"}, `set with driver "afpacket": ring sizes are a DPDK setting`},
		{"worker cpus one per worker", func(c *Config) { c.Dataplane.WorkerCPUs = []int{2, 3} }, nil, ""},
		{"worker cpus too few", func(c *Config) { c.Dataplane.WorkerCPUs = []int{2} }, []string{"dataplane.worker_cpus"}, "1 CPUs for 2 workers"},
		{"worker cpus twice", func(c *Config) { c.Dataplane.WorkerCPUs = []int{3, 3} }, []string{"dataplane.worker_cpus"}, "CPU 3 is given twice"},
		{"worker cpus negative", func(c *Config) { c.Dataplane.WorkerCPUs = []int{-1, 2} }, []string{"dataplane.worker_cpus"}, "CPU -1: must be 0 to 1023"},
		{"worker priority with worker cpus", func(c *Config) { c.Dataplane.WorkerCPUs, c.Dataplane.WorkerPriority = []int{2, 3}, 50 }, nil, ""},
		{"worker priority 99", func(c *Config) { c.Dataplane.WorkerCPUs, c.Dataplane.WorkerPriority = []int{2, 3}, 99 }, nil, ""},
		{"worker priority without worker cpus", func(c *Config) { c.Dataplane.WorkerPriority = 1 }, []string{"dataplane.worker_priority"}, "needs dataplane.worker_cpus"},
		{"worker priority too large", func(c *Config) { c.Dataplane.WorkerCPUs, c.Dataplane.WorkerPriority = []int{2, 3}, 100 }, []string{"dataplane.worker_priority"}, "100: must be 1 to 99"},
		{"worker priority negative", func(c *Config) { c.Dataplane.WorkerCPUs, c.Dataplane.WorkerPriority = []int{2, 3}, -1 }, []string{"dataplane.worker_priority"}, "-1: must be 1 to 99"},
		{"worker cpus too large", func(c *Config) { c.Dataplane.WorkerCPUs = []int{1, 1024} }, []string{"dataplane.worker_cpus"}, "CPU 1024: must be 0 to 1023"},
		{"host flow percent over 100", func(c *Config) { c.Limits.HostFlowPercent = 101 }, []string{"limits.host_flow_percent"}, "1 to 100"},
		{"inbound flow percent negative", func(c *Config) { c.Limits.InboundFlowPercent = -5 }, []string{"limits.inbound_flow_percent"}, "1 to 100"},
		{"limits at 100", func(c *Config) { c.Limits.HostFlowPercent, c.Limits.InboundFlowPercent = 100, 100 }, nil, ""},
		{"flow capacity too big", func(c *Config) { c.Dataplane.FlowCapacity = 100_000_001 }, []string{"dataplane.flow_capacity"}, "1 to 100000000"},
		// inside.routed
		{"routed prefix", func(c *Config) { c.Inside.Routed = []RoutedPrefix{{Prefix: "10.200.0.0/16", Via: "10.0.0.254"}} }, nil, ""},
		{"routed prefix in the inside subnet", func(c *Config) { c.Inside.Routed = []RoutedPrefix{{Prefix: "10.0.5.0/24", Via: "10.0.0.254"}} }, []string{"inside.routed[0].prefix"}, "overlaps the inside subnet"},
		{"routed prefix with host bits", func(c *Config) { c.Inside.Routed = []RoutedPrefix{{Prefix: "10.200.0.1/16", Via: "10.0.0.254"}} }, []string{"inside.routed[0].prefix"}, "host bits"},
		{"routed prefixes overlap", func(c *Config) {
			c.Inside.Routed = []RoutedPrefix{{Prefix: "10.200.0.0/16", Via: "10.0.0.254"}, {Prefix: "10.200.1.0/24", Via: "10.0.0.253"}}
		}, []string{"inside.routed[1].prefix"}, "overlaps 10.200.0.0/16"},
		{"routed via off the inside link", func(c *Config) { c.Inside.Routed = []RoutedPrefix{{Prefix: "10.200.0.0/16", Via: "10.9.0.254"}} }, []string{"inside.routed[0].via"}, "not in the inside subnet"},
		{"routed via natgw", func(c *Config) { c.Inside.Routed = []RoutedPrefix{{Prefix: "10.200.0.0/16", Via: "10.0.0.1"}} }, []string{"inside.routed[0].via"}, "natgw's own"},
		{"routed without via", func(c *Config) { c.Inside.Routed = []RoutedPrefix{{Prefix: "10.200.0.0/16"}} }, []string{"inside.routed[0].via"}, "router's address"},
		{"flow capacity below workers", func(c *Config) { c.Dataplane.FlowCapacity = 1 }, []string{"dataplane.flow_capacity"}, "less than dataplane.workers (2)"},

		// ports
		{"inside port missing", func(c *Config) { c.Inside.Port = "" }, []string{"inside.port"}, "missing"},
		{"outside port missing", func(c *Config) { c.Outside.Port = "" }, []string{"outside.port"}, "missing"},
		{"same port twice", func(c *Config) { c.Outside.Port = c.Inside.Port }, []string{"outside.port"}, "also inside.port"},
		{"inside address missing", func(c *Config) { c.Inside.Address = "" }, []string{"inside.address"}, "missing"},
		{"inside address without length", func(c *Config) { c.Inside.Address = "10.0.0.1" }, []string{"inside.address"}, "with prefix length"},
		{"inside address is network", func(c *Config) { c.Inside.Address = "10.0.0.0/16" }, []string{"inside.address"}, `network address of its subnet: give natgw a host address, like "10.0.0.1/16"`},
		{"inside address is broadcast", func(c *Config) { c.Inside.Address = "10.0.255.255/16" }, []string{"inside.address"}, "broadcast address"},
		{"inside address IPv6", func(c *Config) { c.Inside.Address = "fd00::1/64" }, []string{"inside.address"}, "not an IPv4 address"},
		{"outside /32", func(c *Config) { c.Outside.Address = "198.19.0.2/32" }, []string{"outside.address"}, "1 to 31"},
		{"outside /31 has no broadcast", func(c *Config) {
			c.Outside.Address = "198.19.0.0/31"
			c.Outside.Gateway = "198.19.0.1"
		}, nil, ""},
		{"subnets overlap", func(c *Config) { c.Outside.Address = "10.0.200.1/24" }, []string{"outside.address"}, "overlaps the inside subnet"},
		{"gateway missing", func(c *Config) { c.Outside.Gateway = "" }, []string{"outside.gateway"}, "missing"},
		{"gateway bad", func(c *Config) { c.Outside.Gateway = "198.19.0" }, []string{"outside.gateway"}, "not an IPv4 address"},
		{"gateway off link", func(c *Config) { c.Outside.Gateway = "198.19.5.1" }, []string{"outside.gateway"}, "not in the outside subnet 198.19.0.0/24"},
		{"gateway is natgw", func(c *Config) { c.Outside.Gateway = "198.19.0.2" }, []string{"outside.gateway"}, "natgw's own outside address"},
		{"gateway is broadcast", func(c *Config) { c.Outside.Gateway = "198.19.0.255" }, []string{"outside.gateway"}, "broadcast"},
		{"gateway multicast", func(c *Config) { c.Outside.Gateway = "224.0.0.1" }, []string{"outside.gateway"}, "multicast"},

		// neighbours
		{"neighbor address bad", func(c *Config) { c.Neighbors[0].Address = "x" }, []string{"neighbor[0].address"}, "not an IPv4 address"},
		{"neighbor off link", func(c *Config) { c.Neighbors[0].Address = "192.0.2.1" }, []string{"neighbor[0].address"}, "in neither the inside subnet"},
		{"neighbor inside", func(c *Config) { c.Neighbors[0].Address = "10.0.9.9" }, nil, ""},
		{"neighbor is natgw", func(c *Config) { c.Neighbors[0].Address = "10.0.0.1" }, []string{"neighbor[0].address"}, "natgw's own address (inside.address)"},
		{"neighbor twice", func(c *Config) {
			c.Neighbors = append(c.Neighbors, Neighbor{Address: "198.19.0.1", MAC: "02:00:00:00:00:02"})
		}, []string{"neighbor[1].address"}, "also neighbor[0].address"},
		{"neighbor mac bad", func(c *Config) { c.Neighbors[0].MAC = "02:00:00:00:00" }, []string{"neighbor[0].mac"}, "not an Ethernet address"},
		{"neighbor mac 8 bytes", func(c *Config) { c.Neighbors[0].MAC = "02:00:00:00:00:00:00:01" }, []string{"neighbor[0].mac"}, "not an Ethernet address"},
		{"neighbor mac multicast", func(c *Config) { c.Neighbors[0].MAC = "01:00:5e:00:00:01" }, []string{"neighbor[0].mac"}, "multicast or broadcast"},
		{"neighbor mac broadcast", func(c *Config) { c.Neighbors[0].MAC = "ff:ff:ff:ff:ff:ff" }, []string{"neighbor[0].mac"}, "multicast or broadcast"},
		{"neighbor mac missing", func(c *Config) { c.Neighbors[0].MAC = "" }, []string{"neighbor[0].mac"}, "missing"},

		// timeouts
		{"timeout zero", func(c *Config) { c.Timeouts.TCPClosing.Duration = 0 }, []string{"timeouts.tcp_closing"}, "too short"},
		{"timeout below a second", func(c *Config) { c.Timeouts.ICMP.Duration = 500 * time.Millisecond }, []string{"timeouts.icmp"}, "at least 1s"},
		{"timeout negative", func(c *Config) { c.Timeouts.TCPTransitory.Duration = -time.Second }, []string{"timeouts.tcp_transitory"}, "too short"},
		{"timeout over a day", func(c *Config) { c.Timeouts.TCPEstablished.Duration = 25 * time.Hour }, []string{"timeouts.tcp_established"}, "at most 24h"},
		{"timeout a day", func(c *Config) { c.Timeouts.UDP.Duration = 24 * time.Hour }, nil, ""},

		// frontends
		{"frontend name missing", func(c *Config) { c.Frontends = append(c.Frontends, Frontend{Address: "198.19.1.99"}) }, []string{"frontend[2].name"}, "missing"},
		{"frontend name twice", func(c *Config) { c.Frontends = append(c.Frontends, Frontend{Name: "fe1", Address: "198.19.1.99"}) }, []string{"frontend[2].name"}, `"fe1" is also frontend[0].name`},
		{"frontend address bad", func(c *Config) { c.Frontends[1].Address = "198.19.1.300" }, []string{"frontend[1].address"}, "not an IPv4 address"},
		{"frontend address inside", func(c *Config) { c.Frontends[0].Address = "10.0.77.1" }, []string{"frontend[0].address"}, "in the inside subnet"},
		{"frontend is outside address", func(c *Config) { c.Frontends[0].Address = "198.19.0.2" }, []string{"frontend[0].address"}, "198.19.0.2 is also outside.address"},
		{"frontends share address", func(c *Config) { c.Frontends[1].Address = "198.19.1.10" }, []string{"frontend[1].address"}, "also frontend[0].address"},

		// pools
		{"pool name missing", func(c *Config) { c.Pools[0].Name = "" }, []string{"pool[0].name"}, "missing"},
		{"pool name twice", func(c *Config) {
			c.Frontends = append(c.Frontends, Frontend{Name: "fe2", Address: "198.19.1.12"})
			c.Pools = append(c.Pools, Pool{Name: "web", Frontends: []string{"fe2"}, Members: []string{"10.0.5.1"}})
		}, []string{"pool[1].name"}, `pool "web" is also pool[0].name`},
		{"pool no frontends", func(c *Config) { c.Pools[0].Frontends = nil }, []string{"pool[0].frontends"}, "no frontends"},
		{"pool unknown frontend", func(c *Config) { c.Pools[0].Frontends = []string{"fe1", "fe9"} }, []string{"pool[0].frontends[1]"}, `unknown frontend "fe9"; the frontends are "fe-default", "fe1"`},
		{"pool frontend twice", func(c *Config) { c.Pools[0].Frontends = []string{"fe1", "fe1"} }, []string{"pool[0].frontends[1]"}, "listed twice"},
		{"pool frontend shared with default snat", func(c *Config) { c.Pools[0].Frontends = []string{"fe-default"} }, []string{"default_snat.frontends[0]"}, `already used by pool "web" (pool[0])`},
		{"pool no members", func(c *Config) { c.Pools[0].Members = nil }, []string{"pool[0].members"}, "no members"},
		{"pool member bad", func(c *Config) { c.Pools[0].Members[1] = "10.0.1.500" }, []string{"pool[0].members[1]"}, "not an IPv4 address or prefix"},
		{"pool member host bits", func(c *Config) { c.Pools[0].Members[2] = "10.0.2.5/28" }, []string{"pool[0].members[2]"}, `write the network, "10.0.2.0/28"`},
		{"pool member outside inside subnet", func(c *Config) { c.Pools[0].Members[0] = "172.16.0.4" }, nil, ""},
		{"pool member is natgw", func(c *Config) { c.Pools[0].Members[0] = "10.0.0.1" }, []string{"pool[0].members[0]"}, "natgw's own address (inside.address)"},
		{"pool prefix holds natgw", func(c *Config) { c.Pools[0].Members[2] = "10.0.0.0/28" }, []string{"pool[0].members[2]"}, "10.0.0.1 is natgw's own address (inside.address)"},
		{"pool of 1000", func(c *Config) { c.Pools[0].Members = members(1000) }, nil, ""},
		{"pool of 1001", func(c *Config) { c.Pools[0].Members = members(1001) }, []string{"pool[0].members"}, "1001 member addresses: a pool has at most 1000"},
		{"pool prefix too large, not expanded", func(c *Config) { c.Pools[0].Members = []string{"0.0.0.0/0"} }, []string{"pool[0].members"}, "4294967296 member addresses"},
		{"ports per member bad", func(c *Config) { c.Pools[0].PortsPerMember = 100 }, []string{"pool[0].ports_per_member"}, "multiple of 8"},
		{"ports per member too big", func(c *Config) { c.Pools[0].PortsPerMember = 65536 }, []string{"pool[0].ports_per_member"}, "more than the 64512 ports"},
		{"blocks don't fit", func(c *Config) { c.Pools[0].PortsPerMember = 8192 }, []string{"pool[0]"}, `pool "web": 18 blocks of 8192 ports don't fit on 1 frontend(s): they hold 7, short by 11 blocks (90112 ports); 3 frontend(s) needed`},
		{"one block too many", func(c *Config) {
			c.Pools[0].Members = members(64)
			c.Pools[0].PortsPerMember = 1024
		}, []string{"pool[0]"}, "they hold 63, short by 1 blocks (1024 ports); 2 frontend(s) needed"},
		{"two frontends hold more", func(c *Config) {
			c.Frontends = append(c.Frontends, Frontend{Name: "fe2", Address: "198.19.1.12"})
			c.Pools[0].Frontends = []string{"fe1", "fe2"}
			c.Pools[0].Members = members(64)
			c.Pools[0].PortsPerMember = 1024
		}, nil, ""},
		{"member in two pools", func(c *Config) {
			c.Frontends = append(c.Frontends, Frontend{Name: "fe2", Address: "198.19.1.12"})
			c.Pools = append(c.Pools, Pool{Name: "db", Frontends: []string{"fe2"}, Members: []string{"10.0.2.3"}})
		}, []string{"pool[1].members[0]"}, `10.0.2.3 is a member of pool "web" (pool[0].members[2]) and of pool "db"`},
		{"prefixes overlap across pools", func(c *Config) {
			c.Frontends = append(c.Frontends, Frontend{Name: "fe2", Address: "198.19.1.12"})
			c.Pools = append(c.Pools, Pool{Name: "db", Frontends: []string{"fe2"}, Members: []string{"10.0.2.0/24"}})
		}, []string{"pool[1].members[0]"}, "(and 15 more addresses of 10.0.2.0/24)"},
		{"member twice in a pool", func(c *Config) { c.Pools[0].Members = append(c.Pools[0].Members, "10.0.1.4") }, []string{"pool[0].members[3]"}, `10.0.1.4 is listed twice in pool "web": also in pool[0].members[0]`},

		// instances
		{"instance private bad", func(c *Config) { c.Instances[0].Private = "10.0.3" }, []string{"instance[0].private"}, "not an IPv4 address"},
		{"instance private missing", func(c *Config) { c.Instances[0].Private = "" }, []string{"instance[0].private"}, "missing"},
		{"instance private is natgw", func(c *Config) { c.Instances[0].Private = "10.0.0.1" }, []string{"instance[0].private"}, "natgw's own address"},
		{"instance twice", func(c *Config) {
			c.Instances = append(c.Instances, Instance{Private: "10.0.3.7", Public: "198.19.1.51"})
		}, []string{"instance[1].private"}, "also instance[0].private"},
		{"instance is pool member", func(c *Config) { c.Instances[0].Private = "10.0.1.5" }, []string{"instance[0].private"}, `also a member of pool "web" (pool[0].members[1]): a private address in two scenarios; the instance would take precedence and the pool block would be wasted`},
		{"instance public bad", func(c *Config) { c.Instances[0].Public = "public" }, []string{"instance[0].public"}, "not an IPv4 address"},
		{"instance public is frontend", func(c *Config) { c.Instances[0].Public = "198.19.1.10" }, []string{"instance[0].public"}, "198.19.1.10 is also frontend[0].address"},
		{"instance public is inside address", func(c *Config) { c.Instances[0].Public = "10.0.0.1" }, []string{"instance[0].public"}, "in the inside subnet"},
		{"instance publics twice", func(c *Config) {
			c.Instances = append(c.Instances, Instance{Private: "10.0.3.8", Public: "198.19.1.50"})
		}, []string{"instance[1].public"}, "also instance[0].public"},
		{"instance inbound bad", func(c *Config) { c.Instances[0].Inbound = []string{"tcp/22", "sctp/9", "icmp"} }, []string{"instance[0].inbound[1]"}, "tcp, udp or icmp"},
		{"instance inbound range reversed", func(c *Config) { c.Instances[0].Inbound = []string{"tcp/9000-8000"} }, []string{"instance[0].inbound[0]"}, `write "8000-9000"`},

		// default SNAT
		{"default snat no sources", func(c *Config) { c.DefaultSNAT.Sources = nil }, []string{"default_snat.sources"}, "no sources"},
		{"default snat bad source", func(c *Config) { c.DefaultSNAT.Sources = []string{"10.0.0.0/8", "10.0.0.0/33"} }, []string{"default_snat.sources[1]"}, "not an IPv4 address or prefix"},
		{"default snat no frontends", func(c *Config) { c.DefaultSNAT.Frontends = nil }, []string{"default_snat.frontends"}, "no frontends"},
		{"default snat unknown frontend", func(c *Config) { c.DefaultSNAT.Frontends = []string{"fe-nope"} }, []string{"default_snat.frontends[0]"}, `unknown frontend "fe-nope"`},
		{"default snat block size", func(c *Config) { c.DefaultSNAT.PortsPerMember = 12 }, []string{"default_snat.ports_per_member"}, "multiple of 8"},
		{"default snat reclaim_idle too short", func(c *Config) { c.DefaultSNAT.ReclaimIdle.Duration = 500 * time.Millisecond }, []string{"default_snat.reclaim_idle"}, "at least 1s"},
		{"default snat reclaim_idle too long", func(c *Config) { c.DefaultSNAT.ReclaimIdle.Duration = 25 * time.Hour }, []string{"default_snat.reclaim_idle"}, "at most 24h"},
		{"default snat reclaim_idle bounds", func(c *Config) { c.DefaultSNAT.ReclaimIdle.Duration = time.Second }, nil, ""},

		// deny
		{"deny destination bad", func(c *Config) { c.Deny[0].Destination = "198.18.99.0/24x" }, []string{"deny[0].destination"}, "not an IPv4 address or prefix"},
		{"deny destination address", func(c *Config) { c.Deny[0].Destination = "198.18.99.1" }, nil, ""},
		{"deny destination missing", func(c *Config) { c.Deny[0].Destination = "" }, []string{"deny[0].destination"}, "missing"},
		{"deny protocol bad", func(c *Config) { c.Deny[0].Protocol = "TCP" }, []string{"deny[0].protocol"}, `unknown protocol "TCP"`},
		{"deny protocol empty is any", func(c *Config) { c.Deny[0].Protocol, c.Deny[0].Ports = "", "" }, nil, ""},
		{"deny ports bad", func(c *Config) { c.Deny[0].Ports = "25-" }, []string{"deny[0].ports"}, "not a port from 1 to 65535"},
		{"deny port zero", func(c *Config) { c.Deny[0].Ports = "0" }, []string{"deny[0].ports"}, "not a port from 1 to 65535"},
		{"deny ports with icmp", func(c *Config) { c.Deny[0].Protocol = "icmp" }, []string{"deny[0].ports"}, "icmp has no ports"},
		{"deny ports with any", func(c *Config) { c.Deny[0].Protocol = "any" }, []string{"deny[0].ports"}, "one rule for each"},
		{"deny icmp all ports", func(c *Config) { c.Deny[0].Protocol, c.Deny[0].Ports = "icmp", "*" }, nil, ""},

		// mgmt
		{"listen bad", func(c *Config) { c.Mgmt.Listen = "127.0.0.1" }, []string{"mgmt.listen"}, "not host:port"},
		{"listen port bad", func(c *Config) { c.Mgmt.Listen = "127.0.0.1:http" }, []string{"mgmt.listen"}, "not a port"},
		{"listen host name", func(c *Config) { c.Mgmt.Listen = "example.com:9650" }, []string{"mgmt.listen"}, "IP address or localhost"},
		{"listen localhost", func(c *Config) { c.Mgmt.Listen = "localhost:9650" }, nil, ""},
		{"listen IPv6 loopback", func(c *Config) { c.Mgmt.Listen = "[::1]:9650" }, nil, ""},
		{"listen open without token", func(c *Config) { c.Mgmt.Listen = "0.0.0.0:9650" }, []string{"mgmt.listen"}, "token_file is not set"},
		{"listen all interfaces without token", func(c *Config) { c.Mgmt.Listen = ":9650" }, []string{"mgmt.listen"}, "token_file is not set"},
		{"listen open with token", func(c *Config) {
			c.Mgmt.Listen = "0.0.0.0:9650"
			c.Mgmt.TokenFile = "/etc/natgw/token"
		}, nil, ""},
		{"listen open insecure", func(c *Config) {
			c.Mgmt.Listen = "192.0.2.1:9650"
			c.Mgmt.AllowInsecure = true
		}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadExample(t)
			tt.mutate(c)
			err := c.Validate()
			if tt.keys == nil {
				assert.NoError(t, err)
				return
			}
			errs := requireErrors(t, err)
			assert.Equal(t, tt.keys, errs.Keys(), "errors:\n%v", err)
			assert.Contains(t, errs[0].Msg, tt.msg)
		})
	}
}

// TestValidateEmpty checks that an empty configuration, defaults applied,
// names each missing required value.
func TestValidateEmpty(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	errs := requireErrors(t, c.Validate())
	assert.Equal(t, []string{"inside.port", "outside.port", "inside.address", "outside.address", "outside.gateway"}, errs.Keys())
}

// TestValidateZeroConfig checks that Validate without defaults reports the
// zero values instead of crashing.
func TestValidateZeroConfig(t *testing.T) {
	c := Config{DefaultSNAT: &DefaultSNAT{}}
	errs := requireErrors(t, c.Validate())
	assert.Contains(t, errs.Keys(), "dataplane.driver")
	assert.Contains(t, errs.Keys(), "timeouts.udp")
	assert.Contains(t, errs.Keys(), "default_snat.ports_per_member")
	assert.Contains(t, errs.Keys(), "mgmt.listen")
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// TestDescriptorsParse: the ring size keys parse, are validated with the
// file's line, and are 1024 (today's ring) when left out.
func TestDescriptorsParse(t *testing.T) {
	c, err := Parse([]byte(minimal), "t.toml")
	require.NoError(t, err)
	assert.Nil(t, c.Dataplane.RxDescriptors)
	assert.Equal(t, 1024, c.Dataplane.RxDesc())
	assert.Equal(t, 1024, c.Dataplane.TxDesc())

	c, err = Parse([]byte("[dataplane]\nrx_descriptors = 4096\ntx_descriptors = 2048\n"+minimal), "t.toml")
	require.NoError(t, err)
	assert.Equal(t, 4096, c.Dataplane.RxDesc())
	assert.Equal(t, 2048, c.Dataplane.TxDesc())

	_, err = Parse([]byte("[dataplane]\nrx_descriptors = 0\n"+minimal), "t.toml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dataplane.rx_descriptors: 0 frames: must be 64 to 32768")

	_, err = Parse([]byte("[dataplane]\ndriver = \"afpacket\"\ntx_descriptors = 4096\n"+minimal), "t.toml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `dataplane.tx_descriptors: set with driver "afpacket"`)
}
