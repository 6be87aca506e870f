package main

import (
	"fmt"
	"math/bits"
	"path/filepath"
	"strings"

	"github.com/natgw/natgw/mgmt/config"
)

// This file writes the deployment-style configuration of the natgw run
// mode (run9693.go): the in-process method's traffic model (the same
// pool, default SNAT, frontends and static neighbours, so the
// generator's flows are translated the same way) with what an operator
// sets: one worker pinned with worker_cpus (and made real-time with
// worker_priority when the run has real-time throttling off), the table
// sized for the peak (flow_capacity), the management endpoint on a
// loopback port, and two net_memif devices joining natgw to the
// generator's process.

// defaultRing is -ring's default: 1024 frames, natgw's default
// dataplane.rx_descriptors.
const defaultRing = 1024

// memifMAC is the MAC natgw's memif ports take (the devices' mac=
// argument): the generator's frames are addressed to toNatgwMAC.
var memifMAC = toNatgwMAC

// memifSockets returns the unix sockets of the inside and outside memif
// devices in dir.
func memifSockets(dir string) (inside, outside string) {
	return filepath.Join(dir, "in.sock"), filepath.Join(dir, "out.sock")
}

// memifVdev returns the --vdev argument of memif device n (net_memifN)
// on socket, in role "client" (natgw: it connects, and reconnects when
// restarted) or "server" (the generator's process), with rings of ring
// frames (rsize=log2(ring); a power of two). The client's device has
// natgw's MAC.
func memifVdev(n int, role, socket string, ring int) string {
	a := fmt.Sprintf("--vdev=net_memif%d,role=%s,socket=%s,socket-abstract=no,id=0,rsize=%d", n, role, socket, bits.Len(uint(ring))-1)
	if role == "client" {
		a += ",mac=" + macString(memifMAC)
	}
	return a
}

// runConfig is the natgw run mode's configuration.
type runConfig struct {
	WorkerCPU  int
	MainLcore  string
	SocketDir  string
	MgmtListen string
	// WorkerPriority is dataplane.worker_priority (0: the key left out,
	// the worker at the normal policy).
	WorkerPriority int
	// Ring is the memif rings' size and natgw's rx_descriptors and
	// tx_descriptors (0: defaultRing).
	Ring int
}

// ring returns rc.Ring, or defaultRing when it is 0.
func (rc runConfig) ring() int {
	if rc.Ring == 0 {
		return defaultRing
	}
	return rc.Ring
}

// natgwEALArgs returns natgw's eal_args: its main lcore, no PCI scan, and
// the two memif client devices (net_memif0 inside, net_memif1 outside).
func (rc runConfig) natgwEALArgs() []string {
	in, out := memifSockets(rc.SocketDir)
	return []string{"-l", rc.MainLcore, "--no-pci", memifVdev(0, "client", in, rc.ring()), memifVdev(1, "client", out, rc.ring())}
}

// configTOML returns natgw's configuration for the traffic t and checks
// it as natgw run would (config.Parse), and that it has what the mode
// needs (the worker CPU, the management endpoint, the table size).
func (rc runConfig) configTOML(t traffic) (string, *config.Config, error) {
	text := t.configTOML("net_memif0", "net_memif1", rc.natgwEALArgs())
	header := "# natgw configuration of the RFC 9693 method through natgw run (bench/benchharness rfc9693-run):\n" +
		"# deployment-style, as an operator would write it for this VM.\n"
	const workers = "workers = 1\n"
	const listen = "listen = \"127.0.0.1:9650\"\n"
	if !strings.Contains(text, workers) || !strings.Contains(text, listen) {
		return "", nil, fmt.Errorf("the benchmark configuration has no %q or %q to set", strings.TrimSpace(workers), strings.TrimSpace(listen))
	}
	text = header + strings.Replace(text, workers, fmt.Sprintf("%sworker_cpus = [%d]\n", workers, rc.WorkerCPU), 1)
	text = strings.Replace(text, listen, fmt.Sprintf("listen = %q\n", rc.MgmtListen), 1)
	if rc.WorkerPriority != 0 {
		cpus := fmt.Sprintf("worker_cpus = [%d]\n", rc.WorkerCPU)
		text = strings.Replace(text, cpus, fmt.Sprintf("%sworker_priority = %d\n", cpus, rc.WorkerPriority), 1)
	}
	text = strings.Replace(text, workers, fmt.Sprintf("%srx_descriptors = %d\ntx_descriptors = %d\n", workers, rc.ring(), rc.ring()), 1)
	c, err := config.Parse([]byte(text), "natgw run benchmark configuration")
	if err != nil {
		return "", nil, err
	}
	switch {
	case len(c.Dataplane.WorkerCPUs) != 1 || c.Dataplane.WorkerCPUs[0] != rc.WorkerCPU:
		return "", nil, fmt.Errorf("worker_cpus is %v, want [%d]", c.Dataplane.WorkerCPUs, rc.WorkerCPU)
	case c.Dataplane.WorkerPriority != rc.WorkerPriority:
		return "", nil, fmt.Errorf("worker_priority is %d, want %d", c.Dataplane.WorkerPriority, rc.WorkerPriority)
	case c.Dataplane.RxDesc() != rc.ring() || c.Dataplane.TxDesc() != rc.ring():
		return "", nil, fmt.Errorf("rx_descriptors/tx_descriptors are %d/%d, want %d", c.Dataplane.RxDesc(), c.Dataplane.TxDesc(), rc.ring())
	case c.Mgmt.Listen != rc.MgmtListen:
		return "", nil, fmt.Errorf("mgmt.listen is %q, want %q", c.Mgmt.Listen, rc.MgmtListen)
	case c.Dataplane.FlowCapacity != t.flowCapacity():
		return "", nil, fmt.Errorf("flow_capacity is %d, want %d", c.Dataplane.FlowCapacity, t.flowCapacity())
	}
	return text, c, nil
}
