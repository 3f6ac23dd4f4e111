// Network interfaces: lookup, driver, and the choice between XDP and tc for each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/result.h"

namespace xnat {

enum class Mode { auto_select, xdp, tc };

// How packets on the interface begin. PPP, WireGuard and tun (TUN mode) devices carry bare
// IP packets: XDP cannot serve them, and tc sees no Ethernet header there.
enum class LinkLayer { ethernet, bare_ip };

struct Interface {
    std::string name;
    unsigned ifindex = 0;
    std::string driver; // from ethtool; "" if the device has none
    LinkLayer link = LinkLayer::ethernet;
    std::string link_kind; // the device type in words ("ppp", "none", ...), for messages
};

Result<Interface> find_interface(const std::string &name, const std::string &role);
Result<Mode> parse_mode(const std::string &text);
std::string mode_name(Mode m);
uint8_t mode_code(Mode m);     // XNAT_MODE_*
Mode mode_from_code(uint8_t code);

// What --mode auto picks, and why, in words for the operator.
struct ModeChoice {
    Mode mode;
    std::string reason;
};
ModeChoice choose_mode(const Interface &iface);
// Refuses an explicitly asked mode the interface cannot run (XDP on a bare-IP device).
Result<void> check_mode(const Interface &iface, Mode mode, const std::string &role);

// This namespace's net.ipv4.ip_local_port_range: the ports the gateway's own sockets use.
std::pair<uint16_t, uint16_t> local_port_range();

// Inode of this process's network namespace, to recognise it again at reload and unload.
uint64_t current_netns_ino();
// Whether the kernel forwards IPv4 in this namespace (needed for packets xnat hands to it).
bool ipv4_forwarding_enabled();

} // namespace xnat
