#include "host_usage.h"

#include <arpa/inet.h>

#include <algorithm>

#include "map_io.h"
#include "xnat/hosts.h"
#include "xnat/maps.h"

namespace xnat {

Result<std::vector<HostUsage>> read_host_usage(const MapSet &maps)
{
    std::vector<HostUsage> rows;
    Result<void> failed;
    auto walked = map_for_each_key<uint32_t>(maps.hosts, XNAT_STR(XNAT_MAP_HOSTS), [&](const uint32_t &addr) {
        auto v = map_lookup<uint32_t, xnat_host>(maps.hosts, addr, XNAT_STR(XNAT_MAP_HOSTS));
        if (!v) {
            failed = v.error();
            return;
        }
        // Gone since the walk saw its key, or being reclaimed.
        if (!*v || ((*v)->use & XNAT_HOST_DEAD))
            return;
        HostUsage h{ntohl(addr), xnat_host_flows((*v)->use), xnat_host_ports((*v)->use)};
        if (h.connections || h.ports)
            rows.push_back(h);
    });
    if (!walked)
        return walked.error();
    if (!failed)
        return failed.error();
    std::sort(rows.begin(), rows.end(), [](const HostUsage &a, const HostUsage &b) {
        if (a.connections != b.connections)
            return a.connections > b.connections;
        if (a.ports != b.ports)
            return a.ports > b.ports;
        return a.addr < b.addr;
    });
    return rows;
}

} // namespace xnat
