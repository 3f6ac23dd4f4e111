#include "kernel/metrics_source.h"

#include <bpf/bpf.h>

#include <arpa/inet.h>

#include <map>

#include "kernel/conntrack_table.h"
#include "kernel/map_io.h"
#include "kernel/rule_store.h"
#include "xnat/abi.h"
#include "xnat/maps.h"
#include "xnat/rules.h"

namespace xnat {
namespace {

Result<uint64_t> max_entries(int fd, const char *name)
{
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
        return kernel_error(std::string("read the size of ") + name, errno);
    return uint64_t{info.max_entries};
}

Result<TableFill> table_fill(int fd, const char *name, uint64_t entries)
{
    auto max = max_entries(fd, name);
    if (!max)
        return max.error();
    return TableFill{name, entries, *max};
}

// The source-NAT table: its fill, and its mappings per (external address, protocol), from one
// batched read.
struct SnatRead {
    uint64_t entries = 0;
    std::vector<SnatUse> use;
};

Result<SnatRead> read_snat(int fd)
{
    SnatRead r;
    std::map<std::pair<uint32_t, uint8_t>, uint64_t> use;
    auto read = map_for_each_entry<xnat_snat_key, xnat_snat_mapping>(
        fd, XNAT_STR(XNAT_MAP_SNAT), [&](const xnat_snat_key &k, const xnat_snat_mapping &) {
            ++r.entries;
            ++use[{ntohl(k.addr), k.proto}];
        });
    if (!read)
        return read.error();
    for (const auto &[key, n] : use)
        r.use.push_back({key.first, key.second, n});
    return r;
}

} // namespace

Result<MetricsSnapshot> collect_metrics(const InstanceMaps &maps, MetricsOptions options)
{
    MapSet m = maps.view();
    MetricsSnapshot s;
    auto cfg = read_config(m);
    if (!cfg)
        return cfg.error();
    s.max_connections = cfg->max_connections;
    s.local_port_lo = cfg->local_port_lo;
    s.local_port_hi = cfg->local_port_hi;
    auto counters = read_counters(m);
    if (!counters)
        return counters.error();
    s.counters = *counters;
    // The connection table's fill: counted in the read the per-state series make anyway, else
    // twice the count from the counters, which is what the table holds at rest since both halves
    // of a flow are made and removed together; a scrape then never walks the table.
    uint64_t ct_entries = 2 * live_connections(s.counters, s.max_connections);
    if (options.per_state) {
        auto table = read_connection_table(m);
        if (!table)
            return table.error();
        s.connections = std::move(table->connections);
        ct_entries = table->entries;
    }
    auto ct = table_fill(m.ct, XNAT_STR(XNAT_MAP_CT), ct_entries);
    if (!ct)
        return ct.error();
    auto snat_read = read_snat(m.snat);
    if (!snat_read)
        return snat_read.error();
    auto snat = table_fill(m.snat, XNAT_STR(XNAT_MAP_SNAT), snat_read->entries);
    if (!snat)
        return snat.error();
    uint64_t eim_entries = 0;
    auto eim_read = map_for_each_entry<xnat_eim_key, uint16_t>(
        m.eim, XNAT_STR(XNAT_MAP_EIM), [&](const xnat_eim_key &, const uint16_t &) { ++eim_entries; });
    if (!eim_read)
        return eim_read.error();
    auto eim = table_fill(m.eim, XNAT_STR(XNAT_MAP_EIM), eim_entries);
    if (!eim)
        return eim.error();
    s.tables = {*ct, *snat, *eim};
    s.snat = std::move(snat_read->use);
    auto rules = read_rules(m);
    if (!rules)
        return rules.error();
    s.rules = std::move(*rules);
    auto masq = read_masquerade(m);
    if (!masq)
        return masq.error();
    s.masquerade = std::move(*masq);
    auto hits = read_rule_hits(m);
    if (!hits)
        return hits.error();
    s.rule_hits = std::move(*hits);
    if (maps.sweeper() >= 0) {
        auto sweep = read_sweep_stats(maps.sweeper());
        if (!sweep)
            return sweep.error();
        s.sweep = *sweep;
    }
    return s;
}

} // namespace xnat
