/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Names and sizes of the pinned maps. The BPF side declares each map with the token
 * (struct { ... } XNAT_MAP_CT SEC(".maps")), so the kernel map name and the pin file name are
 * the token's spelling; the C++ side uses XNAT_STR(XNAT_MAP_CT). Kernel map names are limited
 * to 15 characters.
 */
#ifndef XNAT_MAPS_H
#define XNAT_MAPS_H

#define XNAT_MAP_CT xnat_ct           /* connection tracking, one entry per direction */
#define XNAT_MAP_FWD xnat_fwd         /* array-of-maps: forward table per rule generation */
#define XNAT_MAP_MASQ xnat_masq       /* array-of-maps: masquerade trie per rule generation */
#define XNAT_MAP_RULES xnat_rules     /* forward rules as configured, for list/add/del */
#define XNAT_MAP_MASQ_RULES xnat_masq_rules /* masquerade rules as configured, for list */
#define XNAT_MAP_SNAT xnat_snat       /* source-NAT mappings by external endpoint */
#define XNAT_MAP_EIM xnat_eim         /* internal endpoint -> last external port (LRU hint) */
#define XNAT_MAP_MAPPED xnat_mapped   /* internal endpoint -> the wan port a mapped forward gives it */
#define XNAT_MAP_EVICT xnat_evict     /* queue of new flows' keys, oldest first: early-drop candidates */
#define XNAT_MAP_HOSTS xnat_hosts     /* per internal host: flows and ports held (quotas) */
#define XNAT_MAP_FRAG xnat_frag       /* first fragments' translations, for the later fragments */
#define XNAT_MAP_REFUSAL xnat_refusal /* per-CPU rate state of ICMP refusals */
#define XNAT_MAP_SWEEP xnat_sweep     /* the expiry sweeper: its timer, workqueue and statistics */
#define XNAT_MAP_RULE_HITS xnat_hits  /* per-CPU: flows each rule made (forwards, then masquerade) */
#define XNAT_MAP_CONFIG xnat_config   /* one struct xnat_config */
#define XNAT_MAP_COUNTERS xnat_stats  /* per-CPU outcome counters */
#define XNAT_MAP_TX_PORTS xnat_tx     /* devmap of the interfaces XDP may redirect to */

/* Programs, by the names xnat-load attaches. */
#define XNAT_PROG_XDP_WAN xnat_xdp_wan
#define XNAT_PROG_XDP_LAN xnat_xdp_lan
#define XNAT_PROG_TC_WAN xnat_tc_wan
#define XNAT_PROG_TC_LAN xnat_tc_lan
#define XNAT_PROG_TC_EGRESS xnat_tc_egress /* ICMP errors the kernel sends about translated packets */
#define XNAT_PROG_TC_EGRESS_L3 xnat_tc_egress_l3 /* the same, on an interface without a link header */
#define XNAT_PROG_FLUSH xnat_flush         /* run by xnat-map flush: deletes flows as the datapath does */
#define XNAT_PROG_SWEEP_ARM xnat_sweep_arm /* run once by xnat-load: starts the expiry sweeper */

/* Rule generations: the control plane fills the idle slot of each rule map, then flips
 * xnat_config.rule_gen, so a packet sees one generation of every rule map. */
#define XNAT_RULE_GENERATIONS 2

/* Expanded forward entries: a rule over a port range or a prefix becomes one entry per port
 * or host, so the datapath does one exact-match lookup. 2^18 covers four full port ranges. */
#define XNAT_FWD_MAX_ENTRIES (1u << 18)
#define XNAT_MAX_RULES 4096u
#define XNAT_MAX_MASQ_RULES 256u
#define XNAT_MASQ_MAX_ENTRIES (XNAT_MAX_MASQ_RULES * (1 + 16))
/* Rule hit slots: forward rule i at i, masquerade rule j at XNAT_MAX_RULES + j. */
#define XNAT_RULE_HIT_SLOTS (XNAT_MAX_RULES + XNAT_MAX_MASQ_RULES)

#define XNAT_DEFAULT_MAX_CONNECTIONS 262144u
/* Mapping slots beyond the flows they serve: a new masquerade flow takes its mapping before it
 * makes room in a full connection table by early drop, so a table full of flows that each hold a
 * mapping must still leave room for the flows being made (one per CPU at a time). */
#define XNAT_SNAT_HEADROOM 64u
/* Without masquerade, mappings serve hairpinned flows only. */
#define XNAT_HAIRPIN_ONLY_MAPPINGS 4096u
#define XNAT_MIN_CONNECTIONS 16u
#define XNAT_MAX_CONNECTIONS (1u << 24)

/* tc filters are not bpf_links with this libbpf, so they are found again by these fixed
 * coordinates on the clsact hook. */
#define XNAT_TC_PRIORITY 0x2a0
#define XNAT_TC_HANDLE 0x4e41

#endif
