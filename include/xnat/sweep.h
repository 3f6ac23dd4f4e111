/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The expiry sweeper's statistics. They sit in the sweeper map's value after the timer that
 * only BPF declares (bpf/sweeper.h checks the offset).
 */
#ifndef XNAT_SWEEP_H
#define XNAT_SWEEP_H

#include "abi.h"

struct xnat_sweep_stats {
	__u64 sweeps;          /* completed walks of the connection table */
	__u64 expired;         /* flows the walks ended */
	__u64 last_entries;    /* entries the last walk visited */
	__u64 last_duration_ns;
	__u64 last_end_ns;     /* CLOCK_MONOTONIC when the last walk ended */
};
XNAT_STATIC_ASSERT(sizeof(struct xnat_sweep_stats) == 40, "sweep stats layout");

/* Offset of the statistics in the sweeper map's value: a 16-byte bpf_timer. */
#define XNAT_SWEEP_STATS_OFF 16
#define XNAT_SWEEP_VALUE_SIZE (XNAT_SWEEP_STATS_OFF + 40 + 8)

#endif
