/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Fragmented datagrams (RFC 4787 REQ-14). The first fragment holds the L4 header and goes
 * through the NAT like any packet; its translation is then kept in XNAT_MAP_FRAG under the
 * datagram's wire identity as it arrived (see include/xnat/frag.h). A later fragment has no
 * ports: it takes the addresses its first fragment was given and is routed like it.
 *
 * A later fragment that finds no live entry (it overtook its first fragment, or the first was
 * never translated) cannot be translated. Handing it to the kernel would forward it with the
 * address it arrived with, an internal address out of the WAN, so it is dropped whenever the
 * kernel would forward it between xnat's interfaces. One for the gateway itself goes up: the
 * kernel reassembles its own datagrams, and a stray piece of a translated one expires there.
 *
 * The later-fragment path is its own branch off the parser, before any L4 work, so it adds no
 * states to the verification of the main path.
 */
#ifndef XNAT_BPF_FRAG_H
#define XNAT_BPF_FRAG_H

#include "conntrack.h"
#include "csum.h"
#include "forward.h"
#include "map_defs.h"
#include "parse.h"

#define XNAT_FRAG_LIFETIME_NS ((__u64)XNAT_FRAG_LIFETIME_S * 1000000000ull)

static __always_inline void frag_key(const struct xnat_pkt *p, struct xnat_frag_key *k)
{
	k->saddr = p->tuple.saddr;
	k->daddr = p->tuple.daddr;
	k->id = p->frag_id;
	k->proto = p->tuple.proto;
}

/* Keeps the translation of a first fragment for the rest of its datagram. Returns
 * XNAT_CONTINUE, or the
 * drop counter when a live entry of this datagram identity names other addresses: the first
 * translation wins, since later fragments already sent may have followed it, and this datagram
 * could not be told apart from that one. */
static __always_inline int frag_remember(const struct xnat_pkt *p, const struct xnat_ct_key *to)
{
	struct xnat_frag_key k = {};
	struct xnat_frag_entry fresh = {
		.saddr = to->saddr,
		.daddr = to->daddr,
		.flow = p->tuple,
	};
	struct xnat_frag_entry *old;
	__u64 now = xnat_now();
	__u64 flags = BPF_NOEXIST;

	frag_key(p, &k);
	fresh.expires_ns = now + XNAT_FRAG_LIFETIME_NS;
	old = bpf_map_lookup_elem(&XNAT_MAP_FRAG, &k);
	if (old) {
		if (old->expires_ns > now) {
			if (old->saddr != to->saddr || old->daddr != to->daddr)
				return XNAT_CNT_DROP_FRAG_CLASH;
			return XNAT_CONTINUE; /* the same datagram again (or XDP handed it to tc) */
		}
		flags = BPF_ANY; /* a dead entry is replaced */
	}
	if (bpf_map_update_elem(&XNAT_MAP_FRAG, &k, &fresh, flags) == 0)
		xnat_count(XNAT_CNT_FRAG_TRACKED);
	return XNAT_CONTINUE;
}

/* A later fragment without a translation: dropped if the kernel would forward it between xnat's
 * interfaces (untranslated, that is a mistranslation), else left to the kernel. */
static __always_inline int frag_orphan(void *ctx, const int xdp, const struct xnat_pkt *p,
				       const struct xnat_config *cfg)
{
	__u32 egress = fwd_egress_ifindex(ctx, xdp, p->tuple.saddr, p->tuple.daddr);

	if (egress && (egress == cfg->wan_ifindex || egress == cfg->lan_ifindex))
		return XNAT_CNT_DROP_FRAG_NO_FIRST;
	return XNAT_CNT_PASS_FRAGMENT;
}

/* A first fragment that no rule translates (a masquerade's excluded destination, a routed
 * subnet, a protocol xnat leaves alone) goes to the kernel untouched, and the kernel may forward
 * it between WAN and LAN: its later fragments must follow it there rather than be dropped as
 * orphans. The entry says so with no flow (flow.proto 0). tc only: XDP passes such a packet up
 * to tc, which records it. */
