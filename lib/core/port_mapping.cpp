#include "core/port_mapping.h"

#include <nlohmann/json.hpp>

#include "core/json_fields.h"

namespace xnat {

using nlohmann::json;

namespace {

Result<uint32_t> optional_uint(const json &j, const char *key, uint32_t fallback, uint32_t lo, uint32_t hi)
{
    if (!j.contains(key))
        return fallback;
    return get_uint(j.at(key), std::string("port_mapping.") + key, lo, hi);
}

Result<std::vector<Prefix>> parse_clients(const json &j)
{
    if (!j.is_array())
        return invalid_input("port_mapping.clients: expected an array, got " + json_type(j));
    std::vector<Prefix> clients;
    for (size_t i = 0; i < j.size(); ++i) {
        std::string path = "port_mapping.clients[" + std::to_string(i) + "]";
        if (!j[i].is_string())
            return invalid_input(path + ": expected a prefix such as \"10.0.0.0/24\", got " +
                                 json_type(j[i]));
        auto p = parse_prefix(j[i].get<std::string>());
        if (!p)
            return with_context(path, p.error());
        clients.push_back(*p);
    }
    return clients;
}

} // namespace

Result<PortMappingConfig> parse_port_mapping(const json &j)
{
    if (!j.is_object())
        return invalid_input("port_mapping: expected an object, got " + json_type(j));
    if (auto r =
            check_keys(j, "port_mapping", {"ports", "per_host", "min_lifetime", "max_lifetime", "clients"});
        !r)
        return r.error();
    PortMappingConfig p;
    // No default range: every port a default could name may be the operator's for something else.
    auto ports = get_string(j, "ports", "port_mapping");
    if (!ports)
        return ports.error();
    auto range = parse_ports(*ports);
    if (!range)
        return with_context("port_mapping.ports", range.error());
    p.port_lo = range->first;
    p.port_hi = range->second;

    auto per_host = optional_uint(j, "per_host", p.per_host, 1, 65535);
    auto min_life = optional_uint(j, "min_lifetime", p.min_lifetime, 1, 0x7fffffff);
    auto max_life = optional_uint(j, "max_lifetime", p.max_lifetime, 1, 0x7fffffff);
    for (const auto *r : {&per_host, &min_life, &max_life})
        if (!*r)
            return r->error();
    p.per_host = *per_host;
    p.min_lifetime = *min_life;
    p.max_lifetime = *max_life;
    if (p.min_lifetime > p.max_lifetime)
        return invalid_input("port_mapping.min_lifetime: " + std::to_string(p.min_lifetime) +
                             " is above max_lifetime " + std::to_string(p.max_lifetime));
    if (j.contains("clients")) {
        auto c = parse_clients(j.at("clients"));
        if (!c)
            return c.error();
        p.clients = std::move(*c);
    }
    return p;
}

json port_mapping_to_json(const PortMappingConfig &p)
{
    json j = {{"ports", std::to_string(p.port_lo) + "-" + std::to_string(p.port_hi)},
              {"per_host", p.per_host},
              {"min_lifetime", p.min_lifetime},
              {"max_lifetime", p.max_lifetime}};
    if (!p.clients.empty()) {
        json list = json::array();
        for (const Prefix &c : p.clients)
            list.push_back(format_prefix(c));
        j["clients"] = list;
    }
    return j;
}

} // namespace xnat
