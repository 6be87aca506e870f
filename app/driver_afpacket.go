package main

import (
	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/lcore/afpacket"
	"github.com/natgw/natgw/mgmt/config"
)

func init() { drivers["afpacket"] = openAFPacket }

// openAFPacket opens both ports with the pure-Go AF_PACKET driver; the
// ports are interface names.
func openAFPacket(c *config.Config) ([lcore.NumPorts]lcore.Port, error) {
	var ports [lcore.NumPorts]lcore.Port
	in, err := afpacket.NewLcorePort(c.Inside.Port, c.Inside.Port, c.Dataplane.Workers, lcore.PortInside)
	if err != nil {
		return ports, err
	}
	out, err := afpacket.NewLcorePort(c.Outside.Port, c.Outside.Port, c.Dataplane.Workers, lcore.PortOutside)
	if err != nil {
		in.Close()
		return ports, err
	}
	ports[lcore.PortInside], ports[lcore.PortOutside] = in, out
	return ports, nil
}
