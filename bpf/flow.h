/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * New flows: what a packet without state becomes, by the rules of the generation in force.
 *
 *   WAN ingress: a WAN-side forward (DNAT), or else an endpoint-independent mapping that lets
 *                any remote reach the internal endpoint behind it.
 *   LAN ingress: a LAN-side forward (DNAT), or a WAN-side forward reached from inside
 *                (hairpin: DNAT plus SNAT to the forward's public address, so the server's
 *                reply comes back through the gateway), and then masquerade (SNAT) when the
 *                destination, after DNAT, is routed out of the WAN interface.
 */
#ifndef XNAT_BPF_FLOW_H
#define XNAT_BPF_FLOW_H

#include "conntrack.h"
#include "forward.h"
#include "snat.h"

static __always_inline const struct xnat_fwd_target *flow_forward(void *fwd_table,
								   const struct xnat_ct_key *t,
								   __u8 side)
{
	struct xnat_fwd_key key = {
		.addr = t->daddr,
		.port = t->dport,
		.proto = t->proto,
		.side = side,
	};

	return fwd_table ? bpf_map_lookup_elem(fwd_table, &key) : 0;
}

/* XNAT_CONTINUE if the packet may open a flow, else the counter for leaving it alone. Only a SYN opens a
 * TCP flow: stray segments (scans, leftovers of flushed flows) must not create state; the
 * gateway's own stack answers them. Only an echo request opens an ICMP flow. */
static __always_inline int flow_refuse_open(const struct xnat_pkt *p)
{
	if (p->tuple.proto == IPPROTO_TCP &&
	    (p->tcp_flags & (XNAT_TCP_SYN | XNAT_TCP_ACK | XNAT_TCP_RST | XNAT_TCP_FIN)) != XNAT_TCP_SYN)
		return XNAT_CNT_PASS_TCP_NOT_SYN;
	if (p->tuple.proto == IPPROTO_ICMP && p->tuple.sport == 0) /* a reply: (0, id) */
		return XNAT_CNT_PASS_NO_MATCH;
	return XNAT_CONTINUE;
}

/* Creates the flow and hands back the reference on its mapping if creation fails. */
static __always_inline int flow_commit(const struct xnat_pkt *p, const struct ct_new *n,
				       __u32 now, struct xnat_ct_entry **out, int *ended_elsewhere)
{
	int rc = ct_create(p, n, now, out, ended_elsewhere);

	if (rc == XNAT_CONTINUE || *ended_elsewhere)
		return rc;
	if (n->orig_nat & XNAT_NAT_MAP_SELF)
		snat_release(p->tuple.proto, p->tuple.daddr, p->tuple.dport);
	else if (n->orig_nat & XNAT_NAT_MAP_PEER)
		/* The reply key (the reversed `to`) names the mapping as its destination. */
		snat_release(n->to.proto, n->to.saddr, n->to.sport);
	return rc;
}

static __always_inline int flow_new_wan(const struct xnat_pkt *p, __u32 now,
					const struct xnat_config *cfg, struct xnat_ct_entry **out)
{
	void *fwd_table = xnat_rule_table(&XNAT_MAP_FWD, cfg);
	const struct xnat_fwd_target *t = flow_forward(fwd_table, &p->tuple, XNAT_SIDE_WAN);
	struct ct_new n = { .to = p->tuple, .rule = XNAT_NO_RULE };
	struct xnat_snat_key sk = {
		.addr = p->tuple.daddr,
		.port = p->tuple.dport,
		.proto = p->tuple.proto,
	};
	struct xnat_snat_mapping *m;
	int rc, ended_elsewhere = 0;

	if (t) {
		n.to.daddr = t->addr;
		n.to.dport = t->port;
		n.rule = t->rule_id;
		n.orig_nat = n.reply_nat = XNAT_NAT_DNAT;
	} else {
		/* Endpoint-independent filtering: any remote may reach a mapping made with it. */
		if (p->tuple.proto == IPPROTO_ICMP)
			return XNAT_CNT_PASS_NO_MATCH;
		m = bpf_map_lookup_elem(&XNAT_MAP_SNAT, &sk);
		if (!m || !(m->flags & XNAT_MASQ_F_EIF))
			return XNAT_CNT_PASS_NO_MATCH;
		rc = flow_refuse_open(p);
		if (rc != XNAT_CONTINUE)
			return rc;
		if (!snat_hold(m))
			return XNAT_CNT_PASS_NO_MATCH;
		n.to.daddr = m->int_addr;
		n.to.dport = m->int_port;
		n.orig_nat = XNAT_NAT_DNAT | XNAT_NAT_INBOUND | XNAT_NAT_MAP_SELF;
		n.reply_nat = XNAT_NAT_SNAT | XNAT_NAT_INBOUND | XNAT_NAT_MAP_PEER;
		return flow_commit(p, &n, now, out, &ended_elsewhere);
	}
	rc = flow_refuse_open(p);
	if (rc != XNAT_CONTINUE)
		return rc;
	return flow_commit(p, &n, now, out, &ended_elsewhere);
}

