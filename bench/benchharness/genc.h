// genc.h is the C engine of the RFC 9693 generator (genc.go drives it):
// the per-frame work of engine.go in C, over DPDK ethdev queues and an
// mbuf pool of its own. One call runs a whole trial (phase 1 round or
// phase 2 step, drain included), pacing with rte_rdtsc, and leaves its
// counters in struct genc. Frames, flows, checks and the latency
// histogram are those of gen.go and engine.go: genc_test.go checks the
// frames against the Go builder and parser.
#ifndef NATGW_GENC_H
#define NATGW_GENC_H

#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>

#define GENC_BURST 32
#define GENC_MAXWAIT_NS 20000
#define GENC_HIST_SUB_BITS 6
#define GENC_HIST_SUB (1 << GENC_HIST_SUB_BITS)
#define GENC_HIST_BUCKETS ((64 - GENC_HIST_SUB_BITS + 1) * GENC_HIST_SUB)
#define GENC_FRAME 60

// Offsets and constants of gen.go's frame.
#define GENC_IP 14
#define GENC_UDP (GENC_IP + 20)
#define GENC_PAY (GENC_UDP + 8)
#define GENC_MAGIC 0x4e47
#define GENC_TOTLEN (20 + 8 + 18)
#define GENC_UDPLEN (8 + 18)
#define GENC_TTL 64
#define GENC_KIND_OUT 1
#define GENC_KIND_IN 2
#define GENC_KIND_FIRST 3
#define GENC_KIND_ANSWER 4
#define GENC_REMOTE_BASE 0xc6120000u
#define GENC_PORT_LO 1024
#define GENC_PORT_RANGE (65536 - GENC_PORT_LO)
#define GENC_PORT_MUL 40009

// genc_dir counts one direction of a trial (engine.go's dirCount).
struct genc_dir {
	uint64_t offered, accepted, received, bad;
};

// genc_pkt is a parsed frame (gen.go's genPacket).
struct genc_pkt {
	uint32_t src, dst, flow;
	uint16_t sport, dport;
	uint8_t kind;
	int64_t sent;
};

struct genc {
	// in_port transmits to natgw's inside and receives what natgw sends
	// out of it; out_port the same outside.
	uint16_t in_port, out_port;
	// loopback: in_port's frames come back on out_port untranslated
	// (the generator's ceiling): phase 1 accepts an untranslated source.
	int loopback;
	struct rte_mempool *mp;
	uint32_t n;
	uint32_t nsrc;
	uint32_t *src;
	// pub is each flow's learnt public endpoint (addr<<16 | port; 0:
	// not learnt); done marks completed connections.
	uint64_t *pub;
	uint8_t *done;
	uint64_t tsc0, ns_mul, drain_ns;
	// Results of the last trial.
	struct genc_dir out, in;
	uint64_t established, sent_out, sent_in, last_tx_ns, t0_ns, end_ns;
	// nombuf counts the frames not sent for want of mbufs.
	uint64_t nombuf;
	uint64_t hist_total, hist_max;
	uint64_t hist[GENC_HIST_BUCKETS];
	// Templates: the constant bytes of an inside-sent and an
	// outside-sent frame.
	uint8_t tmpl_in[64], tmpl_out[64];
	struct rte_mbuf *tx[GENC_BURST];
	struct rte_mbuf *rx[GENC_BURST];
};

// genc_mix64 is gen.go's mix64 (SplitMix64's finaliser).
static inline uint64_t genc_mix64(uint64_t x) {
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ x >> 30) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ x >> 27) * 0x94d049bb133111ebull;
	return x ^ x >> 31;
}

// Flow i as its private host sends it (gen.go's genFlows.flow).
static inline uint32_t genc_src(const struct genc *g, uint32_t i) { return g->src[i % g->nsrc]; }
static inline uint32_t genc_dst(uint32_t i) { return GENC_REMOTE_BASE + (i & 0xffff); }
static inline uint16_t genc_sport(uint32_t i) {
	return (uint16_t)(GENC_PORT_LO + genc_mix64(i) % GENC_PORT_RANGE);
}
static inline uint16_t genc_dport(uint32_t i) {
	return (uint16_t)(GENC_PORT_LO + ((uint64_t)(i >> 16) * GENC_PORT_MUL + 7) % GENC_PORT_RANGE);
}

static inline uint64_t genc_now(const struct genc *g) {
	return (uint64_t)(((unsigned __int128)(rte_rdtsc() - g->tsc0) * g->ns_mul) >> 32);
}

