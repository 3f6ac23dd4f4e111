#include "portmap/portmap_metrics.h"

#include <map>
#include <utility>

#include "core/prometheus.h"
#include "portmap/request_handler.h"

namespace xnat::portmap {

std::string render_portmap_metrics(const State &state)
{
    PrometheusWriter w;
    w.family("xnat_portmap_mappings", MetricType::gauge,
             "Port mappings xnat-portmapd holds, by the protocol that asked for them and the transport.");
    std::map<std::pair<Via, Protocol>, uint64_t> held;
    for (Via via : {Via::natpmp, Via::pcp})
        for (Protocol proto : {Protocol::tcp, Protocol::udp})
            held[{via, proto}] = 0;
    for (const Mapping &m : state.mappings)
        ++held[{m.via, m.proto}];
    for (const auto &[key, count] : held)
        w.sample({{"via", via_name(key.first)}, {"proto", protocol_name(key.second)}}, count);

    w.family("xnat_portmap_requests_total", MetricType::counter,
             "Requests xnat-portmapd received since it started, by outcome: granted, renewed, deleted and "
             "external_address answered; the others are refusals and drops by reason.");
    std::map<std::string, uint64_t> requests = state.requests;
    // Every outcome appears from the start, so that a rate over a refusal needs no first event.
    for (int i = 0; i <= static_cast<int>(Outcome::dropped); ++i)
        requests.emplace(outcome_name(static_cast<Outcome>(i)), 0);
    for (const char *own : {"rate_limited", "not_served"})
        requests.emplace(own, 0);
    for (const auto &[outcome, count] : requests)
        w.sample({{"outcome", outcome}}, count);
    return w.text();
}

} // namespace xnat::portmap
