// IPv4 addresses, endpoints ("ADDR[/PREFIX]:PORT[-PORT]") and protocol names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/result.h"

namespace xnat {

enum class Proto : uint8_t { tcp = 6, udp = 17 };
enum class Side : uint8_t { wan = 0, lan = 1 };

// An address block and a port range, both in host byte order.
struct Endpoint {
    uint32_t addr = 0;
    uint8_t prefix_len = 32;
    uint16_t port_lo = 0;
    uint16_t port_hi = 0;

    uint64_t hosts() const { return uint64_t{1} << (32 - prefix_len); }
    uint32_t ports() const { return uint32_t{port_hi} - port_lo + 1; }
    // Number of (address, port) pairs it names.
    uint64_t size() const { return hosts() * ports(); }
    bool operator==(const Endpoint &) const = default;
};

// An address block "A.B.C.D/LEN" (a bare address is /32), host byte order.
struct Prefix {
    uint32_t addr = 0;
    uint8_t len = 32;
    bool operator==(const Prefix &) const = default;
    bool contains(uint32_t a) const { return len == 0 || ((a ^ addr) >> (32 - len)) == 0; }
};

Result<uint32_t> parse_ipv4(std::string_view text);
Result<Prefix> parse_prefix(std::string_view text);
std::string format_prefix(const Prefix &p);
std::string format_ipv4(uint32_t addr_host_order);
// Formats a network-order address as it sits in a packet or a map.
std::string format_ipv4_be(uint32_t addr_network_order);

Result<Endpoint> parse_endpoint(std::string_view text);
// "PORT" or "PORT-PORT" (1-65535, not reversed): the port part of an endpoint.
Result<std::pair<uint16_t, uint16_t>> parse_ports(std::string_view text);
std::string format_endpoint(const Endpoint &ep);

// What kind of address no rule may use ("loopback", "multicast"...), or nullptr if usable.
const char *special_address_kind(uint32_t addr_host_order);

Result<Proto> parse_proto(std::string_view text);
std::string_view proto_name(uint8_t proto);

Result<Side> parse_side(std::string_view text);
std::string_view side_name(Side side);

} // namespace xnat
