// The port mappings hosts asked for (NAT-PMP, PCP) and the policy that grants them: which
// external ports may be handed out, how many per host, for how long. Pure: what else holds a
// port (static forwards, the gateway's own sockets, masquerade's mappings in use) is asked
// through a callback, and time is passed in.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <vector>

namespace xnat::portmap
{

enum class Protocol : uint8_t { tcp = 6, udp = 17 };

// Which protocol a mapping was last asked for with: shown to the operator.
enum class Via : uint8_t { natpmp, pcp };

struct Policy {
    uint16_t port_lo = 0; // the external ports handed out, inclusive
    uint16_t port_hi = 0;
    uint32_t max_per_host = 0;
    // RFC 6887 §15: a server SHOULD let these be set, the minimum SHOULD be 120 s, and 24 hours
    // is a fair maximum. Both protocols' lifetimes are clamped into this range.
    uint32_t min_lifetime = 120;
    uint32_t max_lifetime = 86400;
};

// A mapping is identified by protocol, internal host and internal port (RFC 6887 §11.3); its
// external port is unique per protocol, as every mapping shares the one external address.
struct Mapping {
    Protocol proto = Protocol::tcp;
    uint32_t host = 0; // host order
    uint16_t internal_port = 0;
    uint16_t external_port = 0;
    uint64_t expires = 0; // seconds, on the clock `now` is read from
    Via via = Via::natpmp;
    bool operator==(const Mapping &) const = default;
};

enum class Refusal {
    none,
    host_quota,            // the host holds max_per_host mappings
    no_ports,              // every port of the range is taken
    suggested_unavailable, // PREFER_FAILURE, and the suggested port is taken or outside the range
};

struct Decision {
    Refusal refusal = Refusal::none;
    Mapping mapping;       // granted (refusal == none)
    uint32_t lifetime = 0; // granted, after clamping
    bool renewed = false;  // an existing mapping got a new lifetime
};

// Whether an external port is held by something else than this table.
using PortTaken = std::function<bool(Protocol, uint16_t)>;

class MappingTable
{
  public:
    // `seed` makes the port choice repeatable in tests; a server seeds from std::random_device.
    MappingTable(Policy policy, uint32_t seed);

    // A mapping request with a lifetime above 0 (0 is remove()). A known mapping keeps its
    // external port and gets the new lifetime; a new one gets the suggested port when that is
    // in the range and free, else the internal port when that is, else a random free one,
    // unless prefer_failure asks to refuse instead.
    Decision map(Protocol proto, uint32_t host, uint16_t internal_port, uint16_t suggested_port,
                 uint32_t lifetime, bool prefer_failure, uint64_t now, const PortTaken &taken,
                 Via via = Via::natpmp);

    std::optional<Mapping> remove(Protocol proto, uint32_t host, uint16_t internal_port);
    // Every mapping of a host for one protocol (NAT-PMP's delete with internal port 0).
    std::vector<Mapping> remove_host(Protocol proto, uint32_t host);
    // The mappings whose lifetime has passed, removed.
    std::vector<Mapping> expire(uint64_t now);
    // Takes back a mapping found after a restart, if the policy still allows it and its
    // external port is free; false when it must be removed instead.
    bool adopt(const Mapping &m, uint64_t now);

    const std::vector<Mapping> &mappings() const
    {
        return mappings_;
    }
    size_t count(uint32_t host) const;
    std::optional<uint64_t> next_expiry() const;
    uint32_t clamp_lifetime(uint32_t requested) const;

  private:
    bool port_free(Protocol proto, uint16_t port, const PortTaken &taken) const;
    std::optional<uint16_t> choose_port(Protocol proto, uint16_t suggested, uint16_t internal,
                                        const PortTaken &taken);

    Policy policy_;
    std::vector<Mapping> mappings_;
    std::mt19937 random_;
};

} // namespace xnat::portmap
