#include "kernel/rule_store.h"

#include <bpf/libbpf.h>

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "core/forward_table.h"
#include "kernel/map_io.h"
#include "kernel/rtnetlink.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat {
namespace {

const char *kRulesMap = XNAT_STR(XNAT_MAP_RULES);
const char *kMasqRulesMap = XNAT_STR(XNAT_MAP_MASQ_RULES);
const char *kMappedMap = XNAT_STR(XNAT_MAP_MAPPED);

std::string label(const StoredRule &r)
{
    return "rule " + std::to_string(r.id) + " (" + describe(r.fwd) + ")";
}

// A fresh inner map with exactly the shape of its template in bpf/map_defs.h: the kernel checks
// type, sizes and flags when it goes into the outer map.
template <typename K, typename V>
Result<UniqueFd> build_inner(bpf_map_type type, const char *name, uint32_t max_entries,
                             const std::vector<std::pair<K, V>> &entries)
{
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
    int fd = bpf_map_create(type, name, sizeof(K), sizeof(V), max_entries, &opts);
    if (fd < 0)
        return kernel_error(std::string("create ") + name, errno);
    UniqueFd table(fd);
    if (type == BPF_MAP_TYPE_HASH && !entries.empty()) {
        // Hash tables can be large (a full port range is 65535 entries): one batch call.
        std::vector<K> keys;
        std::vector<V> values;
        for (const auto &[key, value] : entries) {
            keys.push_back(key);
            values.push_back(value);
        }
        uint32_t count = static_cast<uint32_t>(entries.size());
        LIBBPF_OPTS(bpf_map_batch_opts, batch);
        if (bpf_map_update_batch(table.get(), keys.data(), values.data(), &count, &batch) != 0)
            return kernel_error(std::string("fill ") + name, errno);
        return table;
    }
    for (const auto &[key, value] : entries)
        if (auto r = map_update(table.get(), key, value, name, BPF_NOEXIST); !r)
            return r.error();
    return table;
}

// The table in force in the current generation's slot, or an invalid fd if the slot is empty.
Result<UniqueFd> current_table(int outer, uint32_t gen, const char *name)
{
    auto id = map_lookup<uint32_t, uint32_t>(outer, gen, name);
    if (!id)
        return id.error();
    if (!*id)
        return UniqueFd();
    int fd = bpf_map_get_fd_by_id(**id);
    if (fd < 0)
        return kernel_error(std::string("open the current ") + name, errno);
    return UniqueFd(fd);
}

Result<void> fill_slot(int outer, uint32_t slot, uint32_t current_gen, const UniqueFd &fresh, const char *name)
{
    int fd = fresh.get();
    UniqueFd kept;
    if (fd < 0) {
        auto cur = current_table(outer, current_gen, name);
        if (!cur)
            return cur.error();
        kept = std::move(*cur);
        fd = kept.get();
    }
    if (fd < 0)
        return map_delete(outer, slot, name);
    return map_update(outer, slot, fd, name);
}

} // namespace

namespace {

// Every record of an id-keyed map, by id.
template <typename V> Result<std::vector<std::pair<uint32_t, V>>> read_records(int fd, const char *name)
{
    auto records = map_dump<uint32_t, V>(fd, name);
    if (!records)
        return records.error();
    std::sort(records->begin(), records->end(),
              [](const std::pair<uint32_t, V> &a, const std::pair<uint32_t, V> &b) { return a.first < b.first; });
    return records;
}

} // namespace

Result<std::vector<StoredRule>> read_rules(const MapSet &maps)
{
    auto records = read_records<xnat_fwd_rule>(maps.rules, kRulesMap);
    if (!records)
        return records.error();
    std::vector<StoredRule> rules;
    for (const auto &[id, rec] : *records)
        rules.push_back({static_cast<uint16_t>(id), from_rule_record(rec)});
    return rules;
}

Result<std::vector<Masquerade>> read_masquerade(const MapSet &maps)
{
    auto records = read_records<xnat_masq_desc>(maps.masq_rules, kMasqRulesMap);
    if (!records)
        return records.error();
    std::vector<Masquerade> rules;
    for (const auto &[id, rec] : *records)
        rules.push_back(from_masq_desc(rec));
    return rules;
}

