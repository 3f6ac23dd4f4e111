#include "kernel/rtnetlink.h"

#include <linux/rtnetlink.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "kernel/kernel_error.h"

namespace xnat {

Result<UniqueFd> open_rtnetlink(uint32_t groups, bool nonblocking)
{
    UniqueFd fd(
        ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), NETLINK_ROUTE));
    if (!fd.valid())
        return system_error(std::string("open an rtnetlink socket: ") + std::strerror(errno), errno);
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = groups;
    if (::bind(fd.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof(addr)) != 0)
        return system_error(std::string("bind an rtnetlink socket: ") + std::strerror(errno), errno);
    return fd;
}

void for_each_netlink_message(const char *buf, size_t len,
                              const std::function<void(const nlmsghdr &, const char *, size_t)> &visit)
{
    while (len >= sizeof(nlmsghdr)) {
        nlmsghdr hdr;
        std::memcpy(&hdr, buf, sizeof(hdr));
        if (hdr.nlmsg_len < NLMSG_HDRLEN || hdr.nlmsg_len > len)
            return;
        visit(hdr, buf + NLMSG_HDRLEN, hdr.nlmsg_len - NLMSG_HDRLEN);
        size_t step = NLMSG_ALIGN(hdr.nlmsg_len);
        if (step >= len)
            return;
        buf += step;
        len -= step;
    }
}

namespace {

// The address of one RTM_NEWADDR payload: IFA_LOCAL is ours on every link type (on a
// point-to-point link such as ppp, IFA_ADDRESS is the peer's).
std::optional<uint32_t> address_of(const char *payload, size_t size)
{
    size_t off = NLMSG_ALIGN(sizeof(ifaddrmsg));
    std::optional<uint32_t> local, address;
    while (off + sizeof(rtattr) <= size) {
        rtattr attr;
        std::memcpy(&attr, payload + off, sizeof(attr));
        if (attr.rta_len < sizeof(rtattr) || off + attr.rta_len > size)
            break;
        if (attr.rta_len >= RTA_LENGTH(sizeof(uint32_t)) &&
            (attr.rta_type == IFA_LOCAL || attr.rta_type == IFA_ADDRESS)) {
            uint32_t a;
            std::memcpy(&a, payload + off + RTA_LENGTH(0), sizeof(a));
            (attr.rta_type == IFA_LOCAL ? local : address) = ntohl(a);
        }
        off += RTA_ALIGN(attr.rta_len);
    }
    return local ? local : address;
}

} // namespace

Result<std::optional<uint32_t>> primary_ipv4(unsigned ifindex)
{
    auto sock = open_rtnetlink(0, false);
    if (!sock)
        return sock.error();
    struct {
        nlmsghdr hdr;
        ifaddrmsg ifa;
    } req{};
    req.hdr.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
    req.hdr.nlmsg_type = RTM_GETADDR;
    req.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.hdr.nlmsg_seq = 1;
    req.ifa.ifa_family = AF_INET;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(sock->get(), &req, req.hdr.nlmsg_len, 0, reinterpret_cast<const sockaddr *>(&kernel),
                 sizeof(kernel)) < 0)
        return system_error(std::string("ask the kernel for IPv4 addresses: ") + std::strerror(errno), errno);

    // The whole dump is read even once the address is found, so that its end is seen.
    std::optional<uint32_t> found;
    alignas(nlmsghdr) char buf[32768];
    for (bool done = false; !done;) {
        ssize_t n = ::recv(sock->get(), buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return system_error(std::string("read the kernel's IPv4 addresses: ") + std::strerror(errno),
                                errno);
        }
        if (n == 0)
            return system_error("read the kernel's IPv4 addresses: the dump ended early");
        int error = 0;
        for_each_netlink_message(
            buf, static_cast<size_t>(n), [&](const nlmsghdr &hdr, const char *payload, size_t size) {
                if (hdr.nlmsg_type == NLMSG_DONE)
                    done = true;
                else if (hdr.nlmsg_type == NLMSG_ERROR) {
                    nlmsgerr e{};
                    if (size >= sizeof(e))
                        std::memcpy(&e, payload, sizeof(e));
                    error = e.error ? -e.error : EPROTO;
                    done = true;
                } else if (hdr.nlmsg_type == RTM_NEWADDR && size >= sizeof(ifaddrmsg) && !found) {
                    ifaddrmsg ifa;
                    std::memcpy(&ifa, payload, sizeof(ifa));
                    if (ifa.ifa_family == AF_INET && ifa.ifa_index == ifindex)
                        found = address_of(payload, size);
                }
            });
        if (error)
            return system_error(std::string("read the kernel's IPv4 addresses: ") + std::strerror(error),
                                error);
    }
    return found;
}

} // namespace xnat
