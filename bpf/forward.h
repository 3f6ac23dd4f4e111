/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Forwarding a translated packet: route lookup, TTL, MAC rewrite, redirect. Whatever tc cannot
 * finish is handed to the kernel already translated (never half-done): it still has its
 * original TTL and MACs, so the kernel forwards it as it would any packet. XDP hands whatever
 * it cannot finish to tc untouched.
 */
#ifndef XNAT_BPF_FORWARD_H
#define XNAT_BPF_FORWARD_H

#include "csum.h"
#include "map_defs.h"
#include "parse.h"

#define XNAT_AF_INET 2

static __always_inline int fwd_fib_outcome(long rc)
{
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		return XNAT_CONTINUE;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		return XNAT_CNT_PASS_NO_NEIGH;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return XNAT_CNT_PASS_FRAG_NEEDED;
	default:
		return XNAT_CNT_PASS_FIB;
	}
}

/* The TTL, and the MACs unless the kernel is to resolve them, written in place on both hooks. */
static __always_inline int fwd_write_headers(void *ctx, const int xdp,
					     const struct bpf_fib_lookup *fib, int write_macs)
{
	void *data = ctx_data(ctx, xdp), *end = ctx_data_end(ctx, xdp);
	struct ethhdr *eth = data;
	struct iphdr *iph = data + XNAT_L3_OFF;
	__be16 old_word, new_word;

	if ((void *)(iph + 1) > end)
		return XNAT_CNT_PASS_MALFORMED;
	/* TTL shares a checksummed 16-bit word with the protocol. */
	old_word = *(__be16 *)&iph->ttl;
	iph->ttl--;
	new_word = *(__be16 *)&iph->ttl;
	iph->check = csum_apply(iph->check, csum_diff16(0, old_word, new_word));
	if (write_macs) {
		__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	}
	return XNAT_CONTINUE;
}

static __always_inline int fwd_finish_xdp(struct xdp_md *ctx, const struct bpf_fib_lookup *fib)
{
	if (fwd_write_headers(ctx, XNAT_HOOK_XDP, fib, 1) != XNAT_CONTINUE)
		return XNAT_CNT_PASS_MALFORMED;
	if (bpf_redirect_map(&XNAT_MAP_TX_PORTS, fib->ifindex, 0) != XDP_REDIRECT)
		return XNAT_CNT_DROP_TX_PORT;
	return XNAT_CNT_REDIRECTED;
}

/* tc sends the packet itself even when the next hop is unresolved: bpf_redirect_neigh has the
 * kernel resolve it and fill in the MACs. Handing such a packet to the stack instead would not
 * work once its source is the gateway's own address: the stack drops it as a martian before it
 * resolves anything, and the flow would never start. */
static __always_inline int fwd_finish_tc(struct __sk_buff *skb, const struct bpf_fib_lookup *fib,
					 int resolve_neigh)
{
	if (fwd_write_headers(skb, XNAT_HOOK_TC, fib, !resolve_neigh) != XNAT_CONTINUE)
		return XNAT_CNT_PASS_MALFORMED;
	if (resolve_neigh) {
		bpf_redirect_neigh(fib->ifindex, 0, 0, 0);
		return XNAT_CNT_REDIRECTED_NEIGH;
	}
	bpf_redirect(fib->ifindex, 0);
	return XNAT_CNT_REDIRECTED;
}

/* Routes a packet by its translated tuple. Returns XNAT_CONTINUE when the fast path can send it (fib holds
 * the egress and MACs), or the pass counter saying why it cannot. PASS_NO_NEIGH still names
 * one of xnat's interfaces in fib->ifindex. Nothing is written. */
static __always_inline int fwd_route(void *ctx, const int xdp, const struct xnat_pkt *p,
				     const struct xnat_ct_key *to, const struct xnat_config *cfg,
				     struct bpf_fib_lookup *fib)
{
	__u8 egress_mode;
	int rc;

	if (p->ttl <= 1)
		return XNAT_CNT_PASS_TTL;
	fib->family = XNAT_AF_INET;
	fib->tos = p->tos;
	fib->l4_protocol = to->proto;
	fib->sport = to->proto == IPPROTO_ICMP ? 0 : to->sport;
	fib->dport = to->proto == IPPROTO_ICMP ? 0 : to->dport;
	/* The MTU checks go by the IP length, never by the skb's: the skb counts the link header
	 * of the interface it arrived on, which the egress may not have (an Ethernet LAN to a PPP
	 * WAN, or the blank header given to a headerless interface's packets). A GSO packet's
	 * length is its segments' business: tot_len 0 lets the route lookup pass it, and
	 * bpf_check_mtu below checks the segments. A tot_len given makes the route lookup check
	 * it against the route's MTU. */
	fib->tot_len = xdp || !((struct __sk_buff *)ctx)->gso_size ? p->tot_len : 0;
	fib->ipv4_src = to->saddr;
	fib->ipv4_dst = to->daddr;
	fib->ifindex = ctx_ifindex(ctx, xdp);
	rc = fwd_fib_outcome(bpf_fib_lookup(ctx, fib, sizeof(*fib), 0));
	if (rc != XNAT_CONTINUE && rc != XNAT_CNT_PASS_NO_NEIGH)
		return rc;

	if (fib->ifindex == cfg->wan_ifindex)
		egress_mode = cfg->wan_mode;
	else if (fib->ifindex == cfg->lan_ifindex)
		egress_mode = cfg->lan_mode;
	else
		return XNAT_CNT_PASS_FIB;
	if (rc != XNAT_CONTINUE)
		return rc;
	if (!xdp && ((struct __sk_buff *)ctx)->gso_size) {
		/* The route lookup passes any GSO packet; what the link must carry is its segments,
		 * which the kernel's forwarding path checks and so must the fast path. (The helper
		 * refuses an L3 length as input together with BPF_MTU_CHK_SEGS; the segments' check
		 * goes by their network length anyway.) */
		__u32 mtu = 0;

		if (bpf_check_mtu(ctx, fib->ifindex, &mtu, 0, BPF_MTU_CHK_SEGS) != BPF_MTU_CHK_RET_SUCCESS)
			return XNAT_CNT_PASS_FRAG_NEEDED;
	}
	/* Many drivers accept XDP frames only while an XDP program of theirs is attached, so the
	 * fast path redirects only between XDP-mode interfaces. */
	if (xdp && egress_mode != XNAT_MODE_XDP)
		return XNAT_CNT_XDP_HANDOFF;
	return XNAT_CONTINUE;
}

/* Decrements TTL, rewrites MACs and redirects a translated packet that fwd_route cleared. */
static __always_inline int fwd_finish(void *ctx, const int xdp, const struct bpf_fib_lookup *fib)
{
	if (xdp)
		return fwd_finish_xdp(ctx, fib);
	return fwd_finish_tc(ctx, fib, 0);
}

/* The interface a destination is routed out of, neighbour or not (0 if unroutable). */
static __always_inline __u32 fwd_egress_ifindex(void *ctx, const int xdp, __be32 saddr,
						__be32 daddr)
{
	struct bpf_fib_lookup fib = {
		.family = XNAT_AF_INET,
		.ipv4_src = saddr,
		.ipv4_dst = daddr,
		.ifindex = ctx_ifindex(ctx, xdp),
	};
	long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);

	return rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH ||
		       rc == BPF_FIB_LKUP_RET_FRAG_NEEDED
		   ? fib.ifindex
		   : 0;
}

#endif
