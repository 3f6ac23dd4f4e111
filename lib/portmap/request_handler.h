// One NAT-PMP or PCP datagram in, one answer out: the decoding, the policy of the mapping table,
// and what the forwards must become. The forwards themselves are changed through `Forwards`,
// so that this stays pure; xnat-portmapd implements it on a running instance.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "core/result.h"
#include "portmap/mapping_table.h"
#include "portmap/wire_bytes.h"

namespace xnat::portmap {

// The running instance's forwards, as the handler needs them.
class Forwards
{
  public:
    virtual ~Forwards() = default;
    // Installs a forward from the external address's `external_port` to the host's port.
    virtual Result<void> add(const Mapping &m) = 0;
    // A renewed mapping's new expiry, for what the instance shows of it.
    virtual void renew(const Mapping &m) = 0;
    virtual void remove(const Mapping &m) = 0;
    // Whether something else holds the port (a static forward, the gateway, masquerade) for a
    // mapping of host:internal_port: that endpoint's own use of it (its masquerade flows, which
    // agree with its mapping) does not count.
    virtual bool taken(Protocol proto, uint16_t external_port, uint32_t host, uint16_t internal_port) = 0;
};

// Why a datagram got the answer it got: each is a counter and a metric label.
enum class Outcome {
    granted,
    renewed,
    deleted,
    external_address, // NAT-PMP's address request, PCP's ANNOUNCE
    refused_quota,
    refused_no_ports,
    refused_unavailable, // PREFER_FAILURE
    refused_third_party, // a mapping for another host
    refused_nonce,       // another PCP client's mapping (RFC 6887 §11.3)
    refused_protocol,    // not TCP or UDP, or every port
    refused_no_external, // the WAN has no address
    refused_install,     // the kernel refused the forward
    malformed,           // answered with the protocol's error
    dropped,             // no answer
};
const char *outcome_name(Outcome o);

struct Answer {
    Bytes reply; // empty: send nothing
    Outcome outcome = Outcome::dropped;
    std::string why; // for the log: what was refused and why
};

class RequestHandler
{
  public:
    RequestHandler(MappingTable &table, Forwards &forwards) : table_(table), forwards_(forwards) {}

    // The WAN's address now (host order), 0 while it has none.
    void set_external_address(uint32_t addr)
    {
        external_ = addr;
    }
    // `now` and `epoch` in seconds: the clock mappings expire on, and the seconds since the
    // server's mappings began (RFC 6887 §8.5; NAT-PMP's "seconds since start of epoch").
    Answer handle(ByteView datagram, uint32_t source, uint64_t now, uint32_t epoch);

  private:
    Answer natpmp(ByteView datagram, uint32_t source, uint64_t now, uint32_t epoch);
    Answer pcp(ByteView datagram, uint32_t source, uint64_t now, uint32_t epoch);
    // Grants or renews in the table and installs the forward; on a kernel refusal the table
    // forgets the new mapping again. The outcome and its reason go into `answer`.
    Decision grant(const MapAsk &ask, uint64_t now, Answer &answer);
    // MappingTable::release, and the removed mappings' forwards with them. Returns the ones
    // another PCP client's nonce kept.
    std::vector<Mapping> release(Protocol proto, uint32_t host, uint16_t internal_port,
                                 const std::optional<Nonce> &nonce);

    MappingTable &table_;
    Forwards &forwards_;
    uint32_t external_ = 0;
};

} // namespace xnat::portmap
