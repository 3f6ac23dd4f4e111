/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Types shared by the benchmark's BPF programs and its driver (bench/xnat_bench.cpp). */
#ifndef XNAT_BENCH_H
#define XNAT_BENCH_H

#include <linux/types.h>

/* What the generator sends. Flow i of n_saddr * n_sport * n_dport takes its source port from
 * the fastest-moving index, then its destination port, then its source address. */
struct bench_gen_cfg {
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u32 saddr_base; /* host order */
	__u32 n_saddr;
	__u32 daddr;      /* host order */
	__u32 sport_base;
	__u32 n_sport;
	__u32 dport_base;
	__u32 n_dport;
	__u32 proto;      /* 17: UDP datagram, 6: TCP SYN */
	__u32 new_flows;  /* every packet a new tuple: the flow index never repeats in a run */
};

#define BENCH_FRAME_LEN 60 /* a 64-byte frame on the wire, FCS excluded */

/* The frame builder is shared by both generators, the BPF one (live frames) and the AF_PACKET
 * one in xnat-bench, so that the two methods send byte-identical traffic. It writes every
 * header field: live frames' pages come back still carrying the gateway's rewrites. */
static inline __u16 bench_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static inline void bench_put16(__u8 *p, __u32 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)(v & 0xff);
}

static inline void bench_put32(__u8 *p, __u32 v)
{
	bench_put16(p, v >> 16);
	bench_put16(p + 2, v & 0xffff);
}

/* Flow i of n_saddr * n_sport * n_dport; seq counts the frames sent so far. */
static inline void bench_build_frame(const volatile struct bench_gen_cfg *cfg, __u32 seq, __u8 *data)
{
	__u8 *ip = data + 14, *l4 = data + 34;
	__u32 flow = seq, rest, saddr, sport, dport, ip_sum, l4_sum, i;
	__u32 proto = cfg->proto, daddr = cfg->daddr, l4_len, tot_len;

	if (!cfg->new_flows)
		flow %= cfg->n_saddr * cfg->n_sport * cfg->n_dport;
	sport = cfg->sport_base + flow % cfg->n_sport;
	rest = flow / cfg->n_sport;
	dport = cfg->dport_base + rest % cfg->n_dport;
	saddr = cfg->saddr_base + (rest / cfg->n_dport) % cfg->n_saddr;

	/* Byte by byte through the volatile config: a memcpy that casts volatile away lets the
	 * compiler fold in the all-zero initializer instead of what the loader wrote. */
	for (i = 0; i < 6; i++) {
		data[i] = cfg->dst_mac[i];
		data[6 + i] = cfg->src_mac[i];
	}
	bench_put16(data + 12, 0x0800);

	l4_len = proto == 6 ? 20 : BENCH_FRAME_LEN - 34;
	tot_len = 20 + l4_len;
	ip[0] = 0x45;
	ip[1] = 0;
	bench_put16(ip + 2, tot_len);
	bench_put16(ip + 4, flow & 0xffff);
	bench_put16(ip + 6, 0);
	ip[8] = 64;
	ip[9] = (__u8)proto;
	bench_put32(ip + 12, saddr);
	bench_put32(ip + 16, daddr);
	ip_sum = 0x4500 + tot_len + (flow & 0xffff) + (64 << 8) + proto + (saddr >> 16) +
		 (saddr & 0xffff) + (daddr >> 16) + (daddr & 0xffff);
	bench_put16(ip + 10, bench_fold(ip_sum));

	/* The pseudo-header, then the L4 header; payload and padding are zeros. */
	l4_sum = (saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) + (daddr & 0xffff) + proto +
		 l4_len + sport + dport;
	bench_put16(l4, sport);
	bench_put16(l4 + 2, dport);
	for (i = 4; i < BENCH_FRAME_LEN - 34; i++)
		l4[i] = 0;
	if (proto == 6) {
		bench_put32(l4 + 4, flow);   /* sequence number */
		l4[12] = 5 << 4;             /* data offset */
		l4[13] = 0x02;               /* SYN */
		bench_put16(l4 + 14, 65535); /* window */
		l4_sum += (flow >> 16) + (flow & 0xffff) + (5 << 12 | 0x02) + 65535;
		bench_put16(l4 + 16, bench_fold(l4_sum));
	} else {
		__u16 c;

		bench_put16(l4 + 4, l4_len);
		l4_sum += l4_len;
		c = bench_fold(l4_sum);
		bench_put16(l4 + 6, c ? c : 0xffff);
	}
}

#endif
