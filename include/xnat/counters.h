/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Outcome counters: every packet an xnat program sees ends in exactly one outcome, and every
 * pass-to-kernel and drop has its reason. The list is written once; BPF takes the indices, the
 * C++ side takes the names and descriptions.
 */
#ifndef XNAT_COUNTERS_H
#define XNAT_COUNTERS_H

#define XNAT_COUNTER_LIST(X)                                                                       \
	X(REDIRECTED, "redirected", "translated and sent out by the fast path")                   \
	X(REDIRECTED_NEIGH, "redirected_neigh", "translated and sent out by tc, which resolves the next hop") \
	X(PASS_NO_NEIGH, "pass_no_neigh", "translated; next hop not resolved yet, kernel forwards") \
	X(PASS_TTL, "pass_ttl", "translated; TTL <= 1, kernel sends time exceeded")               \
	X(PASS_FRAG_NEEDED, "pass_frag_needed", "translated; larger than egress MTU, kernel answers") \
	X(PASS_FIB, "pass_fib", "translated; route is local, unreachable or not ours")            \
	X(PASS_NO_MATCH, "pass_no_match", "no connection and no rule: untouched")                 \
	X(PASS_NOT_IPV4, "pass_not_ipv4", "not IPv4 (ARP, IPv6, VLAN): untouched")                 \
	X(PASS_FRAGMENT, "pass_fragment", "later fragment without translation, not for WAN or LAN; fragmented ICMP error: untouched") \
	X(PASS_L4_PROTO, "pass_l4_proto", "protocol xnat does not translate: untouched")          \
	X(PASS_MALFORMED, "pass_malformed", "truncated or inconsistent headers: untouched")       \
	X(PASS_TCP_NOT_SYN, "pass_tcp_not_syn", "TCP without state that is not a SYN: untouched") \
	X(DROP_CT_FULL, "drop_ct_full", "connection table full: new flow refused")                \
	X(DROP_CT_COLLISION, "drop_ct_collision", "reply tuple already in use: new flow refused") \
	X(DROP_TX_PORT, "drop_tx_port", "egress interface missing from the redirect map")      \
	X(DROP_PORTS_EXHAUSTED, "drop_ports_exhausted", "no free external port: new flow refused") \
	X(DROP_TCP_RST_WINDOW, "drop_tcp_rst_window", "RST outside the sender's window: dropped, state kept") \
	X(DROP_HOST_FLOWS, "drop_host_connections", "internal host holds its connection quota: new flow refused") \
	X(DROP_HOST_PORTS, "drop_host_ports", "internal host holds its external port quota: new flow refused") \
	X(PASS_ICMP_NO_FLOW, "pass_icmp_no_flow", "ICMP error about no tracked flow: untouched")   \
	X(PASS_FOR_ERROR, "pass_for_error", "source-NATed packet needs an ICMP error: untouched")  \
	X(DROP_FRAG_NO_FIRST, "drop_frag_no_first", "later fragment without its first fragment's translation, to be forwarded: dropped") \
	X(DROP_FRAG_CLASH, "drop_frag_clash", "first fragment whose datagram ID is held by another translation: dropped") \
	X(NEW_FLOW, "new_flow", "connections created (counted besides the outcome)")               \
	X(CT_EXPIRED, "ct_expired", "connections expired on lookup (counted besides the outcome)") \
	X(FLOW_ENDED, "flow_ended", "connections ended, by the sweeper, a lookup or flush (besides)") \
	X(ICMP_ERROR_TRANSLATED, "icmp_error_translated", "ICMP errors whose embedded packet was translated") \
	X(XDP_HANDOFF, "xdp_handoff", "packets XDP passed up untouched for tc to finish and count (besides)") \
	X(CT_EARLY_DROP, "ct_early_drop", "unassured connections evicted to admit a new flow (besides)") \
	X(REFUSAL_ICMP_SENT, "refusal_icmp_sent", "refused new flows answered with ICMP admin-prohibited (besides)") \
	X(REFUSAL_ICMP_LIMITED, "refusal_icmp_limited", "refused new flows left unanswered by the ICMP rate limit (besides)") \
	X(MSS_CLAMPED, "mss_clamped", "TCP SYNs whose MSS option was lowered (besides)") \
	X(FRAG_TRACKED, "frag_tracked", "first fragments whose translation was kept for the later ones (besides)")

#define XNAT_COUNTER_ENUM_(id, name, help) XNAT_CNT_##id,
enum xnat_counter { XNAT_COUNTER_LIST(XNAT_COUNTER_ENUM_) XNAT_CNT_COUNT };
#undef XNAT_COUNTER_ENUM_

#endif
