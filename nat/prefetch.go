package nat

// Software prefetch for the batched lookups. Go has no prefetch
// intrinsic for user code, and a plain load that misses the cache holds
// its place in the reorder buffer until the data arrives, so a pass of 32
// such loads stalls the core. A prefetch instruction retires at once: the
// CPU goes on to the next packet while the cache lines are on their way.
// prefetchAddrs issues one prefetch per address in one call (assembly on
// amd64 and arm64; elsewhere it does nothing, which changes speed only).

import "unsafe"

// prefetchAddrs hints the CPU to load the cache line at each of the first n
// addresses of addrs into every cache level. Addresses are not
// dereferenced: an invalid one costs nothing and faults nothing.
//
//go:noescape
func prefetchAddrs(addrs *uintptr, n int)

// addrOf returns the address of p as a prefetch hint.
func addrOf[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) }
