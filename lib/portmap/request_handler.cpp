#include "portmap/request_handler.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "portmap/natpmp_wire.h"
#include "portmap/pcp_wire.h"

namespace xnat::portmap {
namespace {

// RFC 6887 §7.4: an error that retrying soon cannot mend is answered with a long lifetime, one
// that may pass (resources, the WAN's address) with a short one, so clients come back in time.
constexpr uint32_t kLongErrorLifetime = 1800;
constexpr uint32_t kShortErrorLifetime = 30;

constexpr uint8_t kTcp = 6, kUdp = 17;

Outcome refusal_outcome(Refusal r)
{
    switch (r) {
    case Refusal::host_quota:
        return Outcome::refused_quota;
    case Refusal::no_ports:
        return Outcome::refused_no_ports;
    case Refusal::suggested_unavailable:
        return Outcome::refused_unavailable;
    case Refusal::nonce_mismatch:
        return Outcome::refused_nonce;
    case Refusal::none:
        break;
    }
    return Outcome::granted;
}

bool granted(Outcome o)
{
    return o == Outcome::granted || o == Outcome::renewed;
}

natpmp::ResultCode natpmp_code(Outcome o)
{
    switch (o) {
    case Outcome::refused_no_external:
        return natpmp::ResultCode::network_failure;
    case Outcome::refused_protocol:
    case Outcome::refused_third_party:
        return natpmp::ResultCode::not_authorized;
    case Outcome::refused_quota:
    case Outcome::refused_no_ports:
    case Outcome::refused_unavailable:
    case Outcome::refused_install:
        return natpmp::ResultCode::out_of_resources;
    default:
        return natpmp::ResultCode::success;
    }
}

pcp::ResultCode pcp_code(Outcome o)
{
    switch (o) {
    case Outcome::refused_quota:
        return pcp::ResultCode::user_ex_quota;
    case Outcome::refused_no_ports:
    case Outcome::refused_install:
        return pcp::ResultCode::no_resources;
    case Outcome::refused_unavailable:
        return pcp::ResultCode::cannot_provide_external;
    case Outcome::refused_third_party:
    case Outcome::refused_nonce:
        return pcp::ResultCode::not_authorized;
    case Outcome::refused_protocol:
        return pcp::ResultCode::unsupp_protocol;
    case Outcome::refused_no_external:
        return pcp::ResultCode::network_failure;
    default:
        return pcp::ResultCode::success;
    }
}

uint32_t error_lifetime(Outcome o)
{
    return o == Outcome::refused_third_party || o == Outcome::refused_protocol ? kLongErrorLifetime
                                                                               : kShortErrorLifetime;
}

} // namespace

const char *outcome_name(Outcome o)
{
    static constexpr std::pair<Outcome, const char *> kNames[] = {
        {Outcome::granted, "granted"},
        {Outcome::renewed, "renewed"},
        {Outcome::deleted, "deleted"},
        {Outcome::external_address, "external_address"},
        {Outcome::refused_quota, "quota"},
        {Outcome::refused_no_ports, "no_ports"},
        {Outcome::refused_unavailable, "port_unavailable"},
        {Outcome::refused_third_party, "third_party"},
        {Outcome::refused_nonce, "nonce"},
        {Outcome::refused_protocol, "protocol"},
        {Outcome::refused_no_external, "no_external_address"},
        {Outcome::refused_install, "install_failed"},
        {Outcome::malformed, "malformed"},
        {Outcome::dropped, "dropped"},
    };
    for (const auto &[outcome, name] : kNames)
        if (outcome == o)
            return name;
    return "unknown";
}

Answer RequestHandler::handle(ByteView datagram, uint32_t source, uint64_t now, uint32_t epoch)
{
    // RFC 6887 §9: both protocols share the port, and the first octet tells them apart. Any
    // version but 0 is PCP's to answer: 1 and above 2 get UNSUPP_VERSION naming version 2, which
    // is how a client learns what the server speaks (NAT-PMP's own unsupported-version answer
    // would only tell it "0").
    if (!datagram.empty() && datagram[0] == natpmp::kVersion)
        return natpmp(datagram, source, now, epoch);
    return pcp(datagram, source, now, epoch);
}

Decision RequestHandler::grant(const MapAsk &ask, uint64_t now, Answer &answer)
{
    Decision d = table_.map(ask, now, [this, &ask](Protocol p, uint16_t port) {
        return forwards_.taken(p, port, ask.host, ask.internal_port);
    });
    if (d.refusal != Refusal::none) {
        answer.outcome = refusal_outcome(d.refusal);
        return d;
    }
    answer.outcome = d.renewed ? Outcome::renewed : Outcome::granted;
    if (d.renewed) {
        forwards_.renew(d.mapping);
    } else if (auto added = forwards_.add(d.mapping); !added) {
        table_.remove(ask.proto, ask.host, ask.internal_port);
        answer.outcome = Outcome::refused_install;
        answer.why = added.error().message;
    }
    return d;
}

std::vector<Mapping> RequestHandler::release(Protocol proto, uint32_t host, uint16_t internal_port,
                                             const std::optional<Nonce> &nonce)
{
    MappingTable::Released r = table_.release(proto, host, internal_port, nonce);
    for (const Mapping &m : r.removed)
        forwards_.remove(m);
    return r.kept;
}

Answer RequestHandler::natpmp(ByteView datagram, uint32_t source, uint64_t now, uint32_t epoch)
{
    using namespace natpmp;
    Decoded d = decode_request(datagram, epoch);
    Answer a;
    switch (d.kind) {
    case Decoded::Kind::drop:
        a.why = d.why;
        return a;
    case Decoded::Kind::reply_error:
        return {d.reply, Outcome::malformed, d.why};
    case Decoded::Kind::external_address:
        a.outcome = external_ ? Outcome::external_address : Outcome::refused_no_external;
        a.reply = encode_external_address(natpmp_code(a.outcome), epoch, external_);
        return a;
    case Decoded::Kind::map:
        break;
    }
    const MapRequest &m = d.map;
    Protocol proto = m.opcode == Opcode::map_tcp ? Protocol::tcp : Protocol::udp;
    uint16_t external_port = 0;
    uint32_t lifetime = 0;
    if (m.lifetime == 0) {
        // §3.4: a delete answers with external port and lifetime 0, whether anything was mapped.
        release(proto, source, m.internal_port, std::nullopt);
        a.outcome = Outcome::deleted;
    } else if (m.internal_port == 0) {
        a.outcome = Outcome::refused_protocol;
        a.why = "a mapping of every port";
    } else if (!external_) {
        a.outcome = Outcome::refused_no_external;
    } else {
        MapAsk ask{proto,      source, m.internal_port, m.suggested_port,
                   m.lifetime, false,  Via::natpmp,     std::nullopt};
        Decision g = grant(ask, now, a);
        if (granted(a.outcome)) {
            external_port = g.mapping.external_port;
            lifetime = g.lifetime;
        }
    }
    a.reply = encode_map_response(m.opcode, natpmp_code(a.outcome), epoch, m.internal_port, external_port,
                                  lifetime);
    return a;
}

Answer RequestHandler::pcp(ByteView datagram, uint32_t source, uint64_t now, uint32_t epoch)
{
    using namespace pcp;
    Decoded d = decode_request(datagram, ipv4_mapped(source));
    Answer a;
    if (d.kind == Decoded::Kind::drop) {
        a.why = d.why;
        return a;
    }
    if (d.kind == Decoded::Kind::reply_error)
        return {encode_error(datagram, d.error, kLongErrorLifetime, epoch), Outcome::malformed, d.why};
    const Request &r = d.request;
    if (r.opcode == Opcode::announce) {
        a.outcome = Outcome::external_address;
        a.reply = encode_response(r, ResultCode::success, 0, epoch);
        return a;
    }
    const MapData &m = *r.map;
    std::optional<Protocol> proto;
    if (m.protocol == kTcp)
        proto = Protocol::tcp;
    else if (m.protocol == kUdp)
        proto = Protocol::udp;

    uint32_t lifetime = 0;
    if (r.third_party && *r.third_party != ipv4_mapped(source)) {
        a.outcome = Outcome::refused_third_party;
        a.why = "a mapping for another host";
    } else if (r.lifetime == 0 && (proto || m.protocol == 0)) {
        // §15: lifetime 0 deletes. Protocol 0 means every protocol, and then the internal port
        // is ignored (§11.1): every mapping of the host.
        std::vector<Mapping> kept;
        for (Protocol p : {Protocol::tcp, Protocol::udp})
            if (!proto || *proto == p)
                for (const Mapping &k : release(p, source, proto ? m.internal_port : 0, m.nonce))
                    kept.push_back(k);
        if (kept.empty()) {
            a.outcome = Outcome::deleted;
            a.reply = encode_response(r, ResultCode::success, 0, epoch);
            return a;
        }
        a.outcome = Outcome::refused_nonce;
        a.why = "the mapping belongs to another PCP client";
        lifetime = seconds_left(kept.front(), now);
    } else if (!proto || m.internal_port == 0) {
        a.outcome = Outcome::refused_protocol;
        a.why = "only TCP and UDP mappings of one port";
    } else if (!external_) {
        a.outcome = Outcome::refused_no_external;
    } else if (r.prefer_failure && !unspecified(m.external_addr) &&
               m.external_addr != ipv4_mapped(external_)) {
        // §13.2: exactly the suggested address and port, or nothing.
        a.outcome = Outcome::refused_unavailable;
        a.why = "the suggested external address is not the gateway's";
    } else {
        MapAsk ask{*proto,     source,           m.internal_port, m.external_port,
                   r.lifetime, r.prefer_failure, Via::pcp,        m.nonce};
        Decision g = grant(ask, now, a);
        if (granted(a.outcome)) {
            MapData assigned = m;
            assigned.external_port = g.mapping.external_port;
            assigned.external_addr = ipv4_mapped(external_);
            a.reply = encode_response(r, ResultCode::success, g.lifetime, epoch, assigned);
            return a;
        }
        lifetime = g.lifetime; // for refused_nonce: what is left of the other client's mapping
    }
    if (a.outcome != Outcome::refused_nonce)
        lifetime = error_lifetime(a.outcome);
    // §7.2: an error answer is the request itself with the answer's header fields.
    a.reply = encode_error(datagram, pcp_code(a.outcome), lifetime, epoch);
    return a;
}

} // namespace xnat::portmap