// genc_due is gen.go's dueCount.
static inline uint64_t genc_due(uint64_t elapsed, uint64_t rate) {
	return (uint64_t)((unsigned __int128)elapsed * rate / 1000000000u);
}

static inline int genc_bucket(uint64_t v) {
	if (v < GENC_HIST_SUB)
		return (int)v;
	int e = 64 - __builtin_clzll(v) - GENC_HIST_SUB_BITS - 1;
	return (e + 1) * GENC_HIST_SUB + (int)(v >> e) - GENC_HIST_SUB;
}

static inline void genc_record(struct genc *g, uint64_t ns) {
	g->hist[genc_bucket(ns)]++;
	g->hist_total++;
	if (ns > g->hist_max)
		g->hist_max = ns;
}

static inline void genc_put16(uint8_t *b, uint16_t v) {
	v = rte_cpu_to_be_16(v);
	memcpy(b, &v, 2);
}
static inline void genc_put32(uint8_t *b, uint32_t v) {
	v = rte_cpu_to_be_32(v);
	memcpy(b, &v, 4);
}
static inline void genc_put64(uint8_t *b, uint64_t v) {
	v = rte_cpu_to_be_64(v);
	memcpy(b, &v, 8);
}
static inline uint16_t genc_get16(const uint8_t *b) {
	uint16_t v;
	memcpy(&v, b, 2);
	return rte_be_to_cpu_16(v);
}
static inline uint32_t genc_get32(const uint8_t *b) {
	uint32_t v;
	memcpy(&v, b, 4);
	return rte_be_to_cpu_32(v);
}
static inline uint64_t genc_get64(const uint8_t *b) {
	uint64_t v;
	memcpy(&v, b, 8);
	return rte_be_to_cpu_64(v);
}

static inline uint16_t genc_fold(uint64_t s) {
	while (s > 0xffff)
		s = (s >> 16) + (s & 0xffff);
	return (uint16_t)s;
}

static void genc_template(uint8_t *t, const uint8_t *src_mac) {
	static const uint8_t to_natgw[6] = {0x02, 0, 0, 0, 0, 0xfe};
	memset(t, 0, 64);
	memcpy(t, to_natgw, 6);
	memcpy(t + 6, src_mac, 6);
	genc_put16(t + 12, 0x0800);
	genc_put64(t + GENC_IP, (uint64_t)0x4500 << 48 | (uint64_t)GENC_TOTLEN << 32 | 0x4000);
	genc_put32(t + GENC_IP + 8, (uint32_t)GENC_TTL << 24 | 17u << 16);
	genc_put16(t + GENC_UDP + 4, GENC_UDPLEN);
	genc_put16(t + GENC_PAY, GENC_MAGIC);
}

