//go:build linux

package afpacket

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/lcore"
	"github.com/natgw/natgw/nat"
)

// runCBPF runs a classic BPF program over an Ethernet frame the way the
// kernel runs a fanout program: loads at skfNetOff+k read the network
// header (the frame after its 14-byte Ethernet header), the ancillary
// protocol load reads the EtherType, the rxhash load returns rxhash, and a
// load out of bounds ends the program with 0. It fails the test on any
// instruction SteeringProgram should not emit or a jump out of the
// program.
func runCBPF(t *testing.T, prog []unix.SockFilter, frame []byte, rxhash uint32) uint32 {
	t.Helper()
	var a, x uint32
	var mem [16]uint32
	load := func(off uint32, size int) (uint32, bool) {
		switch {
		case off == negOff(skfAdOff+skfAdProtocol):
			return uint32(binary.BigEndian.Uint16(frame[12:])), true
		case off == negOff(skfAdOff+skfAdRxhash):
			return rxhash, true
		case int32(off) >= skfNetOff && int32(off) < skfAdOff:
			o := int(int32(off)-skfNetOff) + nat.EthernetLen
			if o+size > len(frame) {
				return 0, false
			}
			switch size {
			case 1:
				return uint32(frame[o]), true
			case 2:
				return uint32(binary.BigEndian.Uint16(frame[o:])), true
			}
			return binary.BigEndian.Uint32(frame[o:]), true
		}
		t.Fatalf("load at offset %#x", off)
		return 0, false
	}
	sizes := map[uint16]int{unix.BPF_B: 1, unix.BPF_H: 2, unix.BPF_W: 4}
	for pc := 0; ; pc++ {
		require.Less(t, pc, len(prog), "ran off the program")
		in := prog[pc]
		switch cls := in.Code & 0x07; cls {
		case unix.BPF_LD:
			switch in.Code & 0xe0 {
			case unix.BPF_ABS, unix.BPF_IND:
				off := in.K
				if in.Code&0xe0 == unix.BPF_IND {
					off += x
				}
				v, ok := load(off, sizes[in.Code&0x18])
				if !ok {
					return 0
				}
				a = v
			case unix.BPF_MEM:
				a = mem[in.K]
			default:
				t.Fatalf("pc %d: ld mode %#x", pc, in.Code)
			}
		case unix.BPF_LDX:
			require.Equal(t, uint16(unix.BPF_LDX|unix.BPF_W|unix.BPF_IMM), in.Code, "pc %d", pc)
			x = in.K
		case unix.BPF_ST:
			mem[in.K] = a
		case unix.BPF_ALU:
			switch in.Code &^ 0x07 {
			case unix.BPF_AND | unix.BPF_K:
				a &= in.K
			case unix.BPF_LSH | unix.BPF_K:
				a <<= in.K
			case unix.BPF_XOR | unix.BPF_K:
				a ^= in.K
			default:
				t.Fatalf("pc %d: alu %#x", pc, in.Code)
			}
		case unix.BPF_MISC:
			if in.Code&0xf8 == unix.BPF_TAX {
				x = a
			} else {
				a = x
			}
		case unix.BPF_JMP:
			var cond bool
			switch in.Code &^ 0x07 {
			case unix.BPF_JA:
				pc += int(in.K)
				continue
			case unix.BPF_JEQ | unix.BPF_K:
				cond = a == in.K
			case unix.BPF_JSET | unix.BPF_K:
				cond = a&in.K != 0
			case unix.BPF_JGE | unix.BPF_K:
				cond = a >= in.K
			default:
				t.Fatalf("pc %d: jmp %#x", pc, in.Code)
			}
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET:
			if in.Code&0x18 == unix.BPF_A {
				return a
			}
			return in.K
		default:
			t.Fatalf("pc %d: class %#x", pc, cls)
		}
	}
}

