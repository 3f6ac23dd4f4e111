/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The context shim that lets one NAT core serve XDP and tc. Every entry point passes a literal
 * 'xdp' flag down through __always_inline functions, so the compiler deletes the branch of the
 * other hook before the verifier sees it (an skb helper never reaches an XDP program).
 */
#ifndef XNAT_BPF_CTX_H
#define XNAT_BPF_CTX_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define XNAT_HOOK_TC 0
#define XNAT_HOOK_XDP 1

static __always_inline void *ctx_data(void *ctx, const int xdp)
{
	return xdp ? (void *)(long)((struct xdp_md *)ctx)->data
		   : (void *)(long)((struct __sk_buff *)ctx)->data;
}

static __always_inline void *ctx_data_end(void *ctx, const int xdp)
{
	return xdp ? (void *)(long)((struct xdp_md *)ctx)->data_end
		   : (void *)(long)((struct __sk_buff *)ctx)->data_end;
}

/* Length of the whole packet: an XDP buffer is linear, an skb may not be. */
static __always_inline __u32 ctx_len(void *ctx, const int xdp)
{
	if (xdp)
		return (__u32)(((struct xdp_md *)ctx)->data_end - ((struct xdp_md *)ctx)->data);
	return ((struct __sk_buff *)ctx)->len;
}

static __always_inline __u32 ctx_ifindex(void *ctx, const int xdp)
{
	return xdp ? ((struct xdp_md *)ctx)->ingress_ifindex : ((struct __sk_buff *)ctx)->ifindex;
}

/* Make the headers readable by direct access. A GSO skb from a local socket keeps its headers
 * linear, but a tunnel or a paged NIC buffer may not. */
static __always_inline void ctx_pull_headers(void *ctx, const int xdp, __u32 want)
{
	struct __sk_buff *skb = ctx;

	if (xdp)
		return;
	if ((void *)(long)skb->data + want <= (void *)(long)skb->data_end)
		return;
	bpf_skb_pull_data(skb, skb->len < want ? skb->len : want);
}

#endif
