/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Fragments (RFC 4787 REQ-14). Only a datagram's first fragment carries the ports, so the
 * translation the first fragment got is remembered under what identifies the datagram on the
 * wire, as it arrived (RFC 791: source, destination, protocol, identification), and the later
 * fragments take the same addresses from it.
 */
#ifndef XNAT_FRAG_H
#define XNAT_FRAG_H

#include "abi.h"
#include "ct.h"

struct xnat_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_frag_key) == 12, "frag key layout");

struct xnat_frag_entry {
	__be32 saddr;            /* the addresses the first fragment was rewritten to */
	__be32 daddr;
	struct xnat_ct_key flow; /* the flow half the first fragment was counted in */
	__u64 expires_ns;        /* the datapath's clock (CLOCK_MONOTONIC, coarse) */
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_frag_entry) == 32, "frag entry layout");

/* A datagram's fragments leave the sender back to back; the lifetime covers reordering, not
 * the receiver's reassembly timeout (30 s on Linux). Kept short because the IP ID of one host
 * pair comes round again: a first fragment under a live entry of another translation is dropped
 * (the older datagram's later fragments may still be on their way). */
#define XNAT_FRAG_LIFETIME_S 3
/* Datagrams in flight at once. An LRU: a flood of first fragments evicts the oldest entries
 * instead of growing the table. 16384 entries cost about 1.5 MiB. */
#define XNAT_FRAG_MAX_ENTRIES 16384u

#endif
