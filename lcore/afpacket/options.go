package afpacket

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// FanoutMode selects how the kernel spreads received frames over the queues
// of a Port (the PACKET_FANOUT mode of its socket group).
type FanoutMode uint8

const (
	// FanoutHash spreads frames by the kernel's flow hash (skb->hash), which
	// is symmetric in the addresses and ports, so both directions of a flow
	// land on the same queue. It is the default.
	FanoutHash FanoutMode = iota
	// FanoutCPU spreads frames by the CPU that received them from the NIC.
	FanoutCPU
	// FanoutProgram spreads frames by a classic BPF program
	// (Options.Program, PACKET_FANOUT_CBPF): it returns the queue index.
	FanoutProgram
)

// String returns the mode's name as used in configuration and logs.
func (m FanoutMode) String() string {
	switch m {
	case FanoutHash:
		return "hash"
	case FanoutCPU:
		return "cpu"
	case FanoutProgram:
		return "program"
	}
	return fmt.Sprintf("FanoutMode(%d)", uint8(m))
}

// Defaults applied by Open to zero fields of Options.
const (
	// DefaultQueues is the number of RX/TX queues when Options.Queues is 0.
	DefaultQueues = 1
	// DefaultFrameSize is the TX frame slot size and the RX frame size
	// unit in bytes.
	DefaultFrameSize = 2048
	// DefaultBlockSize is the size in bytes of one TPACKET_V3 ring block.
	DefaultBlockSize = 1 << 20
	// DefaultBlocks is the number of RX ring blocks per queue.
	DefaultBlocks = 8
	// DefaultTxFrames is the number of TX ring frame slots per queue.
	DefaultTxFrames = 512
	// DefaultBlockTimeout is the TPACKET_V3 block retire timeout: the
	// longest a received frame waits in a partly filled block.
	DefaultBlockTimeout = 2 * time.Millisecond
)

// Limits checked by Options.Validate.
const (
	// MaxQueues is the largest number of queues of one Port.
	MaxQueues = 64
	// MinFrameSize is the smallest frame size: the TPACKET_V3 frame header
	// plus a minimal Ethernet frame, rounded to the ring alignment.
	MinFrameSize = 128
	// MaxBlockTimeout is the longest block retire timeout accepted.
	MaxBlockTimeout = time.Second
	// maxRingBytes bounds the memory of one queue's RX and TX rings.
	maxRingBytes = 1 << 30
)

// tpacketAlignment is TPACKET_ALIGNMENT: frame sizes must be multiples of it.
const tpacketAlignment = 16

// ErrInvalidOptions is wrapped by every error Options.Validate returns.
var ErrInvalidOptions = errors.New("invalid afpacket options")

// Options configures Open. Zero numeric fields take the Default* values.
type Options struct {
	// Interface is the Linux interface name, for example "veth-in".
	Interface string
	// Queues is the number of queues: one AF_PACKET socket with its own RX
	// and TX ring per queue, all in one fanout group.
	Queues int
	// Fanout is the kernel's policy for spreading received frames over the
	// queues: FanoutHash (default), FanoutCPU or FanoutProgram.
	Fanout FanoutMode
	// Program is the fanout program of FanoutProgram (see
	// SteeringProgram); the kernel takes its result modulo Queues.
	Program []unix.SockFilter
	// FrameSize is the TX ring slot size in bytes (a multiple of 16, at
	// least MinFrameSize); a TX frame may hold FrameSize-48 bytes. In the
	// RX ring, frames are packed into blocks and FrameSize only sets the
	// ring's nominal frame count.
	FrameSize int
	// BlockSize is the size in bytes of one ring block: a multiple of the
	// page size and of FrameSize. It bounds the largest frame received.
	BlockSize int
	// Blocks is the number of RX ring blocks per queue.
	Blocks int
	// TxFrames is the number of TX ring slots per queue, rounded up to
	// whole blocks.
	TxFrames int
	// BlockTimeout is the TPACKET_V3 retire timeout of a partly filled RX
	// block, in whole milliseconds (at least 1 ms).
	BlockTimeout time.Duration
	// Promiscuous puts the interface in promiscuous mode while the Port is
	// open, so frames addressed to other MACs are received too.
	Promiscuous bool
}

