//go:build dpdk

package dpdk

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/lcore"
)

func TestEALArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"defaults added", []string{"-l", "0-1"},
			[]string{"natgw", "-l", "0-1", "--file-prefix", "natgw-42", "--in-memory"}},
		{"empty", nil, []string{"natgw", "--file-prefix", "natgw-42", "--in-memory"}},
		{"own file prefix", []string{"--file-prefix", "x"},
			[]string{"natgw", "--file-prefix", "x", "--in-memory"}},
		{"own file prefix with =", []string{"--file-prefix=x"},
			[]string{"natgw", "--file-prefix=x", "--in-memory"}},
		{"in-memory given", []string{"--in-memory"},
			[]string{"natgw", "--in-memory", "--file-prefix", "natgw-42"}},
		{"shared config asked for", []string{"--proc-type=primary"},
			[]string{"natgw", "--proc-type=primary", "--file-prefix", "natgw-42"}},
		{"no-shconf", []string{"--no-shconf"},
			[]string{"natgw", "--no-shconf", "--file-prefix", "natgw-42"}},
		{"prefix lookalike is not a prefix", []string{"--file-prefixes"},
			[]string{"natgw", "--file-prefixes", "--file-prefix", "natgw-42", "--in-memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]string(nil), tt.args...)
			assert.Equal(t, tt.want, EALArgs(tt.args, 42))
			assert.Equal(t, in, tt.args, "the caller's slice is not modified")
		})
	}
}

func TestMempoolSize(t *testing.T) {
	tests := []struct {
		name                         string
		ports, workers, rxd, txd, at int
	}{
		{"one worker", 2, 1, 1024, 1024, 2*(1024+2*1024+2*128+256) + 3*256},
		{"four workers", 2, 4, 1024, 1024, 2*(4*1024+5*1024+5*128+4*256) + 6*256},
		{"small rings", 1, 1, 64, 64, 64 + 128 + 256 + 256 + 3*256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := MempoolSize(tt.ports, tt.workers, tt.rxd, tt.txd)
			assert.GreaterOrEqual(t, n, tt.at)
			assert.Less(t, n, 2*tt.at+1, "rounded up to the next 2^k-1, no further")
			assert.Zero(t, (n+1)&n, "%d is 2^k-1", n)
		})
	}
}

// TestSoftRSSMatchesOwner checks lcore's Toeplitz owner function against
// DPDK's rte_softrss for random remote endpoints (SPEC §3: the NIC and the
// software must agree, or hardware RSS would deliver packets to workers
// that don't own them). rte_softrss takes the input as host-order 32-bit
// words consumed from the most significant bit, i.e. the big-endian byte
// stream; SoftRSS passes {addr, port<<16}, which is the 6-byte stream
// addr(4) port(2) that lcore.Owner hashes (the two zero pad bytes add
// nothing to a Toeplitz hash).
func TestSoftRSSMatchesOwner(t *testing.T) {
	owner := lcore.NewOwner(lcore.DefaultRSSKey, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	type tuple struct {
		addr uint32
		port uint16
	}
	tuples := []tuple{{0, 0}, {0xFFFFFFFF, 0xFFFF}, {0xC6120000 | 10, 80}, {0x0A000001, 0}}
	for len(tuples) < 1000 {
		tuples = append(tuples, tuple{rng.Uint32(), uint16(rng.Uint32())})
	}
	for i, tu := range tuples {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			want := SoftRSS(lcore.DefaultRSSKey[:], tu.addr, tu.port)
			assert.Equal(t, want, owner.Hash(tu.addr, tu.port), "addr %#08x port %d", tu.addr, tu.port)
			var in [6]byte
			in[0], in[1], in[2], in[3] = byte(tu.addr>>24), byte(tu.addr>>16), byte(tu.addr>>8), byte(tu.addr)
			in[4], in[5] = byte(tu.port>>8), byte(tu.port)
			assert.Equal(t, want, lcore.Toeplitz(lcore.DefaultRSSKey[:], in[:]))
		})
	}
	t.Run("short key", func(t *testing.T) {
		assert.Zero(t, SoftRSS(make([]byte, 4), 1, 1))
	})
}

