// Metrics of an instance in the Prometheus text exposition format (version 0.0.4), as
// `xnat-map stats --prometheus` prints them and xnat-exporter serves them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conntrack_table.h"
#include "masquerade.h"
#include "rule_store.h"
#include "xnat/sweep.h"

namespace xnat {

// Writes families of samples. A family's HELP and TYPE lines come once, before its samples,
// as the format requires; names and label names are checked, label values escaped.
class PrometheusWriter
{
  public:
    using Labels = std::vector<std::pair<std::string, std::string>>;
    // type: "counter" or "gauge".
    void family(std::string_view name, std::string_view type, std::string_view help);
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

bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);
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
    CounterValues counters{};
    std::vector<Connection> connections;
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
