// The xnat configuration: its C++ form, JSON parsing with JSON-path errors, and validation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/masquerade.h"
#include "core/net.h"
#include "core/port_mapping.h"
#include "core/result.h"
#include "xnat/config.h"
#include "xnat/maps.h"

namespace xnat {

struct PortForward {
    Proto proto = Proto::tcp;
    Side side = Side::wan; // the interface whose ingress the rule applies on
    Endpoint from;
    Endpoint to;           // normalised: same size as from
    // "from": "wan:PORT": the WAN interface's address, whatever it is now. The datapath's table
    // is keyed by address, so from.addr holds the address it is installed on; 0 while the WAN
    // has none (parked: not in the table), and always 0 in a parsed config.
    bool from_wan = false;
    // Made by xnat-portmapd for a host's request (never in a parsed config).
    bool mapped = false;
    bool operator==(const PortForward &) const = default;
    bool parked() const { return from_wan && from.addr == 0; }
};

// A forward's `from` as written: an endpoint, or "wan:PORT[-PORT]" (wan set, ep.addr 0).
struct ForwardFrom {
    Endpoint ep;
    bool wan = false;
};
Result<ForwardFrom> parse_forward_from(std::string_view text);
// "wan:PORT[-PORT]" for a forward on the WAN address, else its endpoint.
std::string format_forward_from(const PortForward &fwd);

struct Timeouts {
    uint32_t tcp_established = XNAT_DEFAULT_TCP_ESTABLISHED_S;
    uint32_t tcp_transitory = XNAT_DEFAULT_TCP_TRANSITORY_S;
    uint32_t tcp_close = XNAT_DEFAULT_TCP_CLOSE_S;
    uint32_t udp = XNAT_DEFAULT_UDP_S;
    uint32_t icmp = XNAT_DEFAULT_ICMP_S;
    uint32_t tcp_syn_sent = XNAT_DEFAULT_TCP_SYN_SENT_S;
    uint32_t tcp_syn_recv = XNAT_DEFAULT_TCP_SYN_RECV_S;
    uint32_t udp_unreplied = XNAT_DEFAULT_UDP_UNREPLIED_S;
    bool operator==(const Timeouts &) const = default;
};

// The datapath's form of the timeouts (include/xnat/config.h).
xnat_timeouts to_kernel(const Timeouts &t);

struct Limits {
    uint32_t connections = XNAT_DEFAULT_MAX_CONNECTIONS;
    // Per internal host, over the flows it opens through source NAT; 0: no limit.
    uint32_t host_connections = 0;
    uint32_t host_ports = 0;
    bool operator==(const Limits &) const = default;
};

// ICMP administratively prohibited for new flows refused for lack of room (RFC 5508 REQ-8).
// Off on the WAN side by default: a flood's spoofed sources would receive the answers.
struct IcmpRefusals {
    bool lan = true;
    bool wan = false;
    uint32_t per_second = XNAT_DEFAULT_REFUSAL_ICMP_RATE;
    bool operator==(const IcmpRefusals &) const = default;
};

struct Config {
    std::vector<PortForward> port_forwards;
    std::vector<Masquerade> masquerade;
    Timeouts timeouts;
    Limits limits;
    IcmpRefusals icmp_refusals;
    // TCP MSS clamping of crossing SYNs: 0 off, XNAT_MSS_CLAMP_PMTU for the interfaces' MTU
    // minus 40, else the number.
    uint16_t mss_clamp = 0;
    // What xnat-portmapd may hand out; the loader only checks it.
    std::optional<PortMappingConfig> port_mapping;

    // Room for source-NAT mappings: one per flow at worst with masquerade; without it they
    // serve hairpinned flows only, and the preallocated tables stay small.
    uint32_t mapping_capacity() const
    {
        return (masquerade.empty() ? std::min(limits.connections, XNAT_HAIRPIN_ONLY_MAPPINGS)
                                   : limits.connections) +
               XNAT_SNAT_HEADROOM;
    }
};

// Parses and validates a whole config. Errors name the JSON path: "port_forwards[1].from: ...".
Result<Config> parse_config(std::string_view json_text);
Result<Config> load_config_file(const std::string &path);

// How errors name the four parts of a forward: JSON keys in a config, arguments on a command line.
struct ForwardFieldNames {
    std::string proto = "proto";
    std::string from = "from";
    std::string to = "to";
    std::string on = "on";
};

// Builds and validates one forward from its parts, as a config or xnat-map add gives them.
Result<PortForward> make_port_forward(std::string_view proto, std::string_view from,
                                      std::string_view to, std::string_view side,
                                      const ForwardFieldNames &names = {});

// The forward in the config's JSON form: {"proto", "on", "from", "to"}.
nlohmann::json port_forward_to_json(const PortForward &fwd);
std::string describe(const PortForward &fwd);

} // namespace xnat
