/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Header parsing. Convention: a parser returns XNAT_CONTINUE when the packet is one xnat handles
 * and fills struct xnat_pkt; otherwise it returns the counter (enum xnat_counter) that says why
 * the packet is left untouched. Every bounds check has the shape `if (hdr + 1 > end)`.
 */
#ifndef XNAT_BPF_PARSE_H
#define XNAT_BPF_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

#include "ctx.h"
#include "xnat/counters.h"
#include "xnat/ct.h"

#define XNAT_L3_OFF ((__u32)sizeof(struct ethhdr))
#define XNAT_IP_DF 0x4000
#define XNAT_IP_MF 0x2000
#define XNAT_IP_OFFSET 0x1fff

/* What the parser returns for a fragment other than the first: no counter (the fragment code
 * decides its outcome), and no L4 header to read. The IP fields of the packet are filled. */
#define XNAT_PARSE_LATER_FRAGMENT (XNAT_CONTINUE - 1)

#define XNAT_TCP_FIN 0x01
#define XNAT_TCP_SYN 0x02
#define XNAT_TCP_RST 0x04
#define XNAT_TCP_ACK 0x10

/* The longest headers xnat reads: Ethernet, IPv4 with options, and either a TCP header or an
 * ICMP error quoting an IPv4 header with options and 20 bytes of TCP. */
#define XNAT_MAX_HDR_LEN (14 + 60 + 8 + 60 + 20)

/* The packet carried inside an ICMP error: its tuple as embedded, and where it sits. */
struct xnat_inner {
	struct xnat_ct_key tuple;
	__u32 l3_off;
	__u32 l4_off;
	__u8 l4_csum_off;  /* 0: no checksum field within the bytes present */
	__u8 pad[3];
};

struct xnat_pkt {
	struct xnat_ct_key tuple; /* as it arrived */
	__u32 l4_off;             /* from the start of the frame */
	__u16 tot_len;            /* IPv4 total length, host order */
	__u8 ttl;
	__u8 tos;
	__u8 tcp_flags;
	__u8 l4_csum_off; /* checksum field within the L4 header */
	__u8 l4_csum_none; /* UDP sent without checksum: it stays zero */
	__u8 icmp_error;  /* destination unreachable, time exceeded, parameter problem */
	__u8 dont_fragment;
	__u8 frag_first;  /* the first fragment of a datagram: MF set, offset 0 */
	__be16 frag_id;   /* IP identification, when a fragment */
	__u32 tcp_seq;    /* host order */
	__u32 tcp_next;   /* the sequence number after this segment: seq + data + SYN + FIN */
	struct xnat_inner inner; /* valid when icmp_error */
};

/* ICMP, spelled out here: <linux/icmp.h> drags in libc's socket headers. */
#define XNAT_ICMP_ECHOREPLY 0
#define XNAT_ICMP_DEST_UNREACH 3
#define XNAT_ICMP_ECHO 8
#define XNAT_ICMP_TIME_EXCEEDED 11
#define XNAT_ICMP_PARAMETERPROB 12

struct xnat_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id; /* echo request and reply */
	__be16 seq;
};

#define XNAT_ICMP_ID_OFF 4 /* identifier of an echo request or reply */

/* The embedded packet of an ICMP error: an IPv4 header and at least the 8 bytes of L4 header
 * that RFC 792 promises (ports, or an echo's identifier). `len` is what the outer IP total
 * length leaves for the quote: bytes past it (Ethernet padding) are not part of the packet. */
static __always_inline int parse_icmp_inner(void *data, void *inner, void *end, __u32 len,
					    struct xnat_pkt *p)
{
	struct iphdr *iph = inner;
	__u32 ihl;
	__u8 *l4;

