/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Packet generator, run through BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: every run of
 * the program turns one frame into a packet and XDP_TX sends it out of the generator's veth.
 *
 * Live frames travel by reference and their pages come back to the generator's pool, still
 * carrying whatever the gateway wrote into them (TTL, addresses, MACs). So every header field
 * of every frame is written here from the configuration, never inherited from the last use.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bench.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct bench_gen_cfg cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_seq SEC(".maps");

static __always_inline __u16 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static __always_inline void put32(__u8 *p, __u32 v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u8 *ip = data + 14, *l4 = data + 34;
	__u32 zero = 0, flow, rest, saddr, sport, dport, ip_sum, l4_sum, i;
	__u16 tot_len, l4_len;
	__u64 *seq;

	if (data + BENCH_FRAME_LEN > end)
		return XDP_ABORTED;
	seq = bpf_map_lookup_elem(&bench_seq, &zero);
	if (!seq)
		return XDP_ABORTED;
	flow = (__u32)*seq;
	*seq += 1;
	if (!cfg.new_flows)
		flow %= cfg.n_saddr * cfg.n_sport * cfg.n_dport;
	sport = cfg.sport_base + flow % cfg.n_sport;
	rest = flow / cfg.n_sport;
	dport = cfg.dport_base + rest % cfg.n_dport;
	saddr = cfg.saddr_base + (rest / cfg.n_dport) % cfg.n_saddr;

	/* Byte by byte through the volatile config: a memcpy that casts volatile away lets the
	 * compiler fold in the all-zero initializer instead of what the loader wrote. */
	for (i = 0; i < 6; i++) {
		data[i] = cfg.dst_mac[i];
		data[6 + i] = cfg.src_mac[i];
	}
	put16(data + 12, 0x0800);

	l4_len = cfg.proto == 6 ? 20 : BENCH_FRAME_LEN - 34;
	tot_len = 20 + l4_len;
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, tot_len);
	put16(ip + 4, (__u16)flow);
	put16(ip + 6, 0);
	ip[8] = 64;
	ip[9] = (__u8)cfg.proto;
	put32(ip + 12, saddr);
	put32(ip + 16, cfg.daddr);
	ip_sum = 0x4500 + tot_len + (__u16)flow + (64 << 8) + cfg.proto + (saddr >> 16) +
		 (saddr & 0xffff) + (cfg.daddr >> 16) + (cfg.daddr & 0xffff);
	put16(ip + 10, fold(ip_sum));

	/* The pseudo-header, then the L4 header; payload and padding are zeros. */
	l4_sum = (saddr >> 16) + (saddr & 0xffff) + (cfg.daddr >> 16) + (cfg.daddr & 0xffff) +
		 cfg.proto + l4_len + sport + dport;
	put16(l4, sport);
	put16(l4 + 2, dport);
	for (i = 4; i < BENCH_FRAME_LEN - 34; i++)
		l4[i] = 0;
	if (cfg.proto == 6) {
		put32(l4 + 4, flow);  /* sequence number */
		l4[12] = 5 << 4;      /* data offset */
		l4[13] = 0x02;        /* SYN */
		put16(l4 + 14, 65535); /* window */
		l4_sum += (flow >> 16) + (flow & 0xffff) + (5 << 12 | 0x02) + 65535;
		put16(l4 + 16, fold(l4_sum));
	} else {
		put16(l4 + 4, l4_len);
		l4_sum += l4_len;
		put16(l4 + 6, fold(l4_sum) ?: 0xffff);
	}
	return XDP_TX;
}
