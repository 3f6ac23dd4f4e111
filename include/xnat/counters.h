/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Outcome counters: every packet an xnat program sees ends in exactly one outcome, and every
 * pass-to-kernel and drop has its reason. The list is written once; BPF takes the indices and
 * derives each outcome's verdict from its kind, the C++ side takes the names, kinds and
 * descriptions, and a test checks docs/METRICS.md's reference against it.
 *
 * Kinds: an outcome is a REDIRECT (translated and sent on by the program), a PASS (left to the
 * kernel) or a DROP. An EVENT is counted besides a packet's outcome. One event doubles as a
 * step's answer: xdp_handoff tells the XDP program that tc must finish the packet, and verdict()
 * passes it up and counts it as that. Where a counter sits in the list decides nothing, so a new
 * drop cannot become a pass by mistake.
 */
#ifndef XNAT_COUNTERS_H
#define XNAT_COUNTERS_H

#include "abi.h"

#define XNAT_KIND_REDIRECT 1
#define XNAT_KIND_PASS 2
#define XNAT_KIND_DROP 3
#define XNAT_KIND_EVENT 4

#define XNAT_COUNTER_LIST(X)                                                                       \
	X(REDIRECTED, REDIRECT, "redirected", "translated and sent out by the fast path")                   \
	X(REDIRECTED_NEIGH, REDIRECT, "redirected_neigh", "translated and sent out by tc, which resolves the next hop") \
	X(PASS_NO_NEIGH, PASS, "pass_no_neigh", "translated; next hop not resolved yet, kernel forwards") \
	X(PASS_TTL, PASS, "pass_ttl", "translated; TTL <= 1, kernel sends time exceeded")               \
	X(PASS_FRAG_NEEDED, PASS, "pass_frag_needed", "translated; larger than egress MTU, kernel answers") \
	X(PASS_FIB, PASS, "pass_fib", "translated; route is local, unreachable or not ours")            \
	X(PASS_NO_MATCH, PASS, "pass_no_match", "no connection and no rule: untouched")                 \
	X(PASS_NOT_IPV4, PASS, "pass_not_ipv4", "not IPv4 (ARP, IPv6, VLAN): untouched")                 \
	X(PASS_FRAGMENT, PASS, "pass_fragment", "later fragment without translation, not for WAN or LAN; fragmented ICMP error: untouched") \
	X(PASS_L4_PROTO, PASS, "pass_l4_proto", "protocol xnat does not translate: untouched")          \
	X(PASS_MALFORMED, PASS, "pass_malformed", "truncated or inconsistent headers: untouched")       \
	X(PASS_TCP_NOT_SYN, PASS, "pass_tcp_not_syn", "TCP without state that is not a SYN: untouched") \
	X(DROP_CT_FULL, DROP, "drop_ct_full", "connection table full: new flow refused")                \
	X(DROP_CT_COLLISION, DROP, "drop_ct_collision", "reply tuple already in use: new flow refused") \
	X(DROP_TX_PORT, DROP, "drop_tx_port", "egress interface missing from the redirect map")      \
	X(DROP_PORTS_EXHAUSTED, DROP, "drop_ports_exhausted", "no free external port: new flow refused") \
	X(DROP_TCP_RST_WINDOW, DROP, "drop_tcp_rst_window", "RST outside the sender's window: dropped, state kept") \
	X(DROP_HOST_FLOWS, DROP, "drop_host_connections", "internal host holds its connection quota: new flow refused") \
	X(DROP_HOST_PORTS, DROP, "drop_host_ports", "internal host holds its external port quota: new flow refused") \
	X(PASS_ICMP_NO_FLOW, PASS, "pass_icmp_no_flow", "ICMP error about no tracked flow: untouched")   \
	X(PASS_FOR_ERROR, PASS, "pass_for_error", "source-NATed packet needs an ICMP error: untouched")  \
	X(DROP_FRAG_NO_FIRST, DROP, "drop_frag_no_first", "later fragment without its first fragment's translation, to be forwarded: dropped") \
	X(DROP_FRAG_CLASH, DROP, "drop_frag_clash", "first fragment whose datagram ID is held by another translation: dropped") \
	X(NEW_FLOW, EVENT, "new_flow", "connections created (counted besides the outcome)")               \
	X(CT_EXPIRED, EVENT, "ct_expired", "connections expired on lookup (counted besides the outcome)") \
	X(FLOW_ENDED, EVENT, "flow_ended", "connections ended, by the sweeper, a lookup or flush (besides)") \
	X(ICMP_ERROR_TRANSLATED, EVENT, "icmp_error_translated", "ICMP errors whose embedded packet was translated") \
	X(XDP_HANDOFF, EVENT, "xdp_handoff", "packets XDP passed up untouched for tc to finish and count (besides)") \
	X(CT_EARLY_DROP, EVENT, "ct_early_drop", "unassured connections evicted to admit a new flow (besides)") \
	X(REFUSAL_ICMP_SENT, EVENT, "refusal_icmp_sent", "refused new flows answered with ICMP admin-prohibited (besides)") \
	X(REFUSAL_ICMP_LIMITED, EVENT, "refusal_icmp_limited", "refused new flows left unanswered by the ICMP rate limit (besides)") \
	X(MSS_CLAMPED, EVENT, "mss_clamped", "TCP SYNs whose MSS option was lowered (besides)") \
	X(FRAG_TRACKED, EVENT, "frag_tracked", "first fragments whose translation was kept for the later ones (besides)")

