// natgw_dpdk.h — the C side of natgw's DPDK binding. DPDK's fast-path API
// (rte_eth_rx_burst, rte_eth_tx_burst, rte_pktmbuf_*) is static inline, so
// cgo can't call it directly; these small helpers wrap it so that Go makes
// one cgo call per burst and reads the results from C arrays it owns.
//
// Every Go file of package dpdk that uses C includes this header; the
// functions are static, so each cgo translation unit gets its own copy.

#ifndef NATGW_DPDK_H
#define NATGW_DPDK_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_thash.h>

// NATGW_BURST is the most frames one helper call receives or sends.
#define NATGW_BURST 64
// NATGW_STASH is the number of spare mbufs a queue keeps for copying Go
// memory frames into.
#define NATGW_STASH 128
// NATGW_NO_QUEUE marks "no extra RX queue".
#define NATGW_NO_QUEUE 0xFFFF

// RX flags reported per frame.
#define NATGW_RX_CSUM_NONE 1 // L4 checksum partial (RTE_MBUF_F_RX_L4_CKSUM_NONE)
#define NATGW_RX_MULTISEG 2  // frame spans several segments: only the first is seen

// natgw_queue is one queue's state in C memory: the burst arrays Go reads
// and writes. It is used by one thread at a time (the queue's worker).
// Mbuf pointers are kept as uintptr_t so Go never converts integers to
// pointers.
struct natgw_queue {
	uint16_t port;
	uint16_t queue;
	uint16_t extra_rxq;  // a second RX queue drained by this one, or NATGW_NO_QUEUE
	uint16_t register_thread; // register the calling thread with EAL on RX
	struct rte_mempool *mp;

	// RX results.
	uintptr_t rx_mbuf[NATGW_BURST];
	unsigned char *rx_data[NATGW_BURST];
	uint16_t rx_len[NATGW_BURST];
	uint16_t rx_room[NATGW_BURST];
	uint16_t rx_flags[NATGW_BURST];

	// TX inputs.
	uintptr_t tx_mbuf[NATGW_BURST];
	uint16_t tx_len[NATGW_BURST];
	uint8_t tx_stash[NATGW_BURST]; // 1: an mbuf of the stash holding a copy

	// Spare mbufs for copies of Go-memory frames; the top is nstash-1.
	uintptr_t stash_mbuf[NATGW_STASH];
	unsigned char *stash_data[NATGW_STASH];
	uint16_t stash_room[NATGW_STASH];
	uint32_t nstash;

	// Mbufs to free before the next receive.
	uintptr_t free_mbuf[NATGW_BURST];

	// Counters (written by the queue's thread only).
	uint64_t register_failed;
	uint64_t stash_empty;
};

// natgw_stash_refill tops the stash up to NATGW_STASH when it is below half.
static void natgw_stash_refill(struct natgw_queue *q) {
	if (q->nstash >= NATGW_STASH / 2)
		return;
	unsigned want = NATGW_STASH - q->nstash;
	struct rte_mbuf *m[NATGW_STASH];
	while (want > 0 && rte_pktmbuf_alloc_bulk(q->mp, m, want) != 0)
		want /= 2;
	for (unsigned i = 0; i < want; i++) {
		uint32_t s = q->nstash++;
		q->stash_mbuf[s] = (uintptr_t)m[i];
		q->stash_data[s] = rte_pktmbuf_mtod(m[i], unsigned char *);
		q->stash_room[s] = (uint16_t)(m[i]->buf_len - m[i]->data_off);
	}
	if (q->nstash == 0)
		q->stash_empty++;
}

// natgw_queue_new allocates a queue's state and fills its stash.
static struct natgw_queue *natgw_queue_new(uint16_t port, uint16_t queue, uint16_t extra_rxq,
					    int register_thread, struct rte_mempool *mp) {
	struct natgw_queue *q = rte_zmalloc("natgw_queue", sizeof(*q), RTE_CACHE_LINE_SIZE);
	if (q == NULL)
		return NULL;
	q->port = port;
	q->queue = queue;
	q->extra_rxq = extra_rxq;
	q->register_thread = (uint16_t)register_thread;
	q->mp = mp;
	natgw_stash_refill(q);
	return q;
}

// natgw_queue_free releases the stash and the state.
static void natgw_queue_free(struct natgw_queue *q) {
	if (q == NULL)
		return;
	if (q->nstash > 0)
		rte_pktmbuf_free_bulk((struct rte_mbuf **)q->stash_mbuf, q->nstash);
	rte_free(q);
}

