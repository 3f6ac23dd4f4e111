#include "core/prometheus.h"

#include <algorithm>
#include <bitset>
#include <charconv>
#include <cmath>
#include <map>
#include <cassert>

#include "core/counter_info.h"
#include "core/format.h"
#include "core/net.h"
#include "xnat/counters.h"
#include "xnat/maps.h"

namespace xnat {
namespace {

// In protocol number order, the order xnat_snat_ports_in_use's series come in.
constexpr uint8_t kSnatProtos[] = {XNAT_PROTO_ICMP, XNAT_PROTO_TCP, XNAT_PROTO_UDP};

std::string proto_label(uint8_t proto)
{
    return std::string(proto_name(proto));
}

void per_state_family(PrometheusWriter &w, const std::vector<Connection> &connections)
{
    // Every state a flow of each protocol can be in gets a series, zero or not, so a state
    // that empties shows 0 instead of vanishing.
    std::vector<std::pair<std::string, std::string>> order;
    for (uint8_t st = XNAT_TCP_SYN_SENT; st < XNAT_TCP_STATE_COUNT; ++st)
        order.emplace_back("tcp", tcp_state_name(st));
    for (const char *p : {"udp", "icmp"})
        for (const char *st : {"UNREPLIED", "REPLIED"})
            order.emplace_back(p, st);
    std::map<std::pair<std::string, std::string>, uint64_t> counts;
    for (const auto &key : order)
        counts[key] = 0;
    for (const auto &c : connections) {
        std::pair<std::string, std::string> key{proto_label(c.original_key.proto), connection_state(c)};
        if (counts.find(key) == counts.end())
            order.push_back(key);
        ++counts[key];
    }
    w.family("xnat_connections", MetricType::gauge,
             "Connections by protocol and state (served with --per-state: each scrape reads the whole table).");
    for (const auto &key : order)
        w.sample({{"proto", key.first}, {"state", key.second}}, counts[key]);
}

void connection_families(PrometheusWriter &w, const MetricsSnapshot &s)
{
    w.family("xnat_connections_tracked", MetricType::gauge,
             "Connections in the table: flows created less flows ended, from the datapath's counters.");
    w.sample({}, live_connections(s.counters, s.max_connections));
    if (s.connections)
        per_state_family(w, *s.connections);
    w.family("xnat_connections_max", MetricType::gauge,
             "Size of the connection table in connections (limits.connections).");
    w.sample({}, uint64_t{s.max_connections});
}

void table_families(PrometheusWriter &w, const MetricsSnapshot &s)
{
    w.family("xnat_table_entries", MetricType::gauge,
             "Entries in a BPF map (the connection table holds two per connection).");
    for (const auto &t : s.tables)
        w.sample({{"table", t.name}}, t.entries);
    w.family("xnat_table_max_entries", MetricType::gauge, "Capacity of a BPF map in entries.");
    for (const auto &t : s.tables)
        w.sample({{"table", t.name}}, t.max_entries);
}

void snat_families(PrometheusWriter &w, const MetricsSnapshot &s)
{
    // Masquerade addresses get a series per protocol even when idle; other addresses (the
    // public address of a hairpinned forward) appear while they hold mappings.
    std::map<std::pair<uint32_t, uint8_t>, uint64_t> use;
    std::vector<uint32_t> pools;
    for (const auto &m : s.masquerade) {
        if (!m.to_source)
            continue;
        if (std::find(pools.begin(), pools.end(), *m.to_source) == pools.end())
            pools.push_back(*m.to_source);
        for (uint8_t p : kSnatProtos)
            use[{*m.to_source, p}] += 0;
    }
    for (const auto &u : s.snat)
        use[{u.address, u.proto}] += u.mappings;
    w.family("xnat_snat_ports_in_use", MetricType::gauge,
             "External ports (ICMP: echo identifiers) held by source-NAT mappings, by address and protocol.");
    for (const auto &[key, n] : use)
        w.sample({{"address", format_ipv4(key.first)}, {"proto", proto_label(key.second)}}, n);
    w.family("xnat_snat_port_pool_size", MetricType::gauge,
             "Ports a masquerade address can hand out per protocol: its rules' ranges less the gateway's own "
             "ephemeral ports.");
    // One series per protocol, as xnat_snat_ports_in_use has, so that the two divide without
    // ignoring(): each protocol has a pool of this size of its own.
    std::sort(pools.begin(), pools.end());
    for (uint32_t a : pools) {
        uint64_t size = masquerade_pool_size(s.masquerade, a, s.local_port_lo, s.local_port_hi);
        for (uint8_t p : kSnatProtos)
            w.sample({{"address", format_ipv4(a)}, {"proto", proto_label(p)}}, size);
    }
}

void rule_families(PrometheusWriter &w, const MetricsSnapshot &s)
{
    auto hits = [&](size_t slot) { return slot < s.rule_hits.size() ? s.rule_hits[slot] : uint64_t{0}; };
    w.family("xnat_forward_rule_flows_total", MetricType::counter,
             "Connections each port-forward rule created.");
    for (const auto &r : s.rules)
        w.sample({{"rule", std::to_string(r.id)},
                  {"proto", proto_label(static_cast<uint8_t>(r.fwd.proto))},
                  {"on", std::string(side_name(r.fwd.side))},
                  {"from", format_forward_from(r.fwd)}, // wan:PORT: one series whatever the address
                  {"to", format_endpoint(r.fwd.to)}},
                 hits(r.id));
    w.family("xnat_masquerade_rule_flows_total", MetricType::counter,
             "Connections each masquerade rule created.");
    for (size_t i = 0; i < s.masquerade.size(); ++i) {
        const auto &m = s.masquerade[i];
        // No to_source label: with follow-wan the address changes, and a label that changes
        // would restart the counter as a new series each time.
        w.sample({{"rule", std::to_string(i)}, {"source", format_prefix(m.source)}},
                 hits(XNAT_MAX_RULES + i));
    }
}

} // namespace

std::string escape_label_value(std::string_view value)
{
    std::string out;
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string escape_help(std::string_view help)
{
    std::string out;
    for (char c : help) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

void PrometheusWriter::family(MetricName name, MetricType type, std::string_view help)
{
    name_ = name.view();
    out_ += "# HELP " + name_ + " " + escape_help(help) + "\n";
    out_ += "# TYPE " + name_ + (type == MetricType::counter ? " counter\n" : " gauge\n");
}

void PrometheusWriter::sample_prefix(const Labels &labels)
{
    assert(!name_.empty() && "sample() before family()");
    out_ += name_;
    if (!labels.empty()) {
        out_ += "{";
        for (size_t i = 0; i < labels.size(); ++i) {
            out_ += i ? "," : "";
            out_ += labels[i].name.view();
            out_ += "=\"" + escape_label_value(labels[i].value) + "\"";
        }
        out_ += "}";
    }
    out_ += " ";
}

void PrometheusWriter::sample(const Labels &labels, uint64_t value)
{
    sample_prefix(labels);
    out_ += std::to_string(value) + "\n";
}

void PrometheusWriter::sample(const Labels &labels, double value)
{
    sample_prefix(labels);
    if (std::isnan(value)) {
        out_ += "NaN\n";
    } else if (std::isinf(value)) {
        out_ += value > 0 ? "+Inf\n" : "-Inf\n";
    } else {
        char buf[64];
        auto res = std::to_chars(buf, buf + sizeof(buf), value);
        out_.append(buf, res.ptr);
        out_ += "\n";
    }
}

uint32_t masquerade_pool_size(const std::vector<Masquerade> &rules, uint32_t address, uint16_t local_lo,
                              uint16_t local_hi)
{
    std::bitset<65536> ports;
    for (const auto &m : rules) {
        if (!m.to_source || *m.to_source != address)
            continue;
        for (uint32_t p = m.port_lo; p <= m.port_hi && m.port_hi >= m.port_lo; ++p)
            ports.set(p);
    }
    if (local_lo != 0 && local_lo <= local_hi)
        for (uint32_t p = local_lo; p <= local_hi; ++p)
            ports.reset(p);
    return static_cast<uint32_t>(ports.count());
}

std::string render_prometheus(const MetricsSnapshot &s)
{
    PrometheusWriter w;
    w.family("xnat_packets_total", MetricType::counter,
             "Packets by outcome: each packet an xnat program sees ends in exactly one (xnat-map stats "
             "explains each).");
    // Summing xnat_packets_total gives the packets seen only if outcomes and events are kept
    // apart: each packet ends in exactly one outcome, and any number of events.
    for (size_t i = 0; i < XNAT_CNT_COUNT; ++i)
        if (is_outcome(kCounterInfo[i].kind))
            w.sample({{"reason", kCounterInfo[i].name}}, s.counters[i]);
    w.family("xnat_events_total", MetricType::counter,
             "Events counted besides the packet outcomes: flows created, expired and ended, "
             "ICMP errors translated, XDP hand-overs.");
    for (size_t i = 0; i < XNAT_CNT_COUNT; ++i)
        if (!is_outcome(kCounterInfo[i].kind))
            w.sample({{"event", kCounterInfo[i].name}}, s.counters[i]);
    connection_families(w, s);
    table_families(w, s);
    snat_families(w, s);
    rule_families(w, s);
    w.family("xnat_sweeps_total", MetricType::counter,
             "Completed walks of the connection table by the expiry sweeper.");
    w.sample({}, uint64_t{s.sweep.sweeps});
    w.family("xnat_sweep_expired_total", MetricType::counter, "Connections the expiry sweeper ended.");
    w.sample({}, uint64_t{s.sweep.expired});
    w.family("xnat_sweep_last_duration_seconds", MetricType::gauge, "How long the sweeper's last walk took.");
    w.sample({}, static_cast<double>(s.sweep.last_duration_ns) / 1e9);
    return w.text();
}

} // namespace xnat
