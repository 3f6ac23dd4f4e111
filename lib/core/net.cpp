#include "core/net.h"

#include <arpa/inet.h>

#include <charconv>

namespace xnat {
namespace {

Result<uint32_t> parse_number(std::string_view text, uint32_t max, const char *what)
{
    uint32_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size())
        return invalid_input(std::string("bad ") + what + " \"" + std::string(text) + "\"");
    if (ec == std::errc::result_out_of_range || value > max)
        return invalid_input(std::string(what) + " " + std::string(text) + " out of range");
    return value;
}

Result<uint16_t> parse_port(std::string_view text)
{
    auto n = parse_number(text, 65535, "port");
    if (!n)
        return n.error().message.find("out of range") != std::string::npos
                   ? invalid_input("port " + std::string(text) + " out of range (1-65535)")
                   : n.error();
    if (*n == 0)
        return invalid_input("port 0 is not a valid port (1-65535)");
    return static_cast<uint16_t>(*n);
}

} // namespace

Result<uint32_t> parse_ipv4(std::string_view text)
{
    uint32_t addr = 0;
    int octets = 0;
    size_t pos = 0;
    // Every dot-separated part is read, so text after a fourth octet ("1.2.3.4.5") is refused.
    while (true) {
        size_t dot = text.find('.', pos);
        std::string_view part = text.substr(pos, dot == std::string_view::npos ? text.npos : dot - pos);
        bool leading_zero = part.size() > 1 && part[0] == '0';
        auto n = parse_number(part, 255, "octet");
        if (!n || leading_zero || part.size() > 3 || octets == 4)
            return invalid_input("bad IPv4 address \"" + std::string(text) + "\"");
        addr = (addr << 8) | *n;
        ++octets;
        if (dot == std::string_view::npos)
            break;
        pos = dot + 1;
    }
    if (octets != 4)
        return invalid_input("bad IPv4 address \"" + std::string(text) + "\"");
    return addr;
}

std::string format_ipv4(uint32_t addr)
{
    return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 0xff) + "." +
           std::to_string((addr >> 8) & 0xff) + "." + std::to_string(addr & 0xff);
}

std::string format_ipv4_be(uint32_t addr_network_order)
{
    return format_ipv4(ntohl(addr_network_order));
}

Result<Prefix> parse_prefix(std::string_view text)
{
    Prefix p;
    size_t slash = text.find('/');
    auto addr = parse_ipv4(text.substr(0, slash));
    if (!addr)
        return addr.error();
    p.addr = *addr;
    if (slash == std::string_view::npos)
        return p;
    auto len = parse_number(text.substr(slash + 1), 32, "prefix length");
    if (!len)
        return invalid_input("bad prefix length \"" + std::string(text.substr(slash + 1)) + "\" (0-32)");
    p.len = static_cast<uint8_t>(*len);
    uint32_t host_mask = p.len == 32 ? 0 : (~uint32_t{0} >> p.len);
    if (p.addr & host_mask)
        return invalid_input(std::string(text) + " has host bits set (network is " +
                             format_ipv4(p.addr & ~host_mask) + "/" + std::to_string(p.len) + ")");
    return p;
}

std::string format_prefix(const Prefix &p)
{
    return format_ipv4(p.addr) + "/" + std::to_string(p.len);
}

Result<Endpoint> parse_endpoint(std::string_view text)
{
    const std::string shape = "expected ADDRESS[/PREFIX]:PORT[-PORT], got \"" + std::string(text) + "\"";
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
        return invalid_input(shape);
    std::string_view host = text.substr(0, colon);
    std::string_view ports = text.substr(colon + 1);

    Endpoint ep;
    auto prefix = parse_prefix(host);
    if (!prefix)
        return prefix.error();
    ep.addr = prefix->addr;
    ep.prefix_len = prefix->len;

    if (ports.empty())
        return invalid_input(shape);
    auto range = parse_ports(ports);
    if (!range)
        return range.error();
    ep.port_lo = range->first;
    ep.port_hi = range->second;
    return ep;
}

Result<std::pair<uint16_t, uint16_t>> parse_ports(std::string_view text)
{
    size_t dash = text.find('-');
    if (dash == 0) // "-1": a negative number, not a range with its start left out
        return invalid_input("bad port \"" + std::string(text) + "\"");
    auto lo = parse_port(text.substr(0, dash));
    if (!lo)
        return lo.error();
    uint16_t hi = *lo;
    if (dash != std::string_view::npos) {
        auto h = parse_port(text.substr(dash + 1));
        if (!h)
            return h.error();
        if (*h < *lo)
            return invalid_input("port range " + std::string(text) + " is reversed");
        hi = *h;
    }
    return std::make_pair(*lo, hi);
}

std::string format_endpoint(const Endpoint &ep)
{
    std::string s = format_ipv4(ep.addr);
    if (ep.prefix_len != 32)
        s += "/" + std::to_string(ep.prefix_len);
    s += ":" + std::to_string(ep.port_lo);
    if (ep.port_hi != ep.port_lo)
        s += "-" + std::to_string(ep.port_hi);
    return s;
}

const char *special_address_kind(uint32_t addr)
{
    uint8_t first = static_cast<uint8_t>(addr >> 24);
    if (first == 0)
        return "in 0.0.0.0/8 (\"this network\")";
    if (first == 127)
        return "loopback";
    if (first >= 224 && first < 240)
        return "multicast";
    if (first >= 240)
        return "reserved or broadcast";
    return nullptr;
}

Result<Proto> parse_proto(std::string_view text)
{
    if (text == "tcp")
        return Proto::tcp;
    if (text == "udp")
        return Proto::udp;
    return invalid_input("protocol must be \"tcp\" or \"udp\", got \"" + std::string(text) + "\"");
}

std::string_view proto_name(uint8_t proto)
{
    switch (proto) {
    case 6:
        return "tcp";
    case 17:
        return "udp";
    case 1:
        return "icmp";
    default:
        return "unknown";
    }
}

Result<Side> parse_side(std::string_view text)
{
    if (text == "wan")
        return Side::wan;
    if (text == "lan")
        return Side::lan;
    return invalid_input("must be \"wan\" or \"lan\", got \"" + std::string(text) + "\"");
}

std::string_view side_name(Side side)
{
    return side == Side::wan ? "wan" : "lan";
}

} // namespace xnat