// natgw_rx frees nfree mbufs of free_mbuf, then receives up to n frames
// (n <= NATGW_BURST) and describes them in the rx arrays. It registers the
// calling thread with EAL first when the queue asks for it, so the
// mempool's per-lcore cache is used.
static uint16_t natgw_rx(struct natgw_queue *q, uint16_t nfree, uint16_t n) {
	if (q->register_thread && rte_lcore_id() == LCORE_ID_ANY) {
		if (rte_thread_register() != 0 || rte_lcore_id() == LCORE_ID_ANY) {
			q->register_thread = 0;
			q->register_failed++;
		}
	}
	if (nfree > 0)
		rte_pktmbuf_free_bulk((struct rte_mbuf **)q->free_mbuf, nfree);
	if (n > NATGW_BURST)
		n = NATGW_BURST;
	struct rte_mbuf **m = (struct rte_mbuf **)q->rx_mbuf;
	uint16_t got = rte_eth_rx_burst(q->port, q->queue, m, n);
	if (got < n && q->extra_rxq != NATGW_NO_QUEUE)
		got += rte_eth_rx_burst(q->port, q->extra_rxq, m + got, n - got);
	// The frames were written by another core (a device, or the other
	// end of a ring): ask for every mbuf header of the burst at once,
	// then, while reading each header, for the line of its frame that
	// the worker reads and rewrites (the Ethernet, IPv4 and transport
	// headers), so the misses overlap instead of following each other
	// one frame at a time (issue 20).
	for (uint16_t i = 0; i < got; i++)
		rte_prefetch0(m[i]);
	for (uint16_t i = 0; i < got; i++) {
		struct rte_mbuf *mb = m[i];
		uint16_t flags = 0;
		rte_prefetch0(rte_pktmbuf_mtod(mb, unsigned char *));
		q->rx_data[i] = rte_pktmbuf_mtod(mb, unsigned char *);
		q->rx_len[i] = mb->data_len;
		q->rx_room[i] = (uint16_t)(mb->buf_len - mb->data_off);
		if ((mb->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_NONE)
			flags |= NATGW_RX_CSUM_NONE;
		if (mb->nb_segs > 1)
			flags |= NATGW_RX_MULTISEG;
		q->rx_flags[i] = flags;
	}
	return got;
}

// natgw_tx sends the n (<= NATGW_BURST) mbufs of tx_mbuf after setting
// their lengths from tx_len, puts stash copies the device did not take
// back into the stash, refills the stash and returns how many were sent.
static uint16_t natgw_tx(struct natgw_queue *q, uint16_t n) {
	struct rte_mbuf **m = (struct rte_mbuf **)q->tx_mbuf;
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *mb = m[i];
		if (mb->nb_segs == 1) {
			mb->data_len = q->tx_len[i];
			mb->pkt_len = q->tx_len[i];
		}
	}
	uint16_t sent = rte_eth_tx_burst(q->port, q->queue, m, n);
	for (uint16_t i = sent; i < n; i++) {
		if (!q->tx_stash[i] || q->nstash >= NATGW_STASH) {
			if (q->tx_stash[i])
				rte_pktmbuf_free(m[i]);
			continue;
		}
		uint32_t s = q->nstash++;
		q->stash_mbuf[s] = (uintptr_t)m[i];
		q->stash_data[s] = rte_pktmbuf_mtod(m[i], unsigned char *);
		q->stash_room[s] = (uint16_t)(m[i]->buf_len - m[i]->data_off);
	}
	natgw_stash_refill(q);
	return sent;
}

// natgw_free frees the n (<= NATGW_BURST) mbufs of free_mbuf.
static void natgw_free(struct natgw_queue *q, uint16_t n) {
	rte_pktmbuf_free_bulk((struct rte_mbuf **)q->free_mbuf, n);
}

// natgw_eal_init runs rte_eal_init and returns its result; *err receives
// rte_errno on failure.
static int natgw_eal_init(int argc, char **argv, int *err) {
	int ret = rte_eal_init(argc, argv);
	*err = ret < 0 ? rte_errno : 0;
	return ret;
}

