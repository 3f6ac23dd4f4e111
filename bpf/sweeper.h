/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Expiry without a daemon and without allocating per flow. One bpf_timer per instance (5.15,
 * the supported floor) fires every sweep interval and its callback walks the connection table,
 * ending every flow idle past its timeout exactly as a lookup or flush would.
 *
 * The walk runs in the timer's softirq, so it delays packets on that CPU while it lasts
 * (xnat-map stats shows its duration). A BPF workqueue would walk in process context, but
 * bpf_wq is 6.10+ and newer kernels refuse to set its callback from any program the loader can
 * run without sleepable support, so it is not used.
 *
 * Why not a timer per flow: on this kernel bpf_timer_init allocates with kmalloc_nolock, which
 * fails in softirq during bursts of new flows (measured: 64k new flows at 1 Mpps, 97% refused),
 * and each timer costs 192 bytes, more than the flow's two entries together.
 */
#ifndef XNAT_BPF_SWEEP_H
#define XNAT_BPF_SWEEP_H

#include "conntrack.h"
#include "map_defs.h"
#include "xnat/sweep.h"

struct xnat_sweeper {
	struct bpf_timer timer;
	struct xnat_sweep_stats stats;
	__u64 armed;
};
XNAT_STATIC_ASSERT(__builtin_offsetof(struct xnat_sweeper, stats) == XNAT_SWEEP_STATS_OFF,
		   "sweep stats offset");
XNAT_STATIC_ASSERT(sizeof(struct xnat_sweeper) == XNAT_SWEEP_VALUE_SIZE, "sweeper layout");

/* Not pinned for reuse: each load makes its own, armed by its own programs, and dropping the
 * old pin cancels the old sweeper. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xnat_sweeper);
} XNAT_MAP_SWEEP SEC(".maps");

struct sweep_walk {
	__u32 now;         /* ticks */
	__u32 min_timeout; /* ticks: an entry idle for less is alive whatever its state */
	__u64 entries;
	__u64 expired;
};

static long sweep_one(void *map __attribute__((unused)), struct xnat_ct_key *key,
		      struct xnat_ct_entry *e, struct sweep_walk *w)
{
	w->entries++;
	if (ct_idle(w->now, e->last_seen) < w->min_timeout)
		return 0;
	if (e->dir == XNAT_DIR_ORIGINAL) {
		if (ct_time_left(key, e, w->now) == 0) {
			ct_delete_pair(key, e);
			w->expired++;
		}
	} else if (!bpf_map_lookup_elem(&XNAT_MAP_CT, &e->peer)) {
		ct_delete_pair(key, e); /* an orphaned reply half */
	}
	return 0;
}

static __always_inline __u32 min_timeout_ticks(const struct xnat_timeouts *t)
{
	__u32 all[] = { t->tcp_established_s, t->tcp_transitory_s, t->tcp_close_s, t->udp_s,
			t->icmp_s, t->tcp_syn_sent_s, t->tcp_syn_recv_s, t->udp_unreplied_s };
	__u32 m = all[0];
	int i;

	for (i = 1; i < (int)(sizeof(all) / sizeof(all[0])); i++)
		if (all[i] < m)
			m = all[i];
	return (__u32)xnat_secs_to_ticks(m);
}

/* A host entry that has held nothing for two ticks is reclaimed. Claiming it (0 -> DEAD) first
 * makes a charge racing with the delete see the bit and take itself back. */
static long sweep_host(void *map __attribute__((unused)), __be32 *key, struct xnat_host *h,
		       struct sweep_walk *w)
{
	__be32 addr = *key;

	if (h->use == 0 && ct_idle(w->now, h->last_tick) >= 2 &&
	    __sync_val_compare_and_swap(&h->use, 0, XNAT_HOST_DEAD) == 0)
		bpf_map_delete_elem(&XNAT_MAP_HOSTS, &addr);
	return 0;
}

static __always_inline void sweep_walk_table(struct xnat_sweeper *s)
{
	const struct xnat_config *cfg = xnat_config_get();
	struct sweep_walk w = {};
	__u64 start = bpf_ktime_get_ns();

	if (!cfg)
		return;
	w.now = xnat_now_ticks();
	w.min_timeout = min_timeout_ticks(&cfg->timeouts);
	bpf_for_each_map_elem(&XNAT_MAP_CT, sweep_one, &w, 0);
	bpf_for_each_map_elem(&XNAT_MAP_HOSTS, sweep_host, &w, 0);
	s->stats.sweeps++;
	s->stats.expired += w.expired;
	s->stats.last_entries = w.entries;
	s->stats.last_end_ns = bpf_ktime_get_ns();
	s->stats.last_duration_ns = s->stats.last_end_ns - start;
}

static __always_inline __u64 sweep_interval_ns(void)
{
	const struct xnat_config *cfg = xnat_config_get();
	__u32 ms = cfg && cfg->sweep_interval_ms ? cfg->sweep_interval_ms : XNAT_DEFAULT_SWEEP_INTERVAL_MS;

	return (__u64)ms * 1000000ull;
}

static int sweep_tick(void *map __attribute__((unused)), int *key __attribute__((unused)),
		      struct xnat_sweeper *s)
{
	sweep_walk_table(s);
	bpf_timer_start(&s->timer, sweep_interval_ns(), 0);
	return 0;
}

/* Starts the sweeper; 0 on success or if it already runs. */
static __always_inline int sweep_arm(void)
{
	__u32 zero = 0;
	struct xnat_sweeper *s = bpf_map_lookup_elem(&XNAT_MAP_SWEEP, &zero);

	if (!s)
		return -1;
	if (s->armed)
		return 0;
	if (bpf_timer_init(&s->timer, &XNAT_MAP_SWEEP, XNAT_CLOCK_MONOTONIC) ||
	    bpf_timer_set_callback(&s->timer, sweep_tick) ||
	    bpf_timer_start(&s->timer, sweep_interval_ns(), 0))
		return -1;
	s->armed = 1;
	return 0;
}

#endif
