/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Incremental Internet checksum (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')). Sums are taken over
 * the raw network-order words: one's complement addition commutes with byte swapping, so no
 * byte order conversion is needed as long as the checksum field is read the same way.
 */
#ifndef XNAT_BPF_CSUM_H
#define XNAT_BPF_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

static __always_inline __u32 csum_add(__u32 sum, __u32 v)
{
	sum += v;
	return sum + (sum < v);
}

/* Fold to 16 bits and complement. Two folds always suffice for a 32-bit sum. */
static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline __u32 csum_diff32(__u32 diff, __be32 from, __be32 to)
{
	return csum_add(csum_add(diff, ~from), to);
}

static __always_inline __u32 csum_diff16(__u32 diff, __be16 from, __be16 to)
{
	return csum_add(csum_add(diff, (__u16)~from), to);
}

/* Apply an accumulated difference to a checksum field's current value. */
static __always_inline __u16 csum_apply(__u16 check, __u32 diff)
{
	return csum_fold(csum_add((__u16)~check, diff));
}

#endif
