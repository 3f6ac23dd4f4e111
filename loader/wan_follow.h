// Following the WAN address (DHCP, PPPoE): masquerade rules without a to_source take the WAN
// interface's address, and xnat-load --follow-wan keeps them on the address the interface has
// now. What it does on a change, and the rtnetlink watch that tells it when to look.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "result.h"
#include "unique_fd.h"

namespace xnat {

// One look at the WAN address, and what it changed.
struct WanStep {
    std::string wan_name;
    unsigned wan_ifindex = 0;
    std::optional<uint32_t> address;  // the WAN interface's first IPv4 address now (host order)
    std::optional<uint32_t> in_use;   // the address the following rules use after this step
    size_t following = 0;             // masquerade rules that take the WAN address
    std::vector<uint32_t> replaced;   // addresses those rules used before this step
    size_t flows_ended = 0;           // flows of the replaced addresses, ended
};

// Compares the WAN interface's address with the one the instance's following masquerade rules
// use. If they differ, the rules move to the new address in one rule-generation swap, and the
// flows of the old address (which can never carry a packet again) are ended as expiry ends
// them, freeing their source-NAT ports. While the interface has no address nothing changes,
// so flows survive an address that goes and comes back. Holds the instance's lock meanwhile.
Result<WanStep> follow_wan_once(const std::string &pin_dir);

// A line for the log: the change made, the missing address, or (first) what is followed.
std::string describe_wan_step(const WanStep &step, bool first);

// The kernel's IPv4 address notices (rtnetlink, RTMGRP_IPV4_IFADDR) and the stop signals.
class AddressWatch {
  public:
    enum class Event { address_changed, stop };

    // Subscribes, and blocks SIGTERM and SIGINT so they arrive here instead. Open it before
    // reading the address so that no change can fall in between.
    static Result<AddressWatch> open();
    // Blocks until an IPv4 address of interface ifindex is added or removed (or the kernel
    // dropped notices, so one may have been), or SIGTERM or SIGINT arrives.
    Result<Event> wait(unsigned ifindex);

  private:
    AddressWatch(UniqueFd netlink, UniqueFd signals) : netlink_(std::move(netlink)), signals_(std::move(signals)) {}
    // Reads every pending notice; true if one concerns ifindex.
    Result<bool> drain(unsigned ifindex);

    UniqueFd netlink_;
    UniqueFd signals_;
};

using LogLine = std::function<void(const std::string &)>;

// Keeps the instance at pin_dir on the WAN address until a stop signal, logging each change.
// A failed update is logged and retried at the next notice; the instance stays loaded on stop.
Result<void> follow_wan(AddressWatch &watch, const std::string &pin_dir, const LogLine &log);

} // namespace xnat
