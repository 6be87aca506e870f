//go:build !amd64 && !arm64

package nat

// prefetchAddrs does nothing on this architecture: prefetching is a hint,
// the lookups are correct without it, only slower at large tables.
func prefetchAddrs(addrs *uintptr, n int) {}
