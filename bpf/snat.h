/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Source NAT: masquerade rule matching, external port allocation and mapping references.
 *
 * A mapping (external endpoint -> internal endpoint) is created with one reference by the flow
 * that needs it, gains one per further flow of the same internal endpoint (endpoint-independent
 * mapping, RFC 4787 REQ-1), and is deleted by whoever drops the last reference. A reference is
 * only taken on a live mapping (refs > 0 before the increment); a mapping caught at zero is
 * being deleted and is left alone, so an external port is never shared by two internal
 * endpoints.
 */
#ifndef XNAT_BPF_SNAT_H
#define XNAT_BPF_SNAT_H

#include "host_quota.h"
#include "map_defs.h"
#include "parse.h"

/* Port probes per new mapping: the internal port first, then a run of consecutive ports from a
 * random start (RFC 6056 style), which finds a free port whenever the range is this small. */
#define XNAT_SNAT_PROBES 64

/* Hairpinned flows are source-NATed to the forward's public address from this range. */
#define XNAT_HAIRPIN_PORT_LO 1024
#define XNAT_HAIRPIN_PORT_HI 65535

/* The masquerade rule for a flow from saddr to daddr, if any: the most specific source prefix
 * wins, and its excluded destinations opt out. */
static __always_inline const struct xnat_masq_rule *masq_match(void *trie, __be32 saddr,
								 __be32 daddr)
{
	struct xnat_masq_key key = {
		.prefixlen = XNAT_MASQ_KEY_BITS,
		.kind = XNAT_MASQ_SOURCE,
		.addr = saddr,
	};
	const struct xnat_masq_rule *rule;

	rule = bpf_map_lookup_elem(trie, &key);
	if (!rule)
		return 0;
	key.kind = XNAT_MASQ_EXCLUDE;
	key.rule_id = bpf_htons(rule->rule_id);
	key.addr = daddr;
	if (bpf_map_lookup_elem(trie, &key))
		return 0;
	return rule;
}

/* Takes a reference on a live mapping; 0 if it was dying. */
static __always_inline int snat_hold(struct xnat_snat_mapping *m)
{
	if (__sync_fetch_and_add(&m->refs, 1) > 0)
		return 1;
	__sync_fetch_and_sub(&m->refs, 1);
	return 0;
}

static __always_inline void snat_release(__u8 proto, __be32 ext_addr, __be16 ext_port)
{
	struct xnat_snat_key key = { .addr = ext_addr, .port = ext_port, .proto = proto };
	struct xnat_snat_mapping *m = bpf_map_lookup_elem(&XNAT_MAP_SNAT, &key);
	__be32 host;
	__u8 flags;

	if (!m || __sync_sub_and_fetch(&m->refs, 1) != 0)
		return;
	/* Read before the delete: the element's memory may be reused at once. */
	host = m->int_addr;
	flags = m->flags;
	bpf_map_delete_elem(&XNAT_MAP_SNAT, &key);
	if (flags & XNAT_SNAT_F_HOST)
		host_uncharge(host, XNAT_HOST_PORT);
}

/* A port a WAN-side forward owns on this address: source NAT must not hand it out. */
static __always_inline int snat_port_forwarded(__u16 port, __u8 proto, __be32 ext_addr,
					       void *fwd_table)
{
	struct xnat_fwd_key fk = {
		.addr = ext_addr,
		.port = bpf_htons(port),
		.proto = proto,
		.side = XNAT_SIDE_WAN,
	};

	return fwd_table && bpf_map_lookup_elem(fwd_table, &fk);
}

/* The rule's port range minus the gateway's own ephemeral ports, as two runs [a_lo, a_lo+n_a)
 * and [b_lo, b_lo+n_b): the gateway's sockets own those ports, and a flow given one would
 * take the replies of the gateway's own connections. */
struct snat_pool {
	__u32 a_lo, n_a, b_lo, n_b;
};

static __always_inline void snat_pool_make(__u32 lo, __u32 hi, const struct xnat_config *cfg,
					   struct snat_pool *pool)
{
	__u32 l_lo = cfg->local_port_lo, l_hi = cfg->local_port_hi;

