// NAT-PMP (RFC 6886, with its verified erratum 3618) on the wire: requests as a server receives
// them, responses as it sends them. Pure: what the server decides is not here.
#pragma once

#include <cstdint>

#include "portmap/wire_bytes.h"

namespace xnat::natpmp {

using portmap::Bytes;
using portmap::ByteView;

inline constexpr uint8_t kVersion = 0;
// Responses carry the request's opcode with this bit set (§3).
inline constexpr uint8_t kResponseBit = 0x80;
// RFC 6886 §3.3: what a client asks for when it has no better idea.
inline constexpr uint32_t kRecommendedLifetime = 7200;

enum class Opcode : uint8_t { external_address = 0, map_udp = 1, map_tcp = 2 };

enum class ResultCode : uint16_t {
    success = 0,
    unsupported_version = 1,
    not_authorized = 2,  // refused by policy
    network_failure = 3, // e.g. no external address yet
    out_of_resources = 4,
    unsupported_opcode = 5,
};

// A mapping request (§3.3). internal_port 0 with lifetime 0 asks to delete every mapping of the
// client for that protocol.
struct MapRequest {
    Opcode opcode = Opcode::map_udp;
    uint16_t internal_port = 0;
    uint16_t suggested_port = 0;
    uint32_t lifetime = 0;
    bool operator==(const MapRequest &) const = default;
};

// What to do with one datagram that arrived on the server port.
struct Decoded {
    enum class Kind {
        external_address, // answer with encode_external_address
        map,              // decide, then answer with encode_map_response
        reply_error,      // send `reply` as it is: the protocol's own error answer
        drop,             // no answer: a response, or too short to be a request
    };
    Kind kind = Kind::drop;
    MapRequest map;       // Kind::map
    ResultCode error{};   // Kind::reply_error
    Bytes reply;          // Kind::reply_error
    const char *why = ""; // Kind::drop and reply_error: a reason for counters and logs
};

// Decodes a request whose first byte is 0 (NAT-PMP's version; PCP's is 2). The epoch goes into
// the error answers that carry one.
Decoded decode_request(ByteView datagram, uint32_t epoch);

// §3.2: the external address (host order) the NAT uses.
Bytes encode_external_address(ResultCode result, uint32_t epoch, uint32_t external_addr);
// §3.3: the answer to a mapping request; a refusal carries the requested internal port, with
// external port and lifetime 0.
Bytes encode_map_response(Opcode opcode, ResultCode result, uint32_t epoch, uint16_t internal_port,
                          uint16_t external_port, uint32_t lifetime);

} // namespace xnat::natpmp