// genc_write writes the frame of one packet into b: the template's 64
// bytes, then the per-frame fields and both checksums (the same bytes as
// gen.go's writeGenFrame). inside: sent by a private host (its MAC from
// its address).
static inline void genc_write(const struct genc *g, uint8_t *b, int inside, uint32_t src, uint32_t dst,
			      uint16_t sport, uint16_t dport, uint8_t kind, uint32_t flow, uint64_t sent) {
	memcpy(b, inside ? g->tmpl_in : g->tmpl_out, 64);
	if (inside)
		genc_put32(b + 8, src);
	genc_put32(b + GENC_IP + 12, src);
	genc_put32(b + GENC_IP + 16, dst);
	uint64_t addrs = (uint64_t)(src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
	genc_put16(b + GENC_IP + 10,
		   (uint16_t)~genc_fold(0x4500 + GENC_TOTLEN + 0x4000 + ((uint64_t)GENC_TTL << 8) + 17 + addrs));
	genc_put16(b + GENC_UDP, sport);
	genc_put16(b + GENC_UDP + 2, dport);
	b[GENC_PAY + 2] = kind;
	genc_put32(b + GENC_PAY + 4, flow);
	genc_put64(b + GENC_PAY + 8, sent);
	uint64_t sum = addrs + 17 + GENC_UDPLEN + sport + dport + GENC_UDPLEN + GENC_MAGIC + ((uint64_t)kind << 8) +
		       (flow >> 16) + (flow & 0xffff) + (sent >> 48) + (sent >> 32 & 0xffff) + (sent >> 16 & 0xffff) +
		       (sent & 0xffff);
	uint16_t c = (uint16_t)~genc_fold(sum);
	genc_put16(b + GENC_UDP + 6, c == 0 ? 0xffff : c);
}

// genc_parse reads a frame (gen.go's parseGenFrame); 0 when it is the
// generator's.
static inline int genc_parse(const uint8_t *b, uint32_t len, struct genc_pkt *p) {
	if (len < GENC_PAY + 16 || genc_get16(b + 12) != 0x0800 || b[GENC_IP] != 0x45 || b[GENC_IP + 9] != 17 ||
	    genc_get16(b + GENC_PAY) != GENC_MAGIC)
		return -1;
	p->src = genc_get32(b + GENC_IP + 12);
	p->dst = genc_get32(b + GENC_IP + 16);
	p->sport = genc_get16(b + GENC_UDP);
	p->dport = genc_get16(b + GENC_UDP + 2);
	p->kind = b[GENC_PAY + 2];
	p->flow = genc_get32(b + GENC_PAY + 4);
	p->sent = (int64_t)genc_get64(b + GENC_PAY + 8);
	return 0;
}

static inline void genc_set_len(struct rte_mbuf *m) {
	m->data_len = GENC_FRAME;
	m->pkt_len = GENC_FRAME;
}

// genc_alloc_flows returns an engine without devices or mbufs for n
// flows whose private hosts are the nsrc addresses src (copied): its
// builder, parser, flows and histogram work without EAL (the tests).
// NULL when out of memory.
static struct genc *genc_alloc_flows(uint32_t n, const uint32_t *src, uint32_t nsrc) {
	struct genc *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->pub = calloc(n, sizeof(uint64_t));
	g->done = calloc(n, 1);
	g->src = malloc(nsrc * sizeof(uint32_t));
	if (g->pub == NULL || g->done == NULL || g->src == NULL) {
		free(g->pub);
		free(g->done);
		free(g->src);
		free(g);
		return NULL;
	}
	memcpy(g->src, src, nsrc * sizeof(uint32_t));
	g->n = n;
	g->nsrc = nsrc;
	g->drain_ns = 50000000;
	static const uint8_t gateway[6] = {0x02, 0, 0, 0, 0, 0x01};
	static const uint8_t host[6] = {0x02, 0x01, 0, 0, 0, 0};
	genc_template(g->tmpl_in, host);
	genc_template(g->tmpl_out, gateway);
	return g;
}

static void genc_free(struct genc *g);

// genc_new returns an engine over the two ports for n flows whose
// private hosts are the nsrc addresses src (copied), with an mbuf pool
// of nmbufs named name; NULL on failure (rte_errno, or out of memory).
// The calling thread is registered with EAL (the pool's per-lcore
// cache); it must be the thread that runs the trials.
static struct genc *genc_new(const char *name, uint16_t in_port, uint16_t out_port, uint32_t n, const uint32_t *src,
			     uint32_t nsrc, unsigned nmbufs, int loopback) {
	if (rte_lcore_id() == LCORE_ID_ANY && rte_thread_register() != 0)
		return NULL;
	struct genc *g = genc_alloc_flows(n, src, nsrc);
	if (g == NULL)
		return NULL;
	// 256 bytes of data room: frames are 60 bytes.
	g->mp = rte_pktmbuf_pool_create(name, nmbufs, 256, 0, RTE_PKTMBUF_HEADROOM + 256, (int)rte_socket_id());
	if (g->mp == NULL) {
		genc_free(g);
		return NULL;
	}
	g->in_port = in_port;
	g->out_port = out_port;
	g->loopback = loopback;
	g->tsc0 = rte_rdtsc();
	g->ns_mul = (uint64_t)(((unsigned __int128)1000000000u << 32) / rte_get_tsc_hz());
	return g;
}

static void genc_free(struct genc *g) {
	if (g == NULL)
		return;
	if (g->mp != NULL)
		rte_mempool_free(g->mp);
	free(g->pub);
	free(g->done);
	free(g->src);
	free(g);
}

static void genc_reset(struct genc *g) {
	memset(&g->out, 0, sizeof(g->out));
	memset(&g->in, 0, sizeof(g->in));
	g->established = g->sent_out = g->sent_in = g->nombuf = 0;
	g->hist_total = g->hist_max = 0;
	memset(g->hist, 0, sizeof(g->hist));
}

// genc_send transmits k built frames of g->tx on port, counting them in
// d; the refused ones are freed (offered and lost).
static inline void genc_send(struct genc *g, uint16_t port, struct rte_mbuf **m, uint16_t k, struct genc_dir *d) {
	uint16_t a = rte_eth_tx_burst(port, 0, m, k);
	d->offered += k;
	d->accepted += a;
	if (a < k)
		rte_pktmbuf_free_bulk(m + a, k - a);
}

// genc_alloc allocates k mbufs into g->tx; when the pool is empty the k
// frames are counted offered and lost, and 0 is returned.
static inline int genc_alloc(struct genc *g, unsigned k, struct genc_dir *d) {
	if (rte_pktmbuf_alloc_bulk(g->mp, g->tx, k) == 0)
		return 1;
	d->offered += k;
	g->nombuf += k;
	return 0;
}

// genc_prefetch starts loading the r received frames' first bytes: they
// were last written by natgw's worker on another CPU, and their loads
// then overlap instead of missing one after the other.
static inline void genc_prefetch(struct rte_mbuf **m, uint16_t r) {
	for (uint16_t j = 0; j < r; j++)
		rte_prefetch0(rte_pktmbuf_mtod(m[j], uint8_t *) + GENC_IP);
}

// genc_rx_connect receives one burst from each side in phase 1 (engine.go's
// rxConnect); it reports whether anything came.
static int genc_rx_connect(struct genc *g) {
	int got = 0;
	struct genc_pkt p;
	uint16_t r = rte_eth_rx_burst(g->out_port, 0, g->rx, GENC_BURST);
	if (r > 0) {
		got = 1;
		genc_prefetch(g->rx, r);
		uint64_t now = genc_now(g);
		uint16_t a = 0;
		struct rte_mbuf *ans[GENC_BURST];
		struct rte_mbuf *bad[GENC_BURST];
		uint16_t nbad = 0;
		for (uint16_t j = 0; j < r; j++) {
			struct rte_mbuf *m = g->rx[j];
			uint8_t *b = rte_pktmbuf_mtod(m, uint8_t *);
			if (genc_parse(b, m->data_len, &p) != 0 || p.kind != GENC_KIND_FIRST || p.flow >= g->n) {
				g->out.bad++;
				bad[nbad++] = m;
				continue;
			}
			uint32_t i = p.flow;
			uint32_t dst = genc_dst(i);
			uint16_t dport = genc_dport(i);
			if ((!g->loopback && p.src == genc_src(g, i)) || p.dst != dst || p.dport != dport) {
				g->out.bad++;
				bad[nbad++] = m;
				continue;
			}
			g->out.received++;
			g->pub[i] = (uint64_t)p.src << 16 | p.sport;
			// The answer is written over the received frame.
			genc_write(g, b, 0, dst, p.src, dport, p.sport, GENC_KIND_ANSWER, i, now);
			genc_set_len(m);
			ans[a++] = m;
		}
		if (nbad > 0)
			rte_pktmbuf_free_bulk(bad, nbad);
		if (a > 0)
			genc_send(g, g->out_port, ans, a, &g->in);
	}
	r = rte_eth_rx_burst(g->in_port, 0, g->rx, GENC_BURST);
	if (r > 0) {
		got = 1;
		genc_prefetch(g->rx, r);
		for (uint16_t j = 0; j < r; j++) {
			struct rte_mbuf *m = g->rx[j];
			if (genc_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, &p) != 0 || p.kind != GENC_KIND_ANSWER ||
			    p.flow >= g->n || p.dst != genc_src(g, p.flow) || p.dport != genc_sport(p.flow)) {
				g->in.bad++;
				continue;
			}
			g->in.received++;
			if (!g->done[p.flow]) {
				g->done[p.flow] = 1;
				g->established++;
			}
		}
		rte_pktmbuf_free_bulk(g->rx, r);
	}
	return got;
}

