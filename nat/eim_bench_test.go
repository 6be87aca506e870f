package nat

import (
	"fmt"
	"testing"
)

// BenchmarkEIMEstablished compares, in one run, established-flow
// translation of address-and-port-dependent flows (apdm) and of
// endpoint-independent ones on their mapping's owner (eim): the same
// flows (benchFlows: 4 members, 512 source ports each, many
// destinations), bursts of 32, both directions. handoff is what a packet
// of an endpoint-independent flow costs on a worker that is not its
// mapping's owner (two workers): the miss, the classification and the
// decision to hand it over; the ring copy and the owner's translation
// (an eim packet) come on top.
func BenchmarkEIMEstablished(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 20} {
		modes := []struct {
			name string
			spec PolicySpec
		}{
			{"apdm", testSpec(0)},
			{"eim", eimSpec(0, FilteringEndpointIndependent)},
		}
		for _, m := range modes {
			tr, outs, ins := benchFlowsOf(b, n, n+n/8, m.spec)
			for _, dir := range []string{"out", "in"} {
				src := outs
				if dir == "in" {
					src = ins
				}
				b.Run(fmt.Sprintf("flows=%d/%s/%s", n, m.name, dir), func(b *testing.B) {
					benchBursts(b, tr, src, dir, VerdictForward)
				})
			}
			if m.name != "eim" {
				continue
			}
			// The other worker of two: keep the packets whose mapping
			// worker 0 owns, and give them to worker 1.
			p := compileSpec(b, m.spec, nil)
			other := NewTranslator(p, TranslatorOptions{Worker: 1, Workers: 2, FlowCapacity: n, Seed: 3}, 1000)
			for _, dir := range []string{"out", "in"} {
				src := outs
				d := DirOut
				if dir == "in" {
					src, d = ins, DirIn
				}
				var keep []byte
				for i := 0; i+benchPktLen <= len(src); i += benchPktLen {
					if HandoffOwner(src[i:i+benchPktLen], d, false, 0, 0, 2) == 0 {
						keep = append(keep, src[i:i+benchPktLen]...)
					}
				}
				b.Run(fmt.Sprintf("flows=%d/handoff/%s", n, dir), func(b *testing.B) {
					benchBursts(b, other, keep, dir, VerdictHandoff)
				})
			}
		}
	}
}

// benchBursts translates the packets of src (benchPktLen each) in
// bursts of 32, copied into the burst buffer first as a NIC would have
// written them, and checks the last burst's first verdict.
func benchBursts(b *testing.B, tr *Translator, src []byte, dir string, want Verdict) {
	const burst = 32
	bufs := make([][]byte, burst)
	for i := range bufs {
		bufs[i] = make([]byte, benchPktLen)
	}
	verdicts := make([]Verdict, burst)
	total := len(src) / benchPktLen
	next := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += burst {
		for j := range bufs {
			copy(bufs[j], src[next*benchPktLen:(next+1)*benchPktLen])
			if next++; next == total {
				next = 0
			}
		}
		if dir == "out" {
			tr.OutboundBurst(bufs, verdicts, 1000)
		} else {
			tr.InboundBurst(bufs, verdicts, 1000)
		}
	}
	b.StopTimer()
	if verdicts[0] != want {
		b.Fatalf("verdict %v, want %v", verdicts[0], want)
	}
}
