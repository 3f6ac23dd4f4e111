#include "portmap/pcp_wire.h"

#include <algorithm>
#include <cstring>

namespace xnat::pcp {
namespace {

using portmap::get16;
using portmap::get32;
using portmap::put16;
using portmap::put32;

constexpr size_t kOptionHeader = 4;
constexpr uint8_t kFirstOptionalOption = 128; // codes below are mandatory to process (§7.3)
constexpr uint16_t kThirdPartyLength = 16;
constexpr uint16_t kFilterLength = 20;

Decoded refuse(ResultCode code, const char *why)
{
    Decoded d;
    d.kind = Decoded::Kind::reply_error;
    d.error = code;
    d.why = why;
    return d;
}

Address address_at(ByteView in, size_t at)
{
    Address a;
    std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(at), a.size(), a.begin());
    return a;
}

MapData map_at(ByteView in, size_t at)
{
    MapData m;
    std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(at), kNonceSize, m.nonce.begin());
    m.protocol = in[at + 12];
    // Bytes 13-15 are reserved: ignored on reception.
    m.internal_port = get16(in, at + 16);
    m.external_port = get16(in, at + 18);
    m.external_addr = address_at(in, at + 20);
    return m;
}

// The options after the opcode's data (§7.3), into `r`. nullopt when they are all well formed
// and understood, else the result code that refuses the request.
std::optional<ResultCode> read_options(ByteView in, size_t at, Request &r, const char *&why)
{
    bool seen_third_party = false, seen_prefer_failure = false;
    while (at < in.size()) {
        if (in.size() - at < kOptionHeader) {
            why = "option header cut short";
            return ResultCode::malformed_option;
        }
        uint8_t code = in[at];
        uint16_t length = get16(in, at + 2);
        size_t padded = (size_t{length} + 3) & ~size_t{3};
        if (padded > in.size() - at - kOptionHeader) {
            why = "option longer than the request";
            return ResultCode::malformed_option;
        }
        size_t data = at + kOptionHeader;
        at = data + padded;
        bool for_map = r.opcode == Opcode::map;
        switch (code) {
        case static_cast<uint8_t>(OptionCode::third_party):
            if (!for_map || seen_third_party || length != kThirdPartyLength) {
                why = "bad THIRD_PARTY option";
                return ResultCode::malformed_option;
            }
            seen_third_party = true;
            r.third_party = address_at(in, data);
            break;
        case static_cast<uint8_t>(OptionCode::prefer_failure):
            if (!for_map || seen_prefer_failure || length != 0) {
                why = "bad PREFER_FAILURE option";
                return ResultCode::malformed_option;
            }
            seen_prefer_failure = true;
            r.prefer_failure = true;
            break;
        case static_cast<uint8_t>(OptionCode::filter):
            if (!for_map || length != kFilterLength) {
                why = "bad FILTER option";
                return ResultCode::malformed_option;
            }
            // Mandatory to process, and a forward here admits every remote peer: refusing it
            // is the honest answer (§13.3).
            why = "FILTER is not supported";
            return ResultCode::unsupp_option;
        default:
            if (code < kFirstOptionalOption) {
                why = "unknown mandatory option";
                return ResultCode::unsupp_option;
            }
            break; // optional to process: ignored
        }
    }
    return std::nullopt;
}

void put_address(Bytes &b, size_t at, const Address &a)
{
    std::copy(a.begin(), a.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
}

void put_header(Bytes &b, Opcode opcode, ResultCode result, uint32_t lifetime, uint32_t epoch)
{
    b[0] = kVersion;
    b[1] = static_cast<uint8_t>(kResponseBit | static_cast<uint8_t>(opcode));
    b[2] = 0;
    b[3] = static_cast<uint8_t>(result);
    put32(b, 4, lifetime);
    put32(b, 8, epoch);
    std::fill(b.begin() + 12, b.begin() + kHeaderSize, uint8_t{0});
}

} // namespace

Address ipv4_mapped(uint32_t host_order)
{
    Address a{};
    a[10] = a[11] = 0xff;
    a[12] = static_cast<uint8_t>(host_order >> 24);
    a[13] = static_cast<uint8_t>(host_order >> 16);
    a[14] = static_cast<uint8_t>(host_order >> 8);
    a[15] = static_cast<uint8_t>(host_order);
    return a;
}

