#include "conntrack_table.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>

#include <ctime>

#include "map_io.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat {
namespace {

const char *kCtMap = XNAT_STR(XNAT_MAP_CT);

Result<std::vector<xnat_ct_key>> all_keys(const MapSet &maps)
{
    std::vector<xnat_ct_key> keys;
    auto walked = map_for_each_key<xnat_ct_key>(maps.ct, kCtMap,
                                                [&](const xnat_ct_key &k) { keys.push_back(k); });
    if (!walked)
        return walked.error();
    return keys;
}

} // namespace

Result<std::vector<Connection>> read_connections(const MapSet &maps)
{
    auto keys = all_keys(maps);
    if (!keys)
        return keys.error();
    std::vector<Connection> conns;
    for (const auto &key : *keys) {
        auto entry = map_lookup<xnat_ct_key, xnat_ct_entry>(maps.ct, key, kCtMap);
        if (!entry)
            return entry.error();
        if (!*entry || (*entry)->dir != XNAT_DIR_ORIGINAL)
            continue;
        Connection c;
        c.original_key = key;
        c.original = **entry;
        auto reply = map_lookup<xnat_ct_key, xnat_ct_entry>(maps.ct, c.original.peer, kCtMap);
        if (!reply)
            return reply.error();
        if (*reply)
            c.reply = **reply;
        else
            c.reply_missing = true;
        conns.push_back(c);
    }
    return conns;
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
    auto keys = all_keys(maps);
    if (!keys)
        return keys.error();
    return keys->size();
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
