#include "portmap/natpmp_wire.h"

namespace xnat::natpmp {
namespace {

using portmap::get16;
using portmap::get32;
using portmap::put16;
using portmap::put32;

constexpr size_t kExternalAddressRequest = 2;
constexpr size_t kMapRequest = 12;

Decoded drop(const char *why)
{
    Decoded d;
    d.why = why;
    return d;
}

Decoded error(Bytes reply, ResultCode code, const char *why)
{
    Decoded d;
    d.kind = Decoded::Kind::reply_error;
    d.reply = std::move(reply);
    d.error = code;
    d.why = why;
    return d;
}

} // namespace

Decoded decode_request(ByteView in, uint32_t epoch)
{
    if (in.size() < kExternalAddressRequest)
        return drop("truncated");
    uint8_t version = in[0], op = in[1];
    if (version != kVersion) {
        // Erratum 3618: the answer's opcode is 128, whatever the request's was.
        Bytes r(8, 0);
        r[1] = kResponseBit;
        put16(r, 2, static_cast<uint16_t>(ResultCode::unsupported_version));
        put32(r, 4, epoch);
        return error(std::move(r), ResultCode::unsupported_version, "unsupported version");
    }
    // §3.5: an opcode with the top bit set is a response, perhaps another server's: never answer it.
    if (op & kResponseBit)
        return drop("response");
    if (op == static_cast<uint8_t>(Opcode::external_address)) {
        Decoded d;
        d.kind = Decoded::Kind::external_address;
        return d;
    }
    if (op != static_cast<uint8_t>(Opcode::map_udp) && op != static_cast<uint8_t>(Opcode::map_tcp)) {
        // §3.5: the whole request comes back with the response bit and result code 5 (a request
        // shorter than the result code's place is padded to hold it).
        Bytes r(in.begin(), in.end());
        if (r.size() < 4)
            r.resize(4, 0);
        r[1] = static_cast<uint8_t>(op | kResponseBit);
        put16(r, 2, static_cast<uint16_t>(ResultCode::unsupported_opcode));
        return error(std::move(r), ResultCode::unsupported_opcode, "unsupported opcode");
    }
    if (in.size() < kMapRequest)
        return drop("truncated");
    Decoded d;
    d.kind = Decoded::Kind::map;
    d.map.opcode = static_cast<Opcode>(op);
    // Bytes 2-3 are reserved: ignored on reception (§3.3).
    d.map.internal_port = get16(in, 4);
    d.map.suggested_port = get16(in, 6);
    d.map.lifetime = get32(in, 8);
    return d;
}

Bytes encode_external_address(ResultCode result, uint32_t epoch, uint32_t external_addr)
{
    Bytes r(12, 0);
    r[1] = kResponseBit | static_cast<uint8_t>(Opcode::external_address);
    put16(r, 2, static_cast<uint16_t>(result));
    put32(r, 4, epoch);
    put32(r, 8, external_addr);
    return r;
}

Bytes encode_map_response(Opcode opcode, ResultCode result, uint32_t epoch, uint16_t internal_port,
                          uint16_t external_port, uint32_t lifetime)
{
    Bytes r(16, 0);
    r[1] = static_cast<uint8_t>(kResponseBit | static_cast<uint8_t>(opcode));
    put16(r, 2, static_cast<uint16_t>(result));
    put32(r, 4, epoch);
    put16(r, 8, internal_port);
    put16(r, 10, external_port);
    put32(r, 12, lifetime);
    return r;
}

} // namespace xnat::natpmp
