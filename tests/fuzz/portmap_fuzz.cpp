// libFuzzer target for the NAT-PMP and PCP request decoders, which read whatever any LAN host
// sends to UDP port 5351. Any datagram must be decoded into a request, an error answer or a
// drop; never a crash, a sanitizer report or a hang. The answers must hold what a client relies
// on: the response bit, a PCP answer no longer than 1100 octets and of whole words, a NAT-PMP
// error answer that names its result.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "portmap/natpmp_wire.h"
#include "portmap/pcp_wire.h"
#include "portmap/request_handler.h"

namespace {

[[noreturn]] void broken(const char *what)
{
    std::fprintf(stderr, "portmap_fuzz: %s\n", what);
    std::abort();
}

void check_pcp_answer(const xnat::pcp::Bytes &out)
{
    if (out.size() < xnat::pcp::kHeaderSize || out.size() > xnat::pcp::kMaxMessage || out.size() % 4 != 0)
        broken("PCP answer length out of bounds or not whole words");
    if (out[0] != xnat::pcp::kVersion || !(out[1] & xnat::pcp::kResponseBit))
        broken("PCP answer without version 2 and the response bit");
}

void natpmp(xnat::natpmp::ByteView in)
{
    using namespace xnat::natpmp;
    Decoded d = decode_request(in, 1);
    switch (d.kind) {
    case Decoded::Kind::reply_error:
        if (d.reply.size() < 4 || !(d.reply[1] & kResponseBit) || d.reply[3] != static_cast<uint8_t>(d.error))
            broken("NAT-PMP error answer without the response bit or its result");
        break;
    case Decoded::Kind::map: {
        if (in.size() < 12)
            broken("NAT-PMP mapping request decoded from fewer than 12 octets");
        Bytes out = encode_map_response(d.map.opcode, ResultCode::success, 1, d.map.internal_port,
                                        d.map.suggested_port, d.map.lifetime);
        if (out.size() != 16 || out[1] != (static_cast<uint8_t>(d.map.opcode) | kResponseBit))
            broken("NAT-PMP mapping answer not 16 octets with the request's opcode and the response bit");
        break;
    }
    case Decoded::Kind::external_address:
    case Decoded::Kind::drop:
        break;
    }
}

void pcp(xnat::pcp::ByteView in)
{
    using namespace xnat::pcp;
    // The source is the address the request names, when it names one, so that the decoder goes
    // past the address check to the opcode data and the options.
    Address source{};
    if (in.size() >= kHeaderSize)
        std::copy(in.begin() + 8, in.begin() + 24, source.begin());
    Decoded d = decode_request(in, source);
    switch (d.kind) {
    case Decoded::Kind::reply_error:
        check_pcp_answer(encode_error(in, d.error, 1800, 1));
        break;
    case Decoded::Kind::request:
        if (in.size() % 4 != 0 || in.size() > kMaxMessage)
            broken("PCP request of a bad length accepted");
        if ((d.request.opcode == Opcode::map) != d.request.map.has_value())
            broken("MAP data without MAP, or MAP without its data");
        check_pcp_answer(encode_response(d.request, ResultCode::success, 60, 1, d.request.map));
        break;
    case Decoded::Kind::drop:
        if (in.size() >= 2 && !(in[1] & kResponseBit))
            broken("PCP request dropped unanswered");
        break;
    }
}

// Forwards that take every mapping, so the handler's whole path runs: grant, renew, delete.
struct AcceptAll : xnat::portmap::Forwards {
    xnat::Result<void> add(const xnat::portmap::Mapping &) override
    {
        return {};
    }
    void renew(const xnat::portmap::Mapping &) override {}
    void remove(const xnat::portmap::Mapping &) override {}
    bool taken(xnat::portmap::Protocol, uint16_t port, uint32_t, uint16_t) override
    {
        return port % 7 == 0;
    }
};

// The handler keeps its table from one input to the next, as the server does from one datagram
// to the next; the clock moves a second per input, so mappings also expire.
void handler(xnat::portmap::ByteView in)
{
    using namespace xnat::portmap;
    static MappingTable table = *MappingTable::make(Policy{30000, 30015, 8, 120, 86400}, 1);
    static AcceptAll forwards;
    static RequestHandler h = [] {
        RequestHandler r(table, forwards);
        r.set_external_address(0xcb007101);
        return r;
    }();
    static uint64_t now = 0;
    table.expire(++now);
    Answer a = h.handle(in, 0x0a00000c, now, static_cast<uint32_t>(now));
    if (a.outcome == Outcome::dropped ? !a.reply.empty() : a.reply.size() < 4)
        broken("an answer for a dropped datagram, or none for a request");
    if (!a.reply.empty() && a.reply[0] == xnat::pcp::kVersion)
        check_pcp_answer(a.reply);
    if (table.count(0x0a00000c) > 8)
        broken("the per-host limit was passed");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::span<const uint8_t> in(data, size);
    // The server tells the protocols apart by the first octet, as RFC 6887 §9 describes.
    if (size > 0 && data[0] == xnat::natpmp::kVersion)
        natpmp(in);
    else
        pcp(in);
    handler(in);
    return 0;
}
