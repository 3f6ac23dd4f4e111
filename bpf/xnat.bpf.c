/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xnat entry points: XDP and tc ingress on the WAN and LAN interfaces, tc egress for the ICMP
 * errors the kernel itself sends, and the flush program xnat-map runs. Each is a thin call into
 * the one NAT core, naming its hook and its side.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "conntrack.h"
#include "ctx.h"
#include "flow.h"
#include "forward.h"
#include "fragments.h"
#include "icmp_error.h"
#include "map_defs.h"
#include "mss.h"
#include "nat.h"
#include "parse.h"
#include "refusal.h"
#include "sweeper.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Whether an outcome is of the kind whose counters' bits `mask` holds (counters.h). */
static __always_inline int outcome_of_kind(__u64 mask, int outcome)
{
	return outcome >= 0 && outcome < XNAT_CNT_COUNT && ((mask >> outcome) & 1);
}

/*
 * The only place an outcome becomes a verdict.
 *
 * XDP finishes a packet only by redirecting or dropping it. Every packet it lets through goes
 * up untouched, and the tc ingress program on the same interface, which sees every packet the
 * kernel receives, decides it again with the skb at hand: it translates and sends on what XDP
 * could not (next hop unresolved, egress through a tc-mode interface, TTL or MTU for the kernel
 * to answer) and counts the outcome. So an XDP pass is counted once, as a handoff, and the
 * outcome once, by tc. No mark travels with the packet: XDP metadata is refused by some kernels
 * at load time and by some drivers at run time, and tc must finish the packet either way.
 */
static __always_inline int verdict(const int xdp, int outcome)
{
	if (outcome_of_kind(XNAT_REDIRECT_MASK, outcome)) {
		xnat_count(outcome);
		return xdp ? XDP_REDIRECT : TC_ACT_REDIRECT;
	}
	if (outcome_of_kind(XNAT_DROP_MASK, outcome)) {
		xnat_count(outcome);
		return xdp ? XDP_DROP : TC_ACT_SHOT;
	}
	xnat_count(xdp ? XNAT_CNT_XDP_HANDOFF : outcome);
	return xdp ? XDP_PASS : TC_ACT_OK;
}

/* Rewrites a packet to `to` and sends it on: by the fast path when the route allows, else to
 * the kernel (from tc; XDP leaves those to tc untouched, see verdict()). A packet whose source
 * the NAT rewrites and which the kernel must answer with an ICMP error (TTL expiring, too big
 * for the next link with DF set) goes to the kernel untranslated: the error then reaches the
 * real sender quoting what it really sent. A big packet without DF is translated first, since
 * the kernel will fragment and forward it. */
static __always_inline int translate_and_send(void *ctx, const int xdp, const struct xnat_pkt *p,
					      struct xnat_ct_entry *e, const struct xnat_config *cfg,
					      __u32 now)
{
	struct bpf_fib_lookup fib = {};
	struct xnat_ct_key to = {};
	int route, rc;

	nat_target_tuple(e, &to);
	if (p->frag_first) {
		rc = frag_remember(p, &to);
		if (rc != XNAT_CONTINUE)
			return rc;
	}
	route = fwd_route(ctx, xdp, p, &to, cfg, &fib);
	if (xdp && route != XNAT_CONTINUE)
		return route; /* untouched and unaccounted: tc finishes it */
	rc = ct_account(e, p, now);
	if (rc != XNAT_CONTINUE)
		return rc;
	if ((route == XNAT_CNT_PASS_TTL || (route == XNAT_CNT_PASS_FRAG_NEEDED && p->dont_fragment)) &&
	    (p->tuple.saddr != to.saddr || p->tuple.sport != to.sport))
		return XNAT_CNT_PASS_FOR_ERROR;
	rc = nat_rewrite(ctx, xdp, p, &to);
	if (rc != XNAT_CONTINUE)
		return rc;
	mss_clamp(ctx, xdp, p, fib.ifindex, cfg);
	if (!xdp && route == XNAT_CNT_PASS_NO_NEIGH)
		return fwd_finish_tc(ctx, &fib, 1);
	if (route != XNAT_CONTINUE)
		return route;
	return fwd_finish(ctx, xdp, &fib);
}

static __always_inline int handle_icmp_error(void *ctx, const int xdp, const struct xnat_pkt *p,
					     const struct xnat_config *cfg)
{
	struct xnat_ct_key quoted = {}, outer = {};
	struct bpf_fib_lookup fib = {};
	int rc;

	rc = icmp_error_lookup(p, &quoted, &outer);
	if (rc != XNAT_CONTINUE)
		return rc;
	rc = fwd_route(ctx, xdp, p, &outer, cfg, &fib);
	if (xdp && rc != XNAT_CONTINUE)
		return rc; /* untouched: tc finishes it */
	if (icmp_error_rewrite(ctx, xdp, p, &quoted, &outer) != XNAT_CONTINUE)
		return XNAT_CNT_PASS_MALFORMED;
	return rc != XNAT_CONTINUE ? rc : fwd_finish(ctx, xdp, &fib);
}

