#include "core/format.h"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string_view>

#include "core/counter_info.h"
#include "core/net.h"
#include "xnat/maps.h"

namespace xnat {
namespace {

std::string tuple_text(const xnat_ct_key &k)
{
    return "src=" + format_ipv4_be(k.saddr) + " dst=" + format_ipv4_be(k.daddr) +
           " sport=" + std::to_string(ntohs(k.sport)) + " dport=" + std::to_string(ntohs(k.dport));
}

nlohmann::json tuple_json(const xnat_ct_key &k, const xnat_ct_entry &e)
{
    return {{"src", format_ipv4_be(k.saddr)},  {"dst", format_ipv4_be(k.daddr)},
            {"sport", ntohs(k.sport)},         {"dport", ntohs(k.dport)},
            {"packets", e.packets},            {"bytes", e.bytes}};
}

} // namespace

std::string tcp_state_name(uint8_t state)
{
    static const char *names[XNAT_TCP_STATE_COUNT] = {"NONE",       "SYN_SENT",   "SYN_RECV",
                                                      "ESTABLISHED", "FIN_WAIT",  "CLOSE_WAIT",
                                                      "TIME_WAIT",  "CLOSE"};
    return state < XNAT_TCP_STATE_COUNT ? names[state] : "UNKNOWN";
}

std::string connection_state(const Connection &c)
{
    if (c.original_key.proto == XNAT_PROTO_TCP)
        return tcp_state_name(c.original.state);
    return (c.original.flags & XNAT_CT_F_SEEN_REPLY) ? "REPLIED" : "UNREPLIED";
}

uint64_t seconds_left(const Connection &c, const xnat_timeouts &t, uint64_t now_ns)
{
    // The datapath's arithmetic (bpf/conntrack.h ct_time_left), in its ticks.
    auto now = static_cast<uint32_t>(now_ns >> XNAT_TICK_SHIFT);
    auto idle_of = [now](uint32_t last) {
        auto idle = static_cast<int32_t>(now - last);
        return idle > 0 ? static_cast<uint64_t>(idle) : 0;
    };
    uint64_t idle = std::min(idle_of(c.original.last_seen), idle_of(c.reply.last_seen));
    uint32_t timeout_s = xnat_timeout_s(&t, c.original_key.proto, c.original.state, c.original.flags);
    uint64_t timeout = xnat_secs_to_ticks(timeout_s);
    if (idle >= timeout)
        return 0;
    // Ticks are 1.07 s: a flow's expiry may come up to a tick after its timeout, never before.
    // Shown no higher than the configured timeout.
    uint64_t left_ns = (timeout - idle) << XNAT_TICK_SHIFT;
    return std::min<uint64_t>(timeout_s, (left_ns + 999999999ull) / 1000000000ull);
}

std::string format_connection(const Connection &c, const xnat_timeouts &t, uint64_t now_ns)
{
    std::string line = std::string(proto_name(c.original_key.proto)) + " " + connection_state(c) + " " +
                       tuple_text(c.original_key) + " " + tuple_text(c.original.peer);
    line += " timeout=" + std::to_string(seconds_left(c, t, now_ns));
    line += " packets=" + std::to_string(c.original.packets) + " bytes=" + std::to_string(c.original.bytes);
    line += " reply_packets=" + std::to_string(c.reply.packets) +
            " reply_bytes=" + std::to_string(c.reply.bytes);
    if (c.reply_missing)
        line += " [REPLY HALF MISSING]";
    return line;
}

nlohmann::json connection_to_json(const Connection &c, const xnat_timeouts &t, uint64_t now_ns)
{
    return {{"proto", std::string(proto_name(c.original_key.proto))},
            {"state", connection_state(c)},
            {"timeout", seconds_left(c, t, now_ns)},
            {"original", tuple_json(c.original_key, c.original)},
            {"reply", tuple_json(c.original.peer, c.reply)}};
}

namespace {

// A JSON string as nlohmann writes it; what reaches here is ASCII (names, addresses).
void append_json_string(std::string &out, std::string_view s)
{
    out += '"';
    for (char ch : s) {
        auto u = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (u < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof(esc), "\\u%04x", u);
            out += esc;
        } else {
            out += ch;
        }
    }
    out += '"';
}

void append_number(std::string &out, uint64_t v)
{
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, r.ptr);
}

// A member on its own line: indent, "name": value, and a comma unless it is the last.
template <typename F> void append_member(std::string &out, int indent, std::string_view name, F value, bool last)
{
    out.append(static_cast<size_t>(indent), ' ');
    append_json_string(out, name);
    out += ": ";
    value();
    out += last ? "\n" : ",\n";
}

// tuple_json's members, in nlohmann's order (object keys sorted).
void append_tuple_json(std::string &out, int indent, const xnat_ct_key &k, const xnat_ct_entry &e)
{
    out += "{\n";
    append_member(out, indent + 2, "bytes", [&] { append_number(out, e.bytes); }, false);
    append_member(out, indent + 2, "dport", [&] { append_number(out, ntohs(k.dport)); }, false);
    append_member(out, indent + 2, "dst", [&] { append_json_string(out, format_ipv4_be(k.daddr)); }, false);
    append_member(out, indent + 2, "packets", [&] { append_number(out, e.packets); }, false);
    append_member(out, indent + 2, "sport", [&] { append_number(out, ntohs(k.sport)); }, false);
    append_member(out, indent + 2, "src", [&] { append_json_string(out, format_ipv4_be(k.saddr)); }, true);
    out.append(static_cast<size_t>(indent), ' ');
    out += '}';
}

} // namespace

