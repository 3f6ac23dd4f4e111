// What xnat-map prints: connections in conntrack's form, counters and rules, as text or JSON.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/connection.h"
#include "core/counter_values.h"
#include "core/host_usage.h"
#include "core/stored_rule.h"
#include "xnat/config.h"
#include "xnat/sweep.h"

namespace xnat {

std::string tcp_state_name(uint8_t state);
// TCP state, or UNREPLIED/REPLIED for flows without one.
std::string connection_state(const Connection &c);
// Seconds until the flow expires if it stays idle.
uint64_t seconds_left(const Connection &c, const xnat_timeouts &t, uint64_t now_ns);

// "tcp ESTABLISHED src=... dst=... sport=... dport=... src=... dst=... sport=... dport=...
//  timeout=N packets=N bytes=N reply_packets=N reply_bytes=N"
std::string format_connection(const Connection &c, const xnat_timeouts &t, uint64_t now_ns);
nlohmann::json connection_to_json(const Connection &c, const xnat_timeouts &t, uint64_t now_ns);
// The same, written straight as text: the bytes nlohmann's dump(2) gives for the connection as
// an element of an array (indented one level, no separator), at a tenth of its cost, which is
// most of `xnat-map conns --json` with a big table. The caller writes "[\n", the elements
// joined by ",\n", then "\n]" ("[]" for none).
void append_connection_json(std::string &out, const Connection &c, const xnat_timeouts &t, uint64_t now_ns);

struct StatsView {
    CounterValues counters{};
    size_t connections = 0;
    uint32_t max_connections = 0;
    xnat_sweep_stats sweep{}; // all zero when the instance has no sweeper pinned
};
std::string format_stats(const StatsView &s);
nlohmann::json stats_to_json(const StatsView &s);

// Per-host use against the quotas (0: no quota), one line per host:
//   "host          connections  ports" ... "quota            2000    500"
std::string format_hosts(const std::vector<HostUsage> &hosts, uint32_t quota_connections, uint32_t quota_ports);
nlohmann::json hosts_to_json(const std::vector<HostUsage> &hosts, uint32_t quota_connections, uint32_t quota_ports);

// Forwards with their ids, then masquerade rules ("masquerade ..."), each with the flows it
// created when `hits` (read_rule_hits) is given. A mapped forward (xnat-portmapd's) says so,
// with what `mapped_notes` holds for its id: who asked and when it expires.
std::string format_rules(const std::vector<StoredRule> &rules, const std::vector<Masquerade> &masq = {},
                         const std::vector<uint64_t> &hits = {},
                         const std::map<uint16_t, std::string> &mapped_notes = {});
// The config's own shape, so a listing can be saved and loaded again: without mapped forwards,
// which belong to xnat-portmapd and to the hosts that asked for them.
nlohmann::json rules_to_json(const std::vector<StoredRule> &rules, const std::vector<Masquerade> &masq = {});

} // namespace xnat
