#include "metrics_source.h"

#include <bpf/bpf.h>

#include <arpa/inet.h>

#include <map>

#include "map_io.h"
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

template <typename K> Result<TableFill> table_fill(int fd, const char *name)
{
    TableFill t;
    t.name = name;
    auto walked = map_for_each_key<K>(fd, name, [&](const K &) { ++t.entries; });
    if (!walked)
        return walked.error();
    auto max = max_entries(fd, name);
    if (!max)
        return max.error();
    t.max_entries = *max;
    return t;
}

// Mappings per (external address, protocol): one key of the source-NAT map each.
Result<std::vector<SnatUse>> snat_use(int fd)
{
    std::map<std::pair<uint32_t, uint8_t>, uint64_t> use;
    auto walked = map_for_each_key<xnat_snat_key>(fd, XNAT_STR(XNAT_MAP_SNAT), [&](const xnat_snat_key &k) {
        ++use[{ntohl(k.addr), k.proto}];
    });
    if (!walked)
        return walked.error();
    std::vector<SnatUse> out;
    for (const auto &[key, n] : use)
        out.push_back({key.first, key.second, n});
    return out;
}

} // namespace

Result<MetricsSnapshot> collect_metrics(const InstanceMaps &maps)
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
    auto conns = read_connections(m);
    if (!conns)
        return conns.error();
    s.connections = std::move(*conns);
    auto ct = table_fill<xnat_ct_key>(m.ct, XNAT_STR(XNAT_MAP_CT));
    if (!ct)
        return ct.error();
    auto snat = table_fill<xnat_snat_key>(m.snat, XNAT_STR(XNAT_MAP_SNAT));
    if (!snat)
        return snat.error();
    auto eim = table_fill<xnat_eim_key>(m.eim, XNAT_STR(XNAT_MAP_EIM));
    if (!eim)
        return eim.error();
    s.tables = {*ct, *snat, *eim};
    auto use = snat_use(m.snat);
    if (!use)
        return use.error();
    s.snat = std::move(*use);
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