// natgw_port_conf describes how to set a port up.
struct natgw_port_conf {
	uint16_t port;
	uint16_t nb_rx, nb_tx;
	uint16_t nb_rxd, nb_txd; // in: wanted; out: what the device accepted
	uint64_t rss_hf;         // 0: no RSS
	const uint8_t *rss_key;
	uint8_t rss_key_len;
	struct rte_mempool *mp;
	int stage; // out: which step failed
};

// Steps of natgw_port_setup, reported in stage on failure.
enum {
	NATGW_STAGE_CONFIGURE = 1,
	NATGW_STAGE_ADJUST_DESC,
	NATGW_STAGE_RX_QUEUE,
	NATGW_STAGE_TX_QUEUE,
	NATGW_STAGE_START,
};

// natgw_port_setup configures the queues (and RSS when rss_hf != 0) and
// starts the port. It returns 0 or a negative errno with stage set.
static int natgw_port_setup(struct natgw_port_conf *c) {
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (c->rss_hf != 0) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = (uint8_t *)c->rss_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = c->rss_key_len;
		conf.rx_adv_conf.rss_conf.rss_hf = c->rss_hf;
	}
	int ret = rte_eth_dev_configure(c->port, c->nb_rx, c->nb_tx, &conf);
	if (ret < 0) {
		c->stage = NATGW_STAGE_CONFIGURE;
		return ret;
	}
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(c->port, &c->nb_rxd, &c->nb_txd);
	if (ret < 0) {
		c->stage = NATGW_STAGE_ADJUST_DESC;
		return ret;
	}
	int socket = rte_eth_dev_socket_id(c->port);
	if (socket < 0)
		socket = SOCKET_ID_ANY;
	for (uint16_t q = 0; q < c->nb_rx; q++) {
		ret = rte_eth_rx_queue_setup(c->port, q, c->nb_rxd, socket, NULL, c->mp);
		if (ret < 0) {
			c->stage = NATGW_STAGE_RX_QUEUE;
			return ret;
		}
	}
	for (uint16_t q = 0; q < c->nb_tx; q++) {
		ret = rte_eth_tx_queue_setup(c->port, q, c->nb_txd, socket, NULL);
		if (ret < 0) {
			c->stage = NATGW_STAGE_TX_QUEUE;
			return ret;
		}
	}
	ret = rte_eth_dev_start(c->port);
	if (ret < 0) {
		c->stage = NATGW_STAGE_START;
		return ret;
	}
	return 0;
}

// natgw_reta_update programs reta (size entries, queue numbers) into the
// port's redirection table.
static int natgw_reta_update(uint16_t port, const uint16_t *reta, uint16_t size) {
	struct rte_eth_rss_reta_entry64 conf[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
	if (size > RTE_ETH_RSS_RETA_SIZE_512)
		return -EINVAL;
	memset(conf, 0, sizeof(conf));
	for (uint16_t i = 0; i < size; i++) {
		conf[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
		conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = reta[i];
	}
	return rte_eth_dev_rss_reta_update(port, conf, size);
}

// natgw_reta_query reads the port's redirection table (size entries) into
// reta.
static int natgw_reta_query(uint16_t port, uint16_t *reta, uint16_t size) {
	struct rte_eth_rss_reta_entry64 conf[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
	if (size > RTE_ETH_RSS_RETA_SIZE_512)
		return -EINVAL;
	memset(conf, 0, sizeof(conf));
	for (uint16_t i = 0; i < size; i++)
		conf[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
	int ret = rte_eth_dev_rss_reta_query(port, conf, size);
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < size; i++)
		reta[i] = conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
	return 0;
}

// natgw_link_up returns 1 when the port's link is up, 0 when down, or a
// negative errno.
static int natgw_link_up(uint16_t port) {
	struct rte_eth_link link;
	memset(&link, 0, sizeof(link));
	int ret = rte_eth_link_get_nowait(port, &link);
	if (ret < 0)
		return ret;
	return link.link_status == RTE_ETH_LINK_UP;
}

// natgw_softrss is DPDK's software Toeplitz hash of a remote endpoint
// (addr, port; host byte order) as rte_softrss wants it: an array of
// host-order 32-bit words whose bits are consumed most significant first,
// so the word values are the big-endian input bytes: addr, then the port
// in the upper half of the second word.
static uint32_t natgw_softrss(uint32_t addr, uint16_t port, const uint8_t *key) {
	uint32_t tuple[2] = {addr, (uint32_t)port << 16};
	return rte_softrss(tuple, 2, key);
}

#endif