// TestEALRestart starts EAL, opens and closes a port, cleans up, and
// refuses a second start in the same process; the parent runs that child
// twice in a row, so a second start right after the first succeeds.
func TestEALRestart(t *testing.T) {
	if isChild(t) {
		s, err := Start(Config{EALArgs: append(append([]string(nil), testEAL...), "--vdev=net_null0"), Workers: 2})
		require.NoError(t, err)
		p, err := s.OpenPort(PortOptions{Name: "net_null0", Side: lcore.PortInside})
		require.NoError(t, err)
		assert.Equal(t, "net_null0", p.Name())
		assert.NotNil(t, p.Queue(2), "management queue")
		assert.Nil(t, p.Queue(3))
		assert.Nil(t, p.Queue(-1))
		_, err = s.OpenPort(PortOptions{Name: "net_null0"})
		assert.ErrorContains(t, err, "already open")
		_, err = s.OpenPort(PortOptions{Name: "net_null7"})
		assert.ErrorContains(t, err, `no port named "net_null7"`)
		require.NoError(t, s.Close())
		assert.NotZero(t, s.MbufsAvailable(), "the open port keeps the session alive")
		require.NoError(t, p.Close())
		assert.NoError(t, p.Close(), "a second close is a no-op")
		assert.Zero(t, s.MbufsAvailable(), "the last close freed the mempool")
		_, err = s.OpenPort(PortOptions{Name: "net_null0"})
		assert.ErrorIs(t, err, ErrClosed)
		_, err = Start(Config{EALArgs: testEAL, Workers: 1})
		assert.ErrorIs(t, err, ErrEALUsed)
		return
	}
	for i := 0; i < 2; i++ {
		runChild(t, "", nil)
	}
}

func TestStartErrors(t *testing.T) {
	runChild(t, "", func(t *testing.T) {
		_, err := Start(Config{Workers: 0})
		assert.ErrorContains(t, err, "workers 0")
		_, err = Start(Config{EALArgs: []string{"--no-such-eal-flag"}, Workers: 1})
		assert.ErrorContains(t, err, "rte_eal_init")
		_, err = Start(Config{EALArgs: testEAL, Workers: 1})
		assert.ErrorIs(t, err, ErrEALUsed, "even a failed rte_eal_init can't be retried")
	})
}

// TestPortInfo opens a net_null port and reads what lcore.Port promises.
func TestPortInfo(t *testing.T) {
	runChild(t, "", func(t *testing.T) {
		s := startSession(t, 1, "net_null0")
		p := openPort(t, s, "net_null0", lcore.PortInside)
		var lp lcore.Port = p
		assert.Equal(t, "net_null0", lp.Name())
		assert.Equal(t, "net_null", p.Info().Driver)
		assert.True(t, lp.LinkUp())
		assert.Greater(t, lp.MTU(), 0)
		assert.True(t, strings.HasPrefix(p.RSS(), "software: "), p.RSS())
		xs, err := p.XStats()
		require.NoError(t, err)
		assert.Contains(t, xs, "rx_good_packets")
		assert.Equal(t, lcore.PortStats{}, lp.Stats())
	})
}

// TestRingSizes opens net_null ports with deeper rings than the default
// (dataplane.rx_descriptors and tx_descriptors) and checks that the device
// took them and that the mempool was sized for them.
func TestRingSizes(t *testing.T) {
	runChild(t, "", func(t *testing.T) {
		args := append(append([]string(nil), testEAL...), "--vdev=net_null0", "--vdev=net_null1")
		s, err := Start(Config{EALArgs: args, Workers: 1, RxDesc: 4096, TxDesc: 2048,
			Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, s.Close()) })
		assert.Equal(t, MempoolSize(2, 1, 4096, 2048), s.MbufsAvailable(), "mempool sized for the rings")
		for _, name := range []string{"net_null0", "net_null1"} {
			p := openPort(t, s, name, lcore.PortInside)
			rx, tx := p.RingSizes()
			assert.Equal(t, 4096, rx, name)
			assert.Equal(t, 2048, tx, name)
			assert.GreaterOrEqual(t, p.Info().RxDescMax, 4096, name)
		}
	})
}

