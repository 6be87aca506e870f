//go:build linux

package afpacket

import (
	"testing"
	"time"
)

// BenchmarkSendRecv pushes 64-byte frames from a Port on one veth end to a
// Port on the other, in bursts, from one goroutine; one op is one frame
// received. The veth's kernel work runs inside Send's sendto, so the figure
// is the driver plus the kernel's veth path on one core.
func BenchmarkSendRecv(b *testing.B) {
	for _, bench := range []struct {
		name  string
		burst int
		size  int
	}{
		{"burst32/64B", 32, 64},
		{"burst32/1500B", 32, 1500},
	} {
		b.Run(bench.name, func(b *testing.B) {
			tb := newVethNS(b)
			tb.enter(b)
			a := openPort(b, Options{Interface: natIf})
			r := openPort(b, Options{Interface: peerIf})
			qa, qr := a.Queue(0), r.Queue(0)
			tx := make([][]byte, bench.burst)
			txSizes := make([]int, bench.burst)
			for i := range tx {
				tx[i] = testFrame(r.MAC(), a.MAC(), uint16(1000+i), uint32(i), bench.size)
				txSizes[i] = len(tx[i])
			}
			rx := make([][]byte, 2*bench.burst)
			for i := range rx {
				rx[i] = make([]byte, 2048)
			}
			rxSizes := make([]int, len(rx))
			rxFlags := make([]uint8, len(rx))

			b.ReportAllocs()
			b.ResetTimer()
			received, sent := 0, 0
			for received < b.N {
				if sent-received < 1<<14 {
					n, _ := qa.Send(tx, txSizes)
					sent += n
				}
				got := qr.Recv(rx, rxSizes, rxFlags)
				if got == 0 && sent-received >= 1<<14 {
					qr.Wait(10 * time.Millisecond)
				}
				received += got
			}
			b.StopTimer()
			b.ReportMetric(float64(received)/b.Elapsed().Seconds(), "pps")
			st := r.Stats()
			b.ReportMetric(float64(st.RxDrops), "drops")
		})
	}
}
