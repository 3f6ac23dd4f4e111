/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Saying no (RFC 5508 REQ-8): a new flow refused for lack of room - table full of assured flows,
 * no free external port, a host at its quota - can be answered with ICMP destination unreachable,
 * code 13 (communication administratively prohibited), so that the sender fails at once instead
 * of retrying into a timeout. Per side and rate-limited; off for the WAN side by default, where
 * the refused packets of a flood carry spoofed sources and each answer would be backscatter.
 *
 * The refused packet itself becomes the error and leaves by the interface it came in on (a
 * redirect to it, in both hooks):
 *   Ethernet: the packet's MACs swapped
 *   IPv4:     45 c0 len 0000 0000 40 01 csum, from the gateway, to the packet's source
 *   ICMP:     03 0d csum 00000000
 *   quote:    the packet's IP header and the first 8 bytes of its payload (20 for TCP, so the
 *             quote holds the TCP checksum field; see refusal_partial)
 */
#ifndef XNAT_BPF_REFUSAL_H
#define XNAT_BPF_REFUSAL_H

#include "csum.h"
#include "ctx.h"
#include "map_defs.h"
#include "parse.h"

#define XNAT_ICMP_PKT_FILTERED 13
#define XNAT_REFUSAL_HDR_LEN 28 /* the error's own IP and ICMP headers */
#define XNAT_REFUSAL_QUOTE_MAX (60 + 20)
#define XNAT_REFUSAL_TOS 0xc0   /* internetwork control, as the kernel marks its ICMP errors */
#define XNAT_REFUSAL_TTL 64

struct refusal_rate {
	__u32 tick;
	__u32 sent;
};

/* Not per CPU, so the limit is one figure for the gateway; two CPUs racing on it may let a few
 * more through in a tick, which is harmless. Not pinned: a reload starts a fresh tick. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct refusal_rate);
} XNAT_MAP_REFUSAL SEC(".maps");

static __always_inline int refusal_wanted(const struct xnat_config *cfg, __u8 side, int outcome)
{
	if (!(cfg->refusal_icmp & XNAT_REFUSAL_ICMP_SIDE(side)))
		return 0;
	return outcome == XNAT_CNT_DROP_CT_FULL || outcome == XNAT_CNT_DROP_PORTS_EXHAUSTED ||
	       outcome == XNAT_CNT_DROP_HOST_FLOWS || outcome == XNAT_CNT_DROP_HOST_PORTS;
}

static __always_inline int refusal_rate_ok(const struct xnat_config *cfg, __u32 now)
{
	__u32 zero = 0;
	struct refusal_rate *r = bpf_map_lookup_elem(&XNAT_MAP_REFUSAL, &zero);

	if (!r)
		return 0;
	if (r->tick != now) {
		r->tick = now;
		r->sent = 0;
	}
	if (r->sent >= cfg->refusal_icmp_rate)
		return 0;
	r->sent++;
	return 1;
}

struct refusal_msg {
	struct xnat_icmphdr icmp;
	__u8 quote[XNAT_REFUSAL_QUOTE_MAX];
};

/*
 * A TCP or UDP packet from a local socket (a container behind a veth) may still be
 * CHECKSUM_PARTIAL: its checksum field holds only the folded pseudo-header sum, and whoever
 * transmits the skb will sum the bytes from the L4 header to the end and write the result
 * there. In the error those bytes are the quoted L4 header, so after that they sum to the
 * complement of the pseudo-header sum, and the ICMP checksum must be computed for that. The
 * state cannot be read from BPF; a field equal to the pseudo-header sum is taken as the sign
 * (a finished checksum equals it only when the segment's own bytes sum to zero).
 */
static __always_inline int refusal_partial(const struct xnat_pkt *p, __u16 field)
{
	__u32 sum = 0;
	__u16 l4_len = p->tot_len - (__u16)(p->l4_off - XNAT_L3_OFF);

	if (p->tuple.proto != IPPROTO_TCP && (p->tuple.proto != IPPROTO_UDP || p->l4_csum_none))
		return 0;
	sum = csum_add(sum, p->tuple.saddr);
	sum = csum_add(sum, p->tuple.daddr);
	sum = csum_add(sum, bpf_htons(p->tuple.proto));
	sum = csum_add(sum, bpf_htons(l4_len));
	return field == (__u16)~csum_fold(sum);
}

/* Turns the refused packet into the error. 0 when it is ready to leave; the packet is to be
 * dropped otherwise. */
