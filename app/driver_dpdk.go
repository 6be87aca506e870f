//go:build dpdk

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/lcore/dpdk"
	"github.com/natgw/natgw/mgmt/config"
)

func init() { drivers["dpdk"] = openDPDK }

// openDPDK starts EAL from dataplane.eal_args and opens both ports (PCI
// addresses or vdev names) with the DPDK driver. EAL is cleaned up when
// the last of the two ports is closed: the session's own reference is
// dropped here, each port holds one.
func openDPDK(c *config.Config) ([lcore.NumPorts]lcore.Port, error) {
	var ports [lcore.NumPorts]lcore.Port
	workers := c.Dataplane.Workers
	// Each worker spins on its own OS thread; the management core, the
	// HTTP API and Go's runtime need at least one more.
	if n := runtime.GOMAXPROCS(0); n < workers+1 {
		runtime.GOMAXPROCS(workers + 1)
		slog.Info("dpdk: raised GOMAXPROCS so every worker has a thread", "from", n, "to", workers+1)
	}
	s, err := dpdk.Start(dpdk.Config{EALArgs: c.Dataplane.EALArgs, Workers: workers, Ports: int(lcore.NumPorts),
		RxDesc: c.Dataplane.RxDesc(), TxDesc: c.Dataplane.TxDesc()})
	if err != nil {
		return ports, err
	}
	in, err := s.OpenPort(dpdk.PortOptions{Name: c.Inside.Port, Side: lcore.PortInside})
	if err != nil {
		return ports, errors.Join(fmt.Errorf("inside.port: %w", err), s.Close())
	}
	out, err := s.OpenPort(dpdk.PortOptions{Name: c.Outside.Port, Side: lcore.PortOutside})
	if err != nil {
		return ports, errors.Join(fmt.Errorf("outside.port: %w", err), in.Close(), s.Close())
	}
	if err := s.Close(); err != nil {
		return ports, err
	}
	ports[lcore.PortInside], ports[lcore.PortOutside] = in, out
	return ports, nil
}
