/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Connection tracking: a flow is two map entries, one per direction, created together. */
#ifndef XNAT_CT_H
#define XNAT_CT_H

#include "abi.h"

/* A tuple exactly as it appears on the wire, in network byte order. ICMP echo uses the
 * identifier as a port: a request is (id, 0) and a reply (0, id), so reversing a request's
 * tuple gives its reply's. */
struct xnat_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_ct_key) == 16, "ct key layout");
XNAT_STATIC_ASSERT(XNAT_OFFSETOF(struct xnat_ct_key, proto) == 12, "ct key layout");

#define XNAT_DIR_ORIGINAL 0
#define XNAT_DIR_REPLY 1

/* TCP states, conntrack's names; kept in the original half only. */
#define XNAT_TCP_NONE 0
#define XNAT_TCP_SYN_SENT 1
#define XNAT_TCP_SYN_RECV 2
#define XNAT_TCP_ESTABLISHED 3
#define XNAT_TCP_FIN_WAIT 4   /* original side sent FIN */
#define XNAT_TCP_CLOSE_WAIT 5 /* reply side sent FIN */
#define XNAT_TCP_TIME_WAIT 6  /* both sides sent FIN */
#define XNAT_TCP_CLOSE 7      /* RST seen */
#define XNAT_TCP_STATE_COUNT 8

/* flags */
#define XNAT_CT_F_SEEN_REPLY 0x01
#define XNAT_CT_F_FIN_ORIG 0x02
#define XNAT_CT_F_FIN_REPLY 0x04
/* Assured, in netfilter's sense (original half): TCP completed its handshake, UDP or ICMP saw a
 * reply. A full table evicts only flows without it, and never loses the bit again. */
#define XNAT_CT_F_ASSURED 0x08

/* nat: what the flow translates and which half names its source-NAT mapping. A flow that
 * holds a mapping (masquerade, hairpin) keeps one reference on it; the external endpoint is
 * the destination of one half's key: the reply half for flows opened from inside, the
 * original half for flows let in by endpoint-independent filtering. */
#define XNAT_NAT_DNAT 0x01
#define XNAT_NAT_SNAT 0x02
#define XNAT_NAT_MAP_SELF 0x04 /* this half's key.daddr:dport is the mapping */
#define XNAT_NAT_MAP_PEER 0x08 /* the peer's key.daddr:dport is the mapping */
#define XNAT_NAT_HAIRPIN 0x10
#define XNAT_NAT_INBOUND 0x20  /* opened from outside through an endpoint-independent mapping */
#define XNAT_NAT_HOST 0x40     /* counted in its internal host's flow quota (the original saddr) */

/* Idle time is kept in ticks of 2^30 ns (1.07 s): a 32-bit stamp lasts 146 years, and a
 * shift rather than a division turns the clock into ticks on every packet. */
#define XNAT_TICK_SHIFT 30

/* Whole ticks covering at least `seconds`: a timeout never runs short of the RFC value. */
static inline __u64 xnat_secs_to_ticks(__u64 seconds)
{
	return (seconds * 1000000000ull + (1ull << XNAT_TICK_SHIFT) - 1) >> XNAT_TICK_SHIFT;
}

/* A TCP RST is believed only when its sequence number lies within this distance of the next
 * sequence number its sender was last seen to use (RFC 5961 asks for an exact match and a
 * challenge ACK otherwise; a NAT in the middle cannot send those, and an off-path attacker
 * guessing blind now needs 2^32 / 2^17 tries on average). */
#define XNAT_RST_WINDOW (1u << 16)

/*
 * The translation of a half is not stored: it is the peer's key reversed. The original half
 * (c -> P) with peer (S -> c) rewrites to (c -> S); the reply half (S -> c) with peer (c -> P)
 * rewrites to (P -> c). Deriving both rewrites from the two keys makes it impossible for the
 * halves to disagree.
 *
 * 48 bytes on purpose: with the kernel's 48-byte element header and the 16-byte key, a
 * connection's two entries take 224 bytes of the preallocated table, less than conntrack.
 */
struct xnat_ct_entry {
	struct xnat_ct_key peer; /* key of the other half */
	__u64 packets;
	__u64 bytes;             /* IP bytes, header included, as conntrack counts */
	__u32 last_seen;         /* tick of the last packet of this half (CLOCK_MONOTONIC, coarse) */
	__u8 dir;                /* XNAT_DIR_* */
	__u8 state;              /* XNAT_TCP_* (original half) */
	__u8 flags;              /* XNAT_CT_F_* */
	__u8 nat;                /* XNAT_NAT_* */
	__u32 next_seq;          /* TCP: the sequence number this half's sender uses next */
	__u16 rule;              /* the rule that made the flow, for its hit counter */
	__u8 seq_known;          /* next_seq has been seen */
	__u8 pad;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_ct_entry) == 48, "ct entry layout");
XNAT_STATIC_ASSERT(XNAT_OFFSETOF(struct xnat_ct_entry, peer) == 0, "ct entry layout");
XNAT_STATIC_ASSERT(XNAT_OFFSETOF(struct xnat_ct_entry, last_seen) == 32, "ct entry layout");

/* The flush program's context (BPF_PROG_TEST_RUN's ctx_in): which flows it ends. addr 0 ends
 * every flow; otherwise only the flows holding addr in one of their two keys, which between
 * them carry all four addresses of the flow (each half's key is its peer's rewrite). Used when
 * the WAN address changes: the flows of the old address cannot carry another packet. */
struct xnat_flush_filter {
	__be32 addr;
	__u32 pad;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_flush_filter) == 8, "flush filter layout");

#endif
