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
	s.mp = C.rte_pktmbuf_pool_create(name, C.uint(n), MempoolCache, 0,
		C.RTE_MBUF_DEFAULT_BUF_SIZE, C.int(C.rte_socket_id()))
	if s.mp == nil {
		err := fmt.Errorf("dpdk: creating a mempool of %d mbufs: %s (are enough hugepages reserved? see scripts/install-deps.sh)",
			n, errnoString(int(C.rte_errno)))
		return nil, errors.Join(err, cleanupEAL())
	}
	s.log.Info("dpdk: EAL up", "args", argv, "lcores", int(C.rte_lcore_count()),
		"ports_available", int(C.rte_eth_dev_count_avail()), "mbufs", n,
		"mbuf_size", int(C.RTE_MBUF_DEFAULT_BUF_SIZE), "gomaxprocs", runtime.GOMAXPROCS(0))
	return s, nil
}

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
