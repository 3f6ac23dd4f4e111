// One netlink request and its one answer, for questions about a single object (a link, the id
// of a network namespace, a device's XDP features). Dumps and notices stay in rtnetlink.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/result.h"
#include "kernel/unique_fd.h"

namespace xnat {

// A request under construction: netlink header, the message type's fixed header (ifinfomsg,
// genlmsghdr, ...), then attributes.
class NetlinkRequest {
  public:
    NetlinkRequest(uint16_t type, const void *fixed, size_t fixed_len);
    NetlinkRequest &attr(uint16_t type, const void *data, size_t len);
    NetlinkRequest &attr_u32(uint16_t type, uint32_t value);
    NetlinkRequest &attr_string(uint16_t type, const std::string &value); // NUL-terminated
    // The whole message, its length in the header.
    std::string bytes() const;

  private:
    std::string buf_;
};

// A netlink socket of one protocol (NETLINK_ROUTE, NETLINK_GENERIC) for requests only.
Result<UniqueFd> open_netlink(int protocol);

// Sends the request and returns the answer's payload (what follows nlmsghdr). A refusal by the
// kernel is a system_error carrying its errno; `what` names the question in messages.
Result<std::string> netlink_ask(int fd, const NetlinkRequest &req, const std::string &what);

// Calls visit(type, data, size) for each attribute of buf[0, len). nlattr and rtattr share one
// layout; the nested and byte-order flags are cleared from the type.
void for_each_attr(const char *buf, size_t len,
                   const std::function<void(uint16_t, const char *, size_t)> &visit);

} // namespace xnat