static __always_inline int xnat_handle(void *ctx, const int xdp, const __u8 side,
				       const struct xnat_config *cfg)
{
	struct xnat_ct_entry *e;
	struct xnat_pkt p = {};
	__u32 now;
	int rc;

	if (!cfg)
		return xdp ? XDP_PASS : TC_ACT_OK;
	rc = parse_packet(ctx, xdp, &p);
	if (rc == XNAT_PARSE_LATER_FRAGMENT)
		return verdict(xdp, frag_forward_later(ctx, xdp, &p, cfg));
	if (!xdp && rc == XNAT_CNT_PASS_L4_PROTO && p.frag_first)
		frag_remember_untranslated(ctx, xdp, &p, cfg);
	if (rc != XNAT_CONTINUE)
		return verdict(xdp, rc);
	if (p.icmp_error)
		return verdict(xdp, handle_icmp_error(ctx, xdp, &p, cfg));

	now = xnat_now_ticks();
	e = bpf_map_lookup_elem(&XNAT_MAP_CT, &p.tuple);
	if (e && ct_is_stale(&p, e, now)) {
		ct_delete_pair(&p.tuple, e);
		xnat_count(XNAT_CNT_CT_EXPIRED);
		e = NULL;
	}
	if (!e) {
		if (side == XNAT_SIDE_WAN)
			rc = flow_new_wan(&p, now, cfg, &e);
		else
			rc = flow_new_lan(ctx, xdp, &p, now, cfg, &e);
		if (rc != XNAT_CONTINUE && refusal_wanted(cfg, side, rc))
			return refusal_verdict(ctx, xdp, side, &p, cfg, now, rc);
		if (!xdp && rc == XNAT_CNT_PASS_NO_MATCH && p.frag_first)
			frag_remember_untranslated(ctx, xdp, &p, cfg);
		if (rc != XNAT_CONTINUE)
			return verdict(xdp, rc);
	}
	return verdict(xdp, translate_and_send(ctx, xdp, &p, e, cfg, now));
}

SEC("xdp")
int XNAT_PROG_XDP_WAN(struct xdp_md *ctx)
{
	return xnat_handle(ctx, XNAT_HOOK_XDP, XNAT_SIDE_WAN, xnat_config_get());
}

SEC("xdp")
int XNAT_PROG_XDP_LAN(struct xdp_md *ctx)
{
	return xnat_handle(ctx, XNAT_HOOK_XDP, XNAT_SIDE_LAN, xnat_config_get());
}

/*
 * PPP, WireGuard and tun interfaces hand tc bare IPv4 packets. A blank Ethernet header in front
 * lets the one NAT core, which finds the IP header at XNAT_L3_OFF, serve them unchanged, and it
 * is the header fwd_finish_tc writes MACs into when the packet is redirected to an Ethernet
 * interface. The header goes away again wherever the packet goes without one: a redirect to an
 * interface without a link header strips mac_len bytes, and a packet passed up loses them too,
 * since tc ingress pulls mac_len (now the header's 14 bytes) before IP sees the packet.
 * Returns XNAT_CONTINUE when the packet has the header, else a counter saying why not.
 */
static __always_inline int tc_give_link_header(struct __sk_buff *skb)
{
	__be16 proto = bpf_htons(ETH_P_IP);

	if (skb->protocol != proto)
		return XNAT_CNT_PASS_NOT_IPV4;
	if (bpf_skb_change_head(skb, ETH_HLEN, 0) ||
	    bpf_skb_store_bytes(skb, __builtin_offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0))
		return XNAT_CNT_PASS_MALFORMED;
	return XNAT_CONTINUE;
}

static __always_inline int tc_ingress(struct __sk_buff *skb, const __u8 side)
{
	const struct xnat_config *cfg = xnat_config_get();
	int rc;

	/* A tagged frame reaches the parent's tc ingress with its tag already taken off (into
	 * vlan_tci) and before the kernel hands it to the VLAN's sub-interface: it belongs to
	 * that sub-interface, where xnat runs if it is configured there, not to this one. */
	if (skb->vlan_present)
		return verdict(XNAT_HOOK_TC, XNAT_CNT_PASS_NOT_IPV4);
	if (cfg && (cfg->l3_sides & XNAT_L3_SIDE(side))) {
		rc = tc_give_link_header(skb);
		if (rc != XNAT_CONTINUE)
			return verdict(XNAT_HOOK_TC, rc);
	}
	return xnat_handle(skb, XNAT_HOOK_TC, side, cfg);
}

