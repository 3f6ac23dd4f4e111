/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Common ground of the types shared between the BPF programs (C, clang -target bpf) and the
 * C++ control plane. Every shared struct is made of fixed-width fields with explicit padding,
 * so both compilers lay it out byte for byte the same; the static asserts below each struct
 * turn any drift into a build error on both sides.
 */
#ifndef XNAT_ABI_H
#define XNAT_ABI_H

#include <linux/types.h>

#ifdef __cplusplus
#include <cstddef>
#define XNAT_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#define XNAT_OFFSETOF(type, field) offsetof(type, field)
#else
#define XNAT_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define XNAT_OFFSETOF(type, field) __builtin_offsetof(type, field)
#endif

#define XNAT_STR_(x) #x
#define XNAT_STR(x) XNAT_STR_(x)

/* Bumped whenever a pinned map's key or value layout, or a pinned program's context, changes:
 * xnat-map refuses to touch an instance pinned by an incompatible build instead of misreading
 * its bytes. 4: the flush program takes a filter as its context. 5: drop_tcp_rst_window joined
 * the counter array, moving the indices after it. 6: pass_translated left the counter array (XDP
 * hands every packet it cannot finish to tc untouched) and the sweeper lost its workqueue. 7: the
 * half-open timeouts, host quotas and ICMP refusals joined the config; eviction and quota
 * counters joined the counter array; the eviction queue and the host map were pinned. 8: the
 * config says which sides carry bare IP and the MSS clamp; mss_clamped joined the counters; the
 * fragment map was pinned; the fragment counters joined the counter array, moving the indices
 * from new_flow on. The mapped-port map (xnat_mapped) joined without a bump: a new map changes
 * no existing layout, and an instance pinned without it still opens (PinnedMap::optional), so it
 * can be reloaded in place rather than refused. */
#define XNAT_ABI_VERSION 8

/* IP protocol numbers, spelled here so C++ need not mix <netinet/in.h> with <linux/in.h>. */
#define XNAT_PROTO_ICMP 1
#define XNAT_PROTO_TCP 6
#define XNAT_PROTO_UDP 17

#define XNAT_SIDE_WAN 0
#define XNAT_SIDE_LAN 1

#define XNAT_MODE_NONE 0
#define XNAT_MODE_XDP 1
#define XNAT_MODE_TC 2

#endif
