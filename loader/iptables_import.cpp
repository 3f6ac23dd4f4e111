#include "iptables_import.h"

#include <cctype>
#include <cstdint>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "config.h"
#include "forward_table.h"
#include "masquerade.h"
#include "net.h"

namespace xnat {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

struct PortRange {
    uint16_t lo = 0;
    uint16_t hi = 0;
};

// One rule line, with the options xnat can act on picked out; anything else is a reason why
// it cannot be translated.
struct Rule {
    size_t line = 0;
    size_t entry = 0; // index of its line in the report
    std::string table;
    std::string chain;
    std::string proto;
    std::optional<Prefix> src, dst;
    bool src_neg = false, dst_neg = false;
    std::string in_if, out_if;
    bool in_neg = false, out_neg = false;
    std::optional<PortRange> dport;
    std::string target;
    std::string to_destination, to_source, to_ports;
    bool has_to_destination = false, has_to_source = false, has_to_ports = false;
    std::string tcp_flags;        // --tcp-flags MASK COMP, as "MASK COMP"
    bool clamp_mss_to_pmtu = false; // -j TCPMSS --clamp-mss-to-pmtu
    std::string set_mss;          // -j TCPMSS --set-mss N
    std::vector<std::string> unsupported;
    std::vector<std::string> notes; // true of the line whatever it becomes (-I's order)
};

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

// Splits a line as iptables-save quotes it ("--comment \"a b\""); single quotes too, for
// command lines copied from a shell.
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
                return invalid_input(std::string("unterminated ") + (c == '"' ? "double" : "single") + " quote");
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

// --dport as iptables writes it: N, N:M, :M (from 0) or N: (to 65535).
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

// PORT or PORT-PORT (--to-ports, and the port part of --to-destination/--to-source).
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

// --to-destination/--to-source: [ADDR[-ADDR]][:PORT[-PORT][/BASE]].
struct NatTarget {
    std::optional<uint32_t> addr_lo, addr_hi;
    std::optional<PortRange> ports;
    std::optional<uint16_t> base;
};

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

Result<Prefix> parse_rule_prefix(const std::string &text, const std::string &opt)
{
    auto p = parse_prefix(text);
    if (!p)
        return with_context(opt, p.error());
    return *p;
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

// Parses the options of one rule from t[start]. `table` is the current *table (save form) or
// "filter" (command form, until -t says otherwise). The command form also takes -I and -w,
// which iptables-save never writes.
Result<Rule> parse_rule(const std::vector<std::string> &t, size_t start, Rule r, bool command)
{
    bool neg = false;
    size_t i = start;
    auto take = [&](const std::string &opt) -> Result<std::string> {
        if (i + 1 >= t.size())
            return invalid_input(opt + ": missing value");
        i += 2;
        return t[i - 1];
    };
    auto refuse_neg = [&](const std::string &opt) {
        if (neg)
            r.unsupported.push_back("! " + opt + ": xnat cannot negate it");
    };
    while (i < t.size()) {
        const std::string o = t[i];
        if (o == "!") {
            if (neg)
                return invalid_input("\"!\" twice in a row");
            neg = true;
            ++i;
            continue;
        }
        if (i == start && o.size() > 2 && o.front() == '[' && o.back() == ']') { // -c counters
            ++i;
            continue;
        }
        if (o == "-A" || o == "--append") {
            auto v = take(o);
            if (!v)
                return v.error();
            r.chain = *v;
        } else if (command && (o == "-I" || o == "--insert")) {
            auto v = take(o);
            if (!v)
                return v.error();
            r.chain = *v;
            std::string at = "1";
            if (i < t.size() && all_digits(t[i]))
                at = t[i++];
            r.notes.push_back("-I " + r.chain + " " + at + ": iptables inserts at position " + at +
                              ", xnat-import takes the lines in input order; check the order where rules overlap");
        } else if (command && o.rfind("--wait=", 0) == 0) {
            if (neg)
                return invalid_input("\"!\" before --wait");
            ++i;
            continue;
        } else if (command && (o == "-w" || o == "--wait")) {
            if (neg)
                return invalid_input("\"!\" before " + o);
            // Waiting for the xtables lock is about running iptables, not about the rule.
            ++i;
            if (i < t.size() && all_digits(t[i]))
                ++i;
            continue;
        } else if (command && (o == "-W" || o == "--wait-interval")) {
            if (neg)
                return invalid_input("\"!\" before " + o);
            auto v = take(o);
            if (!v)
                return v.error();
            continue;
        } else if (o == "-t" || o == "--table") {
            auto v = take(o);
            if (!v)
                return v.error();
            r.table = *v;
        } else if (o == "-p" || o == "--protocol") {
            auto v = take(o);
            if (!v)
                return v.error();
            std::string p = *v;
            for (char &c : p)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (p == "6")
                p = "tcp";
            if (p == "17")
                p = "udp";
            if (neg)
                r.unsupported.push_back("! -p " + p + ": xnat cannot negate a protocol");
            else if (p != "all" && p != "0")
                r.proto = p;
        } else if (o == "-s" || o == "--source" || o == "--src" || o == "-d" || o == "--destination" ||
                   o == "--dst") {
            bool is_src = o == "-s" || o == "--source" || o == "--src";
            auto v = take(o);
            if (!v)
                return v.error();
            if (v->find(',') != std::string::npos) {
                r.unsupported.push_back(o + " " + *v + ": xnat takes one prefix per rule");
            } else {
                auto p = parse_rule_prefix(*v, is_src ? "-s" : "-d");
                if (!p)
                    return p.error();
                (is_src ? r.src : r.dst) = *p;
                (is_src ? r.src_neg : r.dst_neg) = neg;
            }
        } else if (o == "-i" || o == "--in-interface" || o == "-o" || o == "--out-interface") {
            bool is_in = o == "-i" || o == "--in-interface";
            auto v = take(o);
            if (!v)
                return v.error();
            if (!v->empty() && v->back() == '+')
                r.unsupported.push_back(o + " " + *v + ": xnat takes exact interface names, not wildcards");
            (is_in ? r.in_if : r.out_if) = *v;
            (is_in ? r.in_neg : r.out_neg) = neg;
        } else if (o == "-m" || o == "--match") {
            auto v = take(o);
            if (!v)
                return v.error();
            if (*v != "tcp" && *v != "udp" && *v != "comment")
                r.unsupported.push_back("-m " + *v + ": xnat has no such match");
        } else if (o == "--dport" || o == "--destination-port") {
            auto v = take(o);
            if (!v)
                return v.error();
            auto d = parse_dport(*v);
            if (!d)
                return d.error();
            if (neg)
                r.unsupported.push_back("! --dport " + *v + ": xnat cannot negate a port");
            else
                r.dport = *d;
        } else if (o == "--sport" || o == "--source-port") {
            auto v = take(o);
            if (!v)
                return v.error();
            r.unsupported.push_back(o + " " + *v + ": xnat rules do not match source ports");
        } else if (o == "-j" || o == "--jump" || o == "-g" || o == "--goto") {
            auto v = take(o);
            if (!v)
                return v.error();
            r.target = *v;
        } else if (o == "--to-destination" || o == "--to-source" || o == "--to-ports") {
            auto v = take(o);
            if (!v)
                return v.error();
            if (o == "--to-destination") {
                if (r.has_to_destination)
                    r.unsupported.push_back("several --to-destination: xnat forwards to one target");
                r.to_destination = *v;
                r.has_to_destination = true;
            } else if (o == "--to-source") {
                if (r.has_to_source)
                    r.unsupported.push_back("several --to-source: xnat masquerades to one address");
                r.to_source = *v;
                r.has_to_source = true;
            } else {
                r.to_ports = *v;
                r.has_to_ports = true;
            }
        } else if (o == "--tcp-flags") {
            if (i + 2 >= t.size())
                return invalid_input("--tcp-flags: expected MASK COMP");
            r.tcp_flags = t[i + 1] + " " + t[i + 2];
            i += 3;
            if (neg)
                r.unsupported.push_back("! --tcp-flags: xnat cannot negate it");
            neg = false;
            continue;
        } else if (o == "--clamp-mss-to-pmtu") {
            r.clamp_mss_to_pmtu = true;
            ++i;
        } else if (o == "--set-mss") {
            auto v = take(o);
            if (!v)
                return v.error();
            r.set_mss = *v;
        } else if (o == "--comment") {
            auto v = take(o);
            if (!v)
                return v.error();
        } else if (o == "--persistent") {
            // Keeps a client on one address of an address range; xnat targets one address.
            ++i;
        } else if (o == "--random" || o == "--random-fully") {
            r.unsupported.push_back(o + ": xnat keeps a source port when it is free and has no random port choice");
            ++i;
        } else if (o == "-f" || o == "--fragment") {
            r.unsupported.push_back(o + ": xnat does not translate fragments");
            ++i;
        } else if (o.size() > 1 && o[0] == '-') {
            // An option of a match or target xnat does not know: skip its values.
            std::string words = (neg ? "! " : "") + o;
            ++i;
            while (i < t.size() && t[i] != "!" && !(t[i].size() > 1 && t[i][0] == '-'))
                words += " " + t[i++];
            r.unsupported.push_back(words + ": not supported by xnat");
            neg = false;
            continue;
        } else {
            return invalid_input("unexpected \"" + o + "\"");
        }
        if (neg && o != "-p" && o != "--protocol" && o != "--dport" && o != "--destination-port" &&
            o != "-s" && o != "--source" && o != "--src" && o != "-d" && o != "--destination" &&
            o != "--dst" && o != "-i" && o != "--in-interface" && o != "-o" && o != "--out-interface")
            refuse_neg(o);
        neg = false;
    }
    if (neg)
        return invalid_input("\"!\" at the end of the line");
    if (r.chain.empty())
        return invalid_input("no -A CHAIN");
    // Malformed targets are bad input whether or not the rule is otherwise translatable.
    if (r.has_to_destination)
        if (auto d = parse_nat_target(r.to_destination, "--to-destination"); !d)
            return d.error();
    if (r.has_to_source)
        if (auto s = parse_nat_target(r.to_source, "--to-source"); !s)
            return s.error();
    if (r.has_to_ports)
        if (auto p = parse_nat_ports(r.to_ports, "--to-ports"); !p)
            return p.error();
    return r;
}

bool is_private(uint32_t a)
{
    return (a >> 24) == 10 || (a >> 20) == ((172u << 4) | 1u) || (a >> 16) == ((192u << 8) | 168u) ||
           (a >> 22) == ((100u << 2) | 1u);
}

bool prefix_within(const Prefix &outer, const Prefix &inner)
{
    return outer.len <= inner.len && outer.contains(inner.addr);
}

std::string one_line(const ordered_json &j)
{
    std::string s;
    if (j.is_object()) {
        s = "{ ";
        bool first = true;
        for (const auto &[k, v] : j.items()) {
            s += (first ? "" : ", ") + json(k).dump() + ": " + one_line(v);
            first = false;
        }
        return s + " }";
    }
    if (j.is_array()) {
        s = "[";
        for (size_t i = 0; i < j.size(); ++i)
            s += (i ? ", " : "") + one_line(j[i]);
        return s + "]";
    }
    return j.dump();
}

std::string render(const std::vector<ordered_json> &forwards, const std::vector<ordered_json> &masq,
                   const ordered_json &mss_clamp)
{
    std::vector<std::string> parts;
    auto list = [&](const char *key, const std::vector<ordered_json> &items) {
        std::string s = std::string("  \"") + key + "\": [\n";
        for (size_t i = 0; i < items.size(); ++i)
            s += "    " + one_line(items[i]) + (i + 1 < items.size() ? ",\n" : "\n");
        parts.push_back(s + "  ]");
    };
    if (!forwards.empty())
        list("port_forwards", forwards);
    if (!masq.empty())
        list("masquerade", masq);
    if (!mss_clamp.is_null())
        parts.push_back("  \"mss_clamp\": " + mss_clamp.dump());
    if (parts.empty())
        return "{}\n";
    std::string s = "{\n";
    for (size_t i = 0; i < parts.size(); ++i)
        s += parts[i] + (i + 1 < parts.size() ? ",\n" : "\n");
    return s + "}\n";
}

std::string join(const std::vector<std::string> &parts)
{
    std::string s;
    for (size_t i = 0; i < parts.size(); ++i)
        s += (i ? "; " : "") + parts[i];
    return s;
}

// The translation state: rules accepted so far, and the interface roles.
class Translator {
  public:
    Translator(std::vector<Rule> rules, ImportReport &rep, const ImportOptions &opts)
        : rules_(std::move(rules)), rep_(rep), wan_(opts.wan), lan_(opts.lan), wan_address_(opts.wan_address)
    {
    }

    void run()
    {
        learn_wan();
        for (size_t i = 0; i < rules_.size(); ++i) {
            const Rule &r = rules_[i];
            ImportLine &out = rep_.lines[r.entry];
            if (merged_.count(i)) // the udp half of a tcp+udp pair, reported with its twin
                continue;
            out.outcome = LineOutcome::unsupported;
            out.message = translate(i, out.outcome);
            if (!r.notes.empty())
                out.message += " (" + join(r.notes) + ")";
        }
        rep_.wan = wan_;
        rep_.lan = lan_;
        rep_.config_json = render(forward_json_, masq_json_, mss_json_);
    }

  private:
    std::vector<Rule> rules_;
    ImportReport &rep_;
    std::string wan_, lan_;
    size_t wan_line_ = 0;
    std::vector<LabelledForward> forwards_;
    std::vector<ordered_json> forward_json_;
    struct MasqSeen {
        Masquerade m;
        size_t line;
        std::set<std::string> protos; // the -p it took (tcp, udp, both); empty: every protocol
    };
    std::vector<MasqSeen> masq_;
    std::vector<ordered_json> masq_json_;
    std::set<size_t> merged_; // rules already reported as merged into an earlier one
    std::optional<uint32_t> wan_address_;
    ordered_json mss_json_;   // the mss_clamp value, null when no TCPMSS rule was taken
    size_t mss_line_ = 0;

    // The WAN is where SNAT and MASQUERADE send packets out (-o), unless --wan says so.
    void learn_wan()
    {
        if (!wan_.empty())
            return;
        for (const Rule &r : rules_)
            if (r.table == "nat" && r.chain == "POSTROUTING" && (r.target == "SNAT" || r.target == "MASQUERADE") &&
                !r.out_if.empty() && !r.out_neg && r.out_if.back() != '+' && r.out_if != lan_) {
                wan_ = r.out_if;
                wan_line_ = r.line;
                return;
            }
    }

    std::string translate(size_t idx, LineOutcome &outcome)
    {
        const Rule &r = rules_[idx];
        if (r.target == "TCPMSS")
            return translate_tcpmss(r, outcome);
        if (r.table != "nat")
            return "table " + r.table +
                   ": xnat does NAT only, and the packets it redirects bypass netfilter";
        if (!builtin_chains("nat").count(r.chain))
            return "user chain " + r.chain + ": xnat has no chains; write its rules into PREROUTING or POSTROUTING";
        if (r.chain == "INPUT" || r.chain == "OUTPUT")
            return "chain " + r.chain + ": xnat translates forwarded traffic, not the gateway's own";
        if (!r.unsupported.empty())
            return join(r.unsupported);
        if (r.target.empty()) {
            outcome = LineOutcome::no_effect;
            return "no -j: the rule only counts packets";
        }
        if (r.target == "ACCEPT" || r.target == "RETURN")
            return translate_accept(idx, outcome);
        if (!is_nat_target(r.target)) {
            return "-j " + r.target + ": not supported by xnat (DNAT, SNAT and MASQUERADE are)";
        }
        if (r.target == "DNAT") {
            if (r.chain != "PREROUTING")
                return "-j DNAT in " + r.chain + ": xnat forwards in PREROUTING only";
            return translate_dnat(r, outcome);
        }
        if (r.chain != "POSTROUTING")
            return "-j " + r.target + " in " + r.chain + ": xnat masquerades in POSTROUTING only";
        return translate_masquerade(idx, outcome);
    }

    // TCPMSS on SYNs, in mangle's FORWARD or POSTROUTING, as the usual PPPoE recipe writes it.
    // xnat clamps every SYN it translates, in both directions, so an -o or -i on the rule
    // makes the config wider, never narrower: said in the note.
    std::string translate_tcpmss(const Rule &r, LineOutcome &outcome)
    {
        if (r.table != "mangle" || (r.chain != "FORWARD" && r.chain != "POSTROUTING"))
            return "-j TCPMSS in " + r.table + " " + r.chain +
                   ": xnat clamps forwarded SYNs, as TCPMSS in mangle FORWARD or POSTROUTING does";
        if (!r.unsupported.empty())
            return join(r.unsupported);
        if (r.proto != "tcp")
            return "-j TCPMSS without -p tcp: iptables refuses it";
        if (r.tcp_flags != "SYN,RST SYN" && r.tcp_flags != "SYN SYN")
            return "-j TCPMSS on " + (r.tcp_flags.empty() ? std::string("every TCP segment") : "--tcp-flags " + r.tcp_flags) +
                   ": xnat clamps SYNs only (--tcp-flags SYN,RST SYN)";
        if (r.src || r.dst)
            return "-s or -d with -j TCPMSS: xnat clamps every SYN it translates";
        if (r.clamp_mss_to_pmtu == !r.set_mss.empty())
            return "-j TCPMSS needs one of --clamp-mss-to-pmtu and --set-mss";
        ordered_json value;
        if (r.clamp_mss_to_pmtu) {
            value = "pmtu";
        } else {
            if (!all_digits(r.set_mss) || r.set_mss.size() > 5 || std::stoul(r.set_mss) < XNAT_MSS_CLAMP_MIN ||
                std::stoul(r.set_mss) > XNAT_MSS_CLAMP_MAX)
                return "--set-mss " + r.set_mss + ": xnat clamps to " + std::to_string(XNAT_MSS_CLAMP_MIN) +
                       "-" + std::to_string(XNAT_MSS_CLAMP_MAX);
            value = std::stoul(r.set_mss);
        }
        if (mss_line_)
            return "a second -j TCPMSS: line " + std::to_string(mss_line_) + " already sets the clamp";
        mss_json_ = value;
        mss_line_ = r.line;
        outcome = LineOutcome::translated;
        std::string msg = "\"mss_clamp\": " + value.dump();
        if (!r.in_if.empty() || !r.out_if.empty())
            msg += " (wider: xnat clamps the SYNs it translates in both directions, whatever the interface)";
        return msg;
    }

    // An ACCEPT or RETURN in a NAT chain exempts packets from the NAT rules after it. xnat has
    // no exemptions, so it is harmless only when no NAT rule follows in its chain.
    std::string translate_accept(size_t idx, LineOutcome &outcome)
    {
        const Rule &r = rules_[idx];
        for (size_t k = idx + 1; k < rules_.size(); ++k) {
            const Rule &later = rules_[k];
            if (later.table == r.table && later.chain == r.chain && is_nat_target(later.target))
                return "-j " + r.target + " exempts packets from the NAT rule on line " +
                       std::to_string(later.line) + "; xnat has no exemptions (for destinations, use "
                       "! -d on the SNAT/MASQUERADE rule)";
        }
        outcome = LineOutcome::no_effect;
        return "-j " + r.target + " with no NAT rule after it in " + r.chain;
    }

    // Which interface's ingress a DNAT applies on, from -i, or from the address when -i is absent.
    // `wan_filled`: -d came from --wan-address, so an unknown -i is the WAN.
    std::optional<Side> dnat_side(const Rule &r, const Prefix &dst, bool wan_filled, std::string &note,
                                  std::string &why_not)
    {
        Side guess = wan_filled ? Side::wan : is_private(dst.addr) ? Side::lan : Side::wan;
        if (r.in_if.empty()) {
            note = std::string("no -i: on ") + std::string(side_name(guess)) + ", as " +
                   format_ipv4(dst.addr) + (guess == Side::lan ? " is a private address" : " is not a private address");
            return guess;
        }
        if (r.in_neg) {
            why_not = "! -i " + r.in_if + ": xnat cannot negate an interface";
            return std::nullopt;
        }
        if (r.in_if == wan_)
            return Side::wan;
        if (r.in_if == lan_)
            return Side::lan;
        if (!wan_.empty() && !lan_.empty()) {
            why_not = "-i " + r.in_if + " is neither the WAN (" + wan_ + ") nor the LAN (" + lan_ + ") interface";
            return std::nullopt;
        }
        Side side = !wan_.empty() ? Side::lan : !lan_.empty() ? Side::wan : guess;
        (side == Side::wan ? wan_ : lan_) = r.in_if;
        note = "-i " + r.in_if + " taken as the " + (side == Side::wan ? "WAN" : "LAN") + " interface";
        return side;
    }

    std::string translate_dnat(const Rule &r, LineOutcome &outcome)
    {
        if (r.proto != "tcp" && r.proto != "udp")
            return r.proto.empty() ? "DNAT without -p tcp or -p udp: xnat forwards TCP and UDP ports only"
                                   : "-p " + r.proto + ": xnat forwards TCP and UDP only";
        if (r.src)
            return "-s: xnat forwards match the destination only";
        if (!r.out_if.empty())
            return "-o in PREROUTING: not a valid match";
        if (r.has_to_ports)
            return "--to-ports with -j DNAT: iptables refuses it (the port goes in --to-destination ADDR:PORT)";
        // A DNAT on -i WAN without -d is the usual form for a WAN address that changes: it
        // becomes a forward from wan:PORT, on whatever address the WAN has (--wan-address pins
        // one instead). On other interfaces it catches every destination, which xnat cannot.
        std::string wan_note;
        bool from_wan = false;
        Prefix dst{};
        if (r.dst) {
            dst = *r.dst;
        } else if (r.in_if.empty() || r.in_neg) {
            return "DNAT without -d or -i: iptables forwards the port on every destination from every interface; "
                   "xnat forwards need the destination address, or -i naming the WAN interface";
        } else if (r.in_if == lan_) {
            return "DNAT without -d on the LAN interface " + r.in_if +
                   ": iptables forwards the port for every destination; xnat forwards match one address";
        } else if (wan_address_) {
            dst = Prefix{*wan_address_, 32};
            wan_note = "no -d: the WAN address " + format_ipv4(*wan_address_) + " from --wan-address";
        } else {
            from_wan = true;
            wan_note = "no -d: the WAN interface's address, whatever it is";
        }
        if (r.dst_neg)
            return "! -d on a DNAT: xnat forwards match one destination";
        if (dst.len != 32)
            return "-d " + format_prefix(dst) + ": DNAT sends every address of the prefix to one target; "
                   "xnat forwards map one to one";
        if (!r.dport)
            return "DNAT without --dport: xnat forwards need a port or port range";
        if (!r.has_to_destination)
            return "DNAT without --to-destination";
        auto target = parse_nat_target(r.to_destination, "--to-destination");
        if (!target)
            return target.error().message;
        if (target->addr_lo && *target->addr_lo != *target->addr_hi)
            return "--to-destination " + r.to_destination +
                   ": an address range is chosen from per connection; xnat forwards to one address";
        if (!target->addr_lo || *target->addr_lo == dst.addr)
            return "--to-destination " + r.to_destination +
                   ": keeps the address, a redirect to the gateway itself; xnat forwards to other hosts";
        uint32_t to_addr = *target->addr_lo;
        PortRange from = *r.dport, to = from;
        if (target->ports) {
            PortRange p = *target->ports;
            uint32_t n = uint32_t{from.hi} - from.lo + 1;
            if (target->base) {
                // --to-destination ADDR:LO-HI/BASE: port d goes to LO + (d - BASE) mod size.
                uint32_t size = uint32_t{p.hi} - p.lo + 1;
                if (from.lo < *target->base || uint32_t{from.hi} - *target->base >= size)
                    return "--to-destination " + r.to_destination + ": ports " + std::to_string(from.lo) + "-" +
                           std::to_string(from.hi) + " wrap around the target range; xnat maps ranges one to one";
                to.lo = static_cast<uint16_t>(p.lo + (from.lo - *target->base));
                to.hi = static_cast<uint16_t>(to.lo + n - 1);
            } else if (p.lo == p.hi) {
                if (n != 1)
                    return "--dport " + std::to_string(from.lo) + ":" + std::to_string(from.hi) +
                           " to the single port " + std::to_string(p.lo) +
                           ": iptables sends every port to one; xnat maps ranges one to one "
                           "(--to-destination ADDR:LO-HI/BASE keeps the offset)";
                to = p;
            } else if (p.lo <= from.lo && from.hi <= p.hi) {
                // Ports already inside the target range are kept by netfilter.
                to = from;
            } else {
                return "--to-destination " + r.to_destination +
                       ": netfilter picks a port of the range per connection; xnat maps ports one to one";
            }
        }
        std::string note, why_not;
        auto side = dnat_side(r, dst, !wan_note.empty(), note, why_not);
        if (!side)
            return why_not;
        if (!wan_note.empty()) {
            if (*side != Side::wan)
                return "DNAT without -d on the LAN interface " + r.in_if +
                       ": iptables forwards the port for every destination; xnat forwards match one address";
            note = wan_note + (note.empty() ? "" : "; " + note);
        }
        auto range = [](PortRange p) {
            return std::to_string(p.lo) + (p.lo == p.hi ? "" : "-" + std::to_string(p.hi));
        };
        ForwardFieldNames names{"-p", "-d/--dport", "--to-destination", "-i"};
        auto fwd = make_port_forward(r.proto, (from_wan ? "wan" : format_ipv4(dst.addr)) + ":" + range(from),
                                     format_ipv4(to_addr) + ":" + range(to), side_name(*side), names);
        if (!fwd)
            return fwd.error().message;
        std::string label = "line " + std::to_string(r.line);
        // A rule an earlier one covers entirely never sees a packet in iptables either.
        for (const LabelledForward &e : forwards_) {
            const PortForward &f = e.fwd;
            if (f.proto == fwd->proto && f.side == fwd->side && f.from_wan == fwd->from_wan &&
                f.from.prefix_len == 32 && f.from.addr == fwd->from.addr && f.from.port_lo <= fwd->from.port_lo &&
                fwd->from.port_hi <= f.from.port_hi) {
                outcome = LineOutcome::no_effect;
                return "never reached: " + e.label + " forwards " + describe(f) + " first";
            }
        }
        auto all = forwards_;
        all.push_back({*fwd, label, 0});
        if (auto table = expand_forwards(all); !table) {
            std::string msg = table.error().message;
            if (msg.rfind(label + ": ", 0) == 0)
                msg = msg.substr(label.size() + 2);
            return msg + " (the first match wins in iptables; xnat refuses overlaps)";
        }
        forwards_ = std::move(all);
        std::string path = "port_forwards[" + std::to_string(forward_json_.size()) + "]";
        ordered_json j;
        j["proto"] = r.proto;
        j["on"] = std::string(side_name(fwd->side));
        j["from"] = format_forward_from(*fwd);
        j["to"] = format_endpoint(fwd->to);
        forward_json_.push_back(j);
        outcome = LineOutcome::translated;
        return path + ": " + describe(*fwd) + (note.empty() ? "" : " (" + note + ")");
    }

    // The other half of a -p tcp/-p udp pair alike in everything else: iptables wants -p for
    // --to-ports and for ports in --to-source, so this is how a masquerade with ports is
    // written. Only the next rule of the chain, so that no rule sits between the halves.
    std::optional<size_t> twin_of(size_t idx) const
    {
        const Rule &r = rules_[idx];
        for (size_t k = idx + 1; k < rules_.size(); ++k) {
            const Rule &n = rules_[k];
            if (n.table != r.table || n.chain != r.chain)
                continue;
            bool other = (r.proto == "tcp" && n.proto == "udp") || (r.proto == "udp" && n.proto == "tcp");
            if (other && n.unsupported.empty() && n.src == r.src && n.src_neg == r.src_neg && n.dst == r.dst &&
                n.dst_neg == r.dst_neg && n.in_if == r.in_if && n.in_neg == r.in_neg && n.out_if == r.out_if &&
                n.out_neg == r.out_neg && !n.dport && n.target == r.target && n.has_to_source == r.has_to_source &&
                n.to_source == r.to_source && n.has_to_ports == r.has_to_ports && n.to_ports == r.to_ports)
                return k;
            return std::nullopt;
        }
        return std::nullopt;
    }

    std::string translate_masquerade(size_t idx, LineOutcome &outcome)
    {
        const Rule &r = rules_[idx];
        // xnat's masquerade covers TCP, UDP and ICMP at once. A tcp+udp pair becomes one rule
        // that also takes ICMP; a lone tcp or udp rule, one that also takes the other protocol.
        // Wider, not different: what iptables leaves out leaves the gateway with the LAN's
        // private source address, which the internet does not route back.
        std::optional<size_t> twin;
        std::string proto_note;
        if (!r.proto.empty()) {
            if (r.proto != "tcp" && r.proto != "udp")
                return "-p " + r.proto + ": xnat masquerades TCP, UDP and ICMP together; only -p tcp and -p udp "
                       "rules translate";
            std::string from = r.src ? format_prefix(*r.src) : std::string("every source");
            twin = twin_of(idx);
            if (twin)
                proto_note = "with line " + std::to_string(rules_[*twin].line) + "'s -p " + rules_[*twin].proto +
                             "; wider: xnat also masquerades ICMP from " + from + ", which iptables leaves untranslated";
            else
                proto_note = "wider: -p " + r.proto + " only, but xnat also masquerades " +
                             (r.proto == "tcp" ? "UDP" : "TCP") + " and ICMP from " + from +
                             ", which iptables leaves untranslated";
        }
        if (r.dport)
            return "--dport: xnat masquerade does not match ports";
        if (!r.in_if.empty())
            return "-i in POSTROUTING: not a valid match";
        if (r.src && r.src_neg)
            return "! -s: xnat masquerade matches source prefixes, not their complement";
        if (r.dst && !r.dst_neg)
            return "-d: xnat masquerade matches destinations only by exclusion (! -d)";
        std::string note;
        if (r.out_if.empty()) {
            note = "no -o: xnat masquerades only what leaves through the WAN interface";
        } else if (r.out_neg) {
            return "! -o " + r.out_if + ": xnat masquerades what leaves through the WAN interface";
        } else if (r.out_if == lan_) {
            return "-o " + r.out_if + " is the LAN interface; xnat masquerades only out of the WAN interface";
        } else if (r.out_if != wan_) {
            return "-o " + r.out_if + ": xnat masquerades only out of the WAN interface, taken to be " + wan_ +
                   (wan_line_ ? " (line " + std::to_string(wan_line_) + ")" : " (--wan)");
        }
        ordered_json j;
        Prefix source = r.src ? *r.src : Prefix{0, 0};
        j["source"] = format_prefix(source);
        if (r.dst)
            j["not_destination"] = ordered_json::array({format_prefix(*r.dst)});
        if (r.target == "SNAT") {
            if (!r.has_to_source)
                return "SNAT without --to-source";
            if (r.has_to_ports)
                return "--to-ports belongs to MASQUERADE";
            auto t = parse_nat_target(r.to_source, "--to-source");
            if (!t)
                return t.error().message;
            if (!t->addr_lo)
                return "--to-source " + r.to_source + ": no address";
            if (*t->addr_lo != *t->addr_hi)
                return "--to-source " + r.to_source + ": an address range; xnat masquerades to one address";
            if (t->base)
                return "--to-source " + r.to_source + ": /BASE is for DNAT";
            j["to_source"] = format_ipv4(*t->addr_lo);
            if (t->ports)
                j["ports"] = std::to_string(t->ports->lo) + "-" + std::to_string(t->ports->hi);
        } else {
            if (r.has_to_source)
                return "--to-source belongs to SNAT";
            if (r.has_to_ports) {
                auto p = parse_nat_ports(r.to_ports, "--to-ports");
                if (!p)
                    return p.error().message;
                j["ports"] = std::to_string(p->lo) + "-" + std::to_string(p->hi);
            }
        }
        auto m = parse_masquerade(json::parse(j.dump()), "masquerade");
        if (!m)
            return m.error().message;
        // iptables takes the first matching rule, xnat the most specific source prefix.
        for (const MasqSeen &e : masq_) {
            std::string at = "line " + std::to_string(e.line);
            if (prefix_within(e.m.source, m->source)) {
                bool takes_mine = e.protos.empty() || (!r.proto.empty() && e.protos.count(r.proto) != 0);
                if (e.m.not_destination.empty() && takes_mine) {
                    outcome = LineOutcome::no_effect;
                    std::string which;
                    for (const std::string &p : e.protos)
                        which += (which.empty() ? " (" : ", ") + p;
                    return "never reached: " + at + " masquerades all of " + format_prefix(e.m.source) +
                           (which.empty() ? "" : which + ")") + " first";
                }
                if (e.m.source == m->source)
                    return at + " already masquerades " + format_prefix(m->source) +
                           "; xnat takes one rule per source prefix";
                return at + " comes first for " + format_prefix(e.m.source) +
                       " in iptables, but xnat would prefer this more specific prefix";
            }
            if (prefix_within(m->source, e.m.source))
                for (const Prefix &ex : e.m.not_destination) {
                    bool also = false;
                    for (const Prefix &mine : m->not_destination)
                        also = also || prefix_within(mine, ex);
                    if (!also)
                        return "iptables masquerades traffic from " + format_prefix(e.m.source) + " to " +
                               format_prefix(ex) + " by this rule after " + at +
                               " exempts it; xnat applies only the most specific source's rule";
                }
        }
        std::set<std::string> protos;
        if (!r.proto.empty())
            protos.insert(r.proto);
        if (twin)
            protos.insert(rules_[*twin].proto);
        masq_.push_back({*m, r.line, protos});
        std::string path = "masquerade[" + std::to_string(masq_json_.size()) + "]";
        masq_json_.push_back(j);
        outcome = LineOutcome::translated;
        if (twin) {
            const Rule &t = rules_[*twin];
            merged_.insert(*twin);
            ImportLine &l = rep_.lines[t.entry];
            l.outcome = LineOutcome::translated;
            l.message = path + ": merged with line " + std::to_string(r.line) + "'s -p " + r.proto +
                        " (xnat masquerades TCP and UDP in one rule)" +
                        (t.notes.empty() ? "" : " (" + join(t.notes) + ")");
        }
        std::string notes = proto_note;
        if (!note.empty())
            notes += std::string(notes.empty() ? "" : "; ") + note;
        if (!r.src)
            notes += std::string(notes.empty() ? "" : "; ") + "no -s: every source on the LAN";
        if (r.target == "MASQUERADE")
            notes += std::string(notes.empty() ? "" : "; ") + "to the WAN address read at load time";
        return path + ": " + describe(*m) + (notes.empty() ? "" : " (" + notes + ")");
    }
};

std::string trim(std::string_view s)
{
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
    return std::string(s.substr(b, e - b));
}

} // namespace

size_t ImportReport::count(LineOutcome o) const
{
    size_t n = 0;
    for (const ImportLine &l : lines)
        n += l.outcome == o;
    return n;
}

std::string_view outcome_name(LineOutcome o)
{
    switch (o) {
    case LineOutcome::translated:
        return "translated";
    case LineOutcome::no_effect:
        return "no effect";
    case LineOutcome::unsupported:
        return "unsupported";
    }
    return "?";
}

Result<ImportReport> import_iptables(std::string_view text, const ImportOptions &opts)
{
    if (!opts.wan.empty() && opts.wan == opts.lan)
        return invalid_input("--wan and --lan both name " + opts.wan);
    ImportReport rep;
    std::vector<Rule> rules;
    std::string table;
    size_t lineno = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        ++lineno;
        auto at = [&](const Error &e) { return invalid_input("line " + std::to_string(lineno) + ": " + e.message); };
        if (line.empty() || line[0] == '#')
            continue;
        if (line[0] == '*') {
            table = trim(std::string_view(line).substr(1));
            if (table.empty())
                return at(invalid_input("\"*\" without a table name"));
            continue;
        }
        if (line == "COMMIT") {
            if (table.empty())
                return at(invalid_input("COMMIT outside a table"));
            table.clear();
            continue;
        }
        auto tokens = tokenize(line);
        if (!tokens)
            return at(tokens.error());
        if (line[0] == ':') {
            if (table.empty())
                return at(invalid_input("chain " + line + " before any *table"));
            if (tokens->size() < 2)
                return at(invalid_input("expected \":CHAIN POLICY [PACKETS:BYTES]\", got \"" + line + "\""));
            std::string chain = tokens->at(0).substr(1), policy = tokens->at(1);
            ImportLine l{lineno, LineOutcome::no_effect, ""};
            if (policy == "-") {
                l.message = "user chain " + chain + " declared (its rules are reported on their own lines)";
            } else if (!builtin_chains(table).count(chain)) {
                return at(invalid_input("chain " + chain + " has a policy but is not a built-in chain of table " + table));
            } else if (policy == "ACCEPT") {
                l.message = "policy ACCEPT of " + table + " " + chain;
            } else {
                l.outcome = LineOutcome::unsupported;
                l.message = "policy " + policy + " of " + table + " " + chain +
                            ": xnat does no filtering, and the packets it redirects bypass netfilter";
            }
            rep.lines.push_back(l);
            continue;
        }
        Rule r;
        r.line = lineno;
        size_t start = 0;
        if (tokens->at(0) == "iptables" || tokens->at(0) == "iptables-legacy" || tokens->at(0) == "iptables-nft") {
            r.table = "filter"; // iptables' default, until -t names another
            start = 1;
        } else {
            const std::string &first = tokens->at(0);
            bool counters = first.size() > 2 && first.front() == '[' && first.back() == ']';
            if (first != "-A" && first != "--append" && !counters)
                return at(invalid_input("expected a rule (-A CHAIN ...), a chain (:CHAIN POLICY), *TABLE or "
                                        "COMMIT, got \"" + first + "\""));
            if (table.empty())
                return at(invalid_input("rule before any *table line"));
            r.table = table;
        }
        auto parsed = parse_rule(*tokens, start, r, start == 1);
        if (!parsed)
            return at(parsed.error());
        parsed->entry = rep.lines.size();
        rep.lines.push_back({lineno, LineOutcome::unsupported, ""});
        rules.push_back(std::move(*parsed));
    }
    if (!table.empty())
        return invalid_input("table " + table + " has no COMMIT at the end of the input");

    Translator(std::move(rules), rep, opts).run();
    if (auto check = parse_config(rep.config_json); !check)
        return system_error("the generated config is refused (a bug in xnat-import): " + check.error().message);
    return rep;
}

} // namespace xnat
