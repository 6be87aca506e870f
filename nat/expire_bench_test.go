package nat

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// benchTeardownSpec is a policy like the DPDK harness's: 1024 pool
// members with 1024-port blocks on 17 frontends, so a 1 M-flow table
// holds a thousand hosts, each with a flow to a thousand destinations.
func benchTeardownSpec() PolicySpec {
	s := testSpec(1024)
	s.Frontends = hostsOf("198.19.0.100", 17)
	s.Pools = []PoolSpec{{Name: "bench", Frontends: s.Frontends, Members: hostsOf("10.1.0.0", 1024), PortsPerMember: 1024}}
	s.Instances, s.DefaultSNAT, s.Deny = nil, nil, nil
	return s
}

// BenchmarkTranslatorExpire measures connection tear-down in the
// translator: one op is one UDP flow idled out by Expire (usage, host
// count, index and record released), as the worker does it 256 flows at a
// time. Each pass refills the table (untimed) with n flows of 1024 hosts.
func BenchmarkTranslatorExpire(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 20} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.StopTimer() // the set-up is not a tear-down
			p := compileSpec(b, benchTeardownSpec(), nil)
			tr := NewTranslator(p, TranslatorOptions{FlowCapacity: n + n/8, Seed: 42}, 1000)
			members := hostsOf("10.1.0.0", 1024)
			payload := make([]byte, benchPktLen-28)
			buf := make([]byte, 128)
			now := Tick(1000)
			fill := func() {
				for i := 0; i < n; i++ {
					src := members[i%len(members)]
					dst := ip4("198.18.0.0") + uint32(i/len(members))
					m := BuildUDP(buf, src, dst, 1024, 53, 64, payload)
					require.Equal(b, VerdictForward, tr.Outbound(buf[:m], now+Tick(i%100_000)), "flow %d", i)
				}
			}
			b.ReportAllocs()
			for done := 0; done < b.N; {
				fill()
				now += p.Timeouts.UDP + 101_000
				b.StartTimer()
				for done < b.N {
					k, more := tr.Expire(now, min(256, b.N-done))
					done += k
					if !more {
						break
					}
				}
				b.StopTimer()
				for _, more := tr.Expire(now, 1<<30); more; _, more = tr.Expire(now, 1<<30) {
				}
				require.Zero(b, tr.Flows().Len())
				now += 200_000
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}
