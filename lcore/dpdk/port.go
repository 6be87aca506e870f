//go:build dpdk

package dpdk

/*
#include "natgw_dpdk.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"unsafe"

	"github.com/natgw/natgw/lcore"
)

// This file opens and closes ports (management core): lookup by name,
// queue and RSS setup, start/stop, link, MTU and counters.

// RSS hash fields natgw asks for (SPEC §3): IPv4, TCP and UDP over IPv4,
// restricted to the remote endpoint — the destination on the inside port,
// the source on the outside port.
const (
	rssBase       = C.RTE_ETH_RSS_IPV4 | C.RTE_ETH_RSS_NONFRAG_IPV4_TCP | C.RTE_ETH_RSS_NONFRAG_IPV4_UDP
	rssInsideHF   = rssBase | C.RTE_ETH_RSS_L3_DST_ONLY | C.RTE_ETH_RSS_L4_DST_ONLY
	rssOutsideHF  = rssBase | C.RTE_ETH_RSS_L3_SRC_ONLY | C.RTE_ETH_RSS_L4_SRC_ONLY
	rssOnlyBits   = (rssInsideHF | rssOutsideHF) &^ rssBase
	rssHardware   = "hardware"
	afPacketPMD   = "net_af_packet"
	maxRETAPerDev = C.RTE_ETH_RSS_RETA_SIZE_512
)

// rssTestStrip is cleared from the hash fields natgw asks for. Tests set
// it to exercise the hardware RSS path on a virtual device that hashes
// IPv4/TCP/UDP but not the *_ONLY refinements; it is 0 otherwise.
var rssTestStrip uint64

// PortOptions describe a port to open.
type PortOptions struct {
	// Name is the configured port: a PCI address ("0000:03:00.0") or a
	// vdev name ("net_af_packet0") created by eal_args.
	Name string
	// Side is lcore.PortInside or lcore.PortOutside: it chooses the RSS
	// hash fields (the remote endpoint is the destination inside, the
	// source outside).
	Side uint8
}

// DeviceInfo is what a device says about itself (rte_eth_dev_info_get).
type DeviceInfo struct {
	Driver                       string
	MaxRxQueues, MaxTxQueues     int
	RETASize, HashKeySize        int
	FlowTypeRSSOffloads          uint64
	MinMTU, MaxMTU               int
	RxDescMax, TxDescMax         int
	RxOffloadCapa, TxOffloadCapa uint64

	// IfIndex is the kernel interface behind the port (net_af_packet,
	// net_tap), 0 for a device DPDK drives itself.
	IfIndex int
}

// Port is an open DPDK port implementing lcore.Port: Workers RX queues,
// Workers+1 TX queues (the last one the management core's), promiscuous.
// Queue methods follow lcore.Queue's threading rules; the other methods
// run on the management core and are safe for concurrent use.
type Port struct {
	s       *Session
	name    string
	id      uint16
	info    DeviceInfo
	mac     [6]byte
	mtu     int
	rss     string
	rxDesc  int
	txDesc  int
	queues  []*Queue
	mu      sync.Mutex
	closed  bool
	workers int
}

// OpenPort finds the device named opts.Name, configures it for the
// session's workers (with RSS programmed when the device supports natgw's
// hash, see Port.RSS), starts it and turns promiscuous mode on.
func (s *Session) OpenPort(opts PortOptions) (*Port, error) {
	s.mu.Lock()
	if s.closed || s.mp == nil {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.refs++
	s.mu.Unlock()
	p, err := s.openPort(opts)
	if err != nil {
		return nil, errors.Join(err, s.release())
	}
	return p, nil
}

func (s *Session) openPort(opts PortOptions) (*Port, error) {
	workers := s.cfg.Workers
	id, err := PortID(opts.Name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.ports[id] {
		s.mu.Unlock()
		return nil, fmt.Errorf("dpdk: port %q is already open", opts.Name)
	}
	s.ports[id] = true
	s.mu.Unlock()
	p := &Port{s: s, name: opts.Name, id: id, workers: workers}
	if p.info, err = deviceInfo(id); err != nil {
		return nil, p.fail(fmt.Errorf("dpdk: port %q: %w", opts.Name, err))
	}
	nrx, ntx := workers, workers+1
	extraRx := false
	if p.info.Driver == afPacketPMD && p.info.MaxRxQueues >= workers+1 {
		// net_af_packet opens one socket per qpair at probe time, all in
		// one fanout group, so every qpair receives a share of the
		// traffic whether or not it is configured: the management
		// core's qpair is configured for RX too and worker 0 drains it.
		nrx, extraRx = workers+1, true
	}
	if nrx > p.info.MaxRxQueues || ntx > p.info.MaxTxQueues {
		hint := ""
		if p.info.Driver == afPacketPMD {
			hint = fmt.Sprintf(" (give the vdev qpairs=%d)", workers+1)
		}
		return nil, p.fail(fmt.Errorf("dpdk: port %q (%s): needs %d RX and %d TX queues, the device has %d and %d%s",
			opts.Name, p.info.Driver, nrx, ntx, p.info.MaxRxQueues, p.info.MaxTxQueues, hint))
	}
	rssHF, key, reason := p.chooseRSS(opts.Side)
	conf := C.struct_natgw_port_conf{
		port: C.uint16_t(id), nb_rx: C.uint16_t(nrx), nb_tx: C.uint16_t(ntx),
		nb_rxd: C.uint16_t(s.cfg.RxDesc), nb_txd: C.uint16_t(s.cfg.TxDesc),
		rss_hf: C.uint64_t(rssHF), mp: s.mp,
	}
	var ckey *C.uint8_t
	if rssHF != 0 {
		ckey = (*C.uint8_t)(C.CBytes(key))
		defer C.free(unsafe.Pointer(ckey))
		conf.rss_key, conf.rss_key_len = ckey, C.uint8_t(len(key))
	}
	if ret := C.natgw_port_setup(&conf); ret < 0 {
		stage := [...]string{"", "rte_eth_dev_configure", "rte_eth_dev_adjust_nb_rx_tx_desc",
			"rte_eth_rx_queue_setup", "rte_eth_tx_queue_setup", "rte_eth_dev_start"}
		st := ""
		if int(conf.stage) < len(stage) {
			st = stage[conf.stage]
		}
		return nil, p.fail(fmt.Errorf("dpdk: port %q (%s): %s: %s", opts.Name, p.info.Driver, st, errnoString(int(ret))))
	}
	p.rxDesc, p.txDesc = int(conf.nb_rxd), int(conf.nb_txd)
	if p.rxDesc != s.cfg.RxDesc || p.txDesc != s.cfg.TxDesc {
		s.log.Warn("dpdk: the device adjusted the ring sizes to its limits and alignment",
			"port", opts.Name, "driver", p.info.Driver, "rx_desc_asked", s.cfg.RxDesc, "rx_desc", p.rxDesc,
			"tx_desc_asked", s.cfg.TxDesc, "tx_desc", p.txDesc, "rx_desc_max", p.info.RxDescMax, "tx_desc_max", p.info.TxDescMax)
	}
	if rssHF != 0 {
		if err := p.programRETA(); err != nil {
			reason = "software: " + err.Error()
		}
	}
	p.rss = reason
	if ret := C.rte_eth_promiscuous_enable(C.uint16_t(id)); ret < 0 && ret != -C.ENOTSUP {
		p.s.log.Warn("dpdk: promiscuous mode", "port", opts.Name, "error", errnoString(int(ret)))
	}
	var mac C.struct_rte_ether_addr
	if ret := C.rte_eth_macaddr_get(C.uint16_t(id), &mac); ret == 0 {
		for i := range p.mac {
			p.mac[i] = byte(mac.addr_bytes[i])
		}
	}
	var mtu C.uint16_t
	p.mtu = 1500
	if ret := C.rte_eth_dev_get_mtu(C.uint16_t(id), &mtu); ret == 0 && mtu > 0 {
		p.mtu = int(mtu)
	}
	p.mtu = p.MTU() // a kernel interface's own
	for i := 0; i <= workers; i++ {
		extra := -1
		if extraRx && i == 0 {
			extra = workers
		}
		q, err := newQueue(p, i, i < workers, extra)
		if err != nil {
			p.closeQueues()
			C.rte_eth_dev_stop(C.uint16_t(id))
			return nil, p.fail(err)
		}
		p.queues = append(p.queues, q)
	}
	level := s.log.Info
	if strings.HasPrefix(p.rss, "software") && workers > 1 {
		level = s.log.Warn
	}
	level("dpdk: port open", "port", opts.Name, "side", lcore.PortName(opts.Side), "id", id,
		"driver", p.info.Driver, "rx_queues", nrx, "tx_queues", ntx, "rx_desc", p.rxDesc,
		"tx_desc", p.txDesc, "mtu", p.mtu, "rss", p.rss)
	return p, nil
}

// RingSizes returns the RX and TX ring sizes the device accepted (after
// rte_eth_dev_adjust_nb_rx_tx_desc), in descriptors per queue.
func (p *Port) RingSizes() (rx, tx int) { return p.rxDesc, p.txDesc }

// fail releases the device of a port that could not be opened.
func (p *Port) fail(err error) error {
	C.rte_eth_dev_close(C.uint16_t(p.id))
	p.s.mu.Lock()
	delete(p.s.ports, p.id)
	p.s.mu.Unlock()
	return err
}

// PortID returns the DPDK port id of a device named by PCI address or
// vdev name (rte_eth_dev_get_port_by_name).
func PortID(name string) (uint16, error) {
	if name == "" {
		return 0, errors.New("dpdk: empty port name")
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var id C.uint16_t
	if ret := C.rte_eth_dev_get_port_by_name(cname, &id); ret != 0 {
		return 0, fmt.Errorf("dpdk: no port named %q (%s): a PCI device must be bound to a DPDK driver, a vdev created with --vdev in eal_args; available: %v",
			name, errnoString(int(ret)), portNames())
	}
	return uint16(id), nil
}

// portNames lists the names of the available ports.
func portNames() []string {
	var names []string
	var buf [C.RTE_ETH_NAME_MAX_LEN]C.char
	for id := C.uint16_t(0); id < C.RTE_MAX_ETHPORTS; id++ {
		if C.rte_eth_dev_is_valid_port(id) == 0 {
			continue
		}
		if C.rte_eth_dev_get_name_by_port(id, &buf[0]) == 0 {
			names = append(names, C.GoString(&buf[0]))
		}
	}
	return names
}

// DeviceInfo returns what the device named name (PCI address or vdev
// name) says about itself, without opening it.
func (s *Session) DeviceInfo(name string) (DeviceInfo, error) {
	s.mu.Lock()
	closed := s.closed || s.mp == nil
	s.mu.Unlock()
	if closed {
		return DeviceInfo{}, ErrClosed
	}
	id, err := PortID(name)
	if err != nil {
		return DeviceInfo{}, err
	}
	return deviceInfo(id)
}

// deviceInfo reads rte_eth_dev_info_get.
func deviceInfo(id uint16) (DeviceInfo, error) {
	var di C.struct_rte_eth_dev_info
	if ret := C.rte_eth_dev_info_get(C.uint16_t(id), &di); ret != 0 {
		return DeviceInfo{}, fmt.Errorf("rte_eth_dev_info_get: %s", errnoString(int(ret)))
	}
	return DeviceInfo{
		Driver:      C.GoString(di.driver_name),
		MaxRxQueues: int(di.max_rx_queues), MaxTxQueues: int(di.max_tx_queues),
		RETASize: int(di.reta_size), HashKeySize: int(di.hash_key_size),
		FlowTypeRSSOffloads: uint64(di.flow_type_rss_offloads),
		MinMTU:              int(di.min_mtu), MaxMTU: int(di.max_mtu), IfIndex: int(di.if_index),
		RxDescMax: int(di.rx_desc_lim.nb_max), TxDescMax: int(di.tx_desc_lim.nb_max),
		RxOffloadCapa: uint64(di.rx_offload_capa), TxOffloadCapa: uint64(di.tx_offload_capa),
	}, nil
}

// chooseRSS decides between hardware and software ownership (SPEC §3)
// from the device's capabilities and returns the hash fields to program
// (0 for none), the key, and the RSS() description.
func (p *Port) chooseRSS(side uint8) (uint64, []byte, string) {
	if p.workers == 1 {
		return 0, nil, "software: one worker owns every flow, no RSS needed"
	}
	want := uint64(rssInsideHF)
	if side == lcore.PortOutside {
		want = rssOutsideHF
	}
	want &^= rssTestStrip
	info := p.info
	switch {
	case want == 0:
		return 0, nil, "software: no hash fields to program"
	case info.FlowTypeRSSOffloads&want != want:
		return 0, nil, fmt.Sprintf("software: %s hashes flow types %#x, natgw needs %#x", info.Driver, info.FlowTypeRSSOffloads, want)
	case info.HashKeySize != 0 && info.HashKeySize != lcore.RSSKeyLen:
		return 0, nil, fmt.Sprintf("software: %s takes a %d-byte RSS key, natgw's is %d", info.Driver, info.HashKeySize, lcore.RSSKeyLen)
	case info.RETASize < lcore.RETASize || info.RETASize%lcore.RETASize != 0 || info.RETASize > maxRETAPerDev:
		return 0, nil, fmt.Sprintf("software: %s has a %d-entry redirection table, natgw needs a multiple of %d", info.Driver, info.RETASize, lcore.RETASize)
	}
	return want, lcore.DefaultRSSKey[:], rssHardware
}

// programRETA writes lcore.Owner's redirection table, repeated over the
// device's table (whose size is a multiple of lcore.RETASize, so entry
// hash%size holds the owner of hash%RETASize).
func (p *Port) programRETA() error {
	reta := lcore.NewOwner(lcore.DefaultRSSKey, p.workers).RETA()
	table := make([]C.uint16_t, p.info.RETASize)
	for i := range table {
		table[i] = C.uint16_t(reta[i%lcore.RETASize])
	}
	ctable := (*C.uint16_t)(C.CBytes(unsafe.Slice((*byte)(unsafe.Pointer(&table[0])), len(table)*2)))
	defer C.free(unsafe.Pointer(ctable))
	if ret := C.natgw_reta_update(C.uint16_t(p.id), ctable, C.uint16_t(len(table))); ret < 0 {
		return fmt.Errorf("rte_eth_dev_rss_reta_update: %s", errnoString(int(ret)))
	}
	return nil
}

// RETA reads the device's redirection table (RSS queue per entry).
func (p *Port) RETA() ([]uint16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	n := p.info.RETASize
	if n == 0 || n > maxRETAPerDev {
		return nil, fmt.Errorf("dpdk: %q has no redirection table", p.name)
	}
	ctable := (*C.uint16_t)(C.calloc(C.size_t(n), 2))
	defer C.free(unsafe.Pointer(ctable))
	if ret := C.natgw_reta_query(C.uint16_t(p.id), ctable, C.uint16_t(n)); ret < 0 {
		return nil, fmt.Errorf("dpdk: rte_eth_dev_rss_reta_query %q: %s", p.name, errnoString(int(ret)))
	}
	out := make([]uint16, n)
	for i, v := range unsafe.Slice(ctable, n) {
		out[i] = uint16(v)
	}
	return out, nil
}

// Name returns the configured port name.
func (p *Port) Name() string { return p.name }

// ID returns the DPDK port id.
func (p *Port) ID() uint16 { return p.id }

// Info returns what the device said about itself when it was opened.
func (p *Port) Info() DeviceInfo { return p.info }

// MAC returns the port's hardware address.
func (p *Port) MAC() [6]byte { return p.mac }

// MTU returns the port's current MTU. A port backed by a kernel interface
// (net_af_packet: DeviceInfo.IfIndex) has that interface's MTU, which the
// kernel enforces on what the PMD sends and which may change at run time;
// others have rte_eth_dev_get_mtu's. It falls back to the MTU read at open
// (1500 if none). It runs on the management core, which polls it.
func (p *Port) MTU() int {
	if p.info.IfIndex > 0 {
		if ifc, err := net.InterfaceByIndex(p.info.IfIndex); err == nil && ifc.MTU > 0 {
			return ifc.MTU
		}
		return p.mtu
	}
	var mtu C.uint16_t
	if ret := C.rte_eth_dev_get_mtu(C.uint16_t(p.id), &mtu); ret == 0 && mtu > 0 {
		return int(mtu)
	}
	return p.mtu
}

// RSS says how packets reach the worker that owns them: "hardware" when
// the NIC hashes natgw's fields with natgw's key and redirection table, or
// "software: <reason>" when the receiving worker hashes and hands packets
// over (correct either way; hardware saves the handoff).
func (p *Port) RSS() string { return p.rss }

// MaxFrame returns the largest frame the port hands the workers: the data
// room of the session's mbufs (MbufSize). It implements
// lcore.MaxFrameReporter.
func (p *Port) MaxFrame() int {
	return MbufSize(p.s.cfg.EALArgs) - int(C.RTE_PKTMBUF_HEADROOM)
}

// LinkUp reports the link state (rte_eth_link_get_nowait).
func (p *Port) LinkUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	return C.natgw_link_up(C.uint16_t(p.id)) == 1
}

// Queue returns queue i: 0..workers-1 for workers, workers for the
// management core (TX only). It returns nil for any other i.
func (p *Port) Queue(i int) lcore.Queue {
	if i < 0 || i >= len(p.queues) {
		return nil
	}
	return p.queues[i]
}

// DPDKQueue is Queue with the concrete type.
func (p *Port) DPDKQueue(i int) *Queue {
	if i < 0 || i >= len(p.queues) {
		return nil
	}
	return p.queues[i]
}

// Counters are a port's counters as DPDK reports them (rte_eth_stats_get).
type Counters struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
	// RxMissed: dropped by the device because RX rings were full.
	RxMissed uint64
	// RxErrors, TxErrors: erroneous frames received, failed transmissions.
	RxErrors, TxErrors uint64
	// RxNoMbuf: RX mbuf allocation failures.
	RxNoMbuf uint64
}

// Counters returns rte_eth_stats_get's counters.
func (p *Port) Counters() (Counters, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Counters{}, ErrClosed
	}
	var st C.struct_rte_eth_stats
	if ret := C.rte_eth_stats_get(C.uint16_t(p.id), &st); ret != 0 {
		return Counters{}, fmt.Errorf("dpdk: rte_eth_stats_get %q: %s", p.name, errnoString(int(ret)))
	}
	return Counters{
		RxPackets: uint64(st.ipackets), TxPackets: uint64(st.opackets),
		RxBytes: uint64(st.ibytes), TxBytes: uint64(st.obytes),
		RxMissed: uint64(st.imissed), RxErrors: uint64(st.ierrors), TxErrors: uint64(st.oerrors),
		RxNoMbuf: uint64(st.rx_nombuf),
	}, nil
}

// Stats returns the lcore.PortStats view of Counters: RxMissed counts the
// device's misses and RX mbuf allocation failures (both are frames lost
// for lack of room).
func (p *Port) Stats() lcore.PortStats {
	c, err := p.Counters()
	if err != nil {
		return lcore.PortStats{}
	}
	return lcore.PortStats{RxPackets: c.RxPackets, TxPackets: c.TxPackets,
		RxMissed: c.RxMissed + c.RxNoMbuf, TxErrors: c.TxErrors}
}

// XStats returns the device's extended statistics by name
// (rte_eth_xstats_get_names, rte_eth_xstats_get), for example
// "rx_missed_errors", "rx_errors", "rx_q0_packets".
func (p *Port) XStats() (map[string]uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	id := C.uint16_t(p.id)
	n := C.rte_eth_xstats_get_names(id, nil, 0)
	if n < 0 {
		return nil, fmt.Errorf("dpdk: xstats names %q: %s", p.name, errnoString(int(n)))
	}
	if n == 0 {
		return map[string]uint64{}, nil
	}
	names := (*C.struct_rte_eth_xstat_name)(C.calloc(C.size_t(n), C.sizeof_struct_rte_eth_xstat_name))
	defer C.free(unsafe.Pointer(names))
	vals := (*C.struct_rte_eth_xstat)(C.calloc(C.size_t(n), C.sizeof_struct_rte_eth_xstat))
	defer C.free(unsafe.Pointer(vals))
	if got := C.rte_eth_xstats_get_names(id, names, C.uint(n)); got != n {
		return nil, fmt.Errorf("dpdk: xstats names %q: got %d of %d", p.name, int(got), int(n))
	}
	if got := C.rte_eth_xstats_get(id, vals, C.uint(n)); got != n {
		return nil, fmt.Errorf("dpdk: xstats %q: got %d of %d", p.name, int(got), int(n))
	}
	ns, vs := unsafe.Slice(names, int(n)), unsafe.Slice(vals, int(n))
	out := make(map[string]uint64, int(n))
	for _, v := range vs {
		if int(v.id) < len(ns) {
			out[C.GoString(&ns[v.id].name[0])] = uint64(v.value)
		}
	}
	return out, nil
}

// Close stops and closes the device. Every worker must have stopped using
// its queues. When this is the session's last port (and the session was
// closed), EAL is cleaned up.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	var errs []error
	if ret := C.rte_eth_dev_stop(C.uint16_t(p.id)); ret < 0 {
		errs = append(errs, fmt.Errorf("dpdk: stopping %q: %s", p.name, errnoString(int(ret))))
	}
	p.closeQueues()
	if ret := C.rte_eth_dev_close(C.uint16_t(p.id)); ret < 0 {
		errs = append(errs, fmt.Errorf("dpdk: closing %q: %s", p.name, errnoString(int(ret))))
	}
	p.s.mu.Lock()
	delete(p.s.ports, p.id)
	p.s.mu.Unlock()
	errs = append(errs, p.s.release())
	return errors.Join(errs...)
}

func (p *Port) closeQueues() {
	for _, q := range p.queues {
		q.close()
	}
	p.queues = nil
}
