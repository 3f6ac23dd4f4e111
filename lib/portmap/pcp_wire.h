// PCP (RFC 6887) on the wire: requests as a server receives them, responses as it sends them.
// Pure: the checks here are the ones the RFC puts on the format (§8.3, §11.1, §13); what the
// server allows is decided elsewhere.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "portmap/wire_bytes.h"

namespace xnat::pcp {

using portmap::Bytes;
using portmap::ByteView;

inline constexpr uint8_t kVersion = 2;
inline constexpr uint8_t kResponseBit = 0x80;
inline constexpr size_t kMaxMessage = 1100;
inline constexpr size_t kHeaderSize = 24;
inline constexpr size_t kMapDataSize = 36;
inline constexpr size_t kNonceSize = 12;

enum class Opcode : uint8_t { announce = 0, map = 1, peer = 2 };

enum class ResultCode : uint8_t {
    success = 0,
    unsupp_version = 1,
    not_authorized = 2,
    malformed_request = 3,
    unsupp_opcode = 4,
    unsupp_option = 5,
    malformed_option = 6,
    network_failure = 7,
    no_resources = 8,
    unsupp_protocol = 9,
    user_ex_quota = 10,
    cannot_provide_external = 11,
    address_mismatch = 12,
    excessive_remote_peers = 13,
};

enum class OptionCode : uint8_t { third_party = 1, prefer_failure = 2, filter = 3 };

// An address as PCP carries every address: IPv6, or IPv4 mapped (::ffff:a.b.c.d).
using Address = std::array<uint8_t, 16>;
Address ipv4_mapped(uint32_t host_order);
// The IPv4 address of a mapped one (host order); nullopt for any other.
std::optional<uint32_t> mapped_ipv4(const Address &a);
// The all-zero address and ::ffff:0.0.0.0 both mean "no preference" in a MAP request (§11.1).
bool unspecified(const Address &a);

struct MapData {
    std::array<uint8_t, kNonceSize> nonce{};
    uint8_t protocol = 0; // IANA number; 0 is "all protocols"
    uint16_t internal_port = 0;
    uint16_t external_port = 0; // suggested in a request, assigned in a response
    Address external_addr{};    // the same
    bool operator==(const MapData &) const = default;
};

struct Request {
    Opcode opcode = Opcode::announce;
    uint32_t lifetime = 0;
    Address client{};
    std::optional<MapData> map; // Opcode::map
    std::optional<Address> third_party;
    bool prefer_failure = false;
};

struct Decoded {
    enum class Kind {
        request,     // a well-formed ANNOUNCE or MAP: decide, then encode_response
        reply_error, // send encode_error(datagram, error, ...)
        drop,        // no answer (§8.3: shorter than 2 octets, or a response)
    };
    Kind kind = Kind::drop;
    Request request;
    ResultCode error{};
    const char *why = ""; // reply_error and drop: a reason for counters and logs
};

// Decodes a datagram whose first byte is not 0 (0 is NAT-PMP). `source` is the address it came
// from: a request naming another client address is an ADDRESS_MISMATCH (§8.3).
Decoded decode_request(ByteView datagram, const Address &source);

// A success or a decided refusal of a well-formed request: the request's header fields copied,
// its MAP data with the assigned port and address (or, refused, as requested), and no options
// but the ones the server honoured (PREFER_FAILURE, copied back as §13.2 asks).
Bytes encode_response(const Request &request, ResultCode result, uint32_t lifetime, uint32_t epoch,
                      const std::optional<MapData> &assigned = std::nullopt);
// The answer to a request that was refused: the request itself, cut to 1100 octets and padded
// to whole words and a whole header, with the response bit, result, lifetime and epoch set
// (§7.2, §8.3).
// An UNSUPP_VERSION answer carries version 2, the one this server speaks.
Bytes encode_error(ByteView datagram, ResultCode result, uint32_t lifetime, uint32_t epoch);
// The unsolicited ANNOUNCE a server multicasts after it starts or loses its state (§14.1.3).
Bytes encode_announce(uint32_t epoch);

} // namespace xnat::pcp