static __always_inline int refusal_build(void *ctx, const int xdp, const struct xnat_pkt *p,
					 __be32 from)
{
	void *data = ctx_data(ctx, xdp), *end = ctx_data_end(ctx, xdp);
	__u32 ip_len = p->l4_off - XNAT_L3_OFF;
	__u32 qlen = ip_len + (p->tuple.proto == IPPROTO_TCP ? 20 : 8);
	struct refusal_msg msg = {};
	struct iphdr ip = {};
	__u8 eth[2 * ETH_ALEN];
	__u16 *csum = data + (p->l4_off & 0xff) + (p->l4_csum_off & 0x1f);
	__u16 field = 0;
	__s64 sum;
	int i;

	if (qlen > XNAT_REFUSAL_QUOTE_MAX || qlen < 28)
		return -1;
	for (i = 0; i < XNAT_REFUSAL_QUOTE_MAX / 4; i++) {
		__u32 *w = data + XNAT_L3_OFF + i * 4;

		if ((__u32)i * 4 >= qlen)
			break;
		if ((void *)(w + 1) > end)
			return -1;
		((__u32 *)msg.quote)[i] = *w;
	}
	if ((void *)((__u8 *)data + 2 * ETH_ALEN) > end)
		return -1;
	__builtin_memcpy(eth, (__u8 *)data + ETH_ALEN, ETH_ALEN); /* to the sender */
	__builtin_memcpy(eth + ETH_ALEN, data, ETH_ALEN);
	if ((void *)(csum + 1) <= end)
		field = *csum;

	msg.icmp.type = XNAT_ICMP_DEST_UNREACH;
	msg.icmp.code = XNAT_ICMP_PKT_FILTERED;
	if (!xdp && refusal_partial(p, field)) {
		/* The header part, and the L4 part as it will sum once finished: ~field. */
		if (ip_len > 60)
			return -1;
		/* The mask shows older verifiers the bound they cannot derive (a multiple of 4, <= 60). */
		sum = bpf_csum_diff(0, 0, (__be32 *)&msg, sizeof(msg.icmp) + (ip_len & 0x3c), 0);
		if (sum < 0)
			return -1;
		sum = csum_add((__u32)sum, (__u16)~field);
	} else {
		sum = bpf_csum_diff(0, 0, (__be32 *)&msg, sizeof(msg), 0);
		if (sum < 0)
			return -1;
	}
	msg.icmp.checksum = csum_fold((__u32)sum);

	ip.version = 4;
	ip.ihl = 5;
	ip.tos = XNAT_REFUSAL_TOS;
	ip.tot_len = bpf_htons((__u16)(XNAT_REFUSAL_HDR_LEN + qlen));
	ip.ttl = XNAT_REFUSAL_TTL;
	ip.protocol = IPPROTO_ICMP;
	ip.saddr = from;
	ip.daddr = p->tuple.saddr;
	sum = bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0);
	if (sum < 0)
		return -1;
	ip.check = csum_fold((__u32)sum);

	if (xdp) {
		struct xdp_md *x = ctx;
		int old_len = (int)ctx_len(ctx, xdp);

		/* Room in front: the old Ethernet header ends up where the new ICMP header goes,
		 * and the quote is already in place after it. Then cut what follows the quote. */
		if (bpf_xdp_adjust_head(x, -XNAT_REFUSAL_HDR_LEN) ||
		    bpf_xdp_adjust_tail(x, (int)(XNAT_L3_OFF + qlen) - old_len))
			return -1;
		data = (void *)(long)x->data;
		end = (void *)(long)x->data_end;
		if (data + XNAT_L3_OFF + XNAT_REFUSAL_HDR_LEN > end)
			return -1;
		__builtin_memcpy(data, eth, sizeof(eth));
		*(__be16 *)(data + 2 * ETH_ALEN) = bpf_htons(ETH_P_IP);
		__builtin_memcpy(data + XNAT_L3_OFF, &ip, sizeof(ip));
		__builtin_memcpy(data + XNAT_L3_OFF + sizeof(ip), &msg.icmp, sizeof(msg.icmp));
		return 0;
	}
	{
		struct __sk_buff *skb = ctx;

		if (skb->gso_segs > 1 ||
		    bpf_skb_change_tail(skb, XNAT_L3_OFF + qlen, 0) ||
		    bpf_skb_adjust_room(skb, XNAT_REFUSAL_HDR_LEN, BPF_ADJ_ROOM_MAC, 0) ||
		    bpf_skb_store_bytes(skb, 0, eth, sizeof(eth), 0) ||
		    bpf_skb_store_bytes(skb, XNAT_L3_OFF, &ip, sizeof(ip), 0) ||
		    bpf_skb_store_bytes(skb, XNAT_L3_OFF + sizeof(ip), &msg.icmp, sizeof(msg.icmp), 0))
			return -1;
		return 0;
	}
}

/* The verdict for a refused new flow: answered with the error when configured and within the
 * rate, dropped otherwise. The outcome is counted here, the answer besides it. */
static __always_inline int refusal_verdict(void *ctx, const int xdp, __u8 side,
					   const struct xnat_pkt *p, const struct xnat_config *cfg,
					   __u32 now, int outcome)
{
	__be32 from = side == XNAT_SIDE_LAN && cfg->lan_addr ? cfg->lan_addr : p->tuple.daddr;

	xnat_count(outcome);
	if (!refusal_rate_ok(cfg, now)) {
		xnat_count(XNAT_CNT_REFUSAL_ICMP_LIMITED);
		return xdp ? XDP_DROP : TC_ACT_SHOT;
	}
	if (refusal_build(ctx, xdp, p, from))
		return xdp ? XDP_DROP : TC_ACT_SHOT;
	/* XDP redirects to its own interface rather than XDP_TX: a veth wakes its peer for a
	 * redirected frame, but for XDP_TX only when the peer runs an XDP program of its own. */
	if (xdp && bpf_redirect_map(&XNAT_MAP_TX_PORTS, ctx_ifindex(ctx, xdp), 0) != XDP_REDIRECT)
		return XDP_DROP;
	xnat_count(XNAT_CNT_REFUSAL_ICMP_SENT);
	return xdp ? XDP_REDIRECT : (int)bpf_redirect(ctx_ifindex(ctx, xdp), 0);
}

#endif
