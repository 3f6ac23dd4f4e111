// Reads what the Prometheus metrics are made from out of a running instance's maps.
#pragma once

#include "instance_maps.h"
#include "prometheus.h"
#include "result.h"

namespace xnat {

Result<MetricsSnapshot> collect_metrics(const InstanceMaps &maps);

} // namespace xnat
