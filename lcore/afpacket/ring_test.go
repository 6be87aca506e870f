//go:build linux

package afpacket

// Tests of the RX ring walker on a ring built in Go memory with the kernel's
// TPACKET_V3 layout: they run without root, and let the fuzzer hand Recv
// inconsistent ring contents.

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fakeMacOff is where the kernel puts frame data: TPACKET_ALIGN(tp_hdrlen).
const fakeMacOff = 80

// fakeFrame is one frame to lay out in a fake ring block.
type fakeFrame struct {
	data    []byte
	wireLen int // 0: len(data)
	status  uint32
	pkttype uint8
}

// fakeQueue returns a Queue whose RX ring is Go memory of blocks blocks of
// blockSize bytes, without a socket.
func fakeQueue(blocks, blockSize int) *Queue {
	return &Queue{
		port:       &Port{name: "fake"},
		fd:         -1,
		rx:         make([]byte, blocks*blockSize),
		blockSize:  blockSize,
		blockCount: blocks,
	}
}

// fill lays frames out in block b as the kernel does and hands the block
// to the user (TP_STATUS_USER).
func (q *Queue) fill(t testing.TB, b int, frames []fakeFrame) {
	t.Helper()
	blk := q.rx[b*q.blockSize : (b+1)*q.blockSize]
	clear(blk)
	off := blockHeaderLen
	for i, f := range frames {
		next := (fakeMacOff + len(f.data) + 15) &^ 15
		require.LessOrEqual(t, off+next, len(blk), "frames fit the block")
		wire := f.wireLen
		if wire == 0 {
			wire = len(f.data)
		}
		*u32(blk, off+hdrSnaplenOff) = uint32(len(f.data))
		*u32(blk, off+hdrLenOff) = uint32(wire)
		*u32(blk, off+hdrStatusOff) = f.status | unix.TP_STATUS_USER
		*u16(blk, off+hdrMacOff) = fakeMacOff
		blk[off+sllPkttypeOff] = f.pkttype
		copy(blk[off+fakeMacOff:], f.data)
		if i < len(frames)-1 {
			*u32(blk, off+hdrNextOff) = uint32(next)
		}
		off += next
	}
	*u32(blk, 0) = unix.TPACKET_V3
	*u32(blk, blockNumPkts) = uint32(len(frames))
	*u32(blk, blockFirstPkt) = blockHeaderLen
	*u32(blk, blockStatusOff) = unix.TP_STATUS_USER
}

// blockStatus returns the status word of block b.
func (q *Queue) blockStatus(b int) uint32 {
	return *u32(q.rx, b*q.blockSize+blockStatusOff)
}

// seqFrame returns a small frame whose bytes all equal seq.
func seqFrame(seq byte, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = seq
	}
	return b
}

func TestRecvFakeRing(t *testing.T) {
	tests := []struct {
		name      string
		blocks    [][]fakeFrame
		burst     int
		bufSize   int
		wantSizes []int
		wantFirst []byte // first byte of each frame returned
		wantFlags []uint8
		released  int // blocks handed back to the kernel
	}{
		{
			name:      "one block, one burst",
			blocks:    [][]fakeFrame{{{data: seqFrame(1, 60)}, {data: seqFrame(2, 70)}}},
			burst:     8,
			bufSize:   2048,
			wantSizes: []int{60, 70},
			wantFirst: []byte{1, 2},
			wantFlags: []uint8{0, 0},
			released:  1,
		},
		{
			name: "bursts end mid-block and resume across blocks",
			blocks: [][]fakeFrame{
				{{data: seqFrame(1, 60)}, {data: seqFrame(2, 60)}, {data: seqFrame(3, 60)}},
				{{data: seqFrame(4, 60)}, {data: seqFrame(5, 60)}},
			},
			burst:     2,
			bufSize:   2048,
			wantSizes: []int{60, 60, 60, 60, 60},
			wantFirst: []byte{1, 2, 3, 4, 5},
			wantFlags: []uint8{0, 0, 0, 0, 0},
			released:  2,
		},
		{
			name: "outgoing frames skipped",
			blocks: [][]fakeFrame{{
				{data: seqFrame(1, 60), pkttype: unix.PACKET_OUTGOING},
				{data: seqFrame(2, 60), pkttype: unix.PACKET_HOST},
				{data: seqFrame(3, 60), pkttype: unix.PACKET_OUTGOING},
			}},
			burst:     8,
			bufSize:   2048,
			wantSizes: []int{60},
			wantFirst: []byte{2},
			wantFlags: []uint8{0},
			released:  1,
		},
		{
			name: "flags",
			blocks: [][]fakeFrame{{
				{data: seqFrame(1, 60), status: unix.TP_STATUS_CSUMNOTREADY},
				{data: seqFrame(2, 100)},
				{data: seqFrame(3, 60), wireLen: 9000},
			}},
			burst:     8,
			bufSize:   64,
			wantSizes: []int{60, 64, 60},
			wantFirst: []byte{1, 2, 3},
			wantFlags: []uint8{FlagCsumNotReady, FlagTruncated, FlagTruncated},
			released:  1,
		},
		{
			name:     "empty retired block",
			blocks:   [][]fakeFrame{{}},
			burst:    8,
			bufSize:  2048,
			released: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := fakeQueue(4, 4096)
			for b, frames := range tt.blocks {
				q.fill(t, b, frames)
			}
			bufs := make([][]byte, tt.burst)
			for i := range bufs {
				bufs[i] = make([]byte, tt.bufSize)
			}
			sizes := make([]int, tt.burst)
			flags := make([]uint8, tt.burst)
			var gotSizes []int
			var gotFirst []byte
			var gotFlags []uint8
			for calls := 0; calls < 20; calls++ {
				n := q.Recv(bufs, sizes, flags)
				require.LessOrEqual(t, n, tt.burst)
				for i := 0; i < n; i++ {
					gotSizes = append(gotSizes, sizes[i])
					gotFirst = append(gotFirst, bufs[i][0])
					gotFlags = append(gotFlags, flags[i])
				}
			}
			assert.Equal(t, tt.wantSizes, gotSizes)
			assert.Equal(t, tt.wantFirst, gotFirst)
			assert.Equal(t, tt.wantFlags, gotFlags)
			for b := 0; b < tt.released; b++ {
				assert.Equal(t, uint32(unix.TP_STATUS_KERNEL), q.blockStatus(b), "block %d released", b)
			}
			assert.Equal(t, tt.released%q.blockCount, q.block, "cursor on the next block")
			assert.Equal(t, uint64(len(tt.wantSizes)), q.rxPackets.Load())
			assert.Zero(t, q.rxErrors.Load())
			assert.False(t, q.Ready())
		})
	}
}

