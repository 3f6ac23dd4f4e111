/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Port-forward rules: the configured form and the expanded lookup form. */
#ifndef XNAT_RULES_H
#define XNAT_RULES_H

#include "abi.h"

/* One destination (address, port) that a rule matches on one side. */
struct xnat_fwd_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 side; /* XNAT_SIDE_* the packet arrives on */
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_fwd_key) == 8, "fwd key layout");

/* Where that destination is rewritten to. */
struct xnat_fwd_target {
	__be32 addr;
	__be16 port;
	__u16 rule_id;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_fwd_target) == 8, "fwd target layout");

/* An address block and a port range, host byte order for the ports. */
struct xnat_endpoint {
	__be32 addr;
	__u16 port_lo;
	__u16 port_hi;
	__u8 prefix_len; /* 32 for a single host */
	__u8 pad[3];
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_endpoint) == 12, "endpoint layout");

/* from is "wan:PORT": the WAN interface's address, whatever it is. from.addr holds the one the
 * rule is installed on now (0: none yet, the rule is not in the forward table). */
#define XNAT_FWD_F_FROM_WAN 0x01
/* Made by xnat-portmapd for a host's NAT-PMP or PCP request, not by the operator: the daemon
 * owns it (adopts or removes it after a restart), and a reload of the config keeps it. */
#define XNAT_FWD_F_MAPPED 0x02

/* A rule as the user wrote it; the datapath never reads this, xnat-map lists and edits it. */
struct xnat_fwd_rule {
	struct xnat_endpoint from;
	struct xnat_endpoint to;
	__u8 proto;
	__u8 side;
	__u8 flags; /* XNAT_FWD_F_*; was padding, so older records read as 0 */
	__u8 pad[1];
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_fwd_rule) == 28, "rule layout");

/*
 * Masquerade rules live in one LPM trie per rule generation, holding two kinds of entry so a
 * single map swap changes them together:
 *   source:  kind XNAT_MASQ_SOURCE, rule 0, addr = source prefix   -> the rule
 *   exclude: kind XNAT_MASQ_EXCLUDE, rule id, addr = dest prefix   -> (presence only)
 * LPM matches bits from the start of `kind`, so prefixlen = 32 + the address prefix length.
 */
#define XNAT_MASQ_SOURCE 1
#define XNAT_MASQ_EXCLUDE 2
#define XNAT_MASQ_KEY_BITS 64

struct xnat_masq_key {
	__u32 prefixlen;
	__u8 kind;
	__u8 pad;
	__be16 rule_id;
	__be32 addr;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_masq_key) == 12, "masq key layout");

#define XNAT_MASQ_F_EIF 0x01 /* endpoint-independent filtering */
/* In a mapping's flags only: counted in its internal host's port quota. */
#define XNAT_SNAT_F_HOST 0x80

struct xnat_masq_rule {
	__be32 to_source;
	__u16 port_lo; /* host order */
	__u16 port_hi;
	__u16 rule_id;
	__u8 flags;    /* XNAT_MASQ_F_* */
	__u8 pad;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_masq_rule) == 12, "masq rule layout");

/* A masquerade rule as configured, for listing. */
#define XNAT_MASQ_MAX_EXCLUDES 16
struct xnat_masq_desc {
	struct xnat_masq_rule rule;
	__be32 source;
	__u8 source_len;
	__u8 n_excludes;
	__u8 to_source_default; /* to_source was the WAN address when loaded */
	__u8 pad;
	__be32 exclude_addr[XNAT_MASQ_MAX_EXCLUDES];
	__u8 exclude_len[XNAT_MASQ_MAX_EXCLUDES];
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_masq_desc) == 100, "masq desc layout");

/* Source-NAT mappings: external endpoint -> internal endpoint, the authority on which external
 * ports are taken. A mapping lives while flows hold references on it. */
struct xnat_snat_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_snat_key) == 8, "snat key layout");

struct xnat_snat_mapping {
	__be32 int_addr;
	__be16 int_port;
	__u8 flags; /* XNAT_MASQ_F_* of the rule that made it, XNAT_SNAT_F_HOST */
	__u8 pad;
	__u32 refs;  /* flows holding it */
	__u32 pad2;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_snat_mapping) == 16, "snat mapping layout");

/* Endpoint-independent mapping hint (RFC 4787 REQ-1): internal endpoint -> the external port it
 * had last, checked against the mappings before reuse. An LRU: losing a hint only loses reuse. */
struct xnat_eim_key {
	__be32 int_addr;
	__be32 ext_addr;
	__be16 int_port;
	__u8 proto;
	__u8 pad;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_eim_key) == 12, "eim key layout");

/* Port mapping agreement (RFC 6886 section 3.9, RFC 6887): an internal endpoint that
 * xnat-portmapd mapped to wan:EXT sends from EXT too, so peers see one address for it. The
 * control plane keeps one entry per mapped single-port WAN-side forward, internal endpoint ->
 * EXT (network order); source NAT takes it only after checking the forward table of the
 * generation in force still forwards EXT to that endpoint, so a stale entry costs nothing. */
struct xnat_mapped_key {
	__be32 int_addr;
	__be16 int_port;
	__u8 proto;
	__u8 pad;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_mapped_key) == 8, "mapped key layout");
XNAT_STATIC_ASSERT(XNAT_OFFSETOF(struct xnat_mapped_key, int_port) == 4, "mapped key layout");
XNAT_STATIC_ASSERT(XNAT_OFFSETOF(struct xnat_mapped_key, proto) == 6, "mapped key layout");

#endif
