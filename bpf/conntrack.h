/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Connection tracking: creation of both halves together, TCP state, accounting and expiry.
 *
 * The halves live and die together. They are inserted together (the first is removed again if
 * the second cannot be), and every path that ends a flow - the sweeper, a lookup that finds it
 * expired, a new SYN on a closed tuple, flush - deletes both. A half whose peer is missing is
 * treated as expired the moment anything looks at it.
 */
#ifndef XNAT_BPF_CONNTRACK_H
#define XNAT_BPF_CONNTRACK_H

#include "host_quota.h"
#include "map_defs.h"
#include "parse.h"
#include "snat.h"

#define XNAT_CLOCK_MONOTONIC 1
#define XNAT_EEXIST 17

/* Ticks of idle time, never negative (a stamp from another CPU may be a tick ahead). */
static __always_inline __u32 ct_idle(__u32 now, __u32 last)
{
	__s32 idle = (__s32)(now - last);

	return idle > 0 ? (__u32)idle : 0;
}

/* Ticks until the flow of this half expires; 0 once it has. A flow lives while either
 * direction is active, so both halves' last packets count. */
static __always_inline __u32 ct_time_left(const struct xnat_ct_key *key,
					  const struct xnat_ct_entry *e, __u32 now)
{
	const struct xnat_config *cfg = xnat_config_get();
	const struct xnat_ct_entry *peer, *orig;
	__u32 idle, peer_idle, timeout;

	if (!cfg)
		return 1;
	peer = bpf_map_lookup_elem(&XNAT_MAP_CT, &e->peer);
	if (!peer)
		return 0;
	orig = e->dir == XNAT_DIR_ORIGINAL ? e : peer;
	idle = ct_idle(now, e->last_seen);
	peer_idle = ct_idle(now, peer->last_seen);
	if (peer_idle < idle)
		idle = peer_idle;
	timeout = (__u32)xnat_secs_to_ticks(
		xnat_timeout_s(&cfg->timeouts, key->proto, orig->state, orig->flags));
	return idle >= timeout ? 0 : timeout - idle;
}

static __always_inline void ct_delete_pair(const struct xnat_ct_key *key,
					   const struct xnat_ct_entry *e)
{
	/* Copies first: a deleted element's memory may be reused at once. */
	struct xnat_ct_key peer = e->peer;
	struct xnat_ct_key self = *key;
	__u8 nat = e->nat, dir = e->dir;
	long peer_err = bpf_map_delete_elem(&XNAT_MAP_CT, &peer);
	long self_err = bpf_map_delete_elem(&XNAT_MAP_CT, &self);

	/* Two paths may end the same flow at once (the sweeper, a packet finding it expired): only
	 * the one that removed the original half drops the flow's mapping reference. */
	if ((dir == XNAT_DIR_ORIGINAL ? self_err : peer_err) != 0)
		return;
	xnat_count_atomic(XNAT_CNT_FLOW_ENDED);
	if (nat & XNAT_NAT_HOST)
		host_uncharge(dir == XNAT_DIR_ORIGINAL ? self.saddr : peer.saddr, XNAT_HOST_FLOW);
	if (nat & XNAT_NAT_MAP_SELF)
		snat_release(self.proto, self.daddr, self.dport);
	else if (nat & XNAT_NAT_MAP_PEER)
		snat_release(peer.proto, peer.daddr, peer.dport);
}

/* The shortest timeout the flow of this half can have: the original half carries the flow's
 * state, a reply half only its protocol. */
static __always_inline __u32 ct_timeout_floor_s(const struct xnat_timeouts *t, __u8 proto,
						const struct xnat_ct_entry *e)
{
	__u32 m;

	if (e->dir == XNAT_DIR_ORIGINAL)
		return xnat_timeout_s(t, proto, e->state, e->flags);
	if (proto == IPPROTO_TCP) {
		m = t->tcp_established_s < t->tcp_transitory_s ? t->tcp_established_s : t->tcp_transitory_s;
		m = m < t->tcp_close_s ? m : t->tcp_close_s;
		m = m < t->tcp_syn_sent_s ? m : t->tcp_syn_sent_s;
		return m < t->tcp_syn_recv_s ? m : t->tcp_syn_recv_s;
	}
	if (proto == IPPROTO_UDP)
		return t->udp_s < t->udp_unreplied_s ? t->udp_s : t->udp_unreplied_s;
	return t->icmp_s;
}

/* A lookup hit is usable unless the flow has expired, or a fresh SYN reopens a closed TCP
 * tuple (which must pick up the current rules, not the old translation). The full check
 * reads the peer, so it runs only when this half alone cannot prove the flow alive. */
