package config

import (
	"fmt"
	"slices"
)

// Mapping behaviours of pools and default SNAT (issue 19; RFC 4787
// REQ-1 and REQ-8): the values of their mapping and filtering keys.
const (
	// MappingAddressPortDependent takes a public port per destination
	// (the default).
	MappingAddressPortDependent = "address-and-port-dependent"
	// MappingEndpointIndependent keeps one public port for a private
	// endpoint towards every destination while a flow of it lives.
	MappingEndpointIndependent = "endpoint-independent"
	// FilteringAddressPortDependent lets in only packets of existing
	// flows (the default).
	FilteringAddressPortDependent = "address-and-port-dependent"
	// FilteringAddressDependent also lets in packets from remote
	// addresses an endpoint-independent mapping has flows with.
	FilteringAddressDependent = "address-dependent"
	// FilteringEndpointIndependent lets in packets from anyone to an
	// endpoint-independent mapping.
	FilteringEndpointIndependent = "endpoint-independent"
)

// EndpointIndependent reports whether mapping (a mapping key's value)
// is endpoint independent.
func EndpointIndependent(mapping string) bool { return mapping == MappingEndpointIndependent }

// behaviour checks the mapping and filtering keys of the scope at key.
func (v *validator) behaviour(key, mapping, filtering string) {
	mappings := []string{MappingAddressPortDependent, MappingEndpointIndependent}
	if mapping != "" && !slices.Contains(mappings, mapping) {
		v.addf(key+".mapping", "%q: use %q or %q", mapping, mappings[0], mappings[1])
	}
	filterings := []string{FilteringAddressPortDependent, FilteringAddressDependent, FilteringEndpointIndependent}
	switch {
	case filtering == "":
	case !slices.Contains(filterings, filtering):
		v.addf(key+".filtering", "%q: use %q, %q or %q", filtering, filterings[0], filterings[1], filterings[2])
	case filtering != FilteringAddressPortDependent && !EndpointIndependent(mapping):
		v.add(key+".filtering", fmt.Sprintf("%q needs mapping = %q: an address-and-port-dependent mapping only lets in packets of its flows",
			filtering, MappingEndpointIndependent))
	}
}
