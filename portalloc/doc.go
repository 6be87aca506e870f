// Package portalloc owns SNAT port allocation: the preallocation tier table
// and block layout of SPEC [S3], the random choice of a free port in a
// member's block towards one destination [S2], the per-destination usage
// counts that make exhaustion [S4] exact and cheap, and the assignment of
// default-SNAT blocks on first use.
//
// Which core runs what: TierPorts, CheckBlockSize, Layout and LayoutStable
// run on the management core when a configuration is compiled. Rand, Pick
// and Usage are per-worker state, used only by the worker that owns them:
// they are not safe for concurrent use and never allocate or lock. DefaultSNAT
// is shared: workers assign blocks and count their flows without locks
// (atomics and compare-and-swap only, each worker writing only its own
// counters), and the management core reclaims idle blocks; the protocol is
// written down at the top of defaultsnat.go.
//
// A worker creating a flow towards a destination does, in order:
//
//	block := the member's Block (pool: from the policy; default SNAT:
//	         DefaultSNAT.Acquire, which pins the block while the flow lives)
//	if usage.Count(key) == block.Size() → drop, port_exhausted [S4]
//	port, ok := Pick(block, &rand, usedInFlowTable)
//	usage.Inc(key)                      // and Dec(key) when the flow ends
//
// Files: tier.go (tiers, Block, Layout), stable.go (layout across reloads),
// rand.go (Rand), pick.go (Pick), usage.go (Usage), defaultsnat.go
// (DefaultSNAT).
package portalloc