// TestRingRoundTrip sends frames through a net_ring vdev (created without
// arguments it is a loopback: TX queue i feeds RX queue i) and checks
// contents, lengths, descriptor recycling and that no mbuf leaks.
func TestRingRoundTrip(t *testing.T) {
	runChild(t, "", func(t *testing.T) {
		s := startSession(t, 1, "net_ring0")
		p := openPort(t, s, "net_ring0", lcore.PortInside)
		q := p.DPDKQueue(0)
		base := heldMbufs(s, p)
		pool := lcore.NewPacketPool(64, 2048)
		var rx [lcore.Burst]*lcore.Packet
		recv := func(want int) []*lcore.Packet {
			var got []*lcore.Packet
			for i := 0; i < 1000 && len(got) < want; i++ {
				n := q.RxBurst(rx[:])
				got = append(got, rx[:n]...)
			}
			return got
		}

		t.Run("go memory out, mbufs in", func(t *testing.T) {
			var tx []*lcore.Packet
			for i := 0; i < 40; i++ { // more than one burst of 32
				pk := pool.Get()
				require.NotNil(t, pk)
				pk.Data = append(pk.Data, udpFrame(uint32(i), 1000, 60+i)...)
				tx = append(tx, pk)
			}
			require.Equal(t, len(tx), q.TxBurst(tx))
			got := recv(len(tx))
			require.Len(t, got, len(tx))
			for i, pk := range got {
				seq, ok := frameSeq(pk.Data)
				require.True(t, ok)
				assert.Equal(t, uint32(i), seq)
				assert.Len(t, pk.Data, 60+i)
				assert.NotZero(t, pk.Handle)
				assert.GreaterOrEqual(t, cap(pk.Data), 2048)
				assert.Zero(t, pk.Flags&lcore.FlagCsumNotReady)
			}
			// Trim each frame (as the worker drops link padding) and
			// send the mbufs themselves back round.
			for _, pk := range got {
				pk.Data = pk.Data[:50]
			}
			require.Equal(t, len(got), q.TxBurst(got))
			for _, pk := range got {
				assert.Zero(t, pk.Handle, "a sent mbuf is the device's")
			}
			again := recv(len(got))
			require.Len(t, again, len(got))
			for i, pk := range again {
				seq, _ := frameSeq(pk.Data)
				assert.Equal(t, uint32(i), seq)
				assert.Len(t, pk.Data, 50)
			}
			q.Free(again)
			assert.Equal(t, base, heldMbufs(s, p), "every mbuf is back")
		})

		t.Run("dropped frames are reclaimed", func(t *testing.T) {
			pk := pool.Get()
			pk.Data = append(pk.Data, udpFrame(7, 1000, 64)...)
			require.Equal(t, 1, q.TxBurst([]*lcore.Packet{pk}))
			got := recv(1)
			require.Len(t, got, 1)
			// The worker drops a frame by putting its descriptor back.
			got[0].Pool.Put(got[0])
			assert.Equal(t, base+1, heldMbufs(s, p))
			assert.Zero(t, q.RxBurst(rx[:]), "nothing to receive")
			assert.Equal(t, base, heldMbufs(s, p), "the next receive freed the dropped mbuf")
		})

		t.Run("management queue copies", func(t *testing.T) {
			mq := p.Queue(1)
			pk := pool.Get()
			pk.Data = append(pk.Data, udpFrame(9, 1000, 64)...)
			assert.Equal(t, 1, mq.TxBurst([]*lcore.Packet{pk}))
			assert.Zero(t, mq.RxBurst(rx[:]), "the management queue receives nothing")
			mq.Free(nil)
		})

		t.Run("oversized go frame is refused", func(t *testing.T) {
			big := &lcore.Packet{Data: make([]byte, 9000)}
			assert.Zero(t, q.TxBurst([]*lcore.Packet{big}))
			assert.Zero(t, q.TxBurst(nil))
			assert.Zero(t, q.RxBurst(nil))
		})

		st, err := p.Counters()
		require.NoError(t, err)
		assert.GreaterOrEqual(t, st.TxPackets, uint64(81))
		assert.GreaterOrEqual(t, st.RxPackets, uint64(81))
		assert.Zero(t, q.Stats().RegisterFailed)
	})
}

