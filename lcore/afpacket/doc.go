// Package afpacket is natgw's pure-Go AF_PACKET driver: the fallback port
// driver for CI, laptops and virtual NICs where DPDK can't run (SPEC §3
// "Drivers"). It uses golang.org/x/sys/unix only, no cgo.
//
// # What it owns
//
// A Port owns one Linux network interface: one AF_PACKET socket per queue,
// each with a memory-mapped TPACKET_V3 RX ring and a TX ring
// (PACKET_TX_RING, PACKET_QDISC_BYPASS) in one mapping, all sockets joined in
// one PACKET_FANOUT group so the kernel spreads received frames over the
// queues (FanoutHash: by the kernel's symmetric flow hash, the default;
// FanoutCPU: by the CPU that received the frame; FanoutProgram: by a
// classic BPF program, which NewLcorePort sets to SteeringProgram, natgw's
// owner function, with several workers). It also owns the
// interface's promiscuous membership while open, and the per-queue counters
// behind Stats.
//
// The port never hands natgw its own frames: frames sent through a Queue
// bypass the qdisc and so the packet taps, the fanout group is asked to
// ignore outgoing frames (PACKET_FANOUT_FLAG_IGNORE_OUTGOING, when the kernel
// has it), each socket sets PACKET_IGNORE_OUTGOING, and Recv skips any frame
// whose sll_pkttype is PACKET_OUTGOING in case the kernel still delivers one.
//
// # Which core runs it
//
// Open, Close, Stats, MAC, MTU, LinkUp and Name run on the management core
// (they may allocate, take a mutex and make system calls). Queue.Recv,
// Queue.Send and Queue.Wait are the packet path: they run on the worker core
// that owns the queue, never allocate, never lock, and make at most one
// system call per call (Recv makes none).
//
// # Threading rules
//
//   - One Queue is used by exactly one goroutine (its worker) at a time; the
//     RX cursor and TX ring position are plain fields of the Queue.
//   - Different queues of one Port may be used concurrently by different
//     goroutines.
//   - Stats may be called from any goroutine at any time while workers run.
//   - Close must be called only after every worker has stopped calling Recv,
//     Send and Wait: it unmaps the rings those calls read. After Close, Recv
//     returns 0, Send returns ErrClosed and Wait returns false.
//   - Open resolves the interface in the network namespace of the calling OS
//     thread; a caller that switches namespaces must lock its thread.
package afpacket