// TestSteeringProgramIsTheOwner: for random TCP, UDP and echo packets in
// both directions, the fanout program's queue is Owner.Of of the remote
// endpoint; what it can't classify goes by the kernel's hash.
func TestSteeringProgramIsTheOwner(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, workers := range []int{2, 3, 4, 8} {
		o := lcore.NewOwner(lcore.DefaultRSSKey, workers)
		for _, side := range []uint8{lcore.PortInside, lcore.PortOutside} {
			prog := SteeringProgram(o, side)
			require.LessOrEqual(t, len(prog), 4096)
			for i := 0; i < 3000; i++ {
				src, dst := rng.Uint32(), rng.Uint32()
				sport, dport := uint16(rng.Uint32()), uint16(rng.Uint32())
				b := make([]byte, 256)
				var n int
				proto := []uint8{nat.ProtoTCP, nat.ProtoUDP, nat.ProtoICMP}[i%3]
				switch proto {
				case nat.ProtoTCP:
					n = nat.BuildTCP(b[nat.EthernetLen:], nat.TCPSegment{Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Seq: 1, Flags: nat.TCPFlagSYN, TTL: 64})
				case nat.ProtoUDP:
					n = nat.BuildUDP(b[nat.EthernetLen:], src, dst, sport, dport, 64, []byte("x"))
				default:
					typ := uint8(nat.ICMPEchoRequest)
					if rng.IntN(2) == 0 {
						typ = nat.ICMPEchoReply
					}
					n = nat.BuildICMPEcho(b[nat.EthernetLen:], src, dst, typ, sport, 1, 64, nil)
					sport, dport = 0, 0
				}
				require.NotZero(t, n)
				// Random IP options sometimes: the program must follow IHL.
				f := b[:nat.EthernetLen+n]
				if rng.IntN(4) == 0 {
					f = withOptions(f, 4*(1+rng.IntN(10)))
				}
				nat.WriteEthernet(f, [6]byte{2}, [6]byte{4}, nat.EtherTypeIPv4)
				want := o.Of(dst, dport)
				if side == lcore.PortOutside {
					want = o.Of(src, sport)
				}
				got := runCBPF(t, prog, f, 0xdead) % uint32(workers)
				require.Equal(t, uint32(want), got, "workers=%d side=%d proto=%d %s", workers, side, proto,
					fmt.Sprintf("%#x:%d -> %#x:%d", src, sport, dst, dport))
			}
			// Unclassified: a fragment, an ICMP error, ARP, a truncated
			// header.
			b := make([]byte, 256)
			n := nat.BuildUDP(b[nat.EthernetLen:], 1, 2, 3, 4, 64, nil)
			f := b[:nat.EthernetLen+n]
			nat.WriteEthernet(f, [6]byte{2}, [6]byte{4}, nat.EtherTypeIPv4)
			frag := append([]byte(nil), f...)
			frag[nat.EthernetLen+6] = 0x20
			assert.Equal(t, uint32(0xdead), runCBPF(t, prog, frag, 0xdead), "a fragment")
			arp := append([]byte(nil), f...)
			binary.BigEndian.PutUint16(arp[12:], nat.EtherTypeARP)
			assert.Equal(t, uint32(0xdead), runCBPF(t, prog, arp, 0xdead), "ARP")
			icmpErr := append([]byte(nil), f...)
			icmpErr[nat.EthernetLen+9] = nat.ProtoICMP
			icmpErr[nat.EthernetLen+20] = 3
			assert.Equal(t, uint32(0xdead), runCBPF(t, prog, icmpErr, 0xdead), "an ICMP error")
			assert.Zero(t, runCBPF(t, prog, f[:nat.EthernetLen+21], 0xdead), "truncated: the kernel's 0")
		}
	}
}

// withOptions returns the frame with opt bytes of IP options (NOPs)
// inserted after the fixed header; the checksum is left alone.
func withOptions(f []byte, opt int) []byte {
	l3 := f[nat.EthernetLen:]
	out := make([]byte, 0, len(f)+opt)
	out = append(out, f[:nat.EthernetLen+20]...)
	for i := 0; i < opt; i++ {
		out = append(out, 1)
	}
	out = append(out, l3[20:]...)
	ip := nat.IPv4(out[nat.EthernetLen:])
	ip[0] = 0x40 | byte((20+opt)/4)
	ip.SetTotalLen(uint16(len(ip)))
	return out
}
