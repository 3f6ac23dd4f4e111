#include "import/iptables_rule.h"

#include <cctype>
#include <utility>

namespace xnat::iptables {

bool is_nat_target(const std::string &t)
{
    return t == "DNAT" || t == "SNAT" || t == "MASQUERADE";
}

const std::set<std::string> &builtin_chains(const std::string &table)
{
    static const std::set<std::string> nat{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"};
    static const std::set<std::string> filter{"INPUT", "FORWARD", "OUTPUT"};
    static const std::set<std::string> mangle{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"};
    static const std::set<std::string> raw{"PREROUTING", "OUTPUT"};
    static const std::set<std::string> none;
    if (table == "nat")
        return nat;
    if (table == "filter" || table == "security")
        return filter;
    if (table == "mangle")
        return mangle;
    if (table == "raw")
        return raw;
    return none;
}

Result<std::vector<std::string>> tokenize(std::string_view s)
{
    std::vector<std::string> out;
    size_t i = 0;
    auto space = [&](size_t k) { return std::isspace(static_cast<unsigned char>(s[k])) != 0; };
    while (i < s.size()) {
        while (i < s.size() && space(i))
            ++i;
        if (i >= s.size())
            break;
        std::string tok;
        while (i < s.size() && !space(i)) {
            char c = s[i];
            if (c != '"' && c != '\'') {
                tok += c;
                ++i;
                continue;
            }
            ++i;
            bool closed = false;
            while (i < s.size()) {
                if (c == '"' && s[i] == '\\' && i + 1 < s.size()) {
                    tok += s[i + 1];
                    i += 2;
                    continue;
                }
                if (s[i] == c) {
                    closed = true;
                    ++i;
                    break;
                }
                tok += s[i++];
            }
            if (!closed)
                return invalid_input(std::string("unterminated ") + (c == '"' ? "double" : "single") +
                                     " quote");
        }
        out.push_back(tok);
    }
    return out;
}

Result<uint16_t> parse_port_number(std::string_view text, const std::string &what)
{
    if (text.empty() || text.size() > 5)
        return invalid_input(what + ": expected a port number, got \"" + std::string(text) + "\"");
    uint32_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return invalid_input(what + ": expected a port number, got \"" + std::string(text) + "\"");
        v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    if (v > 65535)
        return invalid_input(what + ": port " + std::string(text) + " out of range (0-65535)");
    return static_cast<uint16_t>(v);
}

Result<PortRange> parse_dport(std::string_view text)
{
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) {
        auto p = parse_port_number(text, "--dport");
        if (!p)
            return p.error();
        return PortRange{*p, *p};
    }
    PortRange r{0, 65535};
    if (colon > 0) {
        auto lo = parse_port_number(text.substr(0, colon), "--dport");
        if (!lo)
            return lo.error();
        r.lo = *lo;
    }
    if (colon + 1 < text.size()) {
        auto hi = parse_port_number(text.substr(colon + 1), "--dport");
        if (!hi)
            return hi.error();
        r.hi = *hi;
    }
    // iptables accepts a reversed range and swaps it.
    if (r.lo > r.hi)
        std::swap(r.lo, r.hi);
    return r;
}

Result<PortRange> parse_nat_ports(std::string_view text, const std::string &what)
{
    size_t dash = text.find('-');
    auto lo = parse_port_number(text.substr(0, dash), what);
    if (!lo)
        return lo.error();
    PortRange r{*lo, *lo};
    if (dash != std::string_view::npos) {
        auto hi = parse_port_number(text.substr(dash + 1), what);
        if (!hi)
            return hi.error();
        if (*hi < *lo)
            return invalid_input(what + ": port range " + std::string(text) + " is reversed");
        r.hi = *hi;
    }
    return r;
}

Result<NatTarget> parse_nat_target(std::string_view text, const std::string &what)
{
    NatTarget t;
    size_t colon = text.find(':');
    std::string_view addrs = text.substr(0, colon);
    if (!addrs.empty()) {
        size_t dash = addrs.find('-');
        auto lo = parse_ipv4(addrs.substr(0, dash));
        if (!lo)
            return with_context(what, lo.error());
        t.addr_lo = t.addr_hi = *lo;
        if (dash != std::string_view::npos) {
            auto hi = parse_ipv4(addrs.substr(dash + 1));
            if (!hi)
                return with_context(what, hi.error());
            t.addr_hi = *hi;
        }
    }
    if (colon != std::string_view::npos) {
        std::string_view ports = text.substr(colon + 1);
        size_t slash = ports.find('/');
        auto r = parse_nat_ports(ports.substr(0, slash), what);
        if (!r)
            return r.error();
        t.ports = *r;
        if (slash != std::string_view::npos) {
            auto b = parse_port_number(ports.substr(slash + 1), what);
            if (!b)
                return b.error();
            t.base = *b;
        }
    }
    if (!t.addr_lo && !t.ports)
        return invalid_input(what + ": expected ADDRESS[:PORT], got \"" + std::string(text) + "\"");
    return t;
}

bool all_digits(const std::string &s)
{
    if (s.empty())
        return false;
    for (char c : s)
        if (c < '0' || c > '9')
            return false;
    return true;
}

} // namespace xnat::iptables
