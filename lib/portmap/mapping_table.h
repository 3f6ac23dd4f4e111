// The port mappings hosts asked for (NAT-PMP, PCP) and the policy that grants them: which
// external ports may be handed out, how many per host, for how long. Pure: what else holds a
// port (static forwards, the gateway's own sockets, masquerade's mappings in use) is asked
// through a callback, and time is passed in.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <vector>

#include "core/port_mapping.h"
#include "core/result.h"

namespace xnat::portmap {

enum class Protocol : uint8_t { tcp = 6, udp = 17 };

// Which protocol a mapping was last asked for with: shown to the operator.
enum class Via : uint8_t { natpmp, pcp };

// The policy is the config's port_mapping section: the same fields, one definition.
using Policy = PortMappingConfig;

// PCP's mapping nonce (RFC 6887 §11.1): only the client that made a mapping may renew or delete it.
using Nonce = std::array<uint8_t, 12>;

// A mapping is identified by protocol, internal host and internal port (RFC 6887 §11.3); its
// external port is unique per protocol, as every mapping shares the one external address.
struct Mapping {
    Protocol proto = Protocol::tcp;
    uint32_t host = 0; // host order
    uint16_t internal_port = 0;
    uint16_t external_port = 0;
    uint64_t expires = 0; // seconds, on the clock `now` is read from
    Via via = Via::natpmp;
    std::optional<Nonce> nonce{}; // none for a mapping NAT-PMP made, until PCP renews it
    bool operator==(const Mapping &) const = default;
};

// What a mapping request asks for, whichever protocol carried it.
struct MapAsk {
    Protocol proto = Protocol::tcp;
    uint32_t host = 0;
    uint16_t internal_port = 0;
    uint16_t suggested_port = 0;
    uint32_t lifetime = 0;
    bool prefer_failure = false;
    Via via = Via::natpmp;
    std::optional<Nonce> nonce{};
};

enum class Refusal {
    none,
    host_quota,            // the host holds per_host mappings
    no_ports,              // every port of the range is taken
    suggested_unavailable, // PREFER_FAILURE, and the suggested port is taken or outside the range
    nonce_mismatch,        // the mapping exists with another PCP client's nonce (§11.3)
};

// Whether a request carrying `nonce` may renew or delete `m` (RFC 6887 §11.3): NAT-PMP has no
// nonce and may touch every mapping of its host, and a mapping without one (NAT-PMP made it)
// belongs to any client of its host.
bool owns(const std::optional<Nonce> &nonce, const Mapping &m);
// Seconds until `m` expires, 0 once it has.
uint32_t seconds_left(const Mapping &m, uint64_t now);

// A policy the table can work with: ports 1 to 65535 with lo <= hi, lifetimes min <= max, and at
// least one mapping per host. The error names the field.
Result<void> check_policy(const Policy &p);

struct Decision {
    Refusal refusal = Refusal::none;
    Mapping mapping;       // granted (refusal == none)
    uint32_t lifetime = 0; // granted, after clamping; for nonce_mismatch, what is left of it
    bool renewed = false;  // an existing mapping got a new lifetime
};

// Whether an external port is held by something else than this table.
using PortTaken = std::function<bool(Protocol, uint16_t)>;

class MappingTable
{
  public:
    // `seed` makes the port choice repeatable in tests; a server seeds from std::random_device.
    // The policy must pass check_policy.
    static Result<MappingTable> make(Policy policy, uint32_t seed);

    // A mapping request with a lifetime above 0 (0 is remove()). A known mapping keeps its
    // external port and gets the new lifetime; a new one gets the suggested port when that is
    // in the range and free, else the internal port when that is, else a random free one,
    // unless prefer_failure asks to refuse instead.
    Decision map(const MapAsk &ask, uint64_t now, const PortTaken &taken);

    const Mapping *find(Protocol proto, uint32_t host, uint16_t internal_port) const;
    std::optional<Mapping> remove(Protocol proto, uint32_t host, uint16_t internal_port);
    // Removes the host's mappings of `proto` (every port when internal_port is 0: NAT-PMP's and
    // PCP's delete-all) that `nonce` owns. `kept`: those another PCP client's nonce holds.
    struct Released {
        std::vector<Mapping> removed;
        std::vector<Mapping> kept;
    };
    Released release(Protocol proto, uint32_t host, uint16_t internal_port,
                     const std::optional<Nonce> &nonce);
    // The mappings whose lifetime has passed, removed.
    std::vector<Mapping> expire(uint64_t now);
    // Takes back a mapping found after a restart, if the policy still allows it and its
    // external port is free, here and elsewhere (`taken` must not count the mapping's own forward,
    // which is still installed); false when it must be removed instead.
    bool adopt(const Mapping &m, uint64_t now, const PortTaken &taken);

    const std::vector<Mapping> &mappings() const
    {
        return mappings_;
    }
    size_t count(uint32_t host) const;
    std::optional<uint64_t> next_expiry() const;
    uint32_t clamp_lifetime(uint32_t requested) const;

  private:
    MappingTable(Policy policy, uint32_t seed);
    bool port_free(Protocol proto, uint16_t port, const PortTaken &taken) const;
    std::optional<uint16_t> choose_port(Protocol proto, uint16_t suggested, uint16_t internal,
                                        const PortTaken &taken);

    Policy policy_;
    std::vector<Mapping> mappings_;
    std::mt19937 random_;
};

} // namespace xnat::portmap
