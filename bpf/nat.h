/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Rewriting a packet to a new tuple, with incremental checksums.
 *
 * XDP sees final checksums (a NIC delivers them whole), so it patches every field directly.
 * tc may see a CHECKSUM_PARTIAL skb from a local socket whose L4 field holds only the
 * pseudo-header sum: there the kernel helper must apply the L4 field's change, with
 * BPF_F_PSEUDO_HDR for the addresses (part of the pseudo-header) and without it for the ports
 * (part of the payload the device will sum). Getting this wrong is what makes offloaded veth
 * traffic fail. The IP header's checksum is always whole, so both hooks patch it in place.
 */
#ifndef XNAT_BPF_NAT_H
#define XNAT_BPF_NAT_H

#include "csum.h"
#include "parse.h"

/* The tuple a packet of this half is rewritten to: the peer's key reversed. */
static __always_inline void nat_target_tuple(const struct xnat_ct_entry *e, struct xnat_ct_key *to)
{
	to->saddr = e->peer.daddr;
	to->daddr = e->peer.saddr;
	to->sport = e->peer.dport;
	to->dport = e->peer.sport;
	to->proto = e->peer.proto;
}

struct nat_delta {
	__u32 addr; /* checksum difference of the address words */
	__u32 port; /* checksum difference of the port words */
	__u8 addr_changed;
	__u8 port_changed;
};

/* An ICMP echo's identifier: the request carries it as the source port, the reply as the
 * destination port, and the other is zero. */
static __always_inline __be16 echo_id(const struct xnat_ct_key *t)
{
	return t->sport | t->dport;
}

static __always_inline void nat_compute_delta(const struct xnat_ct_key *from,
					      const struct xnat_ct_key *to, struct nat_delta *d)
{
	if (from->saddr != to->saddr)
		d->addr = csum_diff32(d->addr, from->saddr, to->saddr);
	if (from->daddr != to->daddr)
		d->addr = csum_diff32(d->addr, from->daddr, to->daddr);
	d->addr_changed = from->saddr != to->saddr || from->daddr != to->daddr;
	if (from->proto == IPPROTO_ICMP) {
		d->port_changed = echo_id(from) != echo_id(to);
		if (d->port_changed)
			d->port = csum_diff16(0, echo_id(from), echo_id(to));
		return;
	}
	if (from->sport != to->sport)
		d->port = csum_diff16(d->port, from->sport, to->sport);
	if (from->dport != to->dport)
		d->port = csum_diff16(d->port, from->dport, to->dport);
	d->port_changed = from->sport != to->sport || from->dport != to->dport;
}

/* The L4 checksum's update in tc, where the skb's checksum state decides what the field holds.
 * Only the helper can tell: BPF sees no ip_summed, and bpf_csum_level names only
 * CHECKSUM_UNNECESSARY, so a CHECKSUM_PARTIAL skb cannot be told from a CHECKSUM_NONE one. */
static __always_inline int nat_l4_csum_tc(struct __sk_buff *skb, const struct xnat_pkt *p,
					  const struct nat_delta *d)
{
	__u32 csum_off = p->l4_off + p->l4_csum_off;
	__u64 l4_flags = p->tuple.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (d->addr_changed && p->tuple.proto != IPPROTO_ICMP &&
	    bpf_l4_csum_replace(skb, csum_off, 0, d->addr, l4_flags | BPF_F_PSEUDO_HDR))
		return XNAT_CNT_PASS_MALFORMED;
	if (d->port_changed && bpf_l4_csum_replace(skb, csum_off, 0, d->port, l4_flags))
		return XNAT_CNT_PASS_MALFORMED;
	return XNAT_CONTINUE;
}

/* Both hooks write the headers in place, and only tc's L4 checksum goes through the kernel:
 * a helper call per field (bpf_skb_store_bytes re-checks bounds and writability every time)
 * is what made tc's rewrite cost several times XDP's. */
static __always_inline int nat_rewrite_headers(void *ctx, const int xdp, const struct xnat_pkt *p,
					       const struct xnat_ct_key *to,
					       const struct nat_delta *d)
{
	void *data = ctx_data(ctx, xdp), *end = ctx_data_end(ctx, xdp);
	struct iphdr *iph = data + XNAT_L3_OFF;
	/* Masks give the verifier a bound for the variable L4 offset. */
	__u8 *l4 = data + (p->l4_off & 0xff);
	__u16 *csum = (void *)l4 + (p->l4_csum_off & 0x1f);
	__be16 *ports = (void *)l4;
	__u32 l4_diff = d->port;
	__u16 c;

	if ((void *)(iph + 1) > end || (void *)(l4 + 8) > end || (void *)(csum + 1) > end)
		return XNAT_CNT_PASS_MALFORMED;
	if (d->addr_changed) {
		iph->saddr = to->saddr;
		iph->daddr = to->daddr;
		iph->check = csum_apply(iph->check, d->addr);
	}
	if (p->tuple.proto == IPPROTO_ICMP) {
		/* ICMP has no pseudo-header: only the identifier counts. */
		ports[XNAT_ICMP_ID_OFF / 2] = echo_id(to);
	} else {
		ports[0] = to->sport;
		ports[1] = to->dport;
		l4_diff = csum_add(d->addr, d->port);
	}
	if (!xdp || p->l4_csum_none)
		return XNAT_CONTINUE;
	c = csum_apply(*csum, l4_diff);
	if (p->tuple.proto == IPPROTO_UDP && c == 0)
		c = 0xffff; /* 0 would mean "no checksum" */
	*csum = c;
	return XNAT_CONTINUE;
}

/* Rewrites the packet from p->tuple to *to. Returns XNAT_CONTINUE or a counter. */
static __always_inline int nat_rewrite(void *ctx, const int xdp, const struct xnat_pkt *p,
				       const struct xnat_ct_key *to)
{
	struct nat_delta d = {};
	int rc;

	nat_compute_delta(&p->tuple, to, &d);
	if (!d.addr_changed && !d.port_changed)
		return XNAT_CONTINUE;
	rc = nat_rewrite_headers(ctx, xdp, p, to, &d);
	if (rc != XNAT_CONTINUE || xdp || p->l4_csum_none)
		return rc;
	return nat_l4_csum_tc(ctx, p, &d);
}

#endif