	/* Bound the header by `len` before reading it: a fragment offset in the padding past the
	 * total length would otherwise turn a cut quote into pass_icmp_no_flow. */
	if ((void *)(iph + 1) > end || len < sizeof(*iph) || iph->version != 4 || iph->ihl < 5)
		return XNAT_CNT_PASS_MALFORMED;
	if (iph->frag_off & bpf_htons(XNAT_IP_OFFSET))
		return XNAT_CNT_PASS_ICMP_NO_FLOW; /* a non-first fragment names no ports */
	ihl = (__u32)iph->ihl * 4;
	l4 = inner + ihl;
	if ((void *)(l4 + 8) > end || ihl + 8 > len)
		return XNAT_CNT_PASS_MALFORMED;
	p->inner.tuple.saddr = iph->saddr;
	p->inner.tuple.daddr = iph->daddr;
	p->inner.tuple.proto = iph->protocol;
	p->inner.l3_off = (__u32)(inner - data);
	p->inner.l4_off = p->inner.l3_off + ihl;
	switch (iph->protocol) {
	case IPPROTO_TCP:
		p->inner.tuple.sport = *(__be16 *)l4;
		p->inner.tuple.dport = *(__be16 *)(l4 + 2);
		/* ICMP errors from Linux quote more than 8 bytes; only then is the TCP checksum here. */
		if ((void *)(l4 + 18) <= end && ihl + 18 <= len)
			p->inner.l4_csum_off = __builtin_offsetof(struct tcphdr, check);
		return XNAT_CONTINUE;
	case IPPROTO_UDP:
		p->inner.tuple.sport = *(__be16 *)l4;
		p->inner.tuple.dport = *(__be16 *)(l4 + 2);
		if (*(__be16 *)(l4 + 6))
			p->inner.l4_csum_off = __builtin_offsetof(struct udphdr, check);
		return XNAT_CONTINUE;
	case IPPROTO_ICMP:
		if (l4[0] == XNAT_ICMP_ECHO)
			p->inner.tuple.sport = *(__be16 *)(l4 + XNAT_ICMP_ID_OFF);
		else if (l4[0] == XNAT_ICMP_ECHOREPLY)
			p->inner.tuple.dport = *(__be16 *)(l4 + XNAT_ICMP_ID_OFF);
		else
			return XNAT_CNT_PASS_ICMP_NO_FLOW;
		p->inner.l4_csum_off = __builtin_offsetof(struct xnat_icmphdr, checksum);
		return XNAT_CONTINUE;
	default:
		return XNAT_CNT_PASS_ICMP_NO_FLOW;
	}
}

static __always_inline int parse_icmp(void *data, void *l4, void *end, __u32 l4_len,
				      struct xnat_pkt *p)
{
	struct xnat_icmphdr *ih = l4;

	if ((void *)(ih + 1) > end || l4_len < sizeof(*ih))
		return XNAT_CNT_PASS_MALFORMED;
	p->l4_csum_off = __builtin_offsetof(struct xnat_icmphdr, checksum);
	switch (ih->type) {
	case XNAT_ICMP_ECHO:
		p->tuple.sport = ih->id;
		return XNAT_CONTINUE;
	case XNAT_ICMP_ECHOREPLY:
		p->tuple.dport = ih->id;
		return XNAT_CONTINUE;
	case XNAT_ICMP_DEST_UNREACH:
	case XNAT_ICMP_TIME_EXCEEDED:
	case XNAT_ICMP_PARAMETERPROB:
		/* Routers send errors of 576 bytes at most: one in fragments is left alone. */
		if (p->frag_first)
			return XNAT_CNT_PASS_FRAGMENT;
		p->icmp_error = 1;
		return parse_icmp_inner(data, (void *)(ih + 1), end, l4_len - sizeof(*ih), p);
	default:
		return XNAT_CNT_PASS_L4_PROTO;
	}
}

