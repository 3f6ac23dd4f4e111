#include "kernel/conntrack_table.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>

#include <ctime>

#include "kernel/map_io.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat {
namespace {

const char *kCtMap = XNAT_STR(XNAT_MAP_CT);

} // namespace

Result<ConnectionTable> read_connection_table(const MapSet &maps)
{
    std::vector<CtHalf> halves;
    // Room for a full table up front: growing the vector would copy it and fault in its pages
    // again each time, and reserved pages that stay unused cost nothing.
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(maps.ct, &info, &len) == 0)
        halves.reserve(info.max_entries);
    auto read = map_for_each_entry<xnat_ct_key, xnat_ct_entry>(
        maps.ct, kCtMap, [&](const xnat_ct_key &k, const xnat_ct_entry &e) { halves.push_back({k, e}); });
    if (!read)
        return read.error();
    ConnectionTable t;
    t.entries = halves.size();
    t.connections = pair_halves(halves);
    // The dump is not atomic: a flow created while it ran may have its original half read and
    // its reply half inserted into a bucket already passed. Ask the map before calling a reply
    // missing; true orphans are rare, so this costs nothing in the common case.
    for (Connection &c : t.connections) {
        if (!c.reply_missing)
            continue;
        auto reply = map_lookup<xnat_ct_key, xnat_ct_entry>(maps.ct, c.original.peer, kCtMap);
        if (!reply)
            return reply.error();
        if (*reply) {
            c.reply = **reply;
            c.reply_missing = false;
        }
    }
    return t;
}

Result<std::vector<Connection>> read_connections(const MapSet &maps)
{
    auto t = read_connection_table(maps);
    if (!t)
        return t.error();
    return std::move(t->connections);
}

Result<size_t> flush_connections(int flush_prog_fd, uint32_t only_addr)
{
    if (flush_prog_fd < 0)
        return system_error("the instance has no flush program pinned (loaded by an older xnat?)", ENOENT);
    xnat_flush_filter filter{};
    filter.addr = htonl(only_addr);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &filter, .ctx_size_in = sizeof(filter));
    if (bpf_prog_test_run_opts(flush_prog_fd, &opts) != 0)
        return kernel_error("run the flush program", errno);
    return static_cast<size_t>(opts.retval);
}

Result<size_t> count_ct_entries(const MapSet &maps)
{
    size_t n = 0;
    auto read = map_for_each_entry<xnat_ct_key, xnat_ct_entry>(maps.ct, kCtMap,
                                                               [&](const xnat_ct_key &, const xnat_ct_entry &) { ++n; });
    if (!read)
        return read.error();
    return n;
}

Result<CounterValues> read_counters(const MapSet &maps)
{
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0)
        return kernel_error("count possible CPUs", ncpus);
    CounterValues totals{};
    std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus));
    for (uint32_t i = 0; i < XNAT_CNT_COUNT; ++i) {
        if (bpf_map_lookup_elem(maps.counters, &i, per_cpu.data()) != 0)
            return kernel_error(std::string("read ") + XNAT_STR(XNAT_MAP_COUNTERS), errno);
        for (uint64_t v : per_cpu)
            totals[i] += v;
    }
    return totals;
}

uint64_t monotonic_now_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

} // namespace xnat
