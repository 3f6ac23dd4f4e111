#include "kernel/netlink_request.h"

#include <linux/netlink.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

namespace xnat {
namespace {

std::atomic<uint32_t> next_seq{1};

std::string errno_text(int err)
{
    return std::strerror(err);
}

} // namespace

NetlinkRequest::NetlinkRequest(uint16_t type, const void *fixed, size_t fixed_len)
{
    nlmsghdr hdr{};
    hdr.nlmsg_type = type;
    hdr.nlmsg_flags = NLM_F_REQUEST;
    buf_.assign(reinterpret_cast<const char *>(&hdr), sizeof(hdr));
    buf_.append(static_cast<const char *>(fixed), fixed_len);
    buf_.resize(NLMSG_ALIGN(buf_.size()), '\0');
}

NetlinkRequest &NetlinkRequest::attr(uint16_t type, const void *data, size_t len)
{
    nlattr a{};
    a.nla_type = type;
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    buf_.append(reinterpret_cast<const char *>(&a), sizeof(a));
    buf_.append(static_cast<const char *>(data), len);
    buf_.resize(NLA_ALIGN(buf_.size()), '\0');
    return *this;
}

NetlinkRequest &NetlinkRequest::attr_u32(uint16_t type, uint32_t value)
{
    return attr(type, &value, sizeof(value));
}

NetlinkRequest &NetlinkRequest::attr_string(uint16_t type, const std::string &value)
{
    return attr(type, value.c_str(), value.size() + 1);
}

std::string NetlinkRequest::bytes() const
{
    std::string out = buf_;
    uint32_t len = static_cast<uint32_t>(out.size());
    std::memcpy(out.data() + offsetof(nlmsghdr, nlmsg_len), &len, sizeof(len));
    return out;
}

Result<UniqueFd> open_netlink(int protocol)
{
    UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
    if (!fd.valid())
        return system_error("open a netlink socket: " + errno_text(errno), errno);
    return fd;
}

Result<std::string> netlink_ask(int fd, const NetlinkRequest &req, const std::string &what)
{
    std::string msg = req.bytes();
    uint32_t seq = next_seq++;
    std::memcpy(msg.data() + offsetof(nlmsghdr, nlmsg_seq), &seq, sizeof(seq));
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr *>(&kernel), sizeof(kernel)) < 0)
        return system_error(what + ": " + errno_text(errno), errno);
    // A link's answer carries its statistics and more; 64 KiB holds any one message.
    std::vector<char> buf(65536);
    for (;;) {
        ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return system_error(what + ": " + errno_text(errno), errno);
        }
        size_t len = static_cast<size_t>(n);
        for (size_t off = 0; off + sizeof(nlmsghdr) <= len;) {
            nlmsghdr hdr;
            std::memcpy(&hdr, buf.data() + off, sizeof(hdr));
            if (hdr.nlmsg_len < NLMSG_HDRLEN || off + hdr.nlmsg_len > len)
                return system_error(what + ": a malformed answer from the kernel", EPROTO);
            const char *payload = buf.data() + off + NLMSG_HDRLEN;
            size_t size = hdr.nlmsg_len - NLMSG_HDRLEN;
            off += NLMSG_ALIGN(hdr.nlmsg_len);
            if (hdr.nlmsg_seq != seq) // a late answer to an earlier question on this socket
                continue;
            if (hdr.nlmsg_type == NLMSG_ERROR) {
                nlmsgerr e{};
                if (size >= sizeof(e))
                    std::memcpy(&e, payload, sizeof(e));
                int err = e.error ? -e.error : EPROTO;
                return system_error(what + ": " + errno_text(err), err);
            }
            return std::string(payload, size);
        }
    }
}

void for_each_attr(const char *buf, size_t len,
                   const std::function<void(uint16_t, const char *, size_t)> &visit)
{
    size_t off = 0;
    while (off + sizeof(nlattr) <= len) {
        nlattr a;
        std::memcpy(&a, buf + off, sizeof(a));
        if (a.nla_len < NLA_HDRLEN || off + a.nla_len > len)
            return;
        visit(static_cast<uint16_t>(a.nla_type & NLA_TYPE_MASK), buf + off + NLA_HDRLEN, a.nla_len - NLA_HDRLEN);
        off += NLA_ALIGN(a.nla_len);
    }
}

} // namespace xnat
