// Reads what the Prometheus metrics are made from out of a running instance's maps.
#pragma once

#include "core/prometheus.h"
#include "core/result.h"
#include "kernel/instance_maps.h"

namespace xnat {

struct MetricsOptions {
    // The per-state series (xnat_connections{proto,state}) and an exact count of the connection
    // table's entries need a read of the whole table, O(connections); without them a scrape
    // costs the same at any table size (the connection count comes from the counters).
    bool per_state = false;
};

Result<MetricsSnapshot> collect_metrics(const InstanceMaps &maps, MetricsOptions options = {});

} // namespace xnat
