#include "core/conn_filter.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdio>
#include <vector>

#include "core/format.h"
#include "core/net.h"

namespace xnat {
namespace {

// The states connection_state() names.
std::vector<std::string> state_names()
{
    std::vector<std::string> names;
    for (uint8_t s = 0; s < XNAT_TCP_STATE_COUNT; ++s)
        names.push_back(tcp_state_name(s));
    names.emplace_back("UNREPLIED");
    names.emplace_back("REPLIED");
    return names;
}

bool tuple_has_addr(const xnat_ct_key &k, uint32_t addr_be)
{
    return k.saddr == addr_be || k.daddr == addr_be;
}

bool tuple_has_port(const xnat_ct_key &k, uint16_t port_be)
{
    return k.sport == port_be || k.dport == port_be;
}

std::string tuple_text(const xnat_ct_key &k, bool reply)
{
    std::string s = "src=" + format_ipv4_be(k.saddr) + " dst=" + format_ipv4_be(k.daddr) + " ";
    if (k.proto == XNAT_PROTO_ICMP) {
        // Echo keys carry the identifier as a port: (id, 0) for a request, (0, id) for a reply.
        unsigned id = reply ? ntohs(k.dport) : ntohs(k.sport);
        s += std::string("type=") + (reply ? "0" : "8") + " code=0 id=" + std::to_string(id);
    } else {
        s += "sport=" + std::to_string(ntohs(k.sport)) + " dport=" + std::to_string(ntohs(k.dport));
    }
    return s;
}

} // namespace

bool ConnFilter::matches(const Connection &c) const
{
    const xnat_ct_key &orig = c.original_key;
    const xnat_ct_key &reply = c.original.peer;
    if (proto && orig.proto != *proto)
        return false;
    if (addr) {
        uint32_t be = htonl(*addr);
        if (!tuple_has_addr(orig, be) && !tuple_has_addr(reply, be))
            return false;
    }
    if (port) {
        if (orig.proto == XNAT_PROTO_ICMP)
            return false;
        uint16_t be = htons(*port);
        if (!tuple_has_port(orig, be) && !tuple_has_port(reply, be))
            return false;
    }
    if (state && connection_state(c) != *state)
        return false;
    return true;
}

Result<ConnFilter> parse_conn_filter(std::string_view proto, std::string_view addr, std::string_view port,
                                     std::string_view state)
{
    ConnFilter f;
    if (!proto.empty()) {
        if (proto == "tcp")
            f.proto = XNAT_PROTO_TCP;
        else if (proto == "udp")
            f.proto = XNAT_PROTO_UDP;
        else if (proto == "icmp")
            f.proto = XNAT_PROTO_ICMP;
        else
            return invalid_input("--proto: '" + std::string(proto) + "' is not tcp, udp or icmp");
    }
    if (!addr.empty()) {
        auto a = parse_ipv4(addr);
        if (!a)
            return with_context("--addr", a.error());
        f.addr = *a;
    }
    if (!port.empty()) {
        unsigned long v = 0;
        bool digits = port.size() <= 5;
        for (char ch : port) {
            if (!std::isdigit(static_cast<unsigned char>(ch)))
                digits = false;
            else
                v = v * 10 + static_cast<unsigned long>(ch - '0');
        }
        if (!digits || v < 1 || v > 65535)
            return invalid_input("--port: '" + std::string(port) + "' is not a port number (1-65535)");
        f.port = static_cast<uint16_t>(v);
    }
    if (!state.empty()) {
        std::string upper;
        for (char ch : state)
            upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        std::string known;
        for (const auto &n : state_names()) {
            if (n == upper)
                f.state = n;
            known += (known.empty() ? "" : ", ") + n;
        }
        if (!f.state)
            return invalid_input("--state: '" + std::string(state) + "' is not a connection state (" + known +
                                 ")");
    }
    return f;
}

bool conntrack_assured(const Connection &c)
{
    return (c.original.flags & XNAT_CT_F_ASSURED) != 0;
}

std::string format_conntrack(const Connection &c, const xnat_timeouts &t, uint64_t now_ns,
                             ConntrackCounters counters)
{
    const xnat_ct_key &orig = c.original_key;
    bool replied = (c.original.flags & XNAT_CT_F_SEEN_REPLY) != 0;
    auto counts = [&](const auto &half) {
        if (counters == ConntrackCounters::off)
            return std::string(" ");
        return " packets=" + std::to_string(half.packets) + " bytes=" + std::to_string(half.bytes) + " ";
    };
    char head[64];
    std::snprintf(head, sizeof(head), "%-8s %u %llu ", std::string(proto_name(orig.proto)).c_str(),
                  unsigned{orig.proto}, static_cast<unsigned long long>(seconds_left(c, t, now_ns)));
    std::string line = head;
    if (orig.proto == XNAT_PROTO_TCP)
        line += tcp_state_name(c.original.state) + " ";
    line += tuple_text(orig, false) + counts(c.original);
    if (!replied)
        line += "[UNREPLIED] ";
    line += tuple_text(c.original.peer, true) + counts(c.reply);
    if (conntrack_assured(c))
        line += "[ASSURED] ";
    line += "mark=0 use=1";
    return line;
}

} // namespace xnat
