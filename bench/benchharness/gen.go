package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/natgw/natgw/nat"
)

// This file holds the pure pieces of the rate-controlled generator of the
// RFC 9693 method (gen_dpdk.go drives them over DPDK rings): the pacing
// arithmetic, the zero-loss binary search, the latency histogram, the
// flows' RFC 4814 pseudorandom ports and order, and the frames with the
// generator's payload (flow index and transmit timestamp).

// dueCount returns how many packets a generator paced at rate packets per
// second should have offered elapsedNs nanoseconds after it started:
// floor(elapsedNs * rate / 1e9), exact in 128-bit arithmetic (a 60 s step
// at 100 Mpps overflows nothing). Negative elapsed times give 0.
func dueCount(elapsedNs int64, rate uint64) uint64 {
	if elapsedNs <= 0 || rate == 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(elapsedNs), rate)
	if hi >= 1e9 { // the quotient would not fit 64 bits
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, 1e9)
	return q
}

// searchStep is one trial of a binary search: the offered rate and
// whether it passed (zero loss).
type searchStep struct {
	Rate    uint64  `json:"rate_pps"`
	Pass    bool    `json:"pass"`
	Loss    uint64  `json:"lost"`
	Offered uint64  `json:"offered"`
	Seconds float64 `json:"seconds"`
	// Limited is set when the generator could not offer the rate it was
	// told (its own ceiling): the step neither passes nor fails natgw.
	Limited bool   `json:"generator_limited,omitempty"`
	Note    string `json:"note,omitempty"`
}

// trialFunc runs one elementary step at a rate and reports it.
type trialFunc func(rate uint64) (searchStep, error)

// binarySearch finds the highest rate in [lo, hi] at which trial passes
// with zero loss (RFC 2544 §26.1, RFC 9693 §4): it tries hi first; if
// that fails it halves the interval between the highest passing and the
// lowest failing rate until they are closer than resolution. A step the
// generator could not offer counts as failing (so the result never
// exceeds what was really offered). It returns 0 when even lo fails, and
// every step in order.
func binarySearch(lo, hi, resolution uint64, trial trialFunc) (uint64, []searchStep, error) {
	if lo == 0 || hi < lo || resolution == 0 {
		return 0, nil, fmt.Errorf("binary search: bad bounds lo %d hi %d resolution %d", lo, hi, resolution)
	}
	var steps []searchStep
	try := func(r uint64) (bool, error) {
		s, err := trial(r)
		s.Rate = r
		steps = append(steps, s)
		return s.Pass && !s.Limited, err
	}
	ok, err := try(hi)
	if err != nil || ok {
		if ok {
			return hi, steps, err
		}
		return 0, steps, err
	}
	pass, fail := uint64(0), hi
	ok, err = try(lo)
	if err != nil {
		return 0, steps, err
	}
	if !ok {
		return 0, steps, nil
	}
	pass = lo
	for fail-pass > resolution {
		mid := pass + (fail-pass)/2
		ok, err := try(mid)
		if err != nil {
			return pass, steps, err
		}
		if ok {
			pass = mid
		} else {
			fail = mid
		}
	}
	return pass, steps, nil
}

// latencyHist is a log-linear histogram of latencies in nanoseconds:
// values below histSub are exact, above that each power of two is split
// in histSub buckets (relative error below 1/histSub). record never
// allocates.
type latencyHist struct {
	counts [histBuckets]uint64
	total  uint64
	max    uint64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits + 1) * histSub
)

// histBucket returns v's bucket.
func histBucket(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits - 1 // v >> e is in [histSub, 2*histSub)
	return (e+1)*histSub + int(v>>e) - histSub
}

// histUpper returns the largest value of bucket b.
func histUpper(b int) uint64 {
	if b < histSub {
		return uint64(b)
	}
	e := b/histSub - 1
	m := uint64(b%histSub + histSub)
	return (m+1)<<e - 1
}

// record adds one latency.
func (h *latencyHist) record(ns uint64) {
	h.counts[histBucket(ns)]++
	h.total++
	if ns > h.max {
		h.max = ns
	}
}

