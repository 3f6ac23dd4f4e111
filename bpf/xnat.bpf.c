/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * xnat entry points: XDP and tc ingress on the WAN and LAN interfaces. Each is a thin call
 * into the one NAT core, naming its hook and its side.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "conntrack.h"
#include "ctx.h"
#include "forward.h"
#include "maps.h"
#include "nat.h"
#include "parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int outcome_is_drop(int outcome)
{
	return outcome == XNAT_CNT_DROP_CT_FULL || outcome == XNAT_CNT_DROP_CT_COLLISION ||
	       outcome == XNAT_CNT_DROP_TX_PORT;
}

/* The only place an outcome becomes a verdict. */
static __always_inline int verdict(const int xdp, int outcome)
{
	xnat_count(outcome);
	if (outcome == XNAT_CNT_REDIRECTED)
		return xdp ? XDP_REDIRECT : TC_ACT_REDIRECT;
	if (outcome_is_drop(outcome))
		return xdp ? XDP_DROP : TC_ACT_SHOT;
	return xdp ? XDP_PASS : TC_ACT_OK;
}

/* A packet without state: a forward rule for its destination on this side creates a flow. */
static __always_inline int flow_from_rule(const struct xnat_pkt *p, __u8 side, __u64 now,
					  const struct xnat_config *cfg, struct xnat_ct_entry **out)
{
	struct xnat_fwd_key key = {
		.addr = p->tuple.daddr,
		.port = p->tuple.dport,
		.proto = p->tuple.proto,
		.side = side,
	};
	const struct xnat_fwd_target *target;
	__u32 zero = 0;
	void *table;

	table = bpf_map_lookup_elem(&XNAT_MAP_FWD, &zero);
	if (!table)
		return XNAT_CNT_PASS_NO_MATCH;
	target = bpf_map_lookup_elem(table, &key);
	if (!target)
		return XNAT_CNT_PASS_NO_MATCH;
	/* Only a SYN opens a TCP flow: stray segments (scans, leftovers of flushed flows) must not
	 * create state. The gateway's own stack answers them. */
	if (p->tuple.proto == IPPROTO_TCP &&
	    (p->tcp_flags & (XNAT_TCP_SYN | XNAT_TCP_ACK | XNAT_TCP_RST | XNAT_TCP_FIN)) !=
		    XNAT_TCP_SYN)
		return XNAT_CNT_PASS_TCP_NOT_SYN;
	return ct_create(p, target->addr, target->port, target->rule_id, side, now, cfg, out);
}

static __always_inline int xnat_handle(void *ctx, const int xdp, const __u8 side)
{
	const struct xnat_config *cfg;
	struct xnat_ct_entry *e;
	struct xnat_pkt p = {};
	struct xnat_ct_key to = {};
	__u64 now;
	int rc;

	rc = parse_packet(ctx, xdp, &p);
	if (rc)
		return verdict(xdp, rc);
	cfg = xnat_config_get();
	if (!cfg)
		return verdict(xdp, XNAT_CNT_PASS_NO_MATCH);

	now = xnat_now();
	e = bpf_map_lookup_elem(&XNAT_MAP_CT, &p.tuple);
	if (e && ct_is_stale(&p, e, now)) {
		ct_delete_pair(&p.tuple, e);
		xnat_count(XNAT_CNT_CT_EXPIRED);
		e = NULL;
	}
	if (!e) {
		rc = flow_from_rule(&p, side, now, cfg, &e);
		if (rc)
			return verdict(xdp, rc);
	}
	ct_account(e, &p, now, cfg);

	nat_target_tuple(e, &to);
	rc = nat_rewrite(ctx, xdp, &p, &to);
	if (rc)
		return verdict(xdp, rc);
	return verdict(xdp, fwd_packet(ctx, xdp, &p, &to, cfg));
}

SEC("xdp")
int XNAT_PROG_XDP_WAN(struct xdp_md *ctx)
{
	return xnat_handle(ctx, XNAT_HOOK_XDP, XNAT_SIDE_WAN);
}

SEC("xdp")
int XNAT_PROG_XDP_LAN(struct xdp_md *ctx)
{
	return xnat_handle(ctx, XNAT_HOOK_XDP, XNAT_SIDE_LAN);
}

SEC("tc")
int XNAT_PROG_TC_WAN(struct __sk_buff *skb)
{
	return xnat_handle(skb, XNAT_HOOK_TC, XNAT_SIDE_WAN);
}

SEC("tc")
int XNAT_PROG_TC_LAN(struct __sk_buff *skb)
{
	return xnat_handle(skb, XNAT_HOOK_TC, XNAT_SIDE_LAN);
}