#define XNAT_COUNTER_ENUM_(id, kind, name, help) XNAT_CNT_##id,
enum xnat_counter { XNAT_COUNTER_LIST(XNAT_COUNTER_ENUM_) XNAT_CNT_COUNT };
#undef XNAT_COUNTER_ENUM_

/* What a datapath step returns to say "carry on": any other value is the packet's outcome. It
 * is no counter's index, so an outcome that happens to be 0 (redirected) cannot be mistaken for
 * it. */
#define XNAT_CONTINUE (-1)

/* The counters of each kind, one bit each, so that a verdict costs a shift and a mask. */
XNAT_STATIC_ASSERT(XNAT_CNT_COUNT <= 64, "the kind masks hold one bit per counter");
#define XNAT_KIND_BIT_(id, kind, want) | (XNAT_KIND_##kind == (want) ? 1ULL << XNAT_CNT_##id : 0ULL)
#define XNAT_REDIRECT_BIT_(id, kind, name, help) XNAT_KIND_BIT_(id, kind, XNAT_KIND_REDIRECT)
#define XNAT_PASS_BIT_(id, kind, name, help) XNAT_KIND_BIT_(id, kind, XNAT_KIND_PASS)
#define XNAT_DROP_BIT_(id, kind, name, help) XNAT_KIND_BIT_(id, kind, XNAT_KIND_DROP)
#define XNAT_EVENT_BIT_(id, kind, name, help) XNAT_KIND_BIT_(id, kind, XNAT_KIND_EVENT)
#define XNAT_REDIRECT_MASK (0ULL XNAT_COUNTER_LIST(XNAT_REDIRECT_BIT_))
#define XNAT_PASS_MASK (0ULL XNAT_COUNTER_LIST(XNAT_PASS_BIT_))
#define XNAT_DROP_MASK (0ULL XNAT_COUNTER_LIST(XNAT_DROP_BIT_))
#define XNAT_EVENT_MASK (0ULL XNAT_COUNTER_LIST(XNAT_EVENT_BIT_))
XNAT_STATIC_ASSERT((XNAT_REDIRECT_MASK | XNAT_PASS_MASK | XNAT_DROP_MASK | XNAT_EVENT_MASK) ==
			   (XNAT_CNT_COUNT == 64 ? ~0ULL : (1ULL << XNAT_CNT_COUNT) - 1),
		   "every counter has one of the four kinds");

#endif
