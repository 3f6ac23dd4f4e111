/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * TCP MSS clamping, as iptables' TCPMSS target does it: a SYN (or SYN-ACK) crossing xnat gets
 * its MSS option lowered to what the path can carry, so hosts behind a link with a smaller MTU
 * (PPPoE's 1492) never send segments that need path-MTU discovery, which ICMP-filtering
 * middleboxes often break. Only lowered, never raised; a SYN without the option is left alone
 * (its sender assumes 536).
 *
 * The clamp runs in a global (separately verified) function, so the verifier checks it once
 * rather than on every path of the NAT core that reaches it. The option walk inside it takes
 * one option per call of another global function, whose answer the verifier knows nothing
 * about: each turn of the loop then leaves it one state, whatever the options were. A walk
 * that stepped through the bytes itself left it a different offset on every path (one byte
 * for a NOP, 2 to 255 for other kinds), and the paths multiplied with the turns: on the clamp
 * function alone 6.1 and 6.12 gave up at a million instructions (E2BIG) and 6.18 took 115,000;
 * this way each takes about 1,000. One call per option costs nothing that matters on a SYN,
 * whose MSS is almost always the first.
 */
#ifndef XNAT_BPF_MSS_H
#define XNAT_BPF_MSS_H

#include "csum.h"
#include "ctx.h"
#include "map_defs.h"
#include "parse.h"

#define XNAT_TCPOPT_EOL 0
#define XNAT_TCPOPT_NOP 1
#define XNAT_TCPOPT_MSS 2
#define XNAT_TCPOLEN_MSS 4
#define XNAT_TCP_MAX_OPT_BYTES 40 /* also bounds the walk's steps: each advances at least one */
#define XNAT_TCPIP_HDR_LEN 40 /* IPv4 and TCP headers without options: MTU - 40 = MSS */

/* Flags a step's answer: the MSS value is at the offset below. Above any next offset a step
 * returns (at most 56 + 255). */
#define XNAT_MSS_FOUND 0x10000

/* One step of the option walk from the option at `off` of the TCP header at l4_off: the next
 * option's offset, XNAT_MSS_FOUND | the MSS value's offset, or 0 when the walk ends. */
static __always_inline __u32 mss_step(void *ctx, const int xdp, __u32 l4_off, __u32 off)
{
	void *data = ctx_data(ctx, xdp), *end = ctx_data_end(ctx, xdp);
	__u8 *th = data + (l4_off & 0xff), *o;
	__u32 opt_end;

	if ((void *)(th + sizeof(struct tcphdr)) > end)
		return 0;
	opt_end = (__u32)(th[12] >> 4) * 4;
	if (off < sizeof(struct tcphdr) || off + XNAT_TCPOLEN_MSS > opt_end)
		return 0; /* too few bytes left for the option */
	/* off is below 60 now, but the verifier cannot learn that from opt_end: the mask tells it
	 * how far `o` may be from th. */
	o = th + (off & 0x3f);
	if ((void *)(o + XNAT_TCPOLEN_MSS) > end)
		return 0;
	if (o[0] == XNAT_TCPOPT_EOL)
		return 0;
	if (o[0] == XNAT_TCPOPT_NOP)
		return off + 1;
	if (o[0] == XNAT_TCPOPT_MSS)
		return o[1] == XNAT_TCPOLEN_MSS ? XNAT_MSS_FOUND | (off + 2) : 0;
	if (o[1] < 2)
		return 0; /* a malformed length would loop: leave the segment as it is */
	return off + o[1];
}

__attribute__((noinline)) int xnat_mss_step_xdp(struct xdp_md *ctx, __u32 l4_off, __u32 off)
{
	return mss_step(ctx, XNAT_HOOK_XDP, l4_off, off);
}

__attribute__((noinline)) int xnat_mss_step_tc(struct __sk_buff *ctx, __u32 l4_off, __u32 off)
{
	return mss_step(ctx, XNAT_HOOK_TC, l4_off, off);
}

/* The offset of the MSS option's 16-bit value from the TCP header, or 0 when there is none. */
static __always_inline __u32 mss_find(void *ctx, const int xdp, __u32 l4_off)
{
	__u32 off = sizeof(struct tcphdr), i;

	for (i = 0; i < XNAT_TCP_MAX_OPT_BYTES; i++) {
		off = xdp ? xnat_mss_step_xdp(ctx, l4_off, off) : xnat_mss_step_tc(ctx, l4_off, off);
		if (off & XNAT_MSS_FOUND)
			return off & ~XNAT_MSS_FOUND;
		if (!off)
			return 0;
	}
	return 0;
}

/* What the MSS may be at most: the configured number, or for "pmtu" the smaller of the two
 * interfaces' MTUs minus 40, as TCPMSS --clamp-mss-to-pmtu takes the smaller of the forward
 * and reverse routes' (so a SYN-ACK coming in over PPPoE is clamped as well). */
static __always_inline __u32 mss_limit(void *ctx, __u32 egress_ifindex, __u16 setting)
{
	__u32 in_mtu = 0, out_mtu = 0, mtu;

	if (setting != XNAT_MSS_CLAMP_PMTU)
		return setting;
	bpf_check_mtu(ctx, 0, &in_mtu, 0, 0);
	if (egress_ifindex)
		bpf_check_mtu(ctx, egress_ifindex, &out_mtu, 0, 0);
	mtu = in_mtu && (!out_mtu || in_mtu < out_mtu) ? in_mtu : out_mtu;
	return mtu > XNAT_TCPIP_HDR_LEN ? mtu - XNAT_TCPIP_HDR_LEN : 0;
}

static __always_inline __u16 swab16(__u16 v)
{
	return (__u16)((v << 8) | (v >> 8));
}

/* Lowers the MSS option of the TCP segment at l4_off to the limit. Returns 1 when it did. */
static __always_inline int mss_clamp_at(void *ctx, const int xdp, __u32 l4_off,
					__u32 egress_ifindex, __u16 setting)
{
	__u32 opt = mss_find(ctx, xdp, l4_off), limit;
	void *data, *end;
	__u16 old_raw, new_raw, *v;
	int odd;

	if (!opt)
		return 0;
	limit = mss_limit(ctx, egress_ifindex, setting);
	data = ctx_data(ctx, xdp);
	end = ctx_data_end(ctx, xdp);
	v = data + (l4_off & 0xff) + (opt & 0x3f);
	if ((void *)(v + 1) > end || !limit || bpf_ntohs(*v) <= limit)
		return 0;
	old_raw = *v;
	new_raw = bpf_htons((__u16)limit);
	/* A 16-bit field at an odd offset of the header straddles two checksum words: its bytes
	 * count swapped. */
	odd = opt & 1;
	if (xdp) {
		__u16 *check = data + (l4_off & 0xff) + __builtin_offsetof(struct tcphdr, check);

		if ((void *)(check + 1) > end)
			return 0;
		*check = csum_apply(*check, odd ? csum_diff16(0, swab16(old_raw), swab16(new_raw))
						: csum_diff16(0, old_raw, new_raw));
		*v = new_raw;
		return 1;
	}
	/* The helper leaves a CHECKSUM_PARTIAL segment's field alone, as it must: the option is
	 * payload to the device that will sum it. */
	if (bpf_l4_csum_replace(ctx, l4_off + __builtin_offsetof(struct tcphdr, check),
				odd ? swab16(old_raw) : old_raw, odd ? swab16(new_raw) : new_raw,
				sizeof(__u16)) ||
	    bpf_skb_store_bytes(ctx, l4_off + opt, &new_raw, sizeof(new_raw), 0))
		return 0;
	return 1;
}

__attribute__((noinline)) int xnat_mss_clamp_xdp(struct xdp_md *ctx, __u32 l4_off,
						 __u32 egress_ifindex, __u32 setting)
{
	return mss_clamp_at(ctx, XNAT_HOOK_XDP, l4_off, egress_ifindex, (__u16)setting);
}

__attribute__((noinline)) int xnat_mss_clamp_tc(struct __sk_buff *ctx, __u32 l4_off,
						__u32 egress_ifindex, __u32 setting)
{
	return mss_clamp_at(ctx, XNAT_HOOK_TC, l4_off, egress_ifindex, (__u16)setting);
}

/* Clamps a SYN's MSS when the config asks for it; counts each one lowered. */
static __always_inline void mss_clamp(void *ctx, const int xdp, const struct xnat_pkt *p,
				      __u32 egress_ifindex, const struct xnat_config *cfg)
{
	int done;

	if (!cfg->mss_clamp || p->tuple.proto != IPPROTO_TCP || !(p->tcp_flags & XNAT_TCP_SYN))
		return;
	done = xdp ? xnat_mss_clamp_xdp(ctx, p->l4_off, egress_ifindex, cfg->mss_clamp)
		   : xnat_mss_clamp_tc(ctx, p->l4_off, egress_ifindex, cfg->mss_clamp);
	if (done)
		xnat_count(XNAT_CNT_MSS_CLAMPED);
}

#endif
