/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The forwarding tail shared by the benchmark's XDP forwarders (bench_fwd, bench_table): route
 * lookup, TTL, MAC rewrite, devmap redirect, the same work xnat does after translation. */
#ifndef XNAT_BENCH_ROUTE_H
#define XNAT_BENCH_ROUTE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

static __always_inline int bench_route_and_redirect(struct xdp_md *ctx, struct ethhdr *eth,
						    struct iphdr *iph, void *tx_map)
{
	struct bpf_fib_lookup fib = {};
	__u32 check;

	fib.family = 2; /* AF_INET */
	fib.tos = iph->tos;
	fib.l4_protocol = iph->protocol;
	fib.tot_len = bpf_ntohs(iph->tot_len);
	fib.ipv4_src = iph->saddr;
	fib.ipv4_dst = iph->daddr;
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;
	/* ip_decrease_ttl() */
	check = iph->check;
	check += bpf_htons(0x0100);
	iph->check = (__u16)(check + (check >= 0xffff));
	iph->ttl--;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect_map(tx_map, fib.ifindex, XDP_PASS);
}

#endif
