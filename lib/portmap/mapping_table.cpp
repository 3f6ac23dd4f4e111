#include "portmap/mapping_table.h"

#include <algorithm>

namespace xnat::portmap {
namespace {

// Matches the mapping with this identity (RFC 6887 §11.3).
auto identity(Protocol proto, uint32_t host, uint16_t internal_port)
{
    return [=](const Mapping &m) {
        return m.proto == proto && m.host == host && m.internal_port == internal_port;
    };
}

} // namespace

bool owns(const std::optional<Nonce> &nonce, const Mapping &m)
{
    return !nonce || !m.nonce || *m.nonce == *nonce;
}

uint32_t seconds_left(const Mapping &m, uint64_t now)
{
    return m.expires > now ? static_cast<uint32_t>(std::min<uint64_t>(m.expires - now, UINT32_MAX)) : 0;
}

Result<void> check_policy(const Policy &p)
{
    if (p.port_lo == 0 || p.port_hi < p.port_lo)
        return invalid_input("ports: expected a range LO-HI with 1 <= LO <= HI <= 65535");
    if (p.per_host == 0)
        return invalid_input("per_host: expected at least 1");
    if (p.min_lifetime == 0 || p.max_lifetime < p.min_lifetime)
        return invalid_input("lifetimes: expected 1 <= min_lifetime <= max_lifetime");
    return {};
}

MappingTable::MappingTable(Policy policy, uint32_t seed) : policy_(policy), random_(seed) {}

Result<MappingTable> MappingTable::make(Policy policy, uint32_t seed)
{
    if (auto ok = check_policy(policy); !ok)
        return ok.error();
    return MappingTable(policy, seed);
}

const Mapping *MappingTable::find(Protocol proto, uint32_t host, uint16_t internal_port) const
{
    auto it = std::find_if(mappings_.begin(), mappings_.end(), identity(proto, host, internal_port));
    return it == mappings_.end() ? nullptr : &*it;
}

uint32_t MappingTable::clamp_lifetime(uint32_t requested) const
{
    return std::clamp(requested, policy_.min_lifetime, policy_.max_lifetime);
}

size_t MappingTable::count(uint32_t host) const
{
    return static_cast<size_t>(
        std::count_if(mappings_.begin(), mappings_.end(), [&](const Mapping &m) { return m.host == host; }));
}

std::optional<uint64_t> MappingTable::next_expiry() const
{
    if (mappings_.empty())
        return std::nullopt;
    return std::min_element(mappings_.begin(), mappings_.end(),
                            [](const Mapping &a, const Mapping &b) { return a.expires < b.expires; })
        ->expires;
}

bool MappingTable::port_free(Protocol proto, uint16_t port, const PortTaken &taken) const
{
    if (port < policy_.port_lo || port > policy_.port_hi || port == 0)
        return false;
    for (const Mapping &m : mappings_)
        if (m.proto == proto && m.external_port == port)
            return false;
    return !taken(proto, port);
}

std::optional<uint16_t> MappingTable::choose_port(Protocol proto, uint16_t suggested, uint16_t internal,
                                                  const PortTaken &taken)
{
    for (uint16_t wanted : {suggested, internal})
        if (port_free(proto, wanted, taken))
            return wanted;
    // A random start, then every port once: free ports are found however the range is filled,
    // and which one a host gets is not predictable from outside (RFC 6056's concern).
    uint32_t size = uint32_t{policy_.port_hi} - policy_.port_lo + 1;
    uint32_t start = std::uniform_int_distribution<uint32_t>(0, size - 1)(random_);
    for (uint32_t i = 0; i < size; ++i) {
        auto port = static_cast<uint16_t>(policy_.port_lo + (start + i) % size);
        if (port_free(proto, port, taken))
            return port;
    }
    return std::nullopt;
}

Decision MappingTable::map(const MapAsk &ask, uint64_t now, const PortTaken &taken)
{
    Decision d;
    d.lifetime = clamp_lifetime(ask.lifetime);
    auto known =
        std::find_if(mappings_.begin(), mappings_.end(), identity(ask.proto, ask.host, ask.internal_port));
    if (known != mappings_.end()) {
        Mapping &m = *known;
        if (!owns(ask.nonce, m)) {
            d.refusal = Refusal::nonce_mismatch;
            d.mapping = m;
            d.lifetime = seconds_left(m, now);
            return d;
        }
        m.expires = now + d.lifetime;
        m.via = ask.via;
        if (ask.nonce)
            m.nonce = ask.nonce; // a NAT-PMP mapping belongs to the first PCP client that renews it
        d.mapping = m;
        d.renewed = true;
        return d;
    }
    const Protocol proto = ask.proto;
    if (count(ask.host) >= policy_.per_host) {
        d.refusal = Refusal::host_quota;
        return d;
    }
    std::optional<uint16_t> port;
    if (ask.prefer_failure) {
        if (port_free(proto, ask.suggested_port, taken))
            port = ask.suggested_port;
        else {
            d.refusal = Refusal::suggested_unavailable;
            return d;
        }
    } else {
        port = choose_port(proto, ask.suggested_port, ask.internal_port, taken);
    }
    if (!port) {
        d.refusal = Refusal::no_ports;
        return d;
    }
    d.mapping = Mapping{proto, ask.host, ask.internal_port, *port, now + d.lifetime, ask.via, ask.nonce};
    mappings_.push_back(d.mapping);
    return d;
}

std::optional<Mapping> MappingTable::remove(Protocol proto, uint32_t host, uint16_t internal_port)
{
    auto it = std::find_if(mappings_.begin(), mappings_.end(), identity(proto, host, internal_port));
    if (it == mappings_.end())
        return std::nullopt;
    Mapping gone = *it;
    mappings_.erase(it);
    return gone;
}

namespace {

template <typename Pred> std::vector<Mapping> take_if(std::vector<Mapping> &from, Pred pred)
{
    std::vector<Mapping> taken;
    auto keep = std::stable_partition(from.begin(), from.end(), [&](const Mapping &m) { return !pred(m); });
    taken.assign(keep, from.end());
    from.erase(keep, from.end());
    return taken;
}

} // namespace

MappingTable::Released MappingTable::release(Protocol proto, uint32_t host, uint16_t internal_port,
                                             const std::optional<Nonce> &nonce)
{
    auto of_request = [&](const Mapping &m) {
        return m.proto == proto && m.host == host && (internal_port == 0 || m.internal_port == internal_port);
    };
    Released r;
    for (const Mapping &m : mappings_)
        if (of_request(m) && !owns(nonce, m))
            r.kept.push_back(m);
    r.removed = take_if(mappings_, [&](const Mapping &m) { return of_request(m) && owns(nonce, m); });
    return r;
}

std::vector<Mapping> MappingTable::expire(uint64_t now)
{
    return take_if(mappings_, [&](const Mapping &m) { return m.expires <= now; });
}

bool MappingTable::adopt(const Mapping &m, uint64_t now, const PortTaken &taken)
{
    if (m.internal_port == 0 || m.expires <= now || m.expires > now + policy_.max_lifetime ||
        count(m.host) >= policy_.per_host || !port_free(m.proto, m.external_port, taken))
        return false;
    for (const Mapping &have : mappings_)
        if (have.proto == m.proto && (have.external_port == m.external_port ||
                                      (have.host == m.host && have.internal_port == m.internal_port)))
            return false;
    mappings_.push_back(m);
    return true;
}

} // namespace xnat::portmap