// genc_connect runs one phase 1 round (engine.go's connectRound): the
// first packet of the n flows not yet done, at rate per second, in the
// order cur, cur+step, ... modulo g->n; it returns the time the last
// first packet was sent, ns after the start (g->t0_ns).
static uint64_t genc_connect(struct genc *g, uint64_t rate, uint64_t n, uint32_t cur, uint64_t step) {
	genc_reset(g);
	uint64_t t0 = genc_now(g), sent = 0, last_rx = t0, last_tx = t0;
	g->t0_ns = t0;
	for (;;) {
		uint64_t now = genc_now(g);
		if (sent < n) {
			last_tx = now;
			uint64_t due = genc_due(now - t0, rate);
			if (due > n)
				due = n;
			unsigned k = due - sent < GENC_BURST ? (unsigned)(due - sent) : GENC_BURST;
			if (k > 0 && genc_alloc(g, k, &g->out)) {
				for (unsigned j = 0; j < k; j++) {
					uint32_t i = cur;
					cur = (uint32_t)((uint64_t)cur + step >= g->n ? (uint64_t)cur + step - g->n : cur + step);
					while (g->done[i]) {
						i = cur;
						cur = (uint32_t)((uint64_t)cur + step >= g->n ? (uint64_t)cur + step - g->n
											       : cur + step);
					}
					uint32_t src = genc_src(g, i);
					genc_write(g, rte_pktmbuf_mtod(g->tx[j], uint8_t *), 1, src, genc_dst(i), genc_sport(i),
						   genc_dport(i), GENC_KIND_FIRST, i, now);
					genc_set_len(g->tx[j]);
				}
				genc_send(g, g->in_port, g->tx, (uint16_t)k, &g->out);
			}
			sent += k;
		}
		if (genc_rx_connect(g)) {
			last_rx = genc_now(g);
		} else if (sent == n && ((g->in.received == g->in.offered && g->out.received + g->out.bad >= g->out.offered) ||
					 genc_now(g) - last_rx > g->drain_ns)) {
			break;
		}
	}
	g->end_ns = genc_now(g);
	return last_tx - t0;
}

