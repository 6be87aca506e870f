//go:build linux

package afpacket

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/natgw/natgw/lcore"
)

// This file builds the classic BPF program a Port's fanout group runs
// (PACKET_FANOUT_CBPF) so that each frame lands on the queue of the worker
// that owns it (lcore.Owner.Of of its remote endpoint), and the workers
// hand over only what the program can't classify.
//
// The owner function is the Toeplitz hash of 6 input bytes (the remote
// address and port). Over a fixed-length input, Toeplitz is the XOR of one
// 32-bit constant per set input bit (Owner.BitHashes), so the program is
// straight-line: load the address, test each bit, XOR its constant into
// X; the same for the port. The hash's low 7 bits then index the
// redirection table through a binary tree of jumps ending in "return
// worker". The kernel takes the return value modulo the number of
// sockets in the group, and a socket's index is the order it joined in:
// Open joins queue 0 first, so return value i is queue i.

// Classic BPF's negative load offsets (linux/filter.h).
const (
	skfNetOff     = -0x100000 // loads relative to the network header
	skfAdOff      = -0x1000   // ancillary data
	skfAdProtocol = 0         // skb->protocol (the EtherType)
	skfAdRxhash   = 32        // skb->hash
)

// negOff returns a negative load offset as the K field holds it.
func negOff(off int32) uint32 { return uint32(off) }

// Scratch memory slot of the program: the value whose bits are hashed.
const steerValue = 0

// SteeringProgram returns the fanout program that sends each frame
// received on port (lcore.PortInside or lcore.PortOutside) to the queue of
// its owner under o: the remote endpoint is the destination address and
// port of frames from the inside, the source of frames from the outside;
// ICMP echo uses port 0. Frames it can't classify (not IPv4, fragments,
// ICMP errors and other protocols, truncated) go by the kernel's flow hash,
// and the workers hand them over as before.
func SteeringProgram(o *lcore.Owner, port uint8) []unix.SockFilter {
	addrOff, portOff := uint32(16), uint32(2) // destination
	if port == lcore.PortOutside {
		addrOff, portOff = 12, 0 // source
	}
	bits := o.BitHashes()
	b := &progBuilder{}
	net := func(off uint32) uint32 { return negOff(skfNetOff) + off }
	const (
		lOther = iota
		lL4
		lEcho
		lHashAddr
		numLabels
	)
	b.labels = make([]int, numLabels)
	for i := range b.labels {
		b.labels[i] = -1
	}
	// IPv4 only, unfragmented.
	b.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, negOff(skfAdOff+skfAdProtocol))
	b.jumpIfNot(unix.BPF_JEQ, 0x0800, lOther)
	b.stmt(unix.BPF_LD|unix.BPF_B|unix.BPF_ABS, net(0))
	b.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, 0xf0)
	b.jumpIfNot(unix.BPF_JEQ, 0x40, lOther)
	b.stmt(unix.BPF_LD|unix.BPF_H|unix.BPF_ABS, net(6))
	b.jumpIf(unix.BPF_JSET, 0x3fff, lOther)
	// X = the header length.
	b.stmt(unix.BPF_LD|unix.BPF_B|unix.BPF_ABS, net(0))
	b.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, 0x0f)
	b.stmt(unix.BPF_ALU|unix.BPF_LSH|unix.BPF_K, 2)
	b.stmt(unix.BPF_MISC|unix.BPF_TAX, 0)
	b.stmt(unix.BPF_LD|unix.BPF_B|unix.BPF_ABS, net(9))
	b.jumpIf(unix.BPF_JEQ, 6, lL4)
	b.jumpIf(unix.BPF_JEQ, 17, lL4)
	b.jumpIfNot(unix.BPF_JEQ, 1, lOther)
	// ICMP: echo request or reply, remote port 0.
	b.stmt(unix.BPF_LD|unix.BPF_B|unix.BPF_IND, net(0))
	b.jumpIf(unix.BPF_JEQ, 8, lEcho)
	b.jumpIfNot(unix.BPF_JEQ, 0, lOther)
	b.label(lEcho)
	b.stmt(unix.BPF_LDX|unix.BPF_W|unix.BPF_IMM, 0) // X = hash = 0
	b.jump(lHashAddr)
	// Not classified (near the tests: conditional jumps reach 255 ahead).
	b.label(lOther)
	b.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, negOff(skfAdOff+skfAdRxhash))
	b.stmt(unix.BPF_RET|unix.BPF_A, 0)
	// TCP, UDP: the port's bits into X.
	b.label(lL4)
	b.stmt(unix.BPF_LD|unix.BPF_H|unix.BPF_IND, net(portOff))
	b.stmt(unix.BPF_ST, steerValue)
	b.stmt(unix.BPF_LDX|unix.BPF_W|unix.BPF_IMM, 0)
	for i := 0; i < 16; i++ {
		b.xorIfBit(uint32(1)<<(15-i), bits[32+i])
	}
	// The address's bits.
	b.label(lHashAddr)
	b.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, net(addrOff))
	b.stmt(unix.BPF_ST, steerValue)
	for i := 0; i < 32; i++ {
		b.xorIfBit(uint32(1)<<(31-i), bits[i])
	}
	// The redirection table.
	b.stmt(unix.BPF_MISC|unix.BPF_TXA, 0)
	b.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, lcore.RETASize-1)
	reta := o.RETA()
	b.table(reta[:], 0)
	return b.finish()
}

