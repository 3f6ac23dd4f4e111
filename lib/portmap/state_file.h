// The mappings xnat-portmapd holds, as it saves them after every change: a restarted daemon reads
// them back to adopt or remove the forwards it left, and xnat-map shows where a forward came from
// and when it expires. Expiry is in CLOCK_BOOTTIME seconds, which runs on across a daemon's
// restart and starts again with the machine, when the instance and /run are gone too.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "portmap/mapping_table.h"

namespace xnat::portmap {

// {"version": 1, "mappings": [{"proto": "tcp", "host": "10.0.0.12", "internal_port": 8080,
//   "external_port": 30005, "expires": 123456, "via": "pcp", "nonce": "a0a1...ab"}]}
// ("nonce", 24 lowercase hex digits, only for a mapping a PCP client holds)
std::string state_to_json(const std::vector<Mapping> &mappings);
// Strict: an unknown key, a bad value or a second mapping with the same identity or external port
// is an error that names its JSON path, and nothing is taken from the file.
Result<std::vector<Mapping>> parse_state(std::string_view text);

const char *protocol_name(Protocol p);
const char *via_name(Via v);

} // namespace xnat::portmap
