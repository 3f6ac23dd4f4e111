/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * V0, the upper bound: bare XDP forwarding with no NAT. Route lookup, TTL, MAC rewrite,
 * devmap redirect: the same forwarding work xnat does after translation, and nothing else.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bench_route.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} bench_fwd_tx SEC(".maps");

SEC("xdp")
int bench_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);

	if ((void *)(iph + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || iph->ttl <= 1)
		return XDP_PASS;
	return bench_route_and_redirect(ctx, eth, iph, &bench_fwd_tx);
}