static __always_inline int parse_l4(void *data, void *l4, void *end, __u32 l4_len,
				    struct xnat_pkt *p)
{
	if (p->tuple.proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > end)
			return XNAT_CNT_PASS_MALFORMED;
		if (th->doff < 5 || (__u32)th->doff * 4 > l4_len)
			return XNAT_CNT_PASS_MALFORMED;
		p->tuple.sport = th->source;
		p->tuple.dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->tcp_seq = bpf_ntohl(th->seq);
		p->tcp_next = p->tcp_seq + (l4_len - (__u32)th->doff * 4) +
			      !!(p->tcp_flags & XNAT_TCP_SYN) + !!(p->tcp_flags & XNAT_TCP_FIN);
		p->l4_csum_off = __builtin_offsetof(struct tcphdr, check);
		return XNAT_CONTINUE;
	}
	if (p->tuple.proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end || l4_len < sizeof(*uh))
			return XNAT_CNT_PASS_MALFORMED;
		/* A first fragment holds only the start of the datagram its length counts. */
		if (bpf_ntohs(uh->len) < sizeof(*uh) || (bpf_ntohs(uh->len) > l4_len && !p->frag_first))
			return XNAT_CNT_PASS_MALFORMED;
		p->tuple.sport = uh->source;
		p->tuple.dport = uh->dest;
		p->l4_csum_off = __builtin_offsetof(struct udphdr, check);
		p->l4_csum_none = uh->check == 0;
		return XNAT_CONTINUE;
	}
	if (p->tuple.proto == IPPROTO_ICMP)
		return parse_icmp(data, l4, end, l4_len, p);
	return XNAT_CNT_PASS_L4_PROTO;
}

/* Parses a packet whose IPv4 header starts at l3: XNAT_L3_OFF after an Ethernet header, or 0
 * on a tc hook of an interface without one (a literal either way, so each caller's verifier
 * sees constant offsets). */
static __always_inline int parse_packet_at(void *ctx, const int xdp, const __u32 l3,
					   struct xnat_pkt *p)
{
	void *data, *end;
	struct iphdr *iph;
	__u32 ihl;

	ctx_pull_headers(ctx, xdp, XNAT_MAX_HDR_LEN);
	data = ctx_data(ctx, xdp);
	end = ctx_data_end(ctx, xdp);
	if (l3) {
		struct ethhdr *eth = data;

		if ((void *)(eth + 1) > end)
			return XNAT_CNT_PASS_MALFORMED;
		if (eth->h_proto != bpf_htons(ETH_P_IP))
			return XNAT_CNT_PASS_NOT_IPV4;
	} else if (xdp || ((struct __sk_buff *)ctx)->protocol != bpf_htons(ETH_P_IP)) {
		return XNAT_CNT_PASS_NOT_IPV4;
	}
	iph = data + l3;
	if ((void *)(iph + 1) > end)
		return XNAT_CNT_PASS_MALFORMED;
	if (iph->version != 4 || iph->ihl < 5)
		return XNAT_CNT_PASS_MALFORMED;
	ihl = (__u32)iph->ihl * 4;
	p->tot_len = bpf_ntohs(iph->tot_len);
	if (p->tot_len < ihl || p->tot_len > ctx_len(ctx, xdp) - l3)
		return XNAT_CNT_PASS_MALFORMED;

	p->tuple.saddr = iph->saddr;
	p->tuple.daddr = iph->daddr;
	p->tuple.proto = iph->protocol;
	p->ttl = iph->ttl;
	p->tos = iph->tos;
	p->dont_fragment = !!(iph->frag_off & bpf_htons(XNAT_IP_DF));
	p->l4_off = l3 + ihl;
	if (iph->frag_off & bpf_htons(XNAT_IP_MF | XNAT_IP_OFFSET)) {
		p->frag_id = iph->id;
		if (iph->frag_off & bpf_htons(XNAT_IP_OFFSET))
			return XNAT_PARSE_LATER_FRAGMENT;
		p->frag_first = 1;
	}
	return parse_l4(data, (void *)iph + ihl, end, p->tot_len - ihl, p);
}

static __always_inline int parse_packet(void *ctx, const int xdp, struct xnat_pkt *p)
{
	return parse_packet_at(ctx, xdp, XNAT_L3_OFF, p);
}

#endif
