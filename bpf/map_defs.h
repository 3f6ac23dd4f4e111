/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The maps, one comment each. Names, sizes and types come from include/xnat. */
#ifndef XNAT_BPF_MAPS_H
#define XNAT_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xnat/config.h"
#include "xnat/counters.h"
#include "xnat/ct.h"
#include "xnat/frag.h"
#include "xnat/maps.h"
#include "xnat/rules.h"

/* Connection tracking. Two entries per flow, keyed by the tuple as it arrives in each
 * direction. Not an LRU: the kernel's LRU evicts halves independently and before the map is
 * full, so capacity is managed here (a full table refuses new flows with a counter) and the
 * sweeper (sweeper.h) expires idle flows. Preallocated for limits.connections: an insert never
 * allocates, so a burst of new flows cannot fail for want of memory, and an entry costs its
 * exact size (an allocation on demand rounds 112 bytes up to 128). xnat-load sets max_entries
 * to twice limits.connections. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * XNAT_DEFAULT_MAX_CONNECTIONS);
	__type(key, struct xnat_ct_key);
	__type(value, struct xnat_ct_entry);
} XNAT_MAP_CT SEC(".maps");

/* The forward table as the datapath sees it. The control plane builds a whole new inner map
 * and swaps it into slot 0, so a packet sees either the old rule set or the new one. */
struct xnat_fwd_table {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XNAT_FWD_MAX_ENTRIES);
	/* Sizes, not types: clang emits only a forward declaration for types that are reached
	 * through the outer map's pointer array, and libbpf cannot size those. */
	__uint(key_size, sizeof(struct xnat_fwd_key));
	__uint(value_size, sizeof(struct xnat_fwd_target));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XNAT_RULE_GENERATIONS);
	__type(key, __u32);
	__array(values, struct xnat_fwd_table);
} XNAT_MAP_FWD SEC(".maps");

/* Masquerade rules and their excluded destinations, one trie per generation (see rules.h). */
struct xnat_masq_table {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, XNAT_MASQ_MAX_ENTRIES);
	__uint(key_size, sizeof(struct xnat_masq_key));
	__uint(value_size, sizeof(struct xnat_masq_rule));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, XNAT_RULE_GENERATIONS);
	__type(key, __u32);
	__array(values, struct xnat_masq_table);
} XNAT_MAP_MASQ SEC(".maps");

/* Masquerade rules as configured, keyed by rule id. Control plane only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNAT_MAX_MASQ_RULES);
	__type(key, __u32);
	__type(value, struct xnat_masq_desc);
} XNAT_MAP_MASQ_RULES SEC(".maps");

/* Source-NAT mappings by external endpoint: the one place that says which external ports are
 * taken. Every mapping is held by at least one flow, so it needs no more room than the
 * connection table; xnat-load sizes it to limits.connections. Preallocated, for the same
 * reason as the connection table. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNAT_DEFAULT_MAX_CONNECTIONS);
	__type(key, struct xnat_snat_key);
	__type(value, struct xnat_snat_mapping);
} XNAT_MAP_SNAT SEC(".maps");

/* Internal endpoint -> its last external port, so it keeps one across destinations. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XNAT_DEFAULT_MAX_CONNECTIONS);
	__type(key, struct xnat_eim_key);
	__type(value, __be16);
} XNAT_MAP_EIM SEC(".maps");

/* Internal endpoint -> the external port of the mapped forward (xnat-portmapd's, NAT-PMP or
 * PCP) that targets it, so its outbound flows leave from that port (see xnat_mapped_key).
 * Written by the control plane with every forward set it makes current; at most one entry per
 * rule. A hint that source NAT checks against the forward table, never trusts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNAT_MAX_RULES);
	__type(key, struct xnat_mapped_key);
	__type(value, __be16);
} XNAT_MAP_MAPPED SEC(".maps");

/* Rules as configured, keyed by rule id. Control plane only: it lists them and rebuilds the
 * forward table from them on add and del. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNAT_MAX_RULES);
	__type(key, __u32);
	__type(value, struct xnat_fwd_rule);
} XNAT_MAP_RULES SEC(".maps");

/* The translation of each fragmented datagram's first fragment, for its later fragments (see
 * fragments.h). Bounded and self-cleaning: an LRU, and entries past their lifetime are ignored. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XNAT_FRAG_MAX_ENTRIES);
	__type(key, struct xnat_frag_key);
	__type(value, struct xnat_frag_entry);
} XNAT_MAP_FRAG SEC(".maps");

/* Global settings and instance metadata. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xnat_config);
} XNAT_MAP_CONFIG SEC(".maps");

/* Outcome counters, per CPU so the hot path never shares a cache line. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XNAT_CNT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} XNAT_MAP_COUNTERS SEC(".maps");

/* Interfaces XDP may redirect to, keyed by ifindex. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} XNAT_MAP_TX_PORTS SEC(".maps");

/* Flows each rule created: forward rule i at i, masquerade rule j at XNAT_MAX_RULES + j. Only
 * new flows touch it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XNAT_RULE_HIT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} XNAT_MAP_RULE_HITS SEC(".maps");

#define XNAT_NO_RULE 0xffff

static __always_inline void xnat_rule_hit(__u16 rule)
{
	__u32 slot = rule;
	__u64 *n;

	if (rule == XNAT_NO_RULE)
		return;
	n = bpf_map_lookup_elem(&XNAT_MAP_RULE_HITS, &slot);
	if (n)
		*n += 1;
}

/* Tests move the clock forward to exercise timeouts; never set in production. */
volatile __u64 xnat_test_clock_offset_ns = 0;

static __always_inline __u64 xnat_now(void)
{
	return bpf_ktime_get_coarse_ns() + xnat_test_clock_offset_ns;
}

/* Tests seed this to make port choices replayable; zero (production) means bpf_get_prandom_u32.
 * One state per object, not per CPU: test runs are single-threaded. */
volatile __u64 xnat_test_rand_state = 0;

static __always_inline __u32 xnat_rand(void)
{
	__u64 x = xnat_test_rand_state;

	if (!x)
		return bpf_get_prandom_u32();
	/* xorshift64: never reaches zero from a non-zero state, so the test mode sticks. */
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	xnat_test_rand_state = x;
	return (__u32)(x >> 32);
}

static __always_inline __u32 xnat_now_ticks(void)
{
	return (__u32)(xnat_now() >> XNAT_TICK_SHIFT);
}

static __always_inline const struct xnat_config *xnat_config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&XNAT_MAP_CONFIG, &zero);
}

/* The rule maps of the generation in force. */
static __always_inline void *xnat_rule_table(void *outer, const struct xnat_config *cfg)
{
	__u32 gen = cfg->rule_gen & (XNAT_RULE_GENERATIONS - 1);

	return bpf_map_lookup_elem(outer, &gen);
}

static __always_inline void xnat_count(__u32 counter)
{
	__u64 *c = bpf_map_lookup_elem(&XNAT_MAP_COUNTERS, &counter);

	if (c)
		*c += 1;
}

/* For counters that the flush program (a syscall program, which softirqs can interrupt on its
 * CPU) shares with the datapath: a plain add there could lose the interrupting path's count.
 * Used once per flow, not per packet. */
static __always_inline void xnat_count_atomic(__u32 counter)
{
	__u64 *c = bpf_map_lookup_elem(&XNAT_MAP_COUNTERS, &counter);

	if (c)
		__sync_fetch_and_add(c, 1);
}

#endif
