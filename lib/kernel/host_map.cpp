#include "kernel/host_map.h"

#include <arpa/inet.h>

#include <algorithm>

#include "kernel/map_io.h"
#include "xnat/hosts.h"
#include "xnat/maps.h"

namespace xnat {

Result<std::vector<HostUsage>> read_host_usage(const MapSet &maps)
{
    std::vector<HostUsage> rows;
    auto read = map_for_each_entry<uint32_t, xnat_host>(
        maps.hosts, XNAT_STR(XNAT_MAP_HOSTS), [&](const uint32_t &addr, const xnat_host &v) {
            if (v.use & XNAT_HOST_DEAD) // being reclaimed
                return;
            HostUsage h{ntohl(addr), xnat_host_flows(v.use), xnat_host_ports(v.use)};
            if (h.connections || h.ports)
                rows.push_back(h);
        });
    if (!read)
        return read.error();
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