// genc_rx_traffic receives one burst from each side in phase 2 (engine.go's
// rxTraffic).
static int genc_rx_traffic(struct genc *g) {
	int got = 0;
	struct genc_pkt p;
	uint16_t r = rte_eth_rx_burst(g->out_port, 0, g->rx, GENC_BURST);
	if (r > 0) {
		got = 1;
		genc_prefetch(g->rx, r);
		uint64_t now = genc_now(g);
		for (uint16_t j = 0; j < r; j++) {
			struct rte_mbuf *m = g->rx[j];
			if (genc_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, &p) != 0 || p.kind != GENC_KIND_OUT ||
			    p.flow >= g->n) {
				g->out.bad++;
				continue;
			}
			uint64_t pub = g->pub[p.flow];
			if (p.src != (uint32_t)(pub >> 16) || p.sport != (uint16_t)pub) {
				g->out.bad++;
				continue;
			}
			g->out.received++;
			genc_record(g, now > (uint64_t)p.sent ? now - (uint64_t)p.sent : 0);
		}
		rte_pktmbuf_free_bulk(g->rx, r);
	}
	r = rte_eth_rx_burst(g->in_port, 0, g->rx, GENC_BURST);
	if (r > 0) {
		got = 1;
		genc_prefetch(g->rx, r);
		uint64_t now = genc_now(g);
		for (uint16_t j = 0; j < r; j++) {
			struct rte_mbuf *m = g->rx[j];
			if (genc_parse(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, &p) != 0 || p.kind != GENC_KIND_IN ||
			    p.flow >= g->n || p.dst != genc_src(g, p.flow) || p.dport != genc_sport(p.flow)) {
				g->in.bad++;
				continue;
			}
			g->in.received++;
			genc_record(g, now > (uint64_t)p.sent ? now - (uint64_t)p.sent : 0);
		}
		rte_pktmbuf_free_bulk(g->rx, r);
	}
	return got;
}