void append_connection_json(std::string &out, const Connection &c, const xnat_timeouts &t, uint64_t now_ns)
{
    constexpr int kIndent = 2; // an array element's
    out.append(kIndent, ' ');
    out += "{\n";
    append_member(out, kIndent + 2, "original",
                  [&] { append_tuple_json(out, kIndent + 2, c.original_key, c.original); }, false);
    append_member(out, kIndent + 2, "proto", [&] { append_json_string(out, proto_name(c.original_key.proto)); }, false);
    append_member(out, kIndent + 2, "reply", [&] { append_tuple_json(out, kIndent + 2, c.original.peer, c.reply); },
                  false);
    append_member(out, kIndent + 2, "state", [&] { append_json_string(out, connection_state(c)); }, false);
    append_member(out, kIndent + 2, "timeout", [&] { append_number(out, seconds_left(c, t, now_ns)); }, true);
    out.append(kIndent, ' ');
    out += '}';
}

std::string format_stats(const StatsView &s)
{
    std::string out;
    char line[160];
    std::snprintf(line, sizeof(line), "%-22s %12zu   of %u\n", "connections", s.connections,
                  s.max_connections);
    out += line;
    for (size_t i = 0; i < XNAT_CNT_COUNT; ++i) {
        std::snprintf(line, sizeof(line), "%-22s %12llu   %s\n", kCounterInfo[i].name,
                      static_cast<unsigned long long>(s.counters[i]), kCounterInfo[i].help);
        out += line;
    }
    std::snprintf(line, sizeof(line), "%-22s %12llu   walks of the table, %llu flows expired; last: %llu entries in %.1f ms\n",
                  "sweeps", static_cast<unsigned long long>(s.sweep.sweeps),
                  static_cast<unsigned long long>(s.sweep.expired),
                  static_cast<unsigned long long>(s.sweep.last_entries),
                  static_cast<double>(s.sweep.last_duration_ns) / 1e6);
    out += line;
    return out;
}

nlohmann::json stats_to_json(const StatsView &s)
{
    nlohmann::json counters = nlohmann::json::object();
    for (size_t i = 0; i < XNAT_CNT_COUNT; ++i)
        counters[kCounterInfo[i].name] = s.counters[i];
    nlohmann::json sweep = {{"sweeps", s.sweep.sweeps},
                            {"expired", s.sweep.expired},
                            {"last_entries", s.sweep.last_entries},
                            {"last_duration_ns", s.sweep.last_duration_ns}};
    return {{"connections", s.connections}, {"max_connections", s.max_connections}, {"counters", counters},
            {"sweeper", sweep}};
}

std::string format_rules(const std::vector<StoredRule> &rules, const std::vector<Masquerade> &masq,
                         const std::vector<uint64_t> &hits, const std::map<uint16_t, std::string> &mapped_notes)
{
    auto origin = [&](const StoredRule &r) {
        if (!r.fwd.mapped)
            return std::string();
        auto note = mapped_notes.find(r.id);
        return " (mapped: " + (note == mapped_notes.end() ? std::string("by xnat-portmapd") : note->second) + ")";
    };
    // Appended, not "\t" + to_string(...): GCC 12 at -O3 takes that form for an overlapping
    // copy (a -Wrestrict false positive).
    auto hit = [&](size_t slot) {
        std::string h;
        if (slot < hits.size())
            h.append("\t").append(std::to_string(hits[slot])).append(" flows");
        return h;
    };
    std::string out;
    for (const auto &r : rules)
        out += std::to_string(r.id) + "\t" + describe(r.fwd) +
               (r.fwd.parked() ? " (parked: the WAN has no IPv4 address)" : "") + origin(r) + hit(r.id) + "\n";
    for (size_t i = 0; i < masq.size(); ++i)
        out += "-\t" + describe(masq[i]) + hit(XNAT_MAX_RULES + i) + "\n";
    return out;
}

nlohmann::json rules_to_json(const std::vector<StoredRule> &rules, const std::vector<Masquerade> &masq)
{
    nlohmann::json list = nlohmann::json::array();
    for (const auto &r : rules)
        if (!r.fwd.mapped)
            list.push_back(port_forward_to_json(r.fwd));
    nlohmann::json out = {{"port_forwards", list}};
    if (!masq.empty()) {
        nlohmann::json m = nlohmann::json::array();
        for (const auto &rule : masq)
            m.push_back(masquerade_to_json(rule));
        out["masquerade"] = m;
    }
    return out;
}

std::string format_hosts(const std::vector<HostUsage> &hosts, uint32_t quota_connections, uint32_t quota_ports)
{
    auto quota = [](uint32_t q) { return q ? std::to_string(q) : std::string("none"); };
    char line[96];
    std::snprintf(line, sizeof(line), "%-16s %12s %8s\n", "host", "connections", "ports");
    std::string out = line;
    for (const HostUsage &h : hosts) {
        std::snprintf(line, sizeof(line), "%-16s %12u %8u\n", format_ipv4(h.addr).c_str(), h.connections, h.ports);
        out += line;
    }
    std::snprintf(line, sizeof(line), "%-16s %12s %8s\n", "quota", quota(quota_connections).c_str(),
                  quota(quota_ports).c_str());
    return out + line;
}

nlohmann::json hosts_to_json(const std::vector<HostUsage> &hosts, uint32_t quota_connections, uint32_t quota_ports)
{
    nlohmann::json list = nlohmann::json::array();
    for (const HostUsage &h : hosts)
        list.push_back({{"host", format_ipv4(h.addr)}, {"connections", h.connections}, {"ports", h.ports}});
    // null: no quota.
    auto quota = [](uint32_t q) { return q ? nlohmann::json(q) : nlohmann::json(nullptr); };
    return {{"hosts", list}, {"quota", {{"connections", quota(quota_connections)}, {"ports", quota(quota_ports)}}}};
}

} // namespace xnat
