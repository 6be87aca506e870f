// Package config owns natgw's configuration file (SPEC §5): the TOML schema
// (Config and its section types), the defaults (ApplyDefaults; Parse gives
// them only to keys the file leaves out, so an explicit 0 is validated),
// strict parsing (Parse, Load: unknown keys are errors, and keys are
// case-sensitive although the TOML decoder is not) and validation
// (Validate), which reports every problem at once, each naming its TOML key
// (and line where the parser knows it), as Errors.
//
// It also parses the text forms the rest of natgw needs, so that no other
// package re-parses configuration strings: addresses and prefixes
// (ParseIPv4, ParseIPv4Prefix, ParseInterfaceAddress, ParseMAC, and
// accessors like Config.InsidePrefix and Pool.MemberAddrs), protocols and
// port ranges (ParseProtocol, ParsePortRange), instance inbound rules
// (ParseInbound) and deny rules (DenyRule.Match). The policy compiler in
// package nat builds its packet-path tables from these values after
// Validate has accepted the configuration.
//
// Everything here runs on the management core (and in the natgw validate
// command), never on the packet path; it allocates freely and may be slow.
// Values are not shared: a Config is owned by whoever parsed it, and is not
// modified by the accessors.
package config