func TestRecvFakeRingCorrupt(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(blk []byte)
		want    int
	}{
		{"first offset inside the header", func(blk []byte) { *u32(blk, blockFirstPkt) = 4 }, 0},
		{"first offset past the block", func(blk []byte) { *u32(blk, blockFirstPkt) = 1 << 30 }, 0},
		{"mac offset past the block", func(blk []byte) { *u16(blk, blockHeaderLen+hdrMacOff) = 0xffff }, 0},
		{"snaplen past the block", func(blk []byte) { *u32(blk, blockHeaderLen+hdrSnaplenOff) = 1 << 31 }, 0},
		{"more packets than frames", func(blk []byte) { *u32(blk, blockNumPkts) = 1000 }, 2},
		{"next offset past the block", func(blk []byte) { *u32(blk, blockHeaderLen+hdrNextOff) = 1 << 20 }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := fakeQueue(2, 4096)
			q.fill(t, 0, []fakeFrame{{data: seqFrame(1, 60)}, {data: seqFrame(2, 60)}})
			tt.corrupt(q.rx[:4096])
			bufs := [][]byte{make([]byte, 2048), make([]byte, 2048), make([]byte, 2048)}
			n := q.Recv(bufs, make([]int, 3), make([]uint8, 3))
			assert.Equal(t, tt.want, n)
			assert.Equal(t, uint64(1), q.rxErrors.Load(), "the bad entry is counted")
			assert.Equal(t, uint32(unix.TP_STATUS_KERNEL), q.blockStatus(0), "the block goes back")
			assert.Equal(t, 1, q.block)
		})
	}
}

func FuzzRecvRing(f *testing.F) {
	q := fakeQueue(1, 4096)
	q.fill(f, 0, []fakeFrame{{data: seqFrame(1, 60)}, {data: seqFrame(2, 1000), status: unix.TP_STATUS_CSUMNOTREADY}})
	f.Add(append([]byte(nil), q.rx...), 3, 64)
	f.Add([]byte{}, 1, 0)
	f.Fuzz(func(t *testing.T, ring []byte, burst, bufSize int) {
		q := fakeQueue(2, 4096)
		copy(q.rx, ring)
		*u32(q.rx, blockStatusOff) = unix.TP_STATUS_USER
		burst = min(max(burst, 0), 64)
		bufSize = min(max(bufSize, 0), 4096)
		bufs := make([][]byte, burst)
		for i := range bufs {
			bufs[i] = make([]byte, bufSize)
		}
		sizes := make([]int, burst)
		flags := make([]uint8, burst)
		for calls := 0; calls < 4; calls++ {
			n := q.Recv(bufs, sizes, flags)
			require.LessOrEqual(t, n, burst)
			for i := 0; i < n; i++ {
				require.LessOrEqual(t, sizes[i], bufSize)
				require.GreaterOrEqual(t, sizes[i], 0)
			}
		}
	})
}

// BenchmarkRecvRing measures Recv alone on a ring in Go memory: the cost of
// walking TPACKET_V3 blocks and copying 64-byte frames, without the kernel.
// One op is one frame.
func BenchmarkRecvRing(b *testing.B) {
	const blocks, blockSize = 8, 1 << 16
	q := fakeQueue(blocks, blockSize)
	perBlock := (blockSize - blockHeaderLen) / (fakeMacOff + 64)
	frames := make([]fakeFrame, perBlock)
	for i := range frames {
		frames[i] = fakeFrame{data: seqFrame(byte(i), 64)}
	}
	for blk := 0; blk < blocks; blk++ {
		q.fill(b, blk, frames)
	}
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, 32)
	flags := make([]uint8, 32)
	b.ReportAllocs()
	b.ResetTimer()
	for got := 0; got < b.N; {
		n := q.Recv(bufs, sizes, flags)
		if n == 0 {
			// Hand every block back to "user space" as the kernel would.
			for blk := 0; blk < blocks; blk++ {
				*u32(q.rx, blk*blockSize+blockStatusOff) = unix.TP_STATUS_USER
			}
			continue
		}
		got += n
	}
}