Result<UniqueFd> build_forward_table(const std::vector<StoredRule> &rules)
{
    std::vector<LabelledForward> labelled;
    for (const auto &r : rules)
        labelled.push_back({r.fwd, label(r), r.id});
    auto entries = expand_forwards(labelled);
    if (!entries)
        return entries.error();
    std::vector<std::pair<xnat_fwd_key, xnat_fwd_target>> kv;
    kv.reserve(entries->size());
    for (const auto &e : *entries)
        kv.emplace_back(e.key, e.target);
    return build_inner(BPF_MAP_TYPE_HASH, "xnat_fwd_table", XNAT_FWD_MAX_ENTRIES, kv);
}

Result<UniqueFd> build_masq_table(const std::vector<Masquerade> &rules)
{
    std::vector<std::pair<xnat_masq_key, xnat_masq_rule>> kv;
    for (const auto &e : masq_trie_entries(rules))
        kv.emplace_back(e.key, e.value);
    return build_inner(BPF_MAP_TYPE_LPM_TRIE, "xnat_masq_table", XNAT_MASQ_MAX_ENTRIES, kv);
}

Result<void> publish(const MapSet &maps, const RuleTables &tables, xnat_config cfg)
{
    auto current = read_config(maps);
    if (!current)
        return current.error();
    uint32_t gen = current->rule_gen % XNAT_RULE_GENERATIONS;
    uint32_t next = (gen + 1) % XNAT_RULE_GENERATIONS;
    if (auto r = fill_slot(maps.fwd, next, gen, tables.fwd, XNAT_STR(XNAT_MAP_FWD)); !r)
        return r;
    if (auto r = fill_slot(maps.masq, next, gen, tables.masq, XNAT_STR(XNAT_MAP_MASQ)); !r)
        return r;
    cfg.rule_gen = next;
    return write_config(maps, cfg);
}

Result<void> write_rule_records(const MapSet &maps, const std::vector<StoredRule> &rules)
{
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
    return write_mapped_ports(maps, rules);
}

namespace {

// The mapped-port map's key as bytes compare it: ordered by address, then port, then protocol.
uint64_t mapped_key_id(const xnat_mapped_key &k)
{
    return uint64_t{ntohl(k.int_addr)} << 24 | uint64_t{ntohs(k.int_port)} << 8 | k.proto;
}

} // namespace

Result<void> write_mapped_ports(const MapSet &maps, const std::vector<StoredRule> &rules)
{
    if (maps.mapped < 0)
        return {};
    // Wanted: by key, the lowest id's port (rules may come in any order).
    std::map<uint64_t, std::tuple<uint16_t, xnat_mapped_key, uint16_t>> wanted;
    for (const StoredRule &r : rules) {
        const PortForward &f = r.fwd;
        // xnat-portmapd's forwards are wan:EXT -> host:INT, one port on one address; nothing
        // else speaks for a single internal endpoint.
        if (!f.mapped || f.side != Side::wan || f.from.port_lo != f.from.port_hi || f.from.hosts() != 1)
            continue;
        xnat_mapped_key key{};
        key.int_addr = htonl(f.to.addr);
        key.int_port = htons(f.to.port_lo);
        key.proto = static_cast<uint8_t>(f.proto);
        auto [it, fresh] = wanted.try_emplace(mapped_key_id(key), r.id, key, htons(f.from.port_lo));
        if (!fresh && r.id < std::get<0>(it->second))
            it->second = {r.id, key, htons(f.from.port_lo)};
    }
    // Stale entries go first: the map is small (XNAT_MAX_RULES), and a key that stays is
    // simply overwritten below.
    auto present = map_dump<xnat_mapped_key, uint16_t>(maps.mapped, kMappedMap);
    if (!present)
        return present.error();
    for (const auto &[key, port] : *present)
        if (!wanted.count(mapped_key_id(key)))
            if (auto r = map_delete(maps.mapped, key, kMappedMap); !r)
                return r;
    for (const auto &[id, entry] : wanted) {
        const auto &[rule, key, port] = entry;
        if (auto r = map_update(maps.mapped, key, port, kMappedMap); !r)
            return r;
    }
    return {};
}

Result<void> write_masq_records(const MapSet &maps, const std::vector<Masquerade> &rules)
{
    for (uint32_t id = static_cast<uint32_t>(rules.size()); id < XNAT_MAX_MASQ_RULES; ++id)
        if (auto r = map_delete(maps.masq_rules, id, kMasqRulesMap); !r)
            return r;
    for (size_t i = 0; i < rules.size(); ++i)
        if (auto r = map_update(maps.masq_rules, static_cast<uint32_t>(i),
                                to_masq_desc(rules[i], static_cast<uint16_t>(i)), kMasqRulesMap);
            !r)
            return r;
    return {};
}