static __always_inline int ct_is_stale(const struct xnat_pkt *p, const struct xnat_ct_entry *e,
				       __u32 now)
{
	const struct xnat_config *cfg;

	if (p->tuple.proto == IPPROTO_TCP && e->dir == XNAT_DIR_ORIGINAL &&
	    (p->tcp_flags & (XNAT_TCP_SYN | XNAT_TCP_ACK | XNAT_TCP_RST)) == XNAT_TCP_SYN &&
	    (e->state == XNAT_TCP_CLOSE || e->state == XNAT_TCP_TIME_WAIT))
		return 1;
	if (e->last_seen == now)
		return 0;
	/* A flow lives while either half is active, so this half alone, idle for less than any
	 * timeout its flow can have, proves the flow alive without reading the peer. That read is a
	 * second table lookup, and a second cache miss, for every packet of a flow seen less than
	 * once a tick: a million flows at a million packets a second. */
	cfg = xnat_config_get();
	if (cfg && ct_idle(now, e->last_seen) <
		       (__u32)xnat_secs_to_ticks(ct_timeout_floor_s(&cfg->timeouts, p->tuple.proto, e)))
		return 0;
	return ct_time_left(&p->tuple, e, now) == 0;
}

/*
 * Early drop. A full table admits a new flow by ending an unassured one (no reply seen, or a TCP
 * handshake not completed), as netfilter does, so that a flood of spoofed SYNs or one-way UDP
 * cannot lock everyone out until its flows time out. Assured flows are never evicted.
 *
 * Candidates come from a FIFO of the original keys of new flows, oldest first: the flood's oldest
 * entries go first and a legitimate client's new flow, the youngest, lives the longest. A popped
 * key that names an assured flow, or no flow at all, is dropped from the queue for good (assured
 * is forever), so the queue keeps only what may still be evicted. At most XNAT_EVICT_PROBES keys
 * are looked at per attempt. When the queue overflows, its oldest keys are overwritten: such flows
 * can no longer be evicted, only expire.
 */
#define XNAT_EVICT_PROBES 8

/* Sized by xnat-load to limits.connections. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, XNAT_DEFAULT_MAX_CONNECTIONS);
	__type(value, struct xnat_ct_key);
} XNAT_MAP_EVICT SEC(".maps");

/* Ends the oldest unassured flow among the next XNAT_EVICT_PROBES candidates; 1 if it did. */
static __always_inline int ct_evict_one(void)
{
	struct xnat_ct_key k;
	struct xnat_ct_entry *e;
	int i;

	for (i = 0; i < XNAT_EVICT_PROBES; i++) {
		if (bpf_map_pop_elem(&XNAT_MAP_EVICT, &k))
			return 0;
		e = bpf_map_lookup_elem(&XNAT_MAP_CT, &k);
		if (!e || e->dir != XNAT_DIR_ORIGINAL || (e->flags & XNAT_CT_F_ASSURED))
			continue;
		ct_delete_pair(&k, e);
		xnat_count(XNAT_CNT_CT_EARLY_DROP);
		return 1;
	}
	return 0;
}

/* Inserting failed for want of room (the hash map's E2BIG; ENOMEM would mean the same). */
static __always_inline int ct_full(int err)
{
	return err && err != -XNAT_EEXIST;
}

/* What a new flow is: its original direction is the packet's tuple, rewritten to `to`. */
struct ct_new {
	struct xnat_ct_key to;
	__u16 rule;     /* hit slot of the rule that made it, or XNAT_NO_RULE */
	__u8 orig_nat;  /* XNAT_NAT_* of each half */
	__u8 reply_nat;
};

static __always_inline void ct_reverse(const struct xnat_ct_key *t, struct xnat_ct_key *r)
{
	r->saddr = t->daddr;
	r->daddr = t->saddr;
	r->sport = t->dport;
	r->dport = t->sport;
	r->proto = t->proto;
}

/* A new entry under `key`, or a negative errno. Kernels before 6.4 call the hash map's update
 * as an int function: the error arrives zero-extended in the 64-bit return (-EEXIST reads
 * 4294967279), so only the low 32 bits mean anything. */
static __always_inline int ct_insert(const struct xnat_ct_key *key, const struct xnat_ct_entry *e)
{
	return (int)bpf_map_update_elem(&XNAT_MAP_CT, key, e, BPF_NOEXIST);
}