// genc_traffic runs one phase 2 step (engine.go's traffic) for dur ns:
// rate frames per second in all, half each way, over the k flows of the
// cycle cur, cur+step, ... modulo k (outbound from cur_out, inbound from
// cur_in). It returns the frames due at the end (both directions).
static uint64_t genc_traffic(struct genc *g, uint64_t rate, uint64_t dur, uint32_t k, uint64_t step, uint32_t cur_out,
			     uint32_t cur_in) {
	genc_reset(g);
	uint64_t half = rate / 2 > 0 ? rate / 2 : 1;
	uint64_t t0 = genc_now(g), end = t0 + dur;
	uint64_t sent_out = 0, sent_in = 0, last_rx = t0, last_tx = t0;
	g->t0_ns = t0;
	for (;;) {
		uint64_t now = genc_now(g);
		if (now < end) {
			uint64_t due = genc_due(now - t0, half);
			if (due - sent_out < GENC_BURST && now - last_tx < GENC_MAXWAIT_NS)
				due = sent_out; // wait for a fuller burst
			else
				last_tx = now;
			unsigned c = due - sent_out < GENC_BURST ? (unsigned)(due - sent_out) : GENC_BURST;
			if (c > 0 && genc_alloc(g, c, &g->out)) {
				for (unsigned j = 0; j < c; j++) {
					uint32_t i = cur_out;
					cur_out = (uint32_t)((uint64_t)cur_out + step >= k ? (uint64_t)cur_out + step - k
											 : cur_out + step);
					genc_write(g, rte_pktmbuf_mtod(g->tx[j], uint8_t *), 1, genc_src(g, i), genc_dst(i),
						   genc_sport(i), genc_dport(i), GENC_KIND_OUT, i, now);
					genc_set_len(g->tx[j]);
				}
				genc_send(g, g->in_port, g->tx, (uint16_t)c, &g->out);
			}
			sent_out += c;
			c = due - sent_in < GENC_BURST ? (unsigned)(due - sent_in) : GENC_BURST;
			if (c > 0 && genc_alloc(g, c, &g->in)) {
				for (unsigned j = 0; j < c; j++) {
					uint32_t i = cur_in;
					cur_in = (uint32_t)((uint64_t)cur_in + step >= k ? (uint64_t)cur_in + step - k
										       : cur_in + step);
					uint64_t pub = g->pub[i];
					genc_write(g, rte_pktmbuf_mtod(g->tx[j], uint8_t *), 0, genc_dst(i), (uint32_t)(pub >> 16),
						   genc_dport(i), (uint16_t)pub, GENC_KIND_IN, i, now);
					genc_set_len(g->tx[j]);
				}
				genc_send(g, g->out_port, g->tx, (uint16_t)c, &g->in);
			}
			sent_in += c;
		}
		if (genc_rx_traffic(g)) {
			last_rx = genc_now(g);
		} else if (now >= end &&
			   ((g->out.received + g->out.bad >= g->out.accepted && g->in.received + g->in.bad >= g->in.accepted) ||
			    genc_now(g) - last_rx > g->drain_ns)) {
			break;
		}
	}
	g->sent_out = sent_out;
	g->sent_in = sent_in;
	g->end_ns = genc_now(g);
	return 2 * genc_due(dur, half);
}

// genc_learnt returns how many flows have a public endpoint.
static uint64_t genc_learnt(const struct genc *g) {
	uint64_t c = 0;
	for (uint32_t i = 0; i < g->n; i++)
		c += g->pub[i] != 0;
	return c;
}

// genc_missing returns how many flows have no completed connection.
static uint64_t genc_missing(const struct genc *g) {
	uint64_t c = 0;
	for (uint32_t i = 0; i < g->n; i++)
		c += !g->done[i];
	return c;
}

// genc_open_range marks the flows [lo, hi) not done and unlearnt, and
// every other flow done, so that the next connect round opens only them.
static void genc_open_range(struct genc *g, uint32_t lo, uint32_t hi) {
	for (uint32_t i = 0; i < g->n; i++) {
		int in = i >= lo && i < hi;
		g->done[i] = !in;
		if (in)
			g->pub[i] = 0;
	}
}

static void genc_clear(struct genc *g) {
	memset(g->pub, 0, g->n * sizeof(uint64_t));
	memset(g->done, 0, g->n);
}

// genc_build writes flow i's frame of kind (gen.go's kinds) into b (at
// least 64 bytes), as the trials do; for the tests.
static void genc_build(const struct genc *g, uint8_t *b, uint32_t i, uint8_t kind, uint64_t sent) {
	if (kind == GENC_KIND_FIRST || kind == GENC_KIND_OUT) {
		genc_write(g, b, 1, genc_src(g, i), genc_dst(i), genc_sport(i), genc_dport(i), kind, i, sent);
	} else {
		uint64_t pub = g->pub[i];
		genc_write(g, b, 0, genc_dst(i), (uint32_t)(pub >> 16), genc_dport(i), (uint16_t)pub, kind, i, sent);
	}
}

// genc_parse_go parses b for the tests: -1 when it is not the generator's.
static int genc_parse_go(const uint8_t *b, uint32_t len, struct genc_pkt *p) { return genc_parse(b, len, p); }

static int rte_errno_go(void) { return rte_errno; }

static void genc_record_go(struct genc *g, uint64_t ns) { genc_record(g, ns); }

#endif
