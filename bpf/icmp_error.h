/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * ICMP errors about translated packets (RFC 5508). An error quotes the packet that caused it
 * as that packet looked where it failed, so behind a NAT the quote is in the other side's
 * form. The quoted tuple T, reversed, is the key of the flow's other half H, and H's peer K is
 * the tuple as the error's recipient sent it. The error is rewritten so that:
 *   - the quoted packet reads K again (addresses, ports or echo id, its IP and L4 checksums);
 *   - the error goes to K's source;
 *   - it comes from K's destination when the NAT had changed that destination (so the
 *     recipient hears from the address it talked to, and no internal address leaks);
 *   - the ICMP checksum covers every changed quoted byte exactly once (it has no
 *     pseudo-header), and the outer IP checksum covers the new outer addresses.
 * Quoted bytes are patched by direct access on both hooks: ICMP is never CHECKSUM_PARTIAL.
 */
#ifndef XNAT_BPF_ICMP_ERROR_H
#define XNAT_BPF_ICMP_ERROR_H

#include "csum.h"
#include "map_defs.h"
#include "nat.h"
#include "parse.h"

/* Finds the original form of the quoted packet and the new outer tuple. */
static __always_inline int icmp_error_lookup(const struct xnat_pkt *p, struct xnat_ct_key *quoted,
					     struct xnat_ct_key *outer)
{
	struct xnat_ct_key rkey = {
		.saddr = p->inner.tuple.daddr,
		.daddr = p->inner.tuple.saddr,
		.sport = p->inner.tuple.dport,
		.dport = p->inner.tuple.sport,
		.proto = p->inner.tuple.proto,
	};
	const struct xnat_ct_entry *h = bpf_map_lookup_elem(&XNAT_MAP_CT, &rkey);

	if (!h)
		return XNAT_CNT_PASS_ICMP_NO_FLOW;
	*quoted = h->peer;
	outer->saddr = p->inner.tuple.daddr != quoted->daddr ? quoted->daddr : p->tuple.saddr;
	outer->daddr = quoted->saddr;
	outer->proto = IPPROTO_ICMP;
	return XNAT_CONTINUE;
}

/* Rewrites the error, whose IPv4 header starts at l3 (see parse_packet_at), in place.
 * Returns XNAT_CONTINUE or a counter. */
static __always_inline int icmp_error_rewrite_at(void *ctx, const int xdp, const __u32 l3,
						 const struct xnat_pkt *p,
						 const struct xnat_ct_key *quoted,
						 const struct xnat_ct_key *outer)
{
	void *data = ctx_data(ctx, xdp), *end = ctx_data_end(ctx, xdp);
	struct iphdr *iph = data + l3;
	struct xnat_icmphdr *ih = data + (p->l4_off & 0xff);
	struct iphdr *in_iph = data + (p->inner.l3_off & 0xff);
	__u8 *in_l4 = data + (p->inner.l4_off & 0xff);
	__u16 *in_csum = (void *)in_l4 + (p->inner.l4_csum_off & 0x1f);
	const struct xnat_ct_key *was = &p->inner.tuple;
	__u32 in_addr = 0, in_port = 0, icmp_diff, outer_addr = 0;
	__u16 old_check, new_check;

	if ((void *)(iph + 1) > end || (void *)(ih + 1) > end || (void *)(in_iph + 1) > end ||
	    (void *)(in_l4 + 8) > end || (void *)(in_csum + 1) > end)
		return XNAT_CNT_PASS_MALFORMED;

	/* The quoted IP header. */
	in_addr = csum_diff32(in_addr, was->saddr, quoted->saddr);
	in_addr = csum_diff32(in_addr, was->daddr, quoted->daddr);
	in_iph->saddr = quoted->saddr;
	in_iph->daddr = quoted->daddr;
	old_check = in_iph->check;
	in_iph->check = csum_apply(old_check, in_addr);
	icmp_diff = csum_add(in_addr, csum_diff16(0, old_check, in_iph->check));

	/* The quoted ports or echo identifier, and the quoted L4 checksum when it is there. */
	if (was->proto == IPPROTO_ICMP) {
		in_port = csum_diff16(0, echo_id(was), echo_id(quoted));
		((__be16 *)in_l4)[XNAT_ICMP_ID_OFF / 2] = echo_id(quoted);
	} else {
		in_port = csum_diff16(in_port, was->sport, quoted->sport);
		in_port = csum_diff16(in_port, was->dport, quoted->dport);
		((__be16 *)in_l4)[0] = quoted->sport;
		((__be16 *)in_l4)[1] = quoted->dport;
	}
	icmp_diff = csum_add(icmp_diff, in_port);
	if (p->inner.l4_csum_off) {
		old_check = *in_csum;
		if (was->proto == IPPROTO_ICMP)
			new_check = csum_apply(old_check, in_port);
		else
			new_check = csum_apply(old_check, csum_add(in_addr, in_port));
		if (was->proto == IPPROTO_UDP && new_check == 0)
			new_check = 0xffff;
		*in_csum = new_check;
		icmp_diff = csum_add(icmp_diff, csum_diff16(0, old_check, new_check));
	}
	ih->checksum = csum_apply(ih->checksum, icmp_diff);

	/* The outer header. */
	outer_addr = csum_diff32(outer_addr, p->tuple.saddr, outer->saddr);
	outer_addr = csum_diff32(outer_addr, p->tuple.daddr, outer->daddr);
	iph->saddr = outer->saddr;
	iph->daddr = outer->daddr;
	iph->check = csum_apply(iph->check, outer_addr);
	xnat_count(XNAT_CNT_ICMP_ERROR_TRANSLATED);
	return XNAT_CONTINUE;
}

static __always_inline int icmp_error_rewrite(void *ctx, const int xdp, const struct xnat_pkt *p,
					      const struct xnat_ct_key *quoted,
					      const struct xnat_ct_key *outer)
{
	return icmp_error_rewrite_at(ctx, xdp, XNAT_L3_OFF, p, quoted, outer);
}

#endif
