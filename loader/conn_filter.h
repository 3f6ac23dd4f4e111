// Selecting connections (xnat-map conns --proto/--addr/--port/--state) and printing them as
// conntrack-tools' `conntrack -L` does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "conntrack_table.h"
#include "result.h"
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

// One line as `conntrack -L` prints it with accounting on, e.g.
// "tcp      6 7439 ESTABLISHED src=... dst=... sport=... dport=... packets=N bytes=N
//  src=... dst=... sport=... dport=... packets=N bytes=N [ASSURED] mark=0 use=1".
// [UNREPLIED] follows the original tuple of a flow that has not seen a reply; [ASSURED] marks
// one that has (TCP: once established).
std::string format_conntrack(const Connection &c, const xnat_timeouts &t, uint64_t now_ns);

} // namespace xnat
