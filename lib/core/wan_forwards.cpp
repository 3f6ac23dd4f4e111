#include "core/wan_forwards.h"


namespace xnat {

Result<std::vector<PortForward>> resolve_wan_forwards(std::vector<PortForward> forwards,
                                                      std::optional<uint32_t> wan_addr,
                                                      const std::string &wan_name, bool park)
{
    for (size_t i = 0; i < forwards.size(); ++i) {
        PortForward &f = forwards[i];
        if (!f.from_wan)
            continue;
        if (!wan_addr && !park)
            return invalid_input("port_forwards[" + std::to_string(i) + "].from: " + format_forward_from(f) +
                                 " is on the WAN address, and WAN_IF " + wan_name +
                                 " has no IPv4 address (xnat-load --follow-wan waits for one)");
        f.from.addr = wan_addr.value_or(0);
    }
    return forwards;
}

} // namespace xnat
