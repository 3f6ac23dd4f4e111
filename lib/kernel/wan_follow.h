// Following the WAN address (DHCP, PPPoE): masquerade rules without a to_source and forwards
// from wan:PORT take the WAN interface's address, and xnat-load --follow-wan keeps them on the
// address the interface has now. What it does on a change, and the rtnetlink watch that tells
// it when to look.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "kernel/unique_fd.h"

namespace xnat {

// One look at the WAN address, and what it changed.
struct WanStep {
    std::string wan_name;
    unsigned wan_ifindex = 0;
    bool wan_gone = false;           // the interface no longer exists (deleted, PPPoE redial)
    std::optional<uint32_t> address; // the WAN interface's first IPv4 address now (host order)
    std::optional<uint32_t> in_use;  // the address the following rules use after this step
    size_t following = 0;            // masquerade rules that take the WAN address
    size_t forwards = 0;             // port forwards from wan:PORT
    bool moved = false;              // those rules were given the address in this step
    std::vector<uint32_t> replaced;  // addresses those rules used before this step
    size_t flows_ended = 0;          // flows of the replaced addresses, ended
};

// Compares the WAN interface's address with the one the instance's following masquerade rules
// and wan: forwards use. If they differ, the rules move to the new address in one rule-generation
// swap (so a forward is on the old key or the new one, never on neither or both), and the
// flows of the old address (which can never carry a packet again) are ended as expiry ends
// them, freeing their source-NAT ports. Rules parked at load (the WAN had no address yet) take
// the first one. While the interface has no address nothing changes, so flows survive an
// address that goes and comes back. Holds the instance's lock meanwhile.
Result<WanStep> follow_wan_once(const std::string &pin_dir);

// A line for the log: the change made, the missing address, or (first) what is followed.
std::string describe_wan_step(const WanStep &step, bool first);

// The kernel's IPv4 address and link notices (rtnetlink) and the stop signals.
class AddressWatch {
  public:
    enum class Event { address_changed, wan_gone, stop, timeout };

    // Subscribes, and blocks SIGTERM and SIGINT so they arrive here instead. Open it before
    // reading the address so that no change can fall in between.
    static Result<AddressWatch> open();
    // Blocks until an IPv4 address of interface ifindex is added or removed (or the kernel
    // dropped notices, so one may have been), the interface is deleted, SIGTERM or SIGINT
    // arrives, or timeout_ms pass (-1: no limit). After an error the notice socket is closed,
    // and the next call waits timeout_ms before opening a new one (then reports timeout:
    // notices in between were missed).
    Result<Event> wait(unsigned ifindex, int timeout_ms);

  private:
    AddressWatch(UniqueFd netlink, UniqueFd signals) : netlink_(std::move(netlink)), signals_(std::move(signals)) {}
    // Reads every pending notice: what the most telling one says about ifindex, if any.
    Result<std::optional<Event>> drain(unsigned ifindex);
    // Waits for a stop signal at most timeout_ms: true if one came.
    Result<bool> stop_within(int timeout_ms);

    UniqueFd netlink_;
    UniqueFd signals_;
};

using LogLine = std::function<void(const std::string &)>;

enum class FollowEnd { stopped, wan_gone };

// Keeps the instance at pin_dir on the WAN address until a stop signal (stopped) or the WAN
// interface is deleted (wan_gone), logging each change. Failures to update or to watch are
// logged and retried with a growing delay: the NAT never depends on this process.
Result<FollowEnd> follow_wan(AddressWatch &watch, const std::string &pin_dir, const LogLine &log);

} // namespace xnat
