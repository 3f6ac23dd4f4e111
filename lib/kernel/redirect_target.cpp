#include "kernel/redirect_target.h"

#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <fcntl.h>
#include <net/if.h>

#include <cstring>
#include <filesystem>

#include "kernel/netlink_request.h"
#include "kernel/xdp_features.h"

namespace xnat {
namespace {

struct LinkInfo {
    std::string name;
    std::string kind; // IFLA_INFO_KIND: "veth", "bridge", ...
    std::optional<unsigned> link;
    std::optional<int32_t> link_netnsid;
};

// One link's attributes; nsid names the namespace it is in, relative to ours (-1: ours).
Result<LinkInfo> get_link(int fd, unsigned ifindex, int32_t nsid)
{
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = static_cast<int>(ifindex);
    NetlinkRequest req(RTM_GETLINK, &ifi, sizeof(ifi));
    if (nsid >= 0)
        req.attr(IFLA_TARGET_NETNSID, &nsid, sizeof(nsid));
    auto answer = netlink_ask(fd, req, "ask the kernel about ifindex " + std::to_string(ifindex));
    if (!answer)
        return answer.error();
    LinkInfo info;
    size_t fixed = NLMSG_ALIGN(sizeof(ifinfomsg));
    if (answer->size() < fixed)
        return info;
    for_each_attr(answer->data() + fixed, answer->size() - fixed, [&](uint16_t type, const char *data, size_t size) {
        uint32_t v = 0;
        if (size >= sizeof(v))
            std::memcpy(&v, data, sizeof(v));
        if (type == IFLA_IFNAME)
            info.name.assign(data, strnlen(data, size));
        else if (type == IFLA_LINK && size >= sizeof(v))
            info.link = v;
        else if (type == IFLA_LINK_NETNSID && size >= sizeof(v))
            info.link_netnsid = static_cast<int32_t>(v);
        else if (type == IFLA_LINKINFO)
            for_each_attr(data, size, [&](uint16_t t, const char *d, size_t s) {
                if (t == IFLA_INFO_KIND)
                    info.kind.assign(d, strnlen(d, s));
            });
    });
    return info;
}

// The id our namespace gives the namespace behind fd (-1: none assigned).
std::optional<int32_t> nsid_of(int sock, int netns_fd)
{
    rtgenmsg g{};
    g.rtgen_family = AF_UNSPEC;
    NetlinkRequest req(RTM_GETNSID, &g, sizeof(g));
    req.attr_u32(NETNSA_FD, static_cast<uint32_t>(netns_fd));
    auto answer = netlink_ask(sock, req, "ask for a namespace id");
    if (!answer)
        return std::nullopt;
    std::optional<int32_t> nsid;
    size_t fixed = NLMSG_ALIGN(sizeof(rtgenmsg));
    if (answer->size() >= fixed)
        for_each_attr(answer->data() + fixed, answer->size() - fixed, [&](uint16_t type, const char *data, size_t size) {
            int32_t v;
            if (type == NETNSA_NSID && size >= sizeof(v)) {
                std::memcpy(&v, data, sizeof(v));
                nsid = v;
            }
        });
    return nsid;
}

// The name `ip netns` knows the namespace by, so the advice can be a command to paste; ""
// when it has none (a container runtime's, say).
std::string netns_name(int sock, int32_t nsid)
{
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator("/run/netns", ec)) {
        UniqueFd ns(::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC));
        if (ns.valid() && nsid_of(sock, ns.get()) == nsid)
            return entry.path().filename().string();
    }
    return "";
}

std::string describe(const VethPeer &p)
{
    std::string name = p.name.empty() ? "ifindex " + std::to_string(p.ifindex) : p.name;
    if (!p.elsewhere)
        return "its veth peer " + name;
    return "its veth peer " + name + " (in " + (p.netns.empty() ? "another network namespace" : "network namespace " + p.netns) + ")";
}

std::string fix(const VethPeer &p)
{
    std::string name = p.name.empty() ? "PEER" : p.name;
    std::string gro = "ethtool -K " + name + " gro on";
    if (p.elsewhere)
        gro = p.netns.empty() ? gro + ", in the peer's namespace" : "ip netns exec " + p.netns + " " + gro;
    return "enable GRO on the peer (" + gro + ") or attach an XDP program to it, or use --mode tc";
}

} // namespace

Result<std::optional<VethPeer>> find_veth_peer(unsigned ifindex)
{
    auto sock = open_netlink(NETLINK_ROUTE);
    if (!sock)
        return sock.error();
    auto self = get_link(sock->get(), ifindex, -1);
    if (!self)
        return self.error();
    if (self->kind != "veth" || !self->link || *self->link == 0)
        return std::optional<VethPeer>{};
    VethPeer peer;
    peer.ifindex = *self->link;
    peer.elsewhere = self->link_netnsid.has_value();
    // The name is only for messages: a peer we may not look at still gets a verdict.
    auto other = get_link(sock->get(), peer.ifindex, self->link_netnsid.value_or(-1));
    if (other)
        peer.name = other->name;
    if (peer.elsewhere)
        peer.netns = netns_name(sock->get(), *self->link_netnsid);
    return std::optional<VethPeer>{peer};
}

Result<RedirectTarget> check_redirect_target(const Interface &iface)
{
    auto peer = find_veth_peer(iface.ifindex);
    if (!peer)
        return peer.error();
    if (!*peer)
        return RedirectTarget{};
    auto features = xdp_features(iface.ifindex);
    if (!features)
        return features.error();
    const VethPeer &p = **peer;
    if (!*features)
        return RedirectTarget{Delivery::unknown,
                              "this kernel does not say whether " + describe(p) +
                                  " takes XDP frames (it reports XDP features from Linux 6.4); without GRO or "
                                  "an XDP program there, every packet XDP redirects out of it is dropped: " + fix(p)};
    if (**features & kXdpActNdoXmit)
        return RedirectTarget{Delivery::delivered, describe(p) + " takes XDP frames (GRO or an XDP program on it)"};
    // veth clears every XDP feature while its peer has more TX queues than it has RX queues.
    std::string why = **features & kXdpActBasic ? " has neither GRO nor an XDP program"
                                                 : " has more TX queues than this veth has RX queues";
    return RedirectTarget{Delivery::dropped,
                          describe(p) + why + ", so the kernel would drop every packet XDP redirects out of it: " + fix(p)};
}

} // namespace xnat
