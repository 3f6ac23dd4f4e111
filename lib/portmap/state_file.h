// The mappings xnat-portmapd holds, as it saves them after every change: a restarted daemon reads
// them back to adopt or remove the forwards it left, and xnat-map shows where a forward came from
// and when it expires. Expiry is in CLOCK_BOOTTIME seconds, which runs on across a daemon's
// restart and starts again with the machine, when the instance and /run are gone too.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "portmap/mapping_table.h"

namespace xnat::portmap {

// What the daemon holds and has done, as the file keeps it.
struct State {
    std::vector<Mapping> mappings;
    // Requests by outcome (outcome_name, and the daemon's own "rate_limited" and "not_served")
    // since the daemon started: the exporter's metrics.
    std::map<std::string, uint64_t> requests;
    bool operator==(const State &) const = default;
};

// {"version": 1, "mappings": [{"proto": "tcp", "host": "10.0.0.12", "internal_port": 8080,
//   "external_port": 30005, "expires": 123456, "via": "pcp", "nonce": "a0a1...ab"}],
//  "requests": {"granted": 3, "quota": 1}}
// ("nonce", 24 lowercase hex digits, only for a mapping a PCP client holds)
std::string state_to_json(const State &state);
// Strict: an unknown key, a bad value or a second mapping with the same identity or external port
// is an error that names its JSON path, and nothing is taken from the file.
Result<State> parse_state(std::string_view text);

// Where the daemon of the instance pinned at `pin_dir` keeps its state, unless told otherwise:
// /run/xnat/portmapd.json for the default instance, a name made from the pin dir for others.
std::string default_state_path(const std::string &pin_dir);

const char *protocol_name(Protocol p);
const char *via_name(Via v);

} // namespace xnat::portmap