std::optional<uint32_t> mapped_ipv4(const Address &a)
{
    static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.data(), prefix, sizeof(prefix)) != 0)
        return std::nullopt;
    return uint32_t{a[12]} << 24 | uint32_t{a[13]} << 16 | uint32_t{a[14]} << 8 | a[15];
}

bool unspecified(const Address &a)
{
    return a == Address{} || a == ipv4_mapped(0);
}

Decoded decode_request(ByteView in, const Address &source)
{
    Decoded d;
    if (in.size() < 2) {
        d.why = "truncated";
        return d;
    }
    if (in[1] & kResponseBit) {
        d.why = "response";
        return d;
    }
    if (in[0] != kVersion)
        return refuse(ResultCode::unsupp_version, "unsupported version");
    if (in.size() > kMaxMessage || in.size() % 4 != 0 || in.size() < kHeaderSize)
        return refuse(ResultCode::malformed_request, "bad length");
    uint8_t op = in[1];
    if (op != static_cast<uint8_t>(Opcode::announce) && op != static_cast<uint8_t>(Opcode::map))
        return refuse(ResultCode::unsupp_opcode, "unsupported opcode");
    Request &r = d.request;
    r.opcode = static_cast<Opcode>(op);
    r.lifetime = get32(in, 4);
    r.client = address_at(in, 8);
    if (r.client != source)
        return refuse(ResultCode::address_mismatch, "client address is not the source");
    size_t options = kHeaderSize;
    if (r.opcode == Opcode::map) {
        if (in.size() < kHeaderSize + kMapDataSize)
            return refuse(ResultCode::malformed_request, "MAP data cut short");
        // §11.1: with protocol 0 (every protocol) the internal port is ignored on reception;
        // the server reads it so.
        r.map = map_at(in, kHeaderSize);
        options += kMapDataSize;
    }
    const char *why = "";
    if (auto bad = read_options(in, options, r, why))
        return refuse(*bad, why);
    d.kind = Decoded::Kind::request;
    return d;
}

Bytes encode_response(const Request &request, ResultCode result, uint32_t lifetime, uint32_t epoch,
                      const std::optional<MapData> &assigned)
{
    Bytes b(kHeaderSize, 0);
    put_header(b, request.opcode, result, lifetime, epoch);
    if (request.map) {
        const MapData &m = assigned ? *assigned : *request.map;
        size_t at = b.size();
        b.resize(at + kMapDataSize, 0);
        std::copy(m.nonce.begin(), m.nonce.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
        b[at + 12] = m.protocol;
        put16(b, at + 16, m.internal_port);
        put16(b, at + 18, m.external_port);
        put_address(b, at + 20, m.external_addr);
    }
    if (request.third_party) {
        size_t at = b.size();
        b.resize(at + kOptionHeader + kThirdPartyLength, 0);
        b[at] = static_cast<uint8_t>(OptionCode::third_party);
        put16(b, at + 2, kThirdPartyLength);
        put_address(b, at + kOptionHeader, *request.third_party);
    }
    if (request.prefer_failure) {
        size_t at = b.size();
        b.resize(at + kOptionHeader, 0);
        b[at] = static_cast<uint8_t>(OptionCode::prefer_failure);
    }
    return b;
}

Bytes encode_error(ByteView datagram, ResultCode result, uint32_t lifetime, uint32_t epoch)
{
    Bytes b(datagram.begin(),
            datagram.begin() + static_cast<std::ptrdiff_t>(std::min(datagram.size(), kMaxMessage)));
    // Every PCP message is whole 32-bit words (§7), also the answer to one that was not.
    b.resize(std::max(kHeaderSize, (b.size() + 3) & ~size_t{3}), 0);
    uint8_t op = b[1] & static_cast<uint8_t>(~kResponseBit);
    put_header(b, static_cast<Opcode>(op), result, lifetime, epoch);
    return b;
}

Bytes encode_announce(uint32_t epoch)
{
    Bytes b(kHeaderSize, 0);
    put_header(b, Opcode::announce, ResultCode::success, 0, epoch);
    return b;
}

} // namespace xnat::pcp
