#include "rule_store.h"

#include <algorithm>

#include "forward_table.h"
#include "map_io.h"
#include "unique_fd.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat {
namespace {

const char *kRulesMap = XNAT_STR(XNAT_MAP_RULES);
const char *kFwdMap = XNAT_STR(XNAT_MAP_FWD);

std::string label(const StoredRule &r)
{
    return "rule " + std::to_string(r.id) + " (" + describe(r.fwd) + ")";
}

// A fresh inner map with exactly the shape of the template in bpf/maps.h (the kernel checks
// type, sizes and flags when it goes into the outer map).
Result<UniqueFd> build_table(const std::vector<FwdEntry> &entries)
{
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "xnat_fwd_table", sizeof(xnat_fwd_key),
                            sizeof(xnat_fwd_target), XNAT_FWD_MAX_ENTRIES, &opts);
    if (fd < 0)
        return kernel_error("create forward table", errno);
    UniqueFd table(fd);
    if (entries.empty())
        return table;
    std::vector<xnat_fwd_key> keys;
    std::vector<xnat_fwd_target> values;
    keys.reserve(entries.size());
    values.reserve(entries.size());
    for (const auto &e : entries) {
        keys.push_back(e.key);
        values.push_back(e.target);
    }
    uint32_t count = static_cast<uint32_t>(entries.size());
    LIBBPF_OPTS(bpf_map_batch_opts, batch);
    if (bpf_map_update_batch(table.get(), keys.data(), values.data(), &count, &batch) != 0)
        return kernel_error("fill forward table", errno);
    return table;
}

} // namespace

std::vector<StoredRule> rules_from_config(const Config &cfg)
{
    std::vector<StoredRule> rules;
    for (size_t i = 0; i < cfg.port_forwards.size(); ++i)
        rules.push_back({static_cast<uint16_t>(i), cfg.port_forwards[i]});
    return rules;
}

Result<std::vector<StoredRule>> read_rules(const MapSet &maps)
{
    std::vector<uint32_t> ids;
    auto walked = map_for_each_key<uint32_t>(maps.rules, kRulesMap,
                                             [&](const uint32_t &id) { ids.push_back(id); });
    if (!walked)
        return walked.error();
    std::sort(ids.begin(), ids.end());
    std::vector<StoredRule> rules;
    for (uint32_t id : ids) {
        auto rec = map_lookup<uint32_t, xnat_fwd_rule>(maps.rules, id, kRulesMap);
        if (!rec)
            return rec.error();
        if (*rec)
            rules.push_back({static_cast<uint16_t>(id), from_rule_record(**rec)});
    }
    return rules;
}

Result<void> install_rules(const MapSet &maps, const std::vector<StoredRule> &rules)
{
    std::vector<LabelledForward> labelled;
    for (const auto &r : rules)
        labelled.push_back({r.fwd, label(r), r.id});
    auto entries = expand_forwards(labelled);
    if (!entries)
        return entries.error();
    auto table = build_table(*entries);
    if (!table)
        return table.error();

    uint32_t zero = 0;
    int table_fd = table->get();
    if (auto r = map_update(maps.fwd, zero, table_fd, kFwdMap); !r)
        return r;

    auto old = read_rules(maps);
    if (!old)
        return old.error();
    for (const auto &o : *old) {
        bool kept = std::any_of(rules.begin(), rules.end(), [&](const StoredRule &r) { return r.id == o.id; });
        if (!kept)
            if (auto r = map_delete(maps.rules, uint32_t{o.id}, kRulesMap); !r)
                return r;
    }
    for (const auto &r : rules)
        if (auto u = map_update(maps.rules, uint32_t{r.id}, to_rule_record(r.fwd), kRulesMap); !u)
            return u;
    return {};
}

Result<uint16_t> add_rule(const MapSet &maps, const PortForward &fwd)
{
    auto rules = read_rules(maps);
    if (!rules)
        return rules.error();
    if (rules->size() >= XNAT_MAX_RULES)
        return invalid_input("the instance already has " + std::to_string(XNAT_MAX_RULES) + " rules");
    uint16_t id = 0;
    for (const auto &r : *rules) // sorted: the first gap is the lowest free id
        if (r.id == id)
            ++id;
    rules->push_back({id, fwd});
    if (auto r = install_rules(maps, *rules); !r)
        return r.error();
    return id;
}

Result<StoredRule> delete_rule(const MapSet &maps, Proto proto, Side side, const Endpoint &from)
{
    auto rules = read_rules(maps);
    if (!rules)
        return rules.error();
    auto it = std::find_if(rules->begin(), rules->end(), [&](const StoredRule &r) {
        return r.fwd.proto == proto && r.fwd.side == side && r.fwd.from == from;
    });
    if (it == rules->end())
        return invalid_input("no " + std::string(proto_name(static_cast<uint8_t>(proto))) + " rule from " +
                             format_endpoint(from) + " on " + std::string(side_name(side)) +
                             " (see xnat-map list)");
    StoredRule removed = *it;
    rules->erase(it);
    if (auto r = install_rules(maps, *rules); !r)
        return r.error();
    return removed;
}

} // namespace xnat
