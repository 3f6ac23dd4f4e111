/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Packet generator, run through BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: every run of
 * the program turns one frame into a packet and XDP_TX sends it out of the generator's veth.
 *
 * Live frames travel by reference and their pages come back to the generator's pool, still
 * carrying whatever the gateway wrote into them (TTL, addresses, MACs). So every header field
 * of every frame is written here from the configuration, never inherited from the last use.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bench.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct bench_gen_cfg cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_seq SEC(".maps");

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	__u64 *seq;

	if (data + BENCH_FRAME_LEN > end)
		return XDP_ABORTED;
	seq = bpf_map_lookup_elem(&bench_seq, &zero);
	if (!seq)
		return XDP_ABORTED;
	bench_build_frame(&cfg, (__u32)*seq, data);
	*seq += 1;
	return XDP_TX;
}
