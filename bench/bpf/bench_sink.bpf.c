/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The sink: counts what arrives, per CPU, and drops it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_sink_packets SEC(".maps");

SEC("xdp")
int bench_sink(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&bench_sink_packets, &zero);

	(void)ctx;
	if (n)
		*n += 1;
	return XDP_DROP;
}