/* Evictions tried per half before a full table refuses. The preallocated table keeps a free
 * list per CPU, and a flow evicted here frees its entries onto this CPU's list; another CPU whose
 * own list is empty may take them before the insert below does (measured: a legitimate SYN
 * refused now and then during a flood in tc mode, with one try). */
#define XNAT_EVICT_TRIES 3

/* Inserts `e` under `key`, evicting unassured flows while the table is full. */
static __always_inline int ct_insert_evicting(const struct xnat_ct_key *key,
					      const struct xnat_ct_entry *e, int err)
{
	int i;

	for (i = 0; i < XNAT_EVICT_TRIES && ct_full(err); i++) {
		if (!ct_evict_one())
			break;
		err = ct_insert(key, e);
	}
	return err;
}

/* Inserts both halves of a new flow. Returns XNAT_CONTINUE and the original half, or a drop
 * counter; on
 * failure nothing of the flow is left in the table. Once the original half is in, another path
 * (flush, an eviction popping an older key of the same tuple, expiry of a half with no peer yet)
 * may end the flow before it is complete; that path counted it ended and gave back its mapping
 * reference and host charge, so *ended_elsewhere tells the caller not to give them back again,
 * and the flow is counted created, as it did exist. */
static __always_inline int ct_create(const struct xnat_pkt *p, const struct ct_new *n, __u32 now,
				     struct xnat_ct_entry **out, int *ended_elsewhere)
{
	struct xnat_ct_key rkey = {};
	struct xnat_ct_entry half = {
		.last_seen = now,
		.dir = XNAT_DIR_ORIGINAL,
		.state = p->tuple.proto == IPPROTO_TCP ? XNAT_TCP_SYN_SENT : XNAT_TCP_NONE,
		.nat = n->orig_nat,
		.rule = n->rule,
	};
	struct xnat_ct_entry *orig, *stale;
	int err;

	ct_reverse(&n->to, &rkey);
	half.peer = rkey;
	err = ct_insert_evicting(&p->tuple, &half, ct_insert(&p->tuple, &half));
	if (err)
		/* EEXIST: another CPU created this flow between our lookup and insert; its packet
		 * goes through, this one is dropped and retransmitted. */
		return err == -XNAT_EEXIST ? XNAT_CNT_DROP_CT_COLLISION : XNAT_CNT_DROP_CT_FULL;

	half.peer = p->tuple;
	half.dir = XNAT_DIR_REPLY;
	half.state = XNAT_TCP_NONE;
	half.nat = n->reply_nat;
	err = ct_insert(&rkey, &half);
	if (err == -XNAT_EEXIST) {
		/* The reply tuple is taken. Reclaim it only if that flow is already dead. */
		stale = bpf_map_lookup_elem(&XNAT_MAP_CT, &rkey);
		if (stale && ct_time_left(&rkey, stale, now) == 0) {
			ct_delete_pair(&rkey, stale);
			err = ct_insert(&rkey, &half);
		}
	}
	err = ct_insert_evicting(&rkey, &half, err);
	if (err) {
		if (bpf_map_delete_elem(&XNAT_MAP_CT, &p->tuple) != 0) {
			*ended_elsewhere = 1;
			xnat_count(XNAT_CNT_NEW_FLOW);
		}
		return err == -XNAT_EEXIST ? XNAT_CNT_DROP_CT_COLLISION : XNAT_CNT_DROP_CT_FULL;
	}

	orig = bpf_map_lookup_elem(&XNAT_MAP_CT, &p->tuple);
	if (!orig) {
		bpf_map_delete_elem(&XNAT_MAP_CT, &rkey);
		*ended_elsewhere = 1;
		xnat_count(XNAT_CNT_NEW_FLOW);
		return XNAT_CNT_DROP_CT_FULL;
	}
	/* Every new flow starts unassured. A full queue drops its oldest key, which is the one most
	 * likely to be gone already. */
	bpf_map_push_elem(&XNAT_MAP_EVICT, &p->tuple, BPF_EXIST);
	xnat_count(XNAT_CNT_NEW_FLOW);
	xnat_rule_hit(n->rule);
	*out = orig;
	return XNAT_CONTINUE;
}

