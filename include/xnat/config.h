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
/* Half-open flows and unanswered UDP: netfilter's values, shorter than RFC 5382's 4-minute
 * transitory minimum on purpose (docs/STATE_EXHAUSTION.md says why); set them to 240 to follow it. */
#define XNAT_DEFAULT_TCP_SYN_SENT_S 120u
#define XNAT_DEFAULT_TCP_SYN_RECV_S 60u
#define XNAT_DEFAULT_UDP_UNREPLIED_S 30u

/* ICMP administratively prohibited for refused flows (RFC 5508 REQ-8): at most this many per
 * tick (2^30 ns) per CPU. */
#define XNAT_DEFAULT_REFUSAL_ICMP_RATE 100u

/* Expired flows are swept out of the table this often; a lookup never uses one meanwhile. */
#define XNAT_DEFAULT_SWEEP_INTERVAL_MS 2000u

#define XNAT_IFNAME_LEN 16

#include "ct.h"

struct xnat_timeouts {
	__u32 tcp_established_s;
	__u32 tcp_transitory_s; /* FIN_WAIT, CLOSE_WAIT, TIME_WAIT */
	__u32 tcp_close_s;      /* after RST */
	__u32 udp_s;            /* once a reply was seen */
	__u32 icmp_s;
	__u32 tcp_syn_sent_s;   /* SYN seen, no SYN-ACK yet */
	__u32 tcp_syn_recv_s;   /* SYN-ACK seen, handshake not completed */
	__u32 udp_unreplied_s;  /* no reply seen yet */
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_timeouts) == 32, "timeouts layout");

/* The idle timeout of a flow in a given state (flags: the original half's XNAT_CT_F_*): the
 * datapath expires by it, xnat-map shows it. */
static inline __u32 xnat_timeout_s(const struct xnat_timeouts *t, __u8 proto, __u8 tcp_state,
				   __u8 flags)
{
	if (proto == XNAT_PROTO_TCP) {
		switch (tcp_state) {
		case XNAT_TCP_ESTABLISHED:
			return t->tcp_established_s;
		case XNAT_TCP_CLOSE:
			return t->tcp_close_s;
		case XNAT_TCP_SYN_SENT:
			return t->tcp_syn_sent_s;
		case XNAT_TCP_SYN_RECV:
			return t->tcp_syn_recv_s;
		default:
			return t->tcp_transitory_s;
		}
	}
	if (proto == XNAT_PROTO_UDP)
		return flags & XNAT_CT_F_SEEN_REPLY ? t->udp_s : t->udp_unreplied_s;
	return t->icmp_s;
}

/* refusal_icmp: the sides (1 << XNAT_SIDE_*) whose refused new flows are answered with ICMP
 * administratively prohibited. */
#define XNAT_REFUSAL_ICMP_SIDE(side) (1u << (side))

/* l3_sides: the sides (1 << XNAT_SIDE_*) on an interface that carries bare IP packets (PPP,
 * WireGuard, tun): no Ethernet header, so tc only. */
#define XNAT_L3_SIDE(side) (1u << (side))

/* mss_clamp: lower a crossing SYN's MSS to the smaller interface MTU minus 40 (the value is
 * above any MSS a fixed setting may name). */
#define XNAT_MSS_CLAMP_PMTU 0xffffu
#define XNAT_MSS_CLAMP_MIN 88u    /* the smallest MSS Linux itself uses (TCP_MIN_MSS) */
#define XNAT_MSS_CLAMP_MAX 65495u /* 65535 - 40 */

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
	/* Per internal host, for flows it opens through source NAT (0: no limit). */
	__u32 host_max_flows;
	__u32 host_max_ports; /* source-NAT mappings (external ports, per protocol) */
	__be32 lan_addr;      /* the gateway's LAN address: source of ICMP refusals sent there */
	__u32 refusal_icmp_rate; /* per tick and CPU */
	__u8 refusal_icmp;    /* XNAT_REFUSAL_ICMP_SIDE bits */
	__u8 l3_sides;        /* XNAT_L3_SIDE bits: interfaces without a link-layer header */
	__u16 mss_clamp;      /* TCP SYN MSS at most this; XNAT_MSS_CLAMP_PMTU: MTU - 40; 0: off */
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_config) == 128, "config layout");
XNAT_STATIC_ASSERT(XNAT_OFFSETOF(struct xnat_config, timeouts) == 16, "config layout");

#endif
