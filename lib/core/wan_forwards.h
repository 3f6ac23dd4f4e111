// Port forwards on the WAN address ("from": "wan:PORT"): the datapath's forward table is keyed
// by address, so these are installed on the address the WAN interface has, and moved with it
// (wan_follow.h) as masquerade is. Here: a config's, at load; rule_store.h places one
// added to a running instance.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/nat_config.h"
#include "core/result.h"

namespace xnat {

// Puts every wan: forward of a config on wan_addr. Without an address, park (xnat-load
// --follow-wan, which installs them when one appears) leaves them parked; otherwise the first
// one is refused, naming its field.
Result<std::vector<PortForward>> resolve_wan_forwards(std::vector<PortForward> forwards,
                                                      std::optional<uint32_t> wan_addr,
                                                      const std::string &wan_name, bool park);

} // namespace xnat
