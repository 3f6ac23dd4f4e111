/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * What each internal host holds through source NAT, for the per-host quotas (RFC 6888 REQ-3 and
 * REQ-4 style): flows it opened and mappings (external ports) it owns.
 */
#ifndef XNAT_HOSTS_H
#define XNAT_HOSTS_H

#include "abi.h"

/* Both counts share one 64-bit word so that "nothing held" can be claimed atomically: the
 * sweeper swaps 0 for XNAT_HOST_DEAD before deleting an entry, and a packet that finds the bit
 * set knows its increment landed on an entry being deleted and takes it back. */
#define XNAT_HOST_FLOW 1ull           /* one flow, in the low 32 bits */
#define XNAT_HOST_PORT (1ull << 32)   /* one mapping, in bits 32..62 */
#define XNAT_HOST_DEAD (1ull << 63)

struct xnat_host {
	__u64 use;        /* flows + ports * XNAT_HOST_PORT, or XNAT_HOST_DEAD */
	__be32 addr;      /* the key again: an increment checks it found its own entry */
	__u32 last_tick;  /* last charge; an entry is reclaimed only after two idle ticks */
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_host) == 16, "host layout");

static inline __u32 xnat_host_flows(__u64 use)
{
	return (__u32)use;
}

static inline __u32 xnat_host_ports(__u64 use)
{
	return (__u32)((use & ~XNAT_HOST_DEAD) >> 32);
}

#endif