static __always_inline void frag_remember_untranslated(void *ctx, const int xdp,
						       const struct xnat_pkt *p,
						       const struct xnat_config *cfg)
{
	struct xnat_frag_key k = {};
	struct xnat_frag_entry fresh = { .saddr = p->tuple.saddr, .daddr = p->tuple.daddr };
	struct xnat_frag_entry *old;
	__u64 now;

	if (frag_orphan(ctx, xdp, p, cfg) != XNAT_CNT_DROP_FRAG_NO_FIRST)
		return; /* for the gateway itself: its later fragments go up anyway */
	frag_key(p, &k);
	now = xnat_now();
	fresh.expires_ns = now + XNAT_FRAG_LIFETIME_NS;
	old = bpf_map_lookup_elem(&XNAT_MAP_FRAG, &k);
	if (old && old->expires_ns > now)
		return;
	if (bpf_map_update_elem(&XNAT_MAP_FRAG, &k, &fresh, BPF_ANY) == 0)
		xnat_count(XNAT_CNT_FRAG_TRACKED);
}

/* Rewrites the addresses of a later fragment: the IP header is all it has to translate. */
static __always_inline int frag_rewrite(void *ctx, const int xdp, const struct xnat_pkt *p,
					const struct xnat_ct_key *to)
{
	void *data, *end;
	struct iphdr *iph;
	__u32 diff = 0;

	if (p->tuple.saddr == to->saddr && p->tuple.daddr == to->daddr)
		return XNAT_CONTINUE;
	diff = csum_diff32(diff, p->tuple.saddr, to->saddr);
	diff = csum_diff32(diff, p->tuple.daddr, to->daddr);
	data = ctx_data(ctx, xdp);
	end = ctx_data_end(ctx, xdp);
	iph = data + XNAT_L3_OFF;
	if ((void *)(iph + 1) > end)
		return XNAT_CNT_PASS_MALFORMED;
	iph->saddr = to->saddr;
	iph->daddr = to->daddr;
	iph->check = csum_apply(iph->check, diff);
	return XNAT_CONTINUE;
}

/* frag_forward_later's route lookup lives here rather than on its stack: inlined into the
 * NAT core, its own 64 bytes would push the deepest chain of calls (with MSS clamping's two
 * global functions) past the 512 bytes Debian 6.1's verifier allows. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_fib_lookup);
} xnat_frag_fib SEC(".maps");

/* A fragment other than the first: translated and sent as its first fragment was, by the same
 * rules translate_and_send applies (see xnat.bpf.c), or the outcome saying why not. */
static __always_inline int frag_forward_later(void *ctx, const int xdp, const struct xnat_pkt *p,
					      const struct xnat_config *cfg)
{
	struct xnat_frag_key k = {};
	struct bpf_fib_lookup *fib;
	__u32 zero = 0;
	struct xnat_ct_key to = {}, flow;
	struct xnat_frag_entry *f;
	struct xnat_ct_entry *e;
	int route, rc;

	fib = bpf_map_lookup_elem(&xnat_frag_fib, &zero);
	if (!fib)
		return XNAT_CNT_PASS_FRAGMENT;
	__builtin_memset(fib, 0, sizeof(*fib));
	frag_key(p, &k);
	f = bpf_map_lookup_elem(&XNAT_MAP_FRAG, &k);
	if (!f || f->expires_ns <= xnat_now())
		return frag_orphan(ctx, xdp, p, cfg);
	if (!f->flow.proto)
		return XNAT_CNT_PASS_FRAGMENT; /* its first went to the kernel untranslated */
	to.saddr = f->saddr;
	to.daddr = f->daddr;
	to.proto = p->tuple.proto;
	flow = f->flow;
	route = fwd_route(ctx, xdp, p, &to, cfg, fib);
	if (xdp && route != XNAT_CONTINUE)
		return route; /* untouched and unaccounted: tc finishes it */
	/* The flow counts the datagram's every fragment, as conntrack (which sees it whole) does. */
	e = bpf_map_lookup_elem(&XNAT_MAP_CT, &flow);
	if (e) {
		e->packets += 1;
		e->bytes += p->tot_len;
	}
	if ((route == XNAT_CNT_PASS_TTL || (route == XNAT_CNT_PASS_FRAG_NEEDED && p->dont_fragment)) &&
	    p->tuple.saddr != to.saddr)
		return XNAT_CNT_PASS_FOR_ERROR;
	rc = frag_rewrite(ctx, xdp, p, &to);
	if (rc != XNAT_CONTINUE)
		return rc;
	if (!xdp && route == XNAT_CNT_PASS_NO_NEIGH)
		return fwd_finish_tc(ctx, fib, 1);
	if (route != XNAT_CONTINUE)
		return route;
	return fwd_finish(ctx, xdp, fib);
}

#endif
