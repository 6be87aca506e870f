//go:build dpdk

package dpdk

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMbufSizeFollowsAFPacketFrames(t *testing.T) {
	tests := []struct {
		args        []string
		frame, mbuf int
	}{
		{nil, 0, 2048 + 128},
		{[]string{"-l", "0", "--vdev=net_null0"}, 0, 2048 + 128},
		{[]string{"--vdev=net_af_packet0,iface=a,qpairs=3"}, 2048, 2048 + 128},
		{[]string{"--vdev=net_af_packet0,iface=a,framesz=4096", "--vdev", "eth_af_packet1,framesz=9216,blocksz=16384"}, 9216, 9216 - 32 + 128},
		{[]string{"--vdev=net_af_packet0,iface=a,framesz=4096,qpairs=2"}, 4096, 4096 - 32 + 128},
		{[]string{"--vdev=net_af_packet0,framesz=131072"}, 131072, 0xffff},
		{[]string{"--vdev=net_af_packet0,framesz=junk"}, 2048, 2048 + 128},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.frame, AFPacketFrameSize(tt.args), "%v", tt.args)
		assert.Equal(t, tt.mbuf, MbufSize(tt.args), "%v", tt.args)
	}
}