Result<std::vector<uint64_t>> read_rule_hits(const MapSet &maps)
{
    size_t ncpu = static_cast<size_t>(libbpf_num_possible_cpus());
    std::vector<uint64_t> per_cpu(ncpu), hits(XNAT_RULE_HIT_SLOTS);
    for (uint32_t slot = 0; slot < XNAT_RULE_HIT_SLOTS; ++slot) {
        if (bpf_map_lookup_elem(maps.rule_hits, &slot, per_cpu.data()) != 0)
            return kernel_error(std::string("read ") + XNAT_STR(XNAT_MAP_RULE_HITS), errno);
        for (uint64_t v : per_cpu)
            hits[slot] += v;
    }
    return hits;
}

Result<void> reset_rule_hits(const MapSet &maps, const std::vector<uint32_t> &slots)
{
    std::vector<uint64_t> zeros(static_cast<size_t>(libbpf_num_possible_cpus()), 0);
    auto reset = [&](uint32_t slot) -> Result<void> {
        if (bpf_map_update_elem(maps.rule_hits, &slot, zeros.data(), BPF_ANY) != 0)
            return kernel_error(std::string("reset ") + XNAT_STR(XNAT_MAP_RULE_HITS), errno);
        return {};
    };
    if (slots.empty()) {
        for (uint32_t slot = 0; slot < XNAT_RULE_HIT_SLOTS; ++slot)
            if (auto r = reset(slot); !r)
                return r;
        return {};
    }
    for (uint32_t slot : slots)
        if (auto r = reset(slot); !r)
            return r;
    return {};
}

namespace {

// Rebuilds the forward table from `rules`, makes it current, then records the rules.
Result<void> replace_forwards(const MapSet &maps, const std::vector<StoredRule> &rules)
{
    RuleTables tables;
    auto fwd = build_forward_table(rules);
    if (!fwd)
        return fwd.error();
    tables.fwd = std::move(*fwd);
    auto cfg = read_config(maps);
    if (!cfg)
        return cfg.error();
    if (auto r = publish(maps, tables, *cfg); !r)
        return r;
    return write_rule_records(maps, rules);
}

} // namespace

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
    if (auto r = reset_rule_hits(maps, {id}); !r) // the slot may hold a deleted rule's count
        return r.error();
    if (auto r = replace_forwards(maps, *rules); !r)
        return r.error();
    return id;
}

Result<StoredRule> delete_rule(const MapSet &maps, Proto proto, Side side, const ForwardFrom &from)
{
    auto rules = read_rules(maps);
    if (!rules)
        return rules.error();
    auto it = std::find_if(rules->begin(), rules->end(), [&](const StoredRule &r) {
        if (r.fwd.proto != proto || r.fwd.side != side || r.fwd.from_wan != from.wan)
            return false;
        // A wan: rule's address is wherever the WAN is now: its ports name it.
        return from.wan ? r.fwd.from.port_lo == from.ep.port_lo && r.fwd.from.port_hi == from.ep.port_hi
                        : r.fwd.from == from.ep;
    });
    if (it == rules->end()) {
        PortForward shown;
        shown.from = from.ep;
        shown.from_wan = from.wan;
        return invalid_input("no " + std::string(proto_name(static_cast<uint8_t>(proto))) + " rule from " +
                             format_forward_from(shown) + " on " + std::string(side_name(side)) +
                             " (see xnat-map list)");
    }
    StoredRule removed = *it;
    rules->erase(it);
    if (auto r = replace_forwards(maps, *rules); !r)
        return r.error();
    return removed;
}

Result<std::optional<uint32_t>> wan_address_in_use(const MapSet &maps)
{
    auto masq = read_masquerade(maps);
    if (!masq)
        return masq.error();
    for (const Masquerade &m : *masq)
        if (m.to_source_is_wan && m.to_source)
            return m.to_source;
    auto rules = read_rules(maps);
    if (!rules)
        return rules.error();
    for (const StoredRule &r : *rules)
        if (r.fwd.from_wan && r.fwd.from.addr)
            return std::optional<uint32_t>(r.fwd.from.addr);
    auto cfg = read_config(maps);
    if (!cfg)
        return cfg.error();
    return primary_ipv4(cfg->wan_ifindex);
}

Result<PortForward> place_forward(const MapSet &maps, PortForward fwd)
{
    if (!fwd.from_wan)
        return fwd;
    auto addr = wan_address_in_use(maps);
    if (!addr)
        return addr.error();
    fwd.from.addr = addr->value_or(0);
    return fwd;
}

} // namespace xnat
