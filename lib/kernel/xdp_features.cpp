#include "kernel/xdp_features.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "kernel/netlink_request.h"

namespace xnat {
namespace {

// From <linux/netdev.h> (Linux 6.3), absent from the headers this builds against.
constexpr const char *kNetdevFamily = "netdev";
constexpr uint8_t kNetdevCmdDevGet = 1;
constexpr uint16_t kNetdevAttrIfindex = 1;
constexpr uint16_t kNetdevAttrXdpFeatures = 3;

genlmsghdr genl_header(uint8_t cmd)
{
    genlmsghdr g{};
    g.cmd = cmd;
    g.version = 1;
    return g;
}

// The family's id; nullopt if this kernel has no such family.
// One fixed-size attribute of a generic netlink answer (after its genl header), if present.
template <typename T>
std::optional<T> genl_attr(const std::string &answer, uint16_t wanted)
{
    std::optional<T> value;
    if (answer.size() >= GENL_HDRLEN)
        for_each_attr(answer.data() + GENL_HDRLEN, answer.size() - GENL_HDRLEN,
                      [&](uint16_t type, const char *data, size_t size) {
                          T v;
                          if (type == wanted && size >= sizeof(v)) {
                              std::memcpy(&v, data, sizeof(v));
                              value = v;
                          }
                      });
    return value;
}

Result<std::optional<uint16_t>> family_id(int fd, const char *name)
{
    genlmsghdr g = genl_header(CTRL_CMD_GETFAMILY);
    NetlinkRequest req(GENL_ID_CTRL, &g, sizeof(g));
    req.attr_string(CTRL_ATTR_FAMILY_NAME, name);
    auto answer = netlink_ask(fd, req, std::string("look up generic netlink family ") + name);
    if (!answer) {
        if (answer.error().errno_code == ENOENT)
            return std::optional<uint16_t>{};
        return answer.error();
    }
    std::optional<uint16_t> id = genl_attr<uint16_t>(*answer, CTRL_ATTR_FAMILY_ID);
    if (!id)
        return system_error(std::string("generic netlink family ") + name + ": the kernel gave no id", EPROTO);
    return id;
}

} // namespace

Result<std::optional<uint64_t>> xdp_features(unsigned ifindex)
{
    auto sock = open_netlink(NETLINK_GENERIC);
    if (!sock)
        return sock.error();
    auto family = family_id(sock->get(), kNetdevFamily);
    if (!family)
        return family.error();
    if (!*family)
        return std::optional<uint64_t>{};
    genlmsghdr g = genl_header(kNetdevCmdDevGet);
    NetlinkRequest req(**family, &g, sizeof(g));
    req.attr_u32(kNetdevAttrIfindex, ifindex);
    auto answer = netlink_ask(sock->get(), req, "ask the kernel for the XDP features of ifindex " +
                                                    std::to_string(ifindex));
    if (!answer)
        return answer.error();
    return genl_attr<uint64_t>(*answer, kNetdevAttrXdpFeatures);
}

} // namespace xnat
