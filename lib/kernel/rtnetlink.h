// rtnetlink (NETLINK_ROUTE): the one place xnat talks to the kernel's interface and address
// tables, both to ask (the WAN address) and to listen (address and link notices).
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "core/result.h"
#include "kernel/unique_fd.h"

namespace xnat {

// A NETLINK_ROUTE socket subscribed to groups (RTMGRP_*; 0 for requests only).
Result<UniqueFd> open_rtnetlink(uint32_t groups, bool nonblocking);

// Calls visit for every whole message in buf[0, len), with its payload and payload size.
void for_each_netlink_message(const char *buf, size_t len,
                              const std::function<void(const nlmsghdr &, const char *, size_t)> &visit);

// The first IPv4 address (host order) of interface ifindex as the kernel lists them (the
// primary one), whatever its label (getifaddrs names an address by its label, so an address
// labelled wan0:dhcp is not found under wan0): the default masquerade source. nullopt: the interface has
// none; an error: the kernel could not be asked.
Result<std::optional<uint32_t>> primary_ipv4(unsigned ifindex);

} // namespace xnat