	pool->a_lo = lo;
	pool->n_a = hi >= lo ? hi - lo + 1 : 0;
	pool->b_lo = 0;
	pool->n_b = 0;
	if (!l_lo || l_lo > l_hi || l_lo > hi || l_hi < lo)
		return; /* no overlap */
	if (l_hi < hi) {
		pool->b_lo = l_hi + 1;
		pool->n_b = hi - l_hi;
	}
	pool->n_a = l_lo > lo ? l_lo - lo : 0;
}

static __always_inline int snat_pool_has(const struct snat_pool *pool, __u32 port)
{
	return (port >= pool->a_lo && port < pool->a_lo + pool->n_a) ||
	       (port >= pool->b_lo && port < pool->b_lo + pool->n_b);
}

static __always_inline __u16 snat_pool_port(const struct snat_pool *pool, __u32 k)
{
	return (__u16)(k < pool->n_a ? pool->a_lo + k : pool->b_lo + (k - pool->n_a));
}

struct snat_request {
	__u8 proto;
	__u8 flags; /* XNAT_MASQ_F_* for a new mapping */
	__u16 port_lo;
	__u16 port_hi;
	__be16 int_port;
	__be32 int_addr;
	__be32 ext_addr;
};

/* The port mapping agreement (RFC 6886 section 3.9; see xnat_mapped_key in rules.h): an internal
 * endpoint that a mapped forward makes reachable at wan:EXT sends from EXT, so that peers see
 * one address for it. Takes a reference on its mapping at EXT, or makes one there, and
 * returns 1 with the port; returns 0 to let the caller allocate as for any flow when the
 * endpoint has no reverse entry or the entry does not hold up: the forward table in force must
 * still forward EXT on this flow's external address to this very endpoint (the entry may be
 * stale for a moment after a change of rules, or the forward may live on another address
 * than the masquerade rule's), and a mapping already at EXT must be this endpoint's. Other
 * flows never get EXT (snat_port_forwarded keeps them off a forwarded port), so a mapping found
 * there was made here, or predates the forward, and is then left to the flows that hold it. */
static __always_inline int snat_acquire_mapped(const struct snat_request *req,
					       const struct xnat_config *cfg, void *fwd_table,
					       __u32 now, const struct xnat_eim_key *ek,
					       __be16 *ext_port)
{
	struct xnat_mapped_key mk = {
		.int_addr = req->int_addr,
		.int_port = req->int_port,
		.proto = req->proto,
	};
	struct xnat_fwd_key fk = {
		.addr = req->ext_addr,
		.proto = req->proto,
		.side = XNAT_SIDE_WAN,
	};
	struct xnat_snat_key sk = { .addr = req->ext_addr, .proto = req->proto };
	struct xnat_snat_mapping fresh = {
		.int_addr = req->int_addr,
		.int_port = req->int_port,
		.flags = req->flags,
		.refs = 1,
	};
	const struct xnat_fwd_target *t;
	struct xnat_snat_mapping *m;
	enum host_charge_result charged;
	__be16 *port;

	if (!fwd_table)
		return 0;
	port = bpf_map_lookup_elem(&XNAT_MAP_MAPPED, &mk);
	if (!port)
		return 0;
	fk.port = *port;
	t = bpf_map_lookup_elem(fwd_table, &fk);
	if (!t || t->addr != req->int_addr || t->port != req->int_port)
		return 0;
	sk.port = fk.port;
	m = bpf_map_lookup_elem(&XNAT_MAP_SNAT, &sk);
	if (m) {
		/* Another endpoint's, or dying (refs at zero): not to be shared. */
		if (m->int_addr != req->int_addr || m->int_port != req->int_port || !snat_hold(m))
			return 0;
	} else {
		/* A refused quota falls through too: the usual path may still reuse the endpoint's
		 * hinted mapping at no charge, and refuses with the same counter otherwise. */
		charged = host_charge(req->int_addr, XNAT_HOST_PORT, cfg->host_max_ports, now);
		if (charged == HOST_REFUSED)
			return 0;
		if (charged == HOST_CHARGED)
			fresh.flags |= XNAT_SNAT_F_HOST;
		/* NOEXIST: a flow on another CPU may have taken EXT since the lookup. */
		if (bpf_map_update_elem(&XNAT_MAP_SNAT, &sk, &fresh, BPF_NOEXIST) != 0) {
			if (charged == HOST_CHARGED)
				host_uncharge(req->int_addr, XNAT_HOST_PORT);
			return 0;
		}
	}
	bpf_map_update_elem(&XNAT_MAP_EIM, ek, &sk.port, BPF_ANY);
	*ext_port = sk.port;
	return 1;
}

