#include "portmap/request_handler.h"

#include "portmap/natpmp_wire.h"
#include "portmap/pcp_wire.h"

namespace xnat::portmap
{
namespace
{

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
    switch (o) {
    case Outcome::granted:
        return "granted";
    case Outcome::renewed:
        return "renewed";
    case Outcome::deleted:
        return "deleted";
    case Outcome::external_address:
        return "external_address";
    case Outcome::refused_quota:
        return "quota";
    case Outcome::refused_no_ports:
        return "no_ports";
    case Outcome::refused_unavailable:
        return "port_unavailable";
    case Outcome::refused_third_party:
        return "third_party";
    case Outcome::refused_protocol:
        return "protocol";
    case Outcome::refused_no_external:
        return "no_external_address";
    case Outcome::refused_install:
        return "install_failed";
    case Outcome::malformed:
        return "malformed";
    case Outcome::dropped:
        return "dropped";
    }
    return "unknown";
}

Answer RequestHandler::handle(ByteView datagram, uint32_t source, uint64_t now, uint32_t epoch)
{
    // RFC 6887 §9: both protocols share the port, and the first octet tells them apart.
    if (!datagram.empty() && datagram[0] == natpmp::kVersion)
        return natpmp(datagram, source, now, epoch);
    return pcp(datagram, source, now, epoch);
}

Decision RequestHandler::grant(const Ask &ask, uint64_t now, Answer &answer)
{
    Decision d = table_.map(
        ask.proto, ask.host, ask.internal_port, ask.suggested_port, ask.lifetime, ask.prefer_failure, now,
        [this](Protocol p, uint16_t port) { return forwards_.taken(p, port); }, ask.via);
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

std::vector<Mapping> RequestHandler::release(Protocol proto, uint32_t host, uint16_t internal_port)
{
    std::vector<Mapping> gone;
    if (internal_port == 0)
        gone = table_.remove_host(proto, host);
    else if (auto m = table_.remove(proto, host, internal_port))
        gone.push_back(*m);
    for (const Mapping &m : gone)
        forwards_.remove(m);
    return gone;
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
        release(proto, source, m.internal_port);
        a.outcome = Outcome::deleted;
    } else if (m.internal_port == 0) {
        a.outcome = Outcome::refused_protocol;
        a.why = "a mapping of every port";
    } else if (!external_) {
        a.outcome = Outcome::refused_no_external;
    } else {
        Decision g =
            grant({proto, source, m.internal_port, m.suggested_port, m.lifetime, false, Via::natpmp}, now, a);
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

    if (r.third_party && *r.third_party != ipv4_mapped(source)) {
        a.outcome = Outcome::refused_third_party;
        a.why = "a mapping for another host";
    } else if (r.lifetime == 0 && (proto || (m.protocol == 0 && m.internal_port == 0))) {
        // §15: lifetime 0 deletes; protocol 0 with port 0 deletes every mapping of the host.
        for (Protocol p : {Protocol::tcp, Protocol::udp})
            if (!proto || *proto == p)
                release(p, source, m.internal_port);
        a.reply = encode_response(r, ResultCode::success, 0, epoch);
        a.outcome = Outcome::deleted;
        return a;
    } else if (!proto || m.internal_port == 0) {
        a.outcome = Outcome::refused_protocol;
        a.why = "only TCP and UDP mappings of one port";
    } else if (!external_) {
        a.outcome = Outcome::refused_no_external;
    } else {
        Decision g =
            grant({*proto, source, m.internal_port, m.external_port, r.lifetime, r.prefer_failure, Via::pcp},
                  now, a);
        if (granted(a.outcome)) {
            MapData assigned = m;
            assigned.external_port = g.mapping.external_port;
            assigned.external_addr = ipv4_mapped(external_);
            a.reply = encode_response(r, ResultCode::success, g.lifetime, epoch, assigned);
            return a;
        }
    }
    a.reply = encode_response(r, pcp_code(a.outcome), error_lifetime(a.outcome), epoch);
    return a;
}

} // namespace xnat::portmap
