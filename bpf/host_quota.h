/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Per-host quotas: how many flows an internal host may open through source NAT, and how many
 * mappings (external ports) it may own, so that one host cannot take the table or the port
 * pool from the others (RFC 6888 REQ-3, REQ-4).
 *
 * A charge is an atomic add that is taken back if it went past the limit, so two CPUs can never
 * both take the last unit. A flow or mapping remembers whether it was charged (XNAT_NAT_HOST,
 * XNAT_SNAT_F_HOST) and gives back exactly what it took. Entries are created on a host's first
 * charge and reclaimed by the sweeper once nothing is held (see xnat/hosts.h); a charge that
 * meets an entry being reclaimed, or finds the host table full, goes uncounted rather than
 * refused.
 */
#ifndef XNAT_BPF_HOST_QUOTA_H
#define XNAT_BPF_HOST_QUOTA_H

#include "map_defs.h"
#include "xnat/hosts.h"

/* Sized by xnat-load to limits.connections: every host with something charged holds a flow. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNAT_DEFAULT_MAX_CONNECTIONS);
	__type(key, __be32);
	__type(value, struct xnat_host);
} XNAT_MAP_HOSTS SEC(".maps");

/* What host_charge did. Its own small domain, apart from counters and XNAT_CONTINUE, so that a
 * caller cannot pass one off as the other. */
enum host_charge_result {
	HOST_UNCOUNTED, /* no entry could be made or kept: the unit is not charged, nor refused */
	HOST_CHARGED,
	HOST_REFUSED, /* the host is at its limit */
};

static __always_inline __u32 host_held(__u64 use, __u64 unit)
{
	return unit == XNAT_HOST_FLOW ? xnat_host_flows(use) : xnat_host_ports(use);
}

/* Charges one unit (XNAT_HOST_FLOW or XNAT_HOST_PORT) to a host; limit 0 means none. */
static __always_inline enum host_charge_result host_charge(__be32 addr, __u64 unit, __u32 limit, __u32 now)
{
	struct xnat_host fresh = { .addr = addr, .last_tick = now };
	struct xnat_host *h = bpf_map_lookup_elem(&XNAT_MAP_HOSTS, &addr);
	__u64 old;

	if (!h) {
		bpf_map_update_elem(&XNAT_MAP_HOSTS, &addr, &fresh, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&XNAT_MAP_HOSTS, &addr);
		if (!h)
			return HOST_UNCOUNTED;
	}
	old = __sync_fetch_and_add(&h->use, unit);
	if ((old & XNAT_HOST_DEAD) || h->addr != addr) {
		__sync_fetch_and_sub(&h->use, unit);
		return HOST_UNCOUNTED;
	}
	if (limit && host_held(old, unit) >= limit) {
		__sync_fetch_and_sub(&h->use, unit);
		return HOST_REFUSED;
	}
	if (h->last_tick != now)
		h->last_tick = now;
	return HOST_CHARGED;
}

/* Gives back a unit a flow or mapping was charged. Its entry cannot have been reclaimed: the
 * unit itself kept it from being empty. */
static __always_inline void host_uncharge(__be32 addr, __u64 unit)
{
	struct xnat_host *h = bpf_map_lookup_elem(&XNAT_MAP_HOSTS, &addr);

	if (h && h->addr == addr)
		__sync_fetch_and_sub(&h->use, unit);
}

#endif