/* Finds or makes the mapping for an internal endpoint and takes a reference on it: at its
 * mapped forward's port if it has one (snat_acquire_mapped), else at the port it had last
 * (EIM hint), else at a free port of the pool. Returns XNAT_CONTINUE with the external port, or
 * the drop counter. A new mapping is charged to the internal host's port quota; reusing one
 * costs nothing. */
static __always_inline int snat_acquire(const struct snat_request *req,
					const struct xnat_config *cfg, void *fwd_table, __u32 now,
					__be16 *ext_port)
{
	struct xnat_eim_key ek = {
		.int_addr = req->int_addr,
		.ext_addr = req->ext_addr,
		.int_port = req->int_port,
		.proto = req->proto,
	};
	struct xnat_snat_key sk = { .addr = req->ext_addr, .proto = req->proto };
	struct xnat_snat_mapping fresh = {
		.int_addr = req->int_addr,
		.int_port = req->int_port,
		.flags = req->flags,
		.refs = 1,
	};
	struct xnat_snat_mapping *m;
	struct snat_pool pool;
	__u32 size, start;
	__be16 *hint;
	__u16 port, want;
	enum host_charge_result charged;
	int i;

	if (snat_acquire_mapped(req, cfg, fwd_table, now, &ek, ext_port))
		return XNAT_CONTINUE;
	hint = bpf_map_lookup_elem(&XNAT_MAP_EIM, &ek);
	if (hint) {
		sk.port = *hint;
		m = bpf_map_lookup_elem(&XNAT_MAP_SNAT, &sk);
		if (m && m->int_addr == req->int_addr && m->int_port == req->int_port && snat_hold(m)) {
			*ext_port = sk.port;
			return XNAT_CONTINUE;
		}
	}

	snat_pool_make(req->port_lo, req->port_hi, cfg, &pool);
	size = pool.n_a + pool.n_b;
	if (!size)
		return XNAT_CNT_DROP_PORTS_EXHAUSTED;
	charged = host_charge(req->int_addr, XNAT_HOST_PORT, cfg->host_max_ports, now);
	if (charged == HOST_REFUSED)
		return XNAT_CNT_DROP_HOST_PORTS;
	if (charged == HOST_CHARGED)
		fresh.flags |= XNAT_SNAT_F_HOST;
	start = xnat_rand() % size;
	want = bpf_ntohs(req->int_port);
	for (i = 0; i < XNAT_SNAT_PROBES; i++) {
		if (i == 0) {
			/* Keep the internal port when the pool allows it. */
			if (!snat_pool_has(&pool, want))
				continue;
			port = want;
		} else {
			port = snat_pool_port(&pool, (start + (__u32)i) % size);
		}
		if (snat_port_forwarded(port, req->proto, req->ext_addr, fwd_table))
			continue;
		sk.port = bpf_htons(port);
		if (bpf_map_update_elem(&XNAT_MAP_SNAT, &sk, &fresh, BPF_NOEXIST) == 0) {
			bpf_map_update_elem(&XNAT_MAP_EIM, &ek, &sk.port, BPF_ANY);
			*ext_port = sk.port;
			return XNAT_CONTINUE;
		}
	}
	if (charged == HOST_CHARGED)
		host_uncharge(req->int_addr, XNAT_HOST_PORT);
	return XNAT_CNT_DROP_PORTS_EXHAUSTED;
}

#endif