SEC("tc")
int XNAT_PROG_TC_WAN(struct __sk_buff *skb)
{
	return tc_ingress(skb, XNAT_SIDE_WAN);
}

SEC("tc")
int XNAT_PROG_TC_LAN(struct __sk_buff *skb)
{
	return tc_ingress(skb, XNAT_SIDE_LAN);
}

/* Egress sees every packet the interface sends, xnat's own redirects included, and acts only on
 * ICMP errors. Two loads from the linear part settle the rest before the full parse, which
 * would pull (and perhaps unclone) the headers first. */
static __always_inline int egress_may_be_icmp(struct __sk_buff *skb, const __u32 l3)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + l3;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if ((void *)(iph + 1) > end)
		return 1; /* headers outside the linear part: the full parse decides */
	return iph->protocol == IPPROTO_ICMP;
}

/* Egress, both interfaces: the ICMP errors the gateway's own kernel sends about packets xnat
 * handed it translated (TTL expired, fragmentation needed) quote the translated form; put the
 * quote back in the form its recipient sent. Everything else passes untouched and uncounted:
 * this hook also sees every packet tc redirects. Nothing is added in front here (unlike
 * ingress): a header pushed on egress would be sent. */
static __always_inline int tc_egress(struct __sk_buff *skb, const __u32 l3)
{
	struct xnat_ct_key quoted = {}, outer = {};
	struct xnat_pkt p = {};

	if (!egress_may_be_icmp(skb, l3))
		return TC_ACT_OK;
	if (parse_packet_at(skb, XNAT_HOOK_TC, l3, &p) != XNAT_CONTINUE || !p.icmp_error)
		return TC_ACT_OK;
	if (icmp_error_lookup(&p, &quoted, &outer) == XNAT_CONTINUE)
		icmp_error_rewrite_at(skb, XNAT_HOOK_TC, l3, &p, &quoted, &outer);
	return TC_ACT_OK;
}

SEC("tc")
int XNAT_PROG_TC_EGRESS(struct __sk_buff *skb)
{
	return tc_egress(skb, XNAT_L3_OFF);
}

SEC("tc")
int XNAT_PROG_TC_EGRESS_L3(struct __sk_buff *skb)
{
	return tc_egress(skb, 0);
}

struct flush_state {
	__u64 flows;
	__be32 addr; /* 0: every flow */
};

static __always_inline int key_holds(const struct xnat_ct_key *k, __be32 addr)
{
	return k->saddr == addr || k->daddr == addr;
}

static long flush_one(void *map __attribute__((unused)), struct xnat_ct_key *key,
		      struct xnat_ct_entry *e, struct flush_state *st)
{
	if (st->addr && !key_holds(key, st->addr) && !key_holds(&e->peer, st->addr))
		return 0;
	/* A pair is ended through its original half; a reply half is ended only as an orphan. */
	if (e->dir == XNAT_DIR_ORIGINAL || !bpf_map_lookup_elem(&XNAT_MAP_CT, &e->peer)) {
		ct_delete_pair(key, e);
		st->flows += e->dir == XNAT_DIR_ORIGINAL;
	}
	return 0;
}

/* Starts the expiry sweeper. Run once by xnat-load (and the tests) through BPF_PROG_TEST_RUN;
 * never attached. Returns 0 when the sweeper runs. */
SEC("xdp")
int XNAT_PROG_SWEEP_ARM(struct xdp_md *ctx __attribute__((unused)))
{
	return sweep_arm() ? 1 : 0;
}

/* Ends every flow the filter selects the way the datapath does, mapping references included.
 * Run by xnat-map flush and xnat-load --follow-wan through BPF_PROG_TEST_RUN, which must pass
 * the filter as ctx_in; returns the number of flows ended. */
SEC("syscall")
int XNAT_PROG_FLUSH(struct xnat_flush_filter *filter)
{
	struct flush_state st = { .flows = 0, .addr = filter->addr };

	bpf_for_each_map_elem(&XNAT_MAP_CT, flush_one, &st, 0);
	return (int)st.flows;
}

#ifdef XNAT_BUILD_TAG
/* A build of the same code that differs in its bytes only (tests/e2e/test_hitless.sh replaces
 * the running programs with it). The section is no map and no program: libbpf skips it. */
static const char xnat_build_tag[] __attribute__((section(".xnat_build_tag"), used)) = XNAT_BUILD_TAG;
#endif
