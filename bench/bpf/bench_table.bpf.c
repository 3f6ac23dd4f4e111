/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * A connection-table experiment, not a NAT: the least a port forward does per packet (look the
 * flow up, create both halves on a miss, account, rewrite the destination, route, redirect),
 * over one of two tables, so that they can be compared on the same run before xnat's own table
 * changes:
 *  - Th: a BPF hash map, as xnat's connection table is today (bucket array, then the element);
 *  - Ts: open addressing in a BPF array, one 64-byte slot per half holding key and state,
 *        probed linearly: one cache line per lookup.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bench.h"
#include "bench_route.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 use_slots;  /* 0: hash map, 1: slot array, 2: slot array in 256-slot pages */
const volatile __u32 slot_mask;  /* slots - 1; slots is a power of two */
const volatile __be32 to_addr;   /* where the forward sends */

/* A half as xnat keeps one: the 16-byte key, then 48 bytes in the hash map's value; in a slot
 * the state word takes 8 of them. */
struct bench_key {
	__u64 a; /* saddr, daddr */
	__u64 b; /* sport, dport, proto, pad */
};

/* What a half holds besides its key, in either table. */
struct bench_state {
	__be32 addr;
	__u32 last_seen;
	__u64 packets;
	__u64 bytes;
};

struct bench_val {
	struct bench_state st;
	__u64 spare[3];
};

struct bench_slot {
	__u64 state; /* 0 free, BUSY while written, READY | hash once readable */
	struct bench_key key;
	struct bench_state st;
	__u64 spare[2];
};

#define SLOT_BUSY (1ull << 62)
#define SLOT_READY (1ull << 63)
#define SLOT_PROBES 8

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bench_key);
	__type(value, struct bench_val);
} bench_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct bench_slot);
} bench_slots SEC(".maps");

/* The same slots in small inner arrays: each is small enough for the kernel to allocate with
 * kmalloc, so it lives in the direct map (huge pages) instead of vmalloc's 4 KiB pages. */
#define SLOT_PAGE_SHIFT 8
struct bench_slot_page {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << SLOT_PAGE_SHIFT);
	__type(key, __u32);
	__type(value, struct bench_slot);
} bench_slot_page0 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct bench_slot_page);
} bench_slot_pages SEC(".maps") = {
	.values = {[0] = &bench_slot_page0},
};

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} bench_table_tx SEC(".maps");

static __always_inline __u32 key_hash(const struct bench_key *k)
{
	__u64 h = k->a * 0x9e3779b97f4a7c15ull ^ (k->b + 0x632be59bd9b4e019ull) * 0xc2b2ae3d27d4eb4full;

	h ^= h >> 31;
	h *= 0x94d049bb133111ebull;
	return (__u32)(h >> 32);
}

/* Finds the half for k, or claims a free slot for it when `insert`. A writer claims a slot by
 * compare-and-swap from free to BUSY, writes it, then publishes READY with the hash; readers
 * skip slots that are not READY, so they never see a half-written key. */
static __always_inline struct bench_slot *slot_find(const struct bench_key *k, int insert, __u32 now)
{
	__u32 h = key_hash(k), i;

	for (i = 0; i < SLOT_PROBES; i++) {
		__u32 idx = (h + i) & slot_mask;
		struct bench_slot *s;
		__u64 st;

		if (use_slots == 2) {
			__u32 page = idx >> SLOT_PAGE_SHIFT, off = idx & ((1 << SLOT_PAGE_SHIFT) - 1);
			void *inner = bpf_map_lookup_elem(&bench_slot_pages, &page);

			if (!inner)
				return NULL;
			s = bpf_map_lookup_elem(inner, &off);
		} else {
			s = bpf_map_lookup_elem(&bench_slots, &idx);
		}

		if (!s)
			return NULL;
		st = *(volatile __u64 *)&s->state;
		if (st == (SLOT_READY | h) && s->key.a == k->a && s->key.b == k->b)
			return s;
		if (st)
			continue;
		if (!insert)
			return NULL;
		if (__sync_val_compare_and_swap(&s->state, 0, SLOT_BUSY) != 0)
			continue;
		s->key = *k;
		s->st = (struct bench_state){.addr = to_addr, .last_seen = now};
		__sync_lock_test_and_set(&s->state, SLOT_READY | h);
		return s;
	}
	return NULL;
}

/* The half for k in the table in use, created when `insert`. */
static __always_inline struct bench_state *table_find(const struct bench_key *k, int insert, __u32 now)
{
	struct bench_slot *s;
	struct bench_val *v;

	if (use_slots) {
		s = slot_find(k, insert, now);
		return s ? &s->st : NULL;
	}
	if (insert) {
		struct bench_val nv = {.st = {.addr = to_addr, .last_seen = now}};

		if (bpf_map_update_elem(&bench_ct, k, &nv, BPF_NOEXIST))
			return NULL;
	}
	v = bpf_map_lookup_elem(&bench_ct, k);
	return v ? &v->st : NULL;
}

static __always_inline void csum_replace4(__u16 *sum, __be32 from, __be32 to)
{
	__u32 c = (__u16)~*sum;

	c += (__u16)~(from & 0xffff) + (__u16)~(from >> 16) + (to & 0xffff) + (to >> 16);
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	*sum = (__u16)~c;
}

SEC("xdp")
int bench_table(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	struct udphdr *udp = (void *)(iph + 1);
	struct bench_state *st;
	struct bench_key k, r;
	__u32 now = (__u32)(bpf_ktime_get_coarse_ns() >> 30);
	__be32 new_addr;

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || iph->ihl != 5 ||
	    iph->protocol != IPPROTO_UDP || iph->ttl <= 1)
		return XDP_PASS;
	k.a = (__u64)iph->saddr | (__u64)iph->daddr << 32;
	k.b = (__u64)udp->source | (__u64)udp->dest << 16 | (__u64)IPPROTO_UDP << 32;

	st = table_find(&k, 0, now);
	if (!st) {
		/* The reply half first, as xnat inserts both. */
		r.a = (__u64)to_addr | (__u64)iph->saddr << 32;
		r.b = (__u64)udp->dest | (__u64)udp->source << 16 | (__u64)IPPROTO_UDP << 32;
		if (!table_find(&r, 1, now))
			return XDP_DROP;
		st = table_find(&k, 1, now);
		if (!st)
			return XDP_DROP;
	}
	if (st->last_seen != now)
		st->last_seen = now;
	st->packets++;
	st->bytes += bpf_ntohs(iph->tot_len);
	new_addr = st->addr;

	csum_replace4(&iph->check, iph->daddr, new_addr);
	if (udp->check) {
		csum_replace4(&udp->check, iph->daddr, new_addr);
		if (!udp->check)
			udp->check = 0xffff;
	}
	iph->daddr = new_addr;
	return bench_route_and_redirect(ctx, eth, iph, &bench_table_tx);
}