// reset empties the histogram.
func (h *latencyHist) reset() { *h = latencyHist{} }

// percentile returns the latency at or below which a fraction p (0 < p
// <= 1) of the recorded values lie, as the upper bound of its bucket
// (never above the largest value recorded); 0 when nothing was recorded.
func (h *latencyHist) percentile(p float64) uint64 {
	if h.total == 0 || p <= 0 {
		return 0
	}
	rank := uint64(math.Ceil(p * float64(h.total)))
	rank = max(1, min(rank, h.total))
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(histUpper(b), h.max)
		}
	}
	return h.max
}

// genFlows is the generator's set of flows: the traffic model's sources
// and remote addresses (traffic.go), with RFC 4814 pseudorandom port
// numbers in limited ranges: the private source port in
// [genPortLo, genPortLo+genPortRange) from a hash of the flow index, the
// remote port in the same range from an affine permutation of the flow's
// remote-address cycle, so every flow has its own remote endpoint (and
// its own public port mapping [S2]).
type genFlows struct {
	t traffic
	// mul and add make the order permutation k -> (mul*k + add) mod N.
	mul, add uint64
	// step is mul mod N: next's increment.
	step uint64
}

// RFC 4814 §4.5: pseudorandom ports, here 1024-65535.
const (
	genPortLo    = 1024
	genPortRange = 65536 - genPortLo
	// genPortMul is coprime with genPortRange (64512 = 2^10 * 3^2 * 7).
	genPortMul = 40009
)

