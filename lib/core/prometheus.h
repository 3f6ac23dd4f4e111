// Metrics of an instance in the Prometheus text exposition format (version 0.0.4), as
// `xnat-map stats --prometheus` prints them and xnat-exporter serves them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/connection.h"
#include "core/counter_values.h"
#include "core/masquerade.h"
#include "core/stored_rule.h"
#include "xnat/sweep.h"

namespace xnat {

constexpr bool prometheus_name_char(char c, bool first, bool colon)
{
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
    return alpha || (!first && c >= '0' && c <= '9');
}

constexpr bool valid_metric_name(std::string_view name)
{
    if (name.empty())
        return false;
    for (size_t i = 0; i < name.size(); ++i)
        if (!prometheus_name_char(name[i], i == 0, true))
            return false;
    return true;
}

constexpr bool valid_label_name(std::string_view name)
{
    if (name.empty() || name.substr(0, 2) == "__")
        return false;
    for (size_t i = 0; i < name.size(); ++i)
        if (!prometheus_name_char(name[i], i == 0, false))
            return false;
    return true;
}

// Metric and label names are checked when the program is compiled, not when it runs: the
// constructors are consteval, so a bad name literal does not build (the throw cannot be
// evaluated in a constant expression) and no name can come from run-time data. The writer
// therefore has no failure path, which matters because it runs in the exporter's HTTP worker
// threads, where an escaping exception would end the process.
class MetricName
{
  public:
    consteval MetricName(const char *name) : name_(name)
    {
        if (!valid_metric_name(name_))
            throw "not a Prometheus metric name";
    }
    constexpr std::string_view view() const
    {
        return name_;
    }

  private:
    std::string_view name_;
};

class LabelName
{
  public:
    consteval LabelName(const char *name) : name_(name)
    {
        if (!valid_label_name(name_))
            throw "not a Prometheus label name";
    }
    constexpr std::string_view view() const
    {
        return name_;
    }

  private:
    std::string_view name_;
};

enum class MetricType { counter, gauge };

// Label values are any text: they are escaped.
struct Label {
    LabelName name;
    std::string value;
};

// Writes families of samples. A family's HELP and TYPE lines come once, before its samples,
// as the format requires.
class PrometheusWriter
{
  public:
    using Labels = std::vector<Label>;
    void family(MetricName name, MetricType type, std::string_view help);
    // A sample of the family opened last.
    void sample(const Labels &labels, uint64_t value);
    void sample(const Labels &labels, double value);
    const std::string &text() const
    {
        return out_;
    }

  private:
    void sample_prefix(const Labels &labels);
    std::string name_;
    std::string out_;
};

// Backslash, double quote and line feed, escaped as label values need.
std::string escape_label_value(std::string_view value);
// Backslash and line feed, escaped as HELP text needs.
std::string escape_help(std::string_view help);

// How many ports a masquerade address can hand out: the union of the port ranges of the rules
// that translate to it, less the gateway's own ephemeral ports (as bpf/snat.h snat_pool_make).
uint32_t masquerade_pool_size(const std::vector<Masquerade> &rules, uint32_t address, uint16_t local_lo,
                              uint16_t local_hi);

// Source-NAT mappings in use on one external address and protocol.
struct SnatUse {
    uint32_t address = 0; // host order
    uint8_t proto = 0;
    uint64_t mappings = 0;
};

struct TableFill {
    std::string name; // the map's name
    uint64_t entries = 0;
    uint64_t max_entries = 0;
};

// Everything the metrics are made from, read from the instance's maps.
struct MetricsSnapshot {
    CounterValues counters{};       // also the connection count (live_connections): O(1)
    // Every connection, only for the per-state series (--per-state): reading them walks the
    // whole table, O(connections), so a plain scrape leaves them out.
    std::optional<std::vector<Connection>> connections;
    uint32_t max_connections = 0;
    std::vector<TableFill> tables;
    std::vector<SnatUse> snat;
    std::vector<StoredRule> rules;
    std::vector<Masquerade> masquerade;
    std::vector<uint64_t> rule_hits; // read_rule_hits' slots
    uint16_t local_port_lo = 0;      // the gateway's ip_local_port_range, left out of pools
    uint16_t local_port_hi = 0;
    xnat_sweep_stats sweep{};
};

std::string render_prometheus(const MetricsSnapshot &s);

} // namespace xnat
