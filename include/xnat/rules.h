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

/* A rule as the user wrote it; the datapath never reads this, xnat-map lists and edits it. */
struct xnat_fwd_rule {
	struct xnat_endpoint from;
	struct xnat_endpoint to;
	__u8 proto;
	__u8 side;
	__u8 pad[2];
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_fwd_rule) == 28, "rule layout");

#endif
