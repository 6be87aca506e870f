//go:build dpdk

package dpdk

/*
#include "natgw_dpdk.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Defaults of Config.
const (
	// DefaultRxDesc and DefaultTxDesc are the ring sizes asked for; the
	// device may adjust them (rte_eth_dev_adjust_nb_rx_tx_desc).
	DefaultRxDesc = 1024
	DefaultTxDesc = 1024
	// MempoolCache is the per-lcore cache of the packet mempool.
	MempoolCache = 256
	// descPoolSize is the number of packet descriptors of each worker
	// queue: frames received and not yet sent, freed or recycled.
	descPoolSize = 256
)

// Config describes a DPDK session: the EAL arguments and what the packet
// mempool must hold.
type Config struct {
	// EALArgs are the configured eal_args (without a program name).
	EALArgs []string
	// Workers is the number of worker lcores: each port gets Workers RX
	// queues and Workers+1 TX queues.
	Workers int
	// Ports is how many ports will share the mempool (default 2).
	Ports int
	// RxDesc and TxDesc are the ring sizes (default DefaultRxDesc,
	// DefaultTxDesc).
	RxDesc, TxDesc int
	// Log receives the session's log lines (default slog.Default()).
	Log *slog.Logger
}

// MbufSize returns the buffer size of the packet mempool's mbufs (data
// room and headroom) for EAL arguments args: DPDK's default, or more when
// a net_af_packet vdev has a larger framesz. That PMD refuses an RX queue
// whose mbufs can't hold a whole frame of its ring (framesz minus the
// 32 bytes of TPACKET_V2 header it does not copy), and a larger framesz is
// what lets it pass natgw datagrams the kernel reassembled (its fanout
// group has PACKET_FANOUT_FLAG_DEFRAG: see docs/OPERATIONS.md).
func MbufSize(args []string) int {
	room := int(C.RTE_MBUF_DEFAULT_DATAROOM)
	if f := AFPacketFrameSize(args); f-afPacketFrameHeader > room {
		room = f - afPacketFrameHeader
	}
	return min(room+int(C.RTE_PKTMBUF_HEADROOM), 0xffff)
}

// afPacketFrameHeader is the part of a net_af_packet ring frame that is
// not frame data (TPACKET2_HDRLEN minus the struct sockaddr_ll).
const afPacketFrameHeader = 32

// AFPacketFrameSize returns the largest framesz of the net_af_packet
// (or eth_af_packet) vdevs in EAL arguments args, 2048 (the PMD's
// default) for one without framesz, 0 when there is none.
func AFPacketFrameSize(args []string) int {
	largest := 0
	for i, a := range args {
		dev, ok := strings.CutPrefix(a, "--vdev=")
		if !ok && a == "--vdev" && i+1 < len(args) {
			dev, ok = args[i+1], true
		}
		if !ok || !(strings.HasPrefix(dev, "net_af_packet") || strings.HasPrefix(dev, "eth_af_packet")) {
			continue
		}
		size := afPacketDefaultFrame
		for _, kv := range strings.Split(dev, ",")[1:] {
			if v, ok := strings.CutPrefix(kv, "framesz="); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					size = n
				}
			}
		}
		largest = max(largest, size)
	}
	return largest
}

// afPacketDefaultFrame is net_af_packet's default framesz.
const afPacketDefaultFrame = 2048

// MempoolSize returns the number of mbufs of the packet mempool for ports
// ports with workers workers and rings of rxDesc and txDesc entries:
//
//	per port: workers*rxDesc            (RX rings full)
//	        + (workers+1)*txDesc        (TX rings full, management queue too)
//	        + (workers+1)*NATGW_STASH   (each queue's spare mbufs for copies)
//	        + workers*descPoolSize      (frames held by workers: in flight,
//	                                     or dropped and not yet recycled)
//	+ (workers+2)*MempoolCache          (per-lcore caches: workers, the
//	                                     management core and EAL's main lcore)
//
// rounded up to a power of two minus one (the ring mempool's best size).
func MempoolSize(ports, workers, rxDesc, txDesc int) int {
	perPort := workers*rxDesc + (workers+1)*txDesc + (workers+1)*C.NATGW_STASH + workers*descPoolSize
	n := ports*perPort + (workers+2)*MempoolCache
	size := 1
	for size-1 < n {
		size <<= 1
	}
	return size - 1
}

// Session is natgw's use of DPDK in this process: EAL and the packet
// mempool. Ports opened from it hold a reference; EAL is cleaned up when
// the session and every port are closed. Its methods run on the management
// core and are safe for concurrent use.
type Session struct {
	mu     sync.Mutex
	cfg    Config
	log    *slog.Logger
	mp     *C.struct_rte_mempool
	refs   int
	closed bool
	ports  map[uint16]bool
}

// Start initialises EAL from cfg.EALArgs (see EALArgs) and creates the
// packet mempool. It fails with ErrEALUsed when EAL was initialised in
// this process before.
func Start(cfg Config) (*Session, error) {
	if cfg.Workers < 1 || cfg.Workers > C.RTE_MAX_LCORE-2 {
		return nil, fmt.Errorf("dpdk: workers %d: must be 1 to %d", cfg.Workers, C.RTE_MAX_LCORE-2)
	}
	if cfg.Ports <= 0 {
		cfg.Ports = 2
	}
	if cfg.RxDesc <= 0 {
		cfg.RxDesc = DefaultRxDesc
	}
	if cfg.TxDesc <= 0 {
		cfg.TxDesc = DefaultTxDesc
	}
	if cfg.RxDesc > 0xffff || cfg.TxDesc > 0xffff {
		return nil, fmt.Errorf("dpdk: rings of %d RX and %d TX descriptors: must be at most 65535", cfg.RxDesc, cfg.TxDesc)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	eal.mu.Lock()
	if eal.used {
		eal.mu.Unlock()
		return nil, ErrEALUsed
	}
	eal.used = true
	eal.mu.Unlock()
	argv := EALArgs(cfg.EALArgs, pid)
	if err := initEAL(argv); err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, log: cfg.Log, refs: 1, ports: map[uint16]bool{}}
	n := MempoolSize(cfg.Ports, cfg.Workers, cfg.RxDesc, cfg.TxDesc)
	name := C.CString(fmt.Sprintf("natgw_mbufs_%d", pid))
	defer C.free(unsafe.Pointer(name))
	bufSize := MbufSize(cfg.EALArgs)
	s.mp = C.rte_pktmbuf_pool_create(name, C.uint(n), MempoolCache, 0,
		C.uint16_t(bufSize), C.int(C.rte_socket_id()))
	if s.mp == nil {
		err := fmt.Errorf("dpdk: creating a mempool of %d mbufs: %s (are enough hugepages reserved? see scripts/install-deps.sh)",
			n, errnoString(int(C.rte_errno)))
		return nil, errors.Join(err, cleanupEAL())
	}
	s.log.Info("dpdk: EAL up", "args", argv, "lcores", int(C.rte_lcore_count()),
		"ports_available", int(C.rte_eth_dev_count_avail()), "mbufs", n,
		"mbuf_size", bufSize, "gomaxprocs", runtime.GOMAXPROCS(0))
	if f := AFPacketFrameSize(cfg.EALArgs); f > 0 {
		s.log.Info("dpdk: net_af_packet has the kernel reassemble fragments (PACKET_FANOUT_FLAG_DEFRAG); "+
			"natgw translates the datagram and fragments it again for the egress MTU, "+
			"but a datagram larger than a ring frame is truncated (a malformed drop): raise framesz for larger ones",
			"framesz", f, "largest_datagram", f-afPacketFrameOverhead)
	}
	return s, nil
}

// afPacketFrameOverhead is what a net_af_packet ring frame holds besides
// the IPv4 datagram: the TPACKET_V2 header and address, aligned (66
// bytes before the MAC header), and the Ethernet header.
const afPacketFrameOverhead = 80

// Close drops the session's own reference: once every port opened from it
// is closed too, the mempool is freed and rte_eal_cleanup runs.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.releaseLocked()
}

// release drops one port's reference.
func (s *Session) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.releaseLocked()
}

func (s *Session) releaseLocked() error {
	s.refs--
	if s.refs > 0 {
		return nil
	}
	C.rte_mempool_free(s.mp)
	s.mp = nil
	s.log.Info("dpdk: EAL cleanup")
	return cleanupEAL()
}

// MbufsInUse returns how many mbufs of the packet mempool are allocated
// (in rings, queues' stashes, workers' hands and lcore caches excluded).
func (s *Session) MbufsInUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mp == nil {
		return 0
	}
	return int(C.rte_mempool_in_use_count(s.mp))
}

// MbufsAvailable returns how many mbufs the mempool can still hand out,
// per-lcore caches included.
func (s *Session) MbufsAvailable() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mp == nil {
		return 0
	}
	return int(C.rte_mempool_avail_count(s.mp))
}
