#include "lan_socket.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "kernel/kernel_error.h"

namespace xnat {

namespace {

// Larger than any request may be (RFC 6887 §7: 1100 octets), so that the decoder sees an
// oversized one as what it is and answers it with its error.
constexpr size_t kBuffer = 2048;

Result<void> set_option(int fd, int level, int name, const void *value, socklen_t len, const char *what)
{
    if (::setsockopt(fd, level, name, value, len) != 0)
        return kernel_error(what, errno);
    return {};
}

} // namespace

Result<LanSocket> LanSocket::open(const std::string &lan_name, unsigned lan_ifindex, uint16_t port)
{
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return kernel_error("open a UDP socket", errno);
    int on = 1;
    // Bound to the device, requests arriving from the WAN side never reach the socket.
    if (auto r = set_option(fd.get(), SOL_SOCKET, SO_BINDTODEVICE, lan_name.c_str(),
                            static_cast<socklen_t>(lan_name.size()), "bind the socket to the LAN interface");
        !r)
        return r.error();
    if (auto r = set_option(fd.get(), IPPROTO_IP, IP_PKTINFO, &on, sizeof(on), "ask for IP_PKTINFO"); !r)
        return r.error();
    ip_mreqn out{};
    out.imr_ifindex = static_cast<int>(lan_ifindex);
    if (auto r =
            set_option(fd.get(), IPPROTO_IP, IP_MULTICAST_IF, &out, sizeof(out), "send multicast on the LAN");
        !r)
        return r.error();
    int ttl = 1;
    if (auto r =
            set_option(fd.get(), IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl), "set the multicast TTL");
        !r)
        return r.error();
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0)
        return kernel_error("bind UDP port " + std::to_string(port) + " on " + lan_name, errno);
    return LanSocket(std::move(fd));
}

Result<std::optional<Datagram>> LanSocket::receive()
{
    Datagram d;
    d.bytes.resize(kBuffer);
    sockaddr_in from{};
    iovec iov{d.bytes.data(), d.bytes.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))];
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(fd_.get(), &msg, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return std::optional<Datagram>();
        return kernel_error("receive a request", errno);
    }
    d.bytes.resize(static_cast<size_t>(n));
    d.source = ntohl(from.sin_addr.s_addr);
    d.source_port = ntohs(from.sin_port);
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            in_pktinfo info;
            std::memcpy(&info, CMSG_DATA(c), sizeof(info));
            // The local address the kernel would answer from: the request's destination for a
            // unicast one, the interface's own for a broadcast.
            d.to = ntohl(info.ipi_spec_dst.s_addr);
        }
    return std::optional<Datagram>(std::move(d));
}

Result<void> LanSocket::reply(const Datagram &to, const portmap::Bytes &bytes)
{
    sockaddr_in dest{};
    dest.sin_family = AF_INET;
    dest.sin_port = htons(to.source_port);
    dest.sin_addr.s_addr = htonl(to.source);
    iovec iov{const_cast<uint8_t *>(bytes.data()), bytes.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
    msghdr msg{};
    msg.msg_name = &dest;
    msg.msg_namelen = sizeof(dest);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    // A client checks that the answer comes from the address it asked (RFC 6886 §3.1).
    if (to.to != 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
        in_pktinfo info{};
        info.ipi_spec_dst.s_addr = htonl(to.to);
        std::memcpy(CMSG_DATA(c), &info, sizeof(info));
    }
    if (::sendmsg(fd_.get(), &msg, 0) < 0)
        return kernel_error("answer a request", errno);
    return {};
}

Result<void> LanSocket::announce(const portmap::Bytes &bytes)
{
    sockaddr_in dest{};
    dest.sin_family = AF_INET;
    dest.sin_port = htons(kClientPort);
    dest.sin_addr.s_addr = htonl(INADDR_ALLHOSTS_GROUP);
    if (::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr *>(&dest),
                 sizeof(dest)) < 0)
        return kernel_error("announce to 224.0.0.1", errno);
    return {};
}

} // namespace xnat
