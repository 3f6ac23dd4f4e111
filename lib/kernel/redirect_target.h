// Whether the XDP frames xnat redirects out of an interface get anywhere. A veth accepts a
// redirected frame and hands it to its peer's NAPI, which exists only while the peer runs an
// XDP program or has GRO on (veth's default is off). Otherwise the kernel drops every frame
// while xnat counts it as redirected, so the gateway looks busy and passes nothing. Other drivers refuse the attach itself when they cannot transmit.
#pragma once

#include <optional>
#include <string>

#include "core/result.h"
#include "kernel/interfaces.h"

namespace xnat {

struct VethPeer {
    unsigned ifindex = 0;  // in the peer's own namespace
    std::string name;      // "" if it could not be read
    bool elsewhere = false; // in another network namespace
    std::string netns;     // that namespace's name under /run/netns, if it has one
};

// The other end of a veth; nullopt if ifindex is not a veth or its peer is gone.
Result<std::optional<VethPeer>> find_veth_peer(unsigned ifindex);

enum class Delivery { delivered, dropped, unknown };

struct RedirectTarget {
    Delivery delivery = Delivery::delivered;
    // For the operator, "" for a device that is not a veth: which peer, in which namespace, and
    // (dropped, unknown) how to make it take the frames.
    std::string detail;
};

// Whether frames redirected out of iface are delivered, asked of the kernel: a veth's XDP
// features say whether it can transmit them (NETDEV_XDP_ACT_NDO_XMIT reflects its peer since
// Linux 6.4). Kernels before 6.3 do not report them: unknown.
Result<RedirectTarget> check_redirect_target(const Interface &iface);

} // namespace xnat