// newGenFlows returns the flows of the traffic t and their pseudorandom
// order.
func newGenFlows(t traffic, seed uint64) (genFlows, error) {
	n := uint64(t.Flows)
	if t.Flows/remoteCount >= genPortRange {
		return genFlows{}, fmt.Errorf("flows %d: at most %d", t.Flows, remoteCount*genPortRange)
	}
	g := genFlows{t: t, add: mix64(seed) % n}
	g.mul = uint64(float64(n)*0.6180339887) | 1
	for gcd(g.mul, n) != 1 {
		g.mul++
	}
	g.step = g.mul % n
	return g, nil
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// mix64 is SplitMix64's finaliser: a fixed pseudorandom function.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// at returns the flow index of the k-th packet of a cycle over the flows
// (k taken modulo N): a bijection of [0, N), so every flow is sent once
// per cycle, in an order that jumps across the table.
func (g *genFlows) at(k uint64) uint32 {
	n := uint64(g.t.Flows)
	hi, lo := bits.Mul64(g.mul, k%n)
	_, r := bits.Div64(hi%n, lo, n)
	return uint32((r + g.add) % n)
}

// next returns the flow after i in the order of at: at(k+1) from at(k),
// with no division.
func (g *genFlows) next(i uint32) uint32 {
	c := uint64(i) + g.step
	if c >= uint64(g.t.Flows) {
		c -= uint64(g.t.Flows)
	}
	return uint32(c)
}

// flow returns flow i as its private host sends it.
func (g *genFlows) flow(i uint32) flowSpec {
	t := &g.t
	return flowSpec{
		Src:   t.source(int(i) % t.Sources),
		Dst:   remoteBase + i%remoteCount,
		Sport: uint16(genPortLo + mix64(uint64(i))%genPortRange),
		Dport: uint16(genPortLo + (uint64(i/remoteCount)*genPortMul+7)%genPortRange),
	}
}

// The generator's payload, in the 18 bytes of a 64-byte frame's UDP
// payload: a magic, the kind of packet, the flow index and the transmit
// time (ns since the generator's epoch). natgw rewrites addresses and
// ports, never the payload.
const (
	genMagic   = 0x4e47 // "NG"
	payMagic   = 0
	payKind    = 2
	payFlow    = 4
	payTime    = 8
	payEnd     = 16
	kindOut    = 1 // private host to remote, seen translated outside
	kindIn     = 2 // remote to public address, seen translated inside
	kindFirst  = 3 // phase 1: a connection's first packet
	kindAnswer = 4 // phase 1: the remote's reply to a translated first packet
)

// genPacket is what the generator reads back from a frame natgw emitted.
type genPacket struct {
	Src, Dst     uint32
	Sport, Dport uint16
	Kind         uint8
	Flow         uint32
	Sent         int64
}

// errNotGen is returned for frames that are not the generator's.
var errNotGen = errors.New("not a generator frame")

// writeGenFrame writes a 60-byte UDP frame with the generator's payload
// into b (at least frameLen bytes) and returns it; the IPv4 and UDP
// checksums are complete (the same bytes as nat.BuildUDP writes, summed
// word by word from the fields: the generator's per-frame cost bounds
// the rates it can offer).
func writeGenFrame(b []byte, dstMAC, srcMAC [6]byte, src, dst uint32, sport, dport uint16, kind uint8, flow uint32, sent int64) []byte {
	b = b[:frameLen]
	copy(b[0:6], dstMAC[:])
	copy(b[6:12], srcMAC[:])
	const ip = nat.EthernetLen
	const udp = ip + nat.IPv4MinLen
	const pay = udp + nat.UDPLen
	const totLen = nat.IPv4MinLen + nat.UDPLen + payloadLen
	const udpLen = nat.UDPLen + payloadLen
	be := binary.BigEndian
	be.PutUint16(b[12:], nat.EtherTypeIPv4)
	be.PutUint64(b[ip:], 0x4500<<48|totLen<<32|0x4000)                    // version, IHL, length, id 0, DF
	be.PutUint32(b[ip+8:], uint32(frameTTL)<<24|uint32(nat.ProtoUDP)<<16) // TTL, protocol, checksum 0
	be.PutUint32(b[ip+12:], src)
	be.PutUint32(b[ip+16:], dst)
	addrs := uint64(src>>16) + uint64(src&0xffff) + uint64(dst>>16) + uint64(dst&0xffff)
	be.PutUint16(b[ip+10:], ^fold64(0x4500+totLen+0x4000+uint64(frameTTL)<<8+uint64(nat.ProtoUDP)+addrs))
	be.PutUint64(b[udp:], uint64(sport)<<48|uint64(dport)<<32|udpLen<<16)
	u := uint64(kind) << 8
	be.PutUint16(b[pay+payMagic:], genMagic)
	b[pay+payKind], b[pay+payKind+1] = kind, 0
	be.PutUint32(b[pay+payFlow:], flow)
	be.PutUint64(b[pay+payTime:], uint64(sent))
	b[pay+payEnd], b[pay+payEnd+1] = 0, 0
	ts := uint64(sent)
	sum := addrs + uint64(nat.ProtoUDP) + udpLen + uint64(sport) + uint64(dport) + udpLen + genMagic + u +
		uint64(flow>>16) + uint64(flow&0xffff) + ts>>48 + ts>>32&0xffff + ts>>16&0xffff + ts&0xffff
	c := ^fold64(sum)
	if c == 0 {
		c = 0xffff
	}
	be.PutUint16(b[udp+6:], c)
	return b
}

// fold64 folds a sum of 16-bit words into 16 bits (ones' complement).
func fold64(s uint64) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// parseGenFrame reads a frame natgw emitted.
func parseGenFrame(b []byte, out *genPacket) error {
	const ip = nat.EthernetLen
	const udp = ip + nat.IPv4MinLen
	if len(b) < udp+nat.UDPLen+payEnd || binary.BigEndian.Uint16(b[12:]) != nat.EtherTypeIPv4 ||
		b[ip] != 0x45 || b[ip+9] != nat.ProtoUDP {
		return errNotGen
	}
	p := b[udp+nat.UDPLen:]
	if binary.BigEndian.Uint16(p[payMagic:]) != genMagic {
		return errNotGen
	}
	out.Src = binary.BigEndian.Uint32(b[ip+12:])
	out.Dst = binary.BigEndian.Uint32(b[ip+16:])
	out.Sport = binary.BigEndian.Uint16(b[udp:])
	out.Dport = binary.BigEndian.Uint16(b[udp+2:])
	out.Kind = p[payKind]
	out.Flow = binary.BigEndian.Uint32(p[payFlow:])
	out.Sent = int64(binary.BigEndian.Uint64(p[payTime:]))
	return nil
}