// withDefaults returns o with every zero numeric field set to its default.
func (o Options) withDefaults() Options {
	if o.Queues == 0 {
		o.Queues = DefaultQueues
	}
	if o.FrameSize == 0 {
		o.FrameSize = DefaultFrameSize
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.Blocks == 0 {
		o.Blocks = DefaultBlocks
	}
	if o.TxFrames == 0 {
		o.TxFrames = DefaultTxFrames
	}
	if o.BlockTimeout == 0 {
		o.BlockTimeout = DefaultBlockTimeout
	}
	return o
}

// Validate reports the first invalid field of o after defaults are applied.
// The error wraps ErrInvalidOptions and names the field.
func (o Options) Validate() error {
	o = o.withDefaults()
	page := os.Getpagesize()
	switch {
	case o.Interface == "":
		return fmt.Errorf("%w: Interface is empty", ErrInvalidOptions)
	case len(o.Interface) >= 16:
		return fmt.Errorf("%w: Interface %q is longer than 15 bytes", ErrInvalidOptions, o.Interface)
	case o.Queues < 1 || o.Queues > MaxQueues:
		return fmt.Errorf("%w: Queues %d is outside 1-%d", ErrInvalidOptions, o.Queues, MaxQueues)
	case o.Fanout != FanoutHash && o.Fanout != FanoutCPU && o.Fanout != FanoutProgram:
		return fmt.Errorf("%w: Fanout %s is neither hash, cpu nor program", ErrInvalidOptions, o.Fanout)
	case (o.Fanout == FanoutProgram) != (len(o.Program) > 0):
		return fmt.Errorf("%w: Fanout %s with a Program of %d instructions", ErrInvalidOptions, o.Fanout, len(o.Program))
	case len(o.Program) > 4096:
		return fmt.Errorf("%w: Program of %d instructions exceeds 4096", ErrInvalidOptions, len(o.Program))
	case o.FrameSize < MinFrameSize || o.FrameSize%tpacketAlignment != 0:
		return fmt.Errorf("%w: FrameSize %d is not a multiple of %d of at least %d",
			ErrInvalidOptions, o.FrameSize, tpacketAlignment, MinFrameSize)
	case o.BlockSize < page || o.BlockSize%page != 0 || o.BlockSize%o.FrameSize != 0:
		return fmt.Errorf("%w: BlockSize %d is not a multiple of the page size %d and of FrameSize %d",
			ErrInvalidOptions, o.BlockSize, page, o.FrameSize)
	case o.BlockSize > maxRingBytes:
		return fmt.Errorf("%w: BlockSize %d exceeds %d", ErrInvalidOptions, o.BlockSize, maxRingBytes)
	case o.Blocks < 1 || o.Blocks > maxRingBytes/o.BlockSize:
		return fmt.Errorf("%w: Blocks %d is outside 1-%d", ErrInvalidOptions, o.Blocks, maxRingBytes/o.BlockSize)
	case o.TxFrames < 1 || o.TxFrames > maxRingBytes/o.FrameSize:
		return fmt.Errorf("%w: TxFrames %d is outside 1-%d", ErrInvalidOptions, o.TxFrames, maxRingBytes/o.FrameSize)
	case o.BlockTimeout < time.Millisecond || o.BlockTimeout > MaxBlockTimeout:
		return fmt.Errorf("%w: BlockTimeout %s is outside 1ms-%s", ErrInvalidOptions, o.BlockTimeout, MaxBlockTimeout)
	}
	if int64(o.BlockSize)*int64(o.Blocks)+int64(o.txBlocks())*int64(o.BlockSize) > maxRingBytes {
		return fmt.Errorf("%w: rings of %d blocks of %d bytes exceed %d bytes per queue",
			ErrInvalidOptions, o.Blocks+o.txBlocks(), o.BlockSize, maxRingBytes)
	}
	return nil
}

// txBlocks returns the number of TX ring blocks holding o.TxFrames slots.
func (o Options) txBlocks() int {
	perBlock := o.BlockSize / o.FrameSize
	return (o.TxFrames + perBlock - 1) / perBlock
}