static __always_inline int flow_new_lan(void *ctx, const int xdp, const struct xnat_pkt *p,
					__u32 now, const struct xnat_config *cfg,
					struct xnat_ct_entry **out)
{
	void *fwd_table = xnat_rule_table(&XNAT_MAP_FWD, cfg);
	void *masq_table = xnat_rule_table(&XNAT_MAP_MASQ, cfg);
	const struct xnat_fwd_target *t = flow_forward(fwd_table, &p->tuple, XNAT_SIDE_LAN);
	const struct xnat_masq_rule *rule;
	struct ct_new n = { .to = p->tuple, .rule = XNAT_NO_RULE };
	struct snat_request req = {
		.proto = p->tuple.proto,
		.int_addr = p->tuple.saddr,
		.int_port = p->tuple.sport, /* an echo request's identifier, for ICMP */
	};
	__be16 ext_port;
	int rc, ended_elsewhere = 0;
	enum host_charge_result charged = HOST_UNCOUNTED;

	if (t) {
		n.to.daddr = t->addr;
		n.to.dport = t->port;
		n.rule = t->rule_id;
		n.orig_nat = XNAT_NAT_DNAT;
	} else {
		t = flow_forward(fwd_table, &p->tuple, XNAT_SIDE_WAN);
		if (t) {
			n.to.daddr = t->addr;
			n.to.dport = t->port;
			n.rule = t->rule_id;
			n.orig_nat = XNAT_NAT_DNAT | XNAT_NAT_HAIRPIN;
			req.ext_addr = p->tuple.daddr;
			req.port_lo = XNAT_HAIRPIN_PORT_LO;
			req.port_hi = XNAT_HAIRPIN_PORT_HI;
		}
	}

	if (!(n.orig_nat & XNAT_NAT_HAIRPIN)) {
		rule = masq_table ? masq_match(masq_table, p->tuple.saddr, n.to.daddr) : 0;
		if (rule && fwd_egress_ifindex(ctx, xdp, p->tuple.saddr, n.to.daddr) == cfg->wan_ifindex) {
			req.ext_addr = rule->to_source;
			req.port_lo = rule->port_lo;
			req.port_hi = rule->port_hi;
			req.flags = rule->flags;
			if (n.rule == XNAT_NO_RULE)
				n.rule = XNAT_MAX_RULES + rule->rule_id;
		}
	}
	if (!n.orig_nat && !req.ext_addr)
		return XNAT_CNT_PASS_NO_MATCH;
	rc = flow_refuse_open(p);
	if (rc != XNAT_CONTINUE)
		return rc;

	n.reply_nat = n.orig_nat;
	if (req.ext_addr) {
		/* The flow counts against its host's quota before it may take a port. */
		charged = host_charge(p->tuple.saddr, XNAT_HOST_FLOW, cfg->host_max_flows, now);
		if (charged == HOST_REFUSED)
			return XNAT_CNT_DROP_HOST_FLOWS;
		rc = snat_acquire(&req, cfg, fwd_table, now, &ext_port);
		if (rc != XNAT_CONTINUE)
			goto uncharge;
		n.to.saddr = req.ext_addr;
		n.to.sport = ext_port;
		n.orig_nat |= XNAT_NAT_SNAT | XNAT_NAT_MAP_PEER;
		n.reply_nat |= XNAT_NAT_SNAT | XNAT_NAT_MAP_SELF;
		if (charged == HOST_CHARGED) {
			n.orig_nat |= XNAT_NAT_HOST;
			n.reply_nat |= XNAT_NAT_HOST;
		}
	}
	rc = flow_commit(p, &n, now, out, &ended_elsewhere);
	if (rc == XNAT_CONTINUE || ended_elsewhere)
		return rc;
uncharge:
	if (charged == HOST_CHARGED)
		host_uncharge(p->tuple.saddr, XNAT_HOST_FLOW);
	return rc;
}

#endif
