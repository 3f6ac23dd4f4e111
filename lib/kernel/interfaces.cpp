#include "kernel/interfaces.h"

#include <linux/ethtool.h>
#include <net/if_arp.h>
#include <linux/sockios.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <fstream>

#include "kernel/unique_fd.h"
#include "xnat/abi.h"

namespace xnat {
namespace {

std::string driver_of(const std::string &name)
{
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock.valid())
        return "";
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    ifreq req{};
    std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
    req.ifr_data = reinterpret_cast<char *>(&info);
    if (::ioctl(sock.get(), SIOCETHTOOL, &req) != 0)
        return "";
    return info.driver;
}

// Devices whose received packets typically come from a local stack (containers, VMs, tunnels)
// and so may carry CHECKSUM_PARTIAL, which XDP cannot see.
bool is_software_device(const std::string &driver)
{
    static const std::array<const char *, 12> software = {
        "veth", "tun", "bridge", "dummy", "macvlan", "ipvlan", "vxlan", "geneve", "openvswitch",
        "bonding", "team", "802.1Q VLAN Support"};
    for (const char *d : software)
        if (driver == d)
            return true;
    return false;
}

struct LinkType {
    LinkLayer layer;
    std::string kind;
};

// The device's ARPHRD_* type, as SIOCGIFHWADDR reports it. Only Ethernet and the devices that
// carry bare IPv4 are served: on any other link type xnat would misparse every packet.
std::optional<LinkType> link_type_of(const std::string &name, int *arphrd)
{
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq req{};
    std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
    *arphrd = -1;
    if (!sock.valid() || ::ioctl(sock.get(), SIOCGIFHWADDR, &req) != 0)
        return LinkType{LinkLayer::ethernet, "unknown"}; // the attach itself will say what is wrong
    *arphrd = req.ifr_hwaddr.sa_family;
    switch (*arphrd) {
    case ARPHRD_ETHER:
        return LinkType{LinkLayer::ethernet, "ether"};
    case ARPHRD_PPP:
        return LinkType{LinkLayer::bare_ip, "ppp"};
    case ARPHRD_NONE: // WireGuard, tun in TUN mode
        return LinkType{LinkLayer::bare_ip, "none"};
    case ARPHRD_RAWIP: // cellular modems
        return LinkType{LinkLayer::bare_ip, "rawip"};
    case ARPHRD_TUNNEL:
        return LinkType{LinkLayer::bare_ip, "ipip"};
    case ARPHRD_IPGRE:
        return LinkType{LinkLayer::bare_ip, "gre"};
    default:
        return std::nullopt;
    }
}

} // namespace

Result<Interface> find_interface(const std::string &name, const std::string &role)
{
    if (name.empty() || name.size() >= IFNAMSIZ)
        return invalid_input(role + ": bad interface name \"" + name + "\"");
    unsigned ifindex = ::if_nametoindex(name.c_str());
    if (ifindex == 0)
        return invalid_input(role + ": no interface named \"" + name + "\" in this network namespace");
    int arphrd = -1;
    auto link = link_type_of(name, &arphrd);
    if (!link)
        return invalid_input(role + ": " + name + " has link type " + std::to_string(arphrd) +
                             " (ARPHRD); xnat serves Ethernet interfaces and those that carry bare IP"
                             " (PPP, WireGuard, tun, ipip, gre)");
    return Interface{name, ifindex, driver_of(name), link->layer, link->kind};
}

Result<Mode> parse_mode(const std::string &text)
{
    if (text == "auto")
        return Mode::auto_select;
    if (text == "xdp")
        return Mode::xdp;
    if (text == "tc")
        return Mode::tc;
    return invalid_input("--mode: must be auto, xdp or tc, got \"" + text + "\"");
}

std::string mode_name(Mode m)
{
    switch (m) {
    case Mode::xdp:
        return "xdp";
    case Mode::tc:
        return "tc";
    default:
        return "auto";
    }
}

uint8_t mode_code(Mode m)
{
    return m == Mode::xdp ? XNAT_MODE_XDP : m == Mode::tc ? XNAT_MODE_TC : XNAT_MODE_NONE;
}

Mode mode_from_code(uint8_t code)
{
    return code == XNAT_MODE_XDP ? Mode::xdp : code == XNAT_MODE_TC ? Mode::tc : Mode::auto_select;
}

ModeChoice choose_mode(const Interface &iface)
{
    if (iface.link == LinkLayer::bare_ip)
        return {Mode::tc, "link type " + iface.link_kind + " carries bare IP packets; XDP needs an Ethernet header"};
    if (iface.driver.empty())
        return {Mode::tc, "no driver information; tc works on every device"};
    if (is_software_device(iface.driver))
        return {Mode::tc, "driver " + iface.driver +
                              " carries locally generated packets whose checksums XDP cannot see"};
    return {Mode::xdp, "driver " + iface.driver + " delivers whole packets; native XDP"};
}

Result<void> check_mode(const Interface &iface, Mode mode, const std::string &role)
{
    if (mode == Mode::xdp && iface.link == LinkLayer::bare_ip)
        return invalid_input("--mode xdp: " + role + " " + iface.name + " (link type " + iface.link_kind +
                             ") carries bare IP packets, which XDP cannot translate; use --mode tc or auto");
    return {};
}

std::pair<uint16_t, uint16_t> local_port_range()
{
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    unsigned lo = 32768, hi = 60999; // the kernel's default, should /proc not say
    in >> lo >> hi;
    return {static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)};
}

uint64_t current_netns_ino()
{
    struct stat st {};
    return ::stat("/proc/self/ns/net", &st) == 0 ? st.st_ino : 0;
}

bool ipv4_forwarding_enabled()
{
    std::ifstream in("/proc/sys/net/ipv4/ip_forward");
    int v = 0;
    return (in >> v) && v == 1;
}

} // namespace xnat