// progBuilder assembles a classic BPF program with forward jumps to labels.
type progBuilder struct {
	ins    []unix.SockFilter
	labels []int       // label -> instruction index
	fix    []labelJump // jumps to patch
}

type labelJump struct {
	at, label int
	field     byte // 't' (Jt), 'f' (Jf) or 'k' (K of a JA)
}

func (b *progBuilder) stmt(code uint16, k uint32) {
	b.ins = append(b.ins, unix.SockFilter{Code: code, K: k})
}

// jumpIf jumps to label when A op k holds.
func (b *progBuilder) jumpIf(op uint16, k uint32, label int) {
	b.fix = append(b.fix, labelJump{at: len(b.ins), label: label, field: 't'})
	b.ins = append(b.ins, unix.SockFilter{Code: unix.BPF_JMP | op | unix.BPF_K, K: k})
}

// jumpIfNot jumps to label when A op k does not hold.
func (b *progBuilder) jumpIfNot(op uint16, k uint32, label int) {
	b.fix = append(b.fix, labelJump{at: len(b.ins), label: label, field: 'f'})
	b.ins = append(b.ins, unix.SockFilter{Code: unix.BPF_JMP | op | unix.BPF_K, K: k})
}

func (b *progBuilder) jump(label int) {
	b.fix = append(b.fix, labelJump{at: len(b.ins), label: label, field: 'k'})
	b.ins = append(b.ins, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA})
}

func (b *progBuilder) label(l int) { b.labels[l] = len(b.ins) }

// xorIfBit: X ^= c when the scratch value has bit mask set.
func (b *progBuilder) xorIfBit(mask, c uint32) {
	b.stmt(unix.BPF_LD|unix.BPF_MEM, steerValue)
	b.ins = append(b.ins, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, Jt: 0, Jf: 3, K: mask})
	b.stmt(unix.BPF_MISC|unix.BPF_TXA, 0)
	b.stmt(unix.BPF_ALU|unix.BPF_XOR|unix.BPF_K, c)
	b.stmt(unix.BPF_MISC|unix.BPF_TAX, 0)
}

// table emits a binary search over A (an index into reta, which starts at
// index base) ending in "return reta[A]".
func (b *progBuilder) table(reta []uint8, base uint32) {
	if len(reta) == 1 {
		b.stmt(unix.BPF_RET|unix.BPF_K, uint32(reta[0]))
		return
	}
	half := len(reta) / 2
	at := len(b.ins)
	b.ins = append(b.ins, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: base + uint32(half)})
	b.table(reta[:half], base)
	jt := len(b.ins) - at - 1
	if jt > 255 {
		panic(fmt.Sprintf("afpacket: steering table jump of %d", jt)) // a 128-entry table needs 127
	}
	b.ins[at].Jt = uint8(jt)
	b.table(reta[half:], base+uint32(half))
}

func (b *progBuilder) finish() []unix.SockFilter {
	for _, f := range b.fix {
		off := b.labels[f.label] - f.at - 1
		if off < 0 || off > 255 && f.field != 'k' {
			panic(fmt.Sprintf("afpacket: steering jump of %d", off)) // a bug in SteeringProgram
		}
		switch f.field {
		case 't':
			b.ins[f.at].Jt = uint8(off)
		case 'f':
			b.ins[f.at].Jf = uint8(off)
		default:
			b.ins[f.at].K = uint32(off)
		}
	}
	return b.ins
}
