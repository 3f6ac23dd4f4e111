#include "core/masquerade.h"

#include <arpa/inet.h>

#include <nlohmann/json.hpp>

#include "core/json_fields.h"

namespace xnat {
namespace {

using nlohmann::json;

Result<std::pair<uint16_t, uint16_t>> parse_port_range(const std::string &text)
{
    auto ep = parse_endpoint("0.0.0.1:" + text); // reuse the PORT[-PORT] grammar and its messages
    if (!ep)
        // A ':' in the text would move the split into the stand-in address and blame it.
        return invalid_input(ep.error().message.find("expected") != std::string::npos ||
                                     text.find(':') != std::string::npos
                                 ? "expected PORT or PORT-PORT, got \"" + text + "\""
                                 : ep.error().message);
    return std::make_pair(ep->port_lo, ep->port_hi);
}

Result<Prefix> usable_prefix(const std::string &text, const std::string &path)
{
    auto p = parse_prefix(text);
    if (!p)
        return with_context(path, p.error());
    return *p;
}

xnat_masq_key source_key(const Prefix &p)
{
    xnat_masq_key k{};
    k.prefixlen = 32u + p.len;
    k.kind = XNAT_MASQ_SOURCE;
    k.addr = htonl(p.addr);
    return k;
}

} // namespace

Result<Masquerade> parse_masquerade(const json &j, const std::string &path)
{
    if (!j.is_object())
        return invalid_input(path + ": expected an object, got " + json_type(j));
    if (auto r = check_keys(j, path, {"source", "not_destination", "to_source", "ports", "filtering"}); !r)
        return r.error();
    Masquerade m;
    auto source = get_string(j, "source", path);
    if (!source)
        return source.error();
    auto prefix = usable_prefix(*source, path + ".source");
    if (!prefix)
        return prefix.error();
    m.source = *prefix;

    if (j.contains("not_destination")) {
        const json &list = j.at("not_destination");
        if (!list.is_array())
            return invalid_input(path + ".not_destination: expected an array, got " + json_type(list));
        if (list.size() > XNAT_MASQ_MAX_EXCLUDES)
            return invalid_input(path + ".not_destination: " + std::to_string(list.size()) +
                                 " prefixes, at most " + std::to_string(XNAT_MASQ_MAX_EXCLUDES));
        for (size_t i = 0; i < list.size(); ++i) {
            std::string item = path + ".not_destination[" + std::to_string(i) + "]";
            if (!list[i].is_string())
                return invalid_input(item + ": expected a string, got " + json_type(list[i]));
            auto p = usable_prefix(list[i].get<std::string>(), item);
            if (!p)
                return p.error();
            m.not_destination.push_back(*p);
        }
    }
    if (j.contains("to_source")) {
        auto text = get_string(j, "to_source", path);
        if (!text)
            return text.error();
        auto addr = parse_ipv4(*text);
        if (!addr)
            return with_context(path + ".to_source", addr.error());
        if (const char *why = special_address_kind(*addr))
            return invalid_input(path + ".to_source: address " + *text + " is " + why);
        m.to_source = *addr;
    }
    if (j.contains("ports")) {
        auto text = get_string(j, "ports", path);
        if (!text)
            return text.error();
        auto range = parse_port_range(*text);
        if (!range)
            return with_context(path + ".ports", range.error());
        m.port_lo = range->first;
        m.port_hi = range->second;
    }
    if (j.contains("filtering")) {
        auto text = get_string(j, "filtering", path);
        if (!text)
            return text.error();
        if (*text == "address_port_dependent")
            m.filtering = Filtering::address_port_dependent;
        else if (*text == "endpoint_independent")
            m.filtering = Filtering::endpoint_independent;
        else
            return invalid_input(path + ".filtering: must be \"address_port_dependent\" or "
                                        "\"endpoint_independent\", got \"" + *text + "\"");
    }
    return m;
}

Result<void> check_masquerade_set(const std::vector<Masquerade> &rules)
{
    if (rules.size() > XNAT_MAX_MASQ_RULES)
        return invalid_input("masquerade: " + std::to_string(rules.size()) + " rules, at most " +
                             std::to_string(XNAT_MAX_MASQ_RULES));
    for (size_t i = 0; i < rules.size(); ++i)
        for (size_t k = 0; k < i; ++k)
            if (rules[i].source == rules[k].source)
                return invalid_input("masquerade[" + std::to_string(i) + "].source: " +
                                     format_prefix(rules[i].source) + " is already masquerade[" +
                                     std::to_string(k) + "]'s source");
    return {};
}

Result<std::vector<Masquerade>> resolve_masquerade(std::vector<Masquerade> rules,
                                                   std::optional<uint32_t> wan_addr,
                                                   const std::string &wan_name, uint16_t local_lo,
                                                   uint16_t local_hi, bool park_without_address)
{
    for (size_t i = 0; i < rules.size(); ++i) {
        std::string path = "masquerade[" + std::to_string(i) + "]";
        Masquerade &m = rules[i];
        if (!m.to_source) {
            if (!wan_addr && !park_without_address)
                return invalid_input(path + ".to_source: not given, and WAN_IF " + wan_name +
                                     " has no IPv4 address to default to");
            m.to_source = wan_addr;
            m.to_source_is_wan = true;
        }
        if (m.port_lo >= local_lo && m.port_hi <= local_hi)
            return invalid_input(path + ".ports: " + std::to_string(m.port_lo) + "-" +
                                 std::to_string(m.port_hi) +
                                 " lie within the gateway's own ephemeral ports (net.ipv4.ip_local_port_range " +
                                 std::to_string(local_lo) + "-" + std::to_string(local_hi) +
                                 "), which source NAT never hands out");
    }
    return rules;
}

std::vector<MasqEntry> masq_trie_entries(const std::vector<Masquerade> &rules)
{
    std::vector<MasqEntry> entries;
    for (size_t i = 0; i < rules.size(); ++i) {
        const Masquerade &m = rules[i];
        xnat_masq_rule value{};
        value.to_source = htonl(m.to_source.value_or(0));
        value.port_lo = m.port_lo;
        value.port_hi = m.port_hi;
        value.rule_id = static_cast<uint16_t>(i);
        value.flags = m.filtering == Filtering::endpoint_independent ? XNAT_MASQ_F_EIF : 0;
        entries.push_back({source_key(m.source), value});
        for (const Prefix &ex : m.not_destination) {
            xnat_masq_key k{};
            k.prefixlen = 32u + ex.len;
            k.kind = XNAT_MASQ_EXCLUDE;
            k.rule_id = htons(static_cast<uint16_t>(i));
            k.addr = htonl(ex.addr);
            entries.push_back({k, value});
        }
    }
    return entries;
}

xnat_masq_desc to_masq_desc(const Masquerade &m, uint16_t id)
{
    xnat_masq_desc d{};
    d.rule = masq_trie_entries({m}).front().value;
    d.rule.rule_id = id;
    d.source = htonl(m.source.addr);
    d.source_len = m.source.len;
    d.to_source_default = m.to_source_is_wan;
    d.n_excludes = static_cast<uint8_t>(m.not_destination.size());
    for (size_t i = 0; i < m.not_destination.size() && i < XNAT_MASQ_MAX_EXCLUDES; ++i) {
        d.exclude_addr[i] = htonl(m.not_destination[i].addr);
        d.exclude_len[i] = m.not_destination[i].len;
    }
    return d;
}

Masquerade from_masq_desc(const xnat_masq_desc &d)
{
    Masquerade m;
    m.source = Prefix{ntohl(d.source), d.source_len};
    for (size_t i = 0; i < d.n_excludes && i < XNAT_MASQ_MAX_EXCLUDES; ++i)
        m.not_destination.push_back(Prefix{ntohl(d.exclude_addr[i]), d.exclude_len[i]});
    m.to_source_is_wan = d.to_source_default != 0;
    // 0.0.0.0 is never a to_source: a rule following the WAN parked until it has an address.
    if (d.rule.to_source || !m.to_source_is_wan)
        m.to_source = ntohl(d.rule.to_source);
    m.port_lo = d.rule.port_lo;
    m.port_hi = d.rule.port_hi;
    m.filtering = (d.rule.flags & XNAT_MASQ_F_EIF) ? Filtering::endpoint_independent
                                                    : Filtering::address_port_dependent;
    return m;
}

nlohmann::json masquerade_to_json(const Masquerade &m)
{
    json j{{"source", format_prefix(m.source)},
           {"ports", std::to_string(m.port_lo) + "-" + std::to_string(m.port_hi)},
           {"filtering", m.filtering == Filtering::endpoint_independent ? "endpoint_independent"
                                                                         : "address_port_dependent"}};
    json excl = json::array();
    for (const Prefix &p : m.not_destination)
        excl.push_back(format_prefix(p));
    j["not_destination"] = excl;
    // A to_source taken from the WAN address is left out, so a saved listing keeps following it.
    if (m.to_source && !m.to_source_is_wan)
        j["to_source"] = format_ipv4(*m.to_source);
    return j;
}

std::string describe(const Masquerade &m)
{
    std::string s = "masquerade " + format_prefix(m.source);
    for (const Prefix &p : m.not_destination)
        s += " !" + format_prefix(p);
    s += " -> " + (m.to_source ? format_ipv4(*m.to_source) : std::string("WAN address")) +
         (m.to_source && m.to_source_is_wan ? " (WAN address)" : "") + ":" + std::to_string(m.port_lo) +
         "-" + std::to_string(m.port_hi);
    s += m.filtering == Filtering::endpoint_independent ? " filtering endpoint_independent"
                                                         : " filtering address_port_dependent";
    return s;
}

} // namespace xnat