// TestNoAllocs proves the packet path allocation free on a net_null pair:
// receive a burst on one port, send it on the other, and send Go-memory
// frames (copied into mbufs).
func TestNoAllocs(t *testing.T) {
	runChild(t, "", func(t *testing.T) {
		s := startSession(t, 1, "net_null0", "net_null1")
		in := openPort(t, s, "net_null0", lcore.PortInside)
		out := openPort(t, s, "net_null1", lcore.PortOutside)
		qi, qo := in.Queue(0), out.Queue(0)
		var rx [lcore.Burst]*lcore.Packet
		pool := lcore.NewPacketPool(lcore.Burst, 2048)
		var gopk [lcore.Burst]*lcore.Packet
		frame := udpFrame(1, 1000, 64)
		base := heldMbufs(s, in, out)
		forwarded := 0
		allocs := testing.AllocsPerRun(1000, func() {
			n := qi.RxBurst(rx[:])
			sent := qo.TxBurst(rx[:n])
			qo.Free(rx[sent:n])
			forwarded += sent
			for i := range gopk {
				gopk[i] = pool.Get()
				gopk[i].Data = append(gopk[i].Data, frame...)
			}
			k := qi.TxBurst(gopk[:])
			qi.Free(gopk[k:])
		})
		assert.Zero(t, allocs)
		assert.Greater(t, forwarded, 0, "net_null delivered frames")
		assert.Equal(t, base, heldMbufs(s, in, out), "no mbuf leaked")
	})
}

// TestRSS records, for each virtual device available here, whether it can
// hash natgw's fields with natgw's key (hardware RSS) or natgw falls back
// to software ownership, and checks Port.RSS says so.
func TestRSS(t *testing.T) {
	ns := ""
	if !isChild(t) {
		needEAL(t)
		ns = netnsVeth(t, "dp0", "peer0")
	}
	runChild(t, ns, func(t *testing.T) {
		s := startSession(t, 2, "net_null0", "net_ring0", "net_af_packet0,iface=dp0,qpairs=3",
			"net_pcap0,iface=peer0", "net_tap0,iface=ngwtap0")
		for _, name := range []string{"net_null0", "net_ring0", "net_af_packet0", "net_pcap0", "net_tap0"} {
			t.Run(name, func(t *testing.T) {
				info, err := s.DeviceInfo(name)
				require.NoError(t, err)
				p, err := s.OpenPort(PortOptions{Name: name, Side: lcore.PortOutside})
				if err != nil {
					t.Logf("RECORD RSS %s: driver=%s flow_type_rss_offloads=%#x reta_size=%d key=%d; cannot open with 2 workers: %v",
						name, info.Driver, info.FlowTypeRSSOffloads, info.RETASize, info.HashKeySize, err)
					assert.NotEqual(t, uint64(rssOutsideHF), info.FlowTypeRSSOffloads&rssOutsideHF, "a device with natgw's RSS must open")
					return
				}
				defer p.Close()
				assert.Equal(t, info, p.Info())
				t.Logf("RECORD RSS %s: driver=%s flow_type_rss_offloads=%#x reta_size=%d key=%d -> %s",
					name, info.Driver, info.FlowTypeRSSOffloads, info.RETASize, info.HashKeySize, p.RSS())
				if p.RSS() == "hardware" {
					assert.Equal(t, uint64(rssOutsideHF), info.FlowTypeRSSOffloads&rssOutsideHF)
				} else {
					assert.True(t, strings.HasPrefix(p.RSS(), "software: "), p.RSS())
				}
			})
		}
	})
}

// TestRSSHardwarePath programs RSS on net_null, which accepts IPv4/TCP/UDP
// hashing, a key and a 128-entry table but not the *_ONLY refinements
// (rssTestStrip drops those): the redirection table read back must be
// lcore.Owner's.
func TestRSSHardwarePath(t *testing.T) {
	runChild(t, "", func(t *testing.T) {
		rssTestStrip = rssOnlyBits
		defer func() { rssTestStrip = 0 }()
		s := startSession(t, 3, "net_null0", "net_null1")
		for side, name := range []string{"net_null0", "net_null1"} {
			t.Run(name, func(t *testing.T) {
				p := openPort(t, s, name, uint8(side))
				require.Equal(t, "hardware", p.RSS())
				reta, err := p.RETA()
				require.NoError(t, err)
				want := lcore.NewOwner(lcore.DefaultRSSKey, 3).RETA()
				require.Len(t, reta, p.Info().RETASize)
				for i, q := range reta {
					assert.Equal(t, uint16(want[i%lcore.RETASize]), q, "entry %d", i)
				}
			})
		}
	})
}
