package portalloc

import "math/bits"

// Rand is a small pseudo-random generator (wyrand) for the packet path: one
// 64-bit word of state, a multiply and an add per number, no allocation.
//
// Threading: a Rand is not safe for concurrent use. Each worker owns its own
// Rand and seeds it differently (see NewRand). It is not a cryptographic
// generator: RFC 6056 port randomisation only needs the next port to be
// hard to guess from outside without seeing the worker's earlier choices.
type Rand struct {
	state uint64
}

// wyrand constants (Wang Yi's wyhash), odd and with well-spread bits.
const (
	wyIncrement = 0xa0761d6478bd642f
	wyMix       = 0xe7037ed1a0b428db
)

// NewRand returns a generator seeded with seed. Equal seeds give equal
// sequences, which tests rely on; workers should use distinct seeds (for
// example a random value from the management core plus the worker index).
func NewRand(seed uint64) Rand {
	return Rand{state: seed}
}

// Uint64 returns a uniformly distributed 64-bit number.
func (r *Rand) Uint64() uint64 {
	r.state += wyIncrement
	hi, lo := bits.Mul64(r.state, r.state^wyMix)
	return hi ^ lo
}

// Uint32 returns a uniformly distributed 32-bit number.
func (r *Rand) Uint32() uint32 {
	return uint32(r.Uint64() >> 32)
}

// Intn returns a uniformly distributed number in [0, n). It returns 0 when
// n <= 0 rather than panicking.
//
// It uses Lemire's multiply-and-shift reduction with rejection, so the
// result carries no modulo bias; the division that computes the rejection
// threshold runs only on the rare draws (probability below n/2^64) that
// fall in the biased zone.
func (r *Rand) Intn(n int) int {
	if n <= 0 {
		return 0
	}
	un := uint64(n)
	hi, lo := bits.Mul64(r.Uint64(), un)
	if lo < un {
		threshold := -un % un
		for lo < threshold {
			hi, lo = bits.Mul64(r.Uint64(), un)
		}
	}
	return int(hi)
}
