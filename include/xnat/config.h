/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The instance's global settings: one element of the config array map. */
#ifndef XNAT_CONFIG_H
#define XNAT_CONFIG_H

#include "abi.h"

/* RFC 5382 (TCP) and RFC 4787 (UDP) minimums; ICMP per RFC 5508. */
#define XNAT_DEFAULT_TCP_ESTABLISHED_S 7440u
#define XNAT_DEFAULT_TCP_TRANSITORY_S 240u
#define XNAT_DEFAULT_TCP_CLOSE_S 10u
#define XNAT_DEFAULT_UDP_S 300u
#define XNAT_DEFAULT_ICMP_S 60u

/* Expired flows are swept out of the table this often; a lookup never uses one meanwhile. */
#define XNAT_DEFAULT_SWEEP_INTERVAL_MS 2000u

#define XNAT_IFNAME_LEN 16

#include "ct.h"

struct xnat_timeouts {
	__u32 tcp_established_s;
	__u32 tcp_transitory_s; /* SYN_SENT, SYN_RECV, FIN_WAIT, CLOSE_WAIT, TIME_WAIT */
	__u32 tcp_close_s;      /* after RST */
	__u32 udp_s;
	__u32 icmp_s;
	__u32 pad;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_timeouts) == 24, "timeouts layout");

/* The idle timeout of a flow in a given state: the datapath expires by it, xnat-map shows it. */
static inline __u32 xnat_timeout_s(const struct xnat_timeouts *t, __u8 proto, __u8 tcp_state)
{
	if (proto == XNAT_PROTO_TCP) {
		if (tcp_state == XNAT_TCP_ESTABLISHED)
			return t->tcp_established_s;
		if (tcp_state == XNAT_TCP_CLOSE)
			return t->tcp_close_s;
		return t->tcp_transitory_s;
	}
	if (proto == XNAT_PROTO_UDP)
		return t->udp_s;
	return t->icmp_s;
}

struct xnat_config {
	__u32 abi_version; /* XNAT_ABI_VERSION of the loader that wrote it */
	__u32 wan_ifindex;
	__u32 lan_ifindex;
	__u8 wan_mode; /* XNAT_MODE_* */
	__u8 lan_mode;
	__u8 wan_clsact_created; /* the loader created the clsact qdisc, so unload removes it */
	__u8 lan_clsact_created;
	struct xnat_timeouts timeouts;
	__u64 netns_ino; /* inode of the network namespace the instance was loaded in */
	__u32 max_connections;
	__u32 rule_gen; /* generation of the rule maps in force (XNAT_RULE_GENERATIONS) */
	/* The gateway's own ephemeral ports (ip_local_port_range): source NAT never hands them
	 * out, so replies to the gateway's own connections are never taken for a LAN host's. */
	__u16 local_port_lo;
	__u16 local_port_hi;
	__u32 sweep_interval_ms; /* how often expired flows are swept out */
	char wan_name[XNAT_IFNAME_LEN];
	char lan_name[XNAT_IFNAME_LEN];
	__u32 max_mappings; /* size of the source-NAT mapping tables */
	__u32 pad;
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_config) == 104, "config layout");
XNAT_STATIC_ASSERT(XNAT_OFFSETOF(struct xnat_config, timeouts) == 16, "config layout");

#endif
