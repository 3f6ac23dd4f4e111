// Selecting connections (xnat-map conns --proto/--addr/--port/--state) and printing them as
// conntrack-tools' `conntrack -L` does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/connection.h"
#include "core/result.h"
#include "xnat/config.h"

namespace xnat {

// Every criterion that is set must hold.
struct ConnFilter {
    std::optional<uint8_t> proto;
    std::optional<uint32_t> addr;     // host order; any address of either tuple
    std::optional<uint16_t> port;     // any TCP/UDP port of either tuple
    std::optional<std::string> state; // connection_state()'s name

    bool matches(const Connection &c) const;
};

// Empty strings leave a criterion unset. Errors name the option ("--proto: ...").
Result<ConnFilter> parse_conn_filter(std::string_view proto, std::string_view addr, std::string_view port,
                                     std::string_view state);

// Whether format_conntrack prints per-direction packets= and bytes=, as conntrack does only
// with net.netfilter.nf_conntrack_acct=1 (off by default, so `conntrack -L` usually omits them).
enum class ConntrackCounters { off, on };

// One line as `conntrack -L` prints it, e.g.
// "tcp      6 7439 ESTABLISHED src=... dst=... sport=... dport=... src=... dst=... sport=...
//  dport=... [ASSURED] mark=0 use=1", with "packets=N bytes=N" after each tuple when counters
// are on. [UNREPLIED] follows the original tuple of a flow that has not seen a reply; [ASSURED]
// marks one that has been assured (see conntrack_assured).
std::string format_conntrack(const Connection &c, const xnat_timeouts &t, uint64_t now_ns,
                             ConntrackCounters counters = ConntrackCounters::off);

// Whether the flow is [ASSURED]: the datapath's own bit (XNAT_CT_F_ASSURED), set when a TCP
// handshake completes or a UDP or ICMP flow sees a reply, and kept for good. A full table evicts
// only flows without it. (conntrack never marks ICMP; xnat does, since it never evicts an echo
// that was answered.)
bool conntrack_assured(const Connection &c);

} // namespace xnat