static __always_inline __u8 ct_tcp_next_state(__u8 state, __u8 *flags, __u8 dir, __u8 tcp)
{
	if (tcp & XNAT_TCP_RST)
		return XNAT_TCP_CLOSE;
	if (tcp & XNAT_TCP_SYN) {
		if (dir == XNAT_DIR_REPLY && (tcp & XNAT_TCP_ACK) && state == XNAT_TCP_SYN_SENT)
			return XNAT_TCP_SYN_RECV;
		return state;
	}
	if (tcp & XNAT_TCP_FIN) {
		*flags |= dir == XNAT_DIR_ORIGINAL ? XNAT_CT_F_FIN_ORIG : XNAT_CT_F_FIN_REPLY;
		if ((*flags & (XNAT_CT_F_FIN_ORIG | XNAT_CT_F_FIN_REPLY)) ==
		    (XNAT_CT_F_FIN_ORIG | XNAT_CT_F_FIN_REPLY))
			return XNAT_TCP_TIME_WAIT;
		if (state == XNAT_TCP_CLOSE)
			return state;
		return dir == XNAT_DIR_ORIGINAL ? XNAT_TCP_FIN_WAIT : XNAT_TCP_CLOSE_WAIT;
	}
	if ((tcp & XNAT_TCP_ACK) && dir == XNAT_DIR_ORIGINAL && state == XNAT_TCP_SYN_RECV)
		return XNAT_TCP_ESTABLISHED;
	return state;
}

/* Updates the original half's state from a packet of either direction. */
static __always_inline void ct_update_state(struct xnat_ct_entry *orig, const struct xnat_pkt *p,
					    __u8 dir)
{
	__u8 flags = orig->flags, state = orig->state;

	if (dir == XNAT_DIR_REPLY)
		flags |= XNAT_CT_F_SEEN_REPLY;
	if (p->tuple.proto == IPPROTO_TCP) {
		state = ct_tcp_next_state(state, &flags, dir, p->tcp_flags);
		if (state == XNAT_TCP_ESTABLISHED)
			flags |= XNAT_CT_F_ASSURED;
	} else if (flags & XNAT_CT_F_SEEN_REPLY) {
		flags |= XNAT_CT_F_ASSURED;
	}
	if (flags != orig->flags)
		orig->flags = flags;
	if (state != orig->state)
		orig->state = state;
}

/* Per-packet bookkeeping: XNAT_CONTINUE, or a drop outcome for an RST outside its sender's window.
 * The original half is at hand for original-direction packets; for
 * replies it is looked up only when the state can change: SYN, FIN, RST, or the first reply.
 * The counts are plain adds: one direction of a flow is handled by one CPU (the NIC hashes a
 * flow to one queue), and an atomic add cost 90 ns per packet here (bpf_stats). Should two
 * CPUs ever share a direction, a count may come out short; nothing else depends on them. */
static __always_inline int ct_account(struct xnat_ct_entry *e, const struct xnat_pkt *p,
				      __u32 now)
{
	struct xnat_ct_entry *orig = e;

	if (p->tuple.proto == IPPROTO_TCP && (p->tcp_flags & XNAT_TCP_RST)) {
		/* An RST far from where its sender's sequence numbers are is spoofed or stale: it
		 * is dropped, neither translated nor counted, and the state stays. */
		__u32 d = p->tcp_seq - e->next_seq;

		if (e->seq_known && d > XNAT_RST_WINDOW && -d > XNAT_RST_WINDOW)
			return XNAT_CNT_DROP_TCP_RST_WINDOW;
	}
	e->packets += 1;
	e->bytes += p->tot_len;
	if (p->tuple.proto == IPPROTO_TCP && !(p->tcp_flags & XNAT_TCP_RST)) {
		if (!e->seq_known || (__s32)(p->tcp_next - e->next_seq) > 0) {
			e->next_seq = p->tcp_next;
			e->seq_known = 1;
		}
	}
	if (e->last_seen != now)
		e->last_seen = now; /* once a tick: the line is not dirtied per packet for this */

	if (e->dir == XNAT_DIR_REPLY) {
		if ((e->flags & XNAT_CT_F_SEEN_REPLY) &&
		    !(p->tcp_flags & (XNAT_TCP_SYN | XNAT_TCP_FIN | XNAT_TCP_RST)))
			return XNAT_CONTINUE;
		e->flags |= XNAT_CT_F_SEEN_REPLY;
		orig = bpf_map_lookup_elem(&XNAT_MAP_CT, &e->peer);
		if (!orig)
			return XNAT_CONTINUE;
	} else if (p->tuple.proto != IPPROTO_TCP ||
		   (!(p->tcp_flags & (XNAT_TCP_SYN | XNAT_TCP_FIN | XNAT_TCP_RST)) &&
		    e->state != XNAT_TCP_SYN_RECV)) {
		return XNAT_CONTINUE;
	}
	ct_update_state(orig, p, e->dir);
	return XNAT_CONTINUE;
}

#endif
