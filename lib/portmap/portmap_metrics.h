// xnat-portmapd's figures in the Prometheus text format, from its state file: the exporter
// serves them beside the instance's own, so one scrape shows both.
#pragma once

#include <cstdint>
#include <string>

#include "portmap/state_file.h"

namespace xnat::portmap {

// xnat_portmap_mappings{via, proto}: mappings held now, by the protocol that asked (natpmp,
// pcp) and the transport; xnat_portmap_requests_total{outcome}: requests since the daemon
// started, by outcome (every outcome appears, at 0 until one happens).
std::string render_portmap_metrics(const State &state);

} // namespace xnat::portmap
