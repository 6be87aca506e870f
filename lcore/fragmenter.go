package lcore

import "github.com/natgw/natgw/nat"

// Fragmenting at egress (RFC 4787 REQ-13a). A translated packet without DF
// that is larger than the egress MTU is cut into fragments here, after
// translation, on the worker that translated it (packets with DF never get
// here: classify answers them with ICMP fragmentation needed). The first
// fragment is the packet's own buffer, cut in place; later fragments are
// copied into buffers of the worker's fragment pool, which go back to it
// when the queue takes them (a DPDK queue copies them into mbufs of its
// mempool; AF_PACKET copies them into its TX ring). Nothing allocates.

const (
	// fragBufSize is the size of a fragment buffer: an Ethernet header and
	// a fragment of up to 2034 bytes (an egress MTU above that gets
	// fragments of 2034 bytes, which is allowed).
	fragBufSize = 2048
	// fragPoolSize is the number of fragment buffers of a worker: enough
	// for both ports' TX queues filled with fragments (a full queue is
	// flushed, and the queue gives the buffers back).
	fragPoolSize = 4 * Burst
)

// fragmentTx cuts a translated packet for the egress port whose MTU is
// smaller than the packet and queues the fragments. The link layer of p is
// already written; every fragment gets a copy of it. The fragments are
// queued in order, in one TX flush. A packet that can't
// be cut (malformed options) is a `malformed` drop; when the fragment pool
// can't hold all later fragments the packet is a `tx_full` drop.
func (w *Worker) fragmentTx(p *Packet, l3 []byte, egress uint8) {
	ip := nat.IPv4(l3)
	mtu := min(w.mtu[egress], fragBufSize-nat.EthernetLen)
	count := nat.FragmentCount(ip, mtu)
	if count == 0 {
		w.drop(p, nat.DropMalformed)
		return
	}
	if count-1 > w.fragPool.Available() || count >= len(w.tx[egress]) {
		w.drop(p, nat.DropTxFull)
		return
	}
	if w.ntx[egress]+count >= len(w.tx[egress]) {
		w.flushPort(egress) // all fragments go out in one flush, in order
	}
	// The first fragment goes first (a NAT or firewall further on may
	// need it first); its header is cut last, once later fragments have
	// read the packet's.
	w.queueTx(egress, p)
	firstHL, _, _ := nat.FragmentedHeaderLen(ip)
	off := (mtu - firstHL) &^ 7 // the first fragment's data
	for off < len(ip.Payload()) {
		f := w.fragPool.Get()
		buf := f.Data[:fragBufSize]
		copy(buf, p.Data[:nat.EthernetLen])
		n, next := nat.WriteFragment(buf[nat.EthernetLen:], ip, off, mtu)
		f.Data = buf[:nat.EthernetLen+n]
		off = next
		w.queueTx(egress, f)
	}
	n, _ := nat.WriteFragment(l3, ip, 0, mtu)
	p.Data = p.Data[:nat.EthernetLen+n]
	w.local.fragmented++
	w.local.fragments += uint64(count)
}
