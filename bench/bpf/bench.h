/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Types shared by the benchmark's BPF programs and its driver (bench/xnat_bench.cpp). */
#ifndef XNAT_BENCH_H
#define XNAT_BENCH_H

#include <linux/types.h>

/* What the generator sends. Flow i of n_saddr * n_sport * n_dport takes its source port from
 * the fastest-moving index, then its destination port, then its source address. */
struct bench_gen_cfg {
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u32 saddr_base; /* host order */
	__u32 n_saddr;
	__u32 daddr;      /* host order */
	__u32 sport_base;
	__u32 n_sport;
	__u32 dport_base;
	__u32 n_dport;
	__u32 proto;      /* 17: UDP datagram, 6: TCP SYN */
	__u32 new_flows;  /* every packet a new tuple: the flow index never repeats in a run */
};

#define BENCH_FRAME_LEN 60 /* a 64-byte frame on the wire, FCS excluded */

#endif
