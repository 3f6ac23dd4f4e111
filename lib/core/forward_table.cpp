#include "core/forward_table.h"

#include <arpa/inet.h>

#include <unordered_map>

namespace xnat {
namespace {

// The i-th (address, port) an endpoint names: hosts vary for a prefix, ports for a range
// (config validation guarantees at most one of them does).
void nth_pair(const Endpoint &ep, uint32_t i, uint32_t &addr, uint16_t &port)
{
    if (ep.hosts() > 1) {
        addr = ep.addr + i;
        port = ep.port_lo;
    } else {
        addr = ep.addr;
        port = static_cast<uint16_t>(ep.port_lo + i);
    }
}

uint64_t key_id(const xnat_fwd_key &k)
{
    return (uint64_t{k.addr} << 32) | (uint64_t{k.port} << 16) | (uint64_t{k.proto} << 8) | k.side;
}

xnat_endpoint to_record(const Endpoint &ep)
{
    xnat_endpoint r{};
    r.addr = htonl(ep.addr);
    r.prefix_len = ep.prefix_len;
    r.port_lo = ep.port_lo;
    r.port_hi = ep.port_hi;
    return r;
}

Endpoint from_record(const xnat_endpoint &r)
{
    Endpoint ep;
    ep.addr = ntohl(r.addr);
    ep.prefix_len = r.prefix_len;
    ep.port_lo = r.port_lo;
    ep.port_hi = r.port_hi;
    return ep;
}

} // namespace

Result<std::vector<FwdEntry>> expand_forwards(const std::vector<LabelledForward> &rules)
{
    uint64_t total = 0;
    for (const auto &r : rules)
        total += r.fwd.from.size();
    if (total > XNAT_FWD_MAX_ENTRIES)
        return invalid_input("the rules name " + std::to_string(total) +
                             " address:port pairs, more than the forward table holds (" +
                             std::to_string(XNAT_FWD_MAX_ENTRIES) + ")");

    std::vector<FwdEntry> entries;
    entries.reserve(total);
    std::unordered_map<uint64_t, size_t> owner;
    owner.reserve(total);
    for (size_t r = 0; r < rules.size(); ++r) {
        const PortForward &f = rules[r].fwd;
        uint32_t n = static_cast<uint32_t>(f.from.size());
        // A parked wan: forward has no key yet, but two of them on one port clash whatever
        // address comes: 0.0.0.0 stands for it (no other rule may use 0.0.0.0/8).
        bool parked = f.parked();
        for (uint32_t i = 0; i < n; ++i) {
            uint32_t from_addr, to_addr;
            uint16_t from_port, to_port;
            nth_pair(f.from, i, from_addr, from_port);
            nth_pair(f.to, i, to_addr, to_port);
            FwdEntry e{};
            e.key.addr = htonl(from_addr);
            e.key.port = htons(from_port);
            e.key.proto = static_cast<uint8_t>(f.proto);
            e.key.side = static_cast<uint8_t>(f.side);
            e.target.addr = htonl(to_addr);
            e.target.port = htons(to_port);
            e.target.rule_id = rules[r].rule_id;
            auto [it, fresh] = owner.emplace(key_id(e.key), r);
            if (!fresh)
                return invalid_input(rules[r].label + ": overlaps " + rules[it->second].label +
                                     " at " + std::string(proto_name(e.key.proto)) + " " +
                                     (parked ? std::string("wan") : format_ipv4(from_addr)) + ":" +
                                     std::to_string(from_port) + " on " + std::string(side_name(f.side)));
            if (!parked)
                entries.push_back(e);
        }
    }
    return entries;
}

xnat_fwd_rule to_rule_record(const PortForward &f)
{
    xnat_fwd_rule r{};
    r.from = to_record(f.from);
    r.to = to_record(f.to);
    r.proto = static_cast<uint8_t>(f.proto);
    r.side = static_cast<uint8_t>(f.side);
    r.flags = (f.from_wan ? XNAT_FWD_F_FROM_WAN : 0) | (f.mapped ? XNAT_FWD_F_MAPPED : 0);
    return r;
}

PortForward from_rule_record(const xnat_fwd_rule &r)
{
    PortForward f;
    f.proto = static_cast<Proto>(r.proto);
    f.side = static_cast<Side>(r.side);
    f.from = from_record(r.from);
    f.to = from_record(r.to);
    f.from_wan = (r.flags & XNAT_FWD_F_FROM_WAN) != 0;
    f.mapped = (r.flags & XNAT_FWD_F_MAPPED) != 0;
    return f;
}

} // namespace xnat
