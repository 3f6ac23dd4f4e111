// A device's XDP features as the kernel reports them (the "netdev" generic netlink family,
// Linux 6.3): what xnat asks to learn whether a device takes redirected XDP frames.
#pragma once

#include <cstdint>
#include <optional>

#include "core/result.h"

namespace xnat {

// NETDEV_XDP_ACT_BASIC and NETDEV_XDP_ACT_NDO_XMIT of <linux/netdev.h>, which Debian 12's headers (6.1) lack: the device
// runs XDP programs at all; it takes frames redirected into it (ndo_xdp_xmit).
inline constexpr uint64_t kXdpActBasic = 1u << 0;
inline constexpr uint64_t kXdpActNdoXmit = 1u << 2;

// The device's NETDEV_XDP_ACT_* bits; nullopt when this kernel does not report them.
Result<std::optional<uint64_t>> xdp_features(unsigned ifindex);

} // namespace xnat
