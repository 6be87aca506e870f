// Package configtest is the one configuration fixture of natgw's tests:
// the example configuration of SPEC §5 with the test addresses of SPEC §8,
// as a config.Config a test changes in Go and writes as TOML.
//
// A test starts from Example, changes the fields its case is about (pool
// members, ports_per_member, timeouts, a section left out by setting it
// to nil) and then either parses it back with Parse, which runs the
// configuration through config.Parse like natgw's own loader, or writes it
// with Text for a natgw process or a reload to read. Writing the text from
// the struct keeps every test's variation type-checked and the addresses
// in one place: tests never spell the example out again.
//
// The SPEC's example itself, comments and DPDK arguments included, is
// mgmt/config/testdata/example.toml; TestExampleIsSpecExample checks that
// Example differs from it only as Example's comment says.
//
// This package is for tests only; natgw's code does not import it.
package configtest
