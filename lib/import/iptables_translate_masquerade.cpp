// SNAT and MASQUERADE rules into masquerade rules.
#include "import/iptables_translator.h"

namespace xnat::iptables {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

bool prefix_within(const Prefix &outer, const Prefix &inner)
{
    return outer.len <= inner.len && outer.contains(inner.addr);
}

std::string ports_text(PortRange p)
{
    return std::to_string(p.lo) + "-" + std::to_string(p.hi);
}

// The config entry, from -s, ! -d and the target's options.
Result<ordered_json> masquerade_json(const Rule &r)
{
    ordered_json j;
    Prefix source = r.src ? *r.src : Prefix{0, 0};
    j["source"] = format_prefix(source);
    if (r.dst)
        j["not_destination"] = ordered_json::array({format_prefix(*r.dst)});
    if (r.target != "SNAT") {
        if (r.has_to_source)
            return invalid_input("--to-source belongs to SNAT");
        if (r.has_to_ports) {
            auto p = parse_nat_ports(r.to_ports, "--to-ports");
            if (!p)
                return p.error();
            j["ports"] = ports_text(*p);
        }
        return j;
    }
    if (!r.has_to_source)
        return invalid_input("SNAT without --to-source");
    if (r.has_to_ports)
        return invalid_input("--to-ports belongs to MASQUERADE");
    auto t = parse_nat_target(r.to_source, "--to-source");
    if (!t)
        return t.error();
    if (!t->addr_lo)
        return invalid_input("--to-source " + r.to_source + ": no address");
    if (*t->addr_lo != *t->addr_hi)
        return invalid_input("--to-source " + r.to_source +
                             ": an address range; xnat masquerades to one address");
    if (t->base)
        return invalid_input("--to-source " + r.to_source + ": /BASE is for DNAT");
    j["to_source"] = format_ipv4(*t->addr_lo);
    if (t->ports)
        j["ports"] = ports_text(*t->ports);
    return j;
}

void add_note(std::string &notes, const std::string &note)
{
    if (!note.empty())
        notes += std::string(notes.empty() ? "" : "; ") + note;
}

} // namespace

Translation Translator::translate_masquerade(size_t idx)
{
    const Rule &r = rules_[idx];
    auto protos = masquerade_protocols(idx);
    if (!protos)
        return unsupported(protos.error().message);
    auto match_note = masquerade_match(r);
    if (!match_note)
        return unsupported(match_note.error().message);
    auto j = masquerade_json(r);
    if (!j)
        return unsupported(j.error().message);
    auto m = parse_masquerade(json::parse(j->dump()), "masquerade");
    if (!m)
        return unsupported(m.error().message);
    if (auto conflict = masquerade_conflict(r, *m))
        return *conflict;
    return add_masquerade(idx, *m, *j, *protos, *match_note);
}

// The other half of a -p tcp/-p udp pair alike in everything else: iptables wants -p for
// --to-ports and for ports in --to-source, so this is how a masquerade with ports is
// written. Only the next rule of the chain, so that no rule sits between the halves.
std::optional<size_t> Translator::twin_of(size_t idx) const
{
    const Rule &r = rules_[idx];
    for (size_t k = idx + 1; k < rules_.size(); ++k) {
        const Rule &n = rules_[k];
        if (n.table != r.table || n.chain != r.chain)
            continue;
        bool other = (r.proto == "tcp" && n.proto == "udp") || (r.proto == "udp" && n.proto == "tcp");
        if (other && n.unsupported.empty() && n.src == r.src && n.src_neg == r.src_neg && n.dst == r.dst &&
            n.dst_neg == r.dst_neg && n.in_if == r.in_if && n.in_neg == r.in_neg && n.out_if == r.out_if &&
            n.out_neg == r.out_neg && !n.dport && n.target == r.target &&
            n.has_to_source == r.has_to_source && n.to_source == r.to_source &&
            n.has_to_ports == r.has_to_ports && n.to_ports == r.to_ports)
            return k;
        return std::nullopt;
    }
    return std::nullopt;
}

// xnat's masquerade covers TCP, UDP and ICMP at once. A tcp+udp pair becomes one rule that
// also takes ICMP; a lone tcp or udp rule, one that also takes the other protocol. Wider, not
// different: what iptables leaves out leaves the gateway with the LAN's private source
// address, which the internet does not route back.
Result<Translator::MasqProtocols> Translator::masquerade_protocols(size_t idx) const
{
    const Rule &r = rules_[idx];
    if (r.proto.empty())
        return MasqProtocols{};
    if (r.proto != "tcp" && r.proto != "udp")
        return invalid_input(
            "-p " + r.proto +
            ": xnat masquerades TCP, UDP and ICMP together; only -p tcp and -p udp rules translate");
    std::string from = r.src ? format_prefix(*r.src) : std::string("every source");
    std::optional<size_t> twin = twin_of(idx);
    if (twin)
        return MasqProtocols{twin, "with line " + std::to_string(rules_[*twin].line) + "'s -p " +
                                       rules_[*twin].proto + "; wider: xnat also masquerades ICMP from " +
                                       from + ", which iptables leaves untranslated"};
    return MasqProtocols{std::nullopt, "wider: -p " + r.proto + " only, but xnat also masquerades " +
                                           (r.proto == "tcp" ? "UDP" : "TCP") + " and ICMP from " + from +
                                           ", which iptables leaves untranslated"};
}

// The matches xnat's masquerade can take: a source prefix, destinations by exclusion, and
// what leaves through the WAN interface. Gives the note to report when -o is absent.
Result<std::string> Translator::masquerade_match(const Rule &r) const
{
    if (r.dport)
        return invalid_input("--dport: xnat masquerade does not match ports");
    if (!r.in_if.empty())
        return invalid_input("-i in POSTROUTING: not a valid match");
    if (r.src && r.src_neg)
        return invalid_input("! -s: xnat masquerade matches source prefixes, not their complement");
    if (r.dst && !r.dst_neg)
        return invalid_input("-d: xnat masquerade matches destinations only by exclusion (! -d)");
    if (r.out_if.empty())
        return std::string("no -o: xnat masquerades only what leaves through the WAN interface");
    if (r.out_neg)
        return invalid_input("! -o " + r.out_if + ": xnat masquerades what leaves through the WAN interface");
    if (r.out_if == lan_)
        return invalid_input("-o " + r.out_if +
                             " is the LAN interface; xnat masquerades only out of the WAN interface");
    if (r.out_if != wan_)
        return invalid_input("-o " + r.out_if +
                             ": xnat masquerades only out of the WAN interface, taken to be " + wan_ +
                             (wan_line_ ? " (line " + std::to_string(wan_line_) + ")" : " (--wan)"));
    return std::string();
}

// iptables takes the first matching rule, xnat the most specific source prefix: the reason
// this rule cannot join the earlier ones, if there is one.
std::optional<Translation> Translator::masquerade_conflict(const Rule &r, const Masquerade &m) const
{
    for (const MasqSeen &e : masq_) {
        std::string at = "line " + std::to_string(e.line);
        if (prefix_within(e.m.source, m.source)) {
            bool takes_mine = e.protos.empty() || (!r.proto.empty() && e.protos.count(r.proto) != 0);
            if (e.m.not_destination.empty() && takes_mine) {
                std::string which;
                for (const std::string &p : e.protos)
                    which += (which.empty() ? " (" : ", ") + p;
                return no_effect("never reached: " + at + " masquerades all of " + format_prefix(e.m.source) +
                                 (which.empty() ? "" : which + ")") + " first");
            }
            if (e.m.source == m.source)
                return unsupported(at + " already masquerades " + format_prefix(m.source) +
                                   "; xnat takes one rule per source prefix");
            return unsupported(at + " comes first for " + format_prefix(e.m.source) +
                               " in iptables, but xnat would prefer this more specific prefix");
        }
        if (prefix_within(m.source, e.m.source))
            for (const Prefix &ex : e.m.not_destination) {
                bool also = false;
                for (const Prefix &mine : m.not_destination)
                    also = also || prefix_within(mine, ex);
                if (!also)
                    return unsupported("iptables masquerades traffic from " + format_prefix(e.m.source) +
                                       " to " + format_prefix(ex) + " by this rule after " + at +
                                       " exempts it; xnat applies only the most specific source's rule");
            }
    }
    return std::nullopt;
}

// Takes the masquerade, and reports its twin, if any, as merged into it.
Translation Translator::add_masquerade(size_t idx, const Masquerade &m, const ordered_json &j,
                                       const MasqProtocols &protos, const std::string &match_note)
{
    const Rule &r = rules_[idx];
    std::set<std::string> took;
    if (!r.proto.empty())
        took.insert(r.proto);
    if (protos.twin)
        took.insert(rules_[*protos.twin].proto);
    masq_.push_back({m, r.line, took});
    std::string path = "masquerade[" + std::to_string(masq_json_.size()) + "]";
    masq_json_.push_back(j);
    if (protos.twin) {
        const Rule &t = rules_[*protos.twin];
        merged_.insert(*protos.twin);
        ImportLine &l = rep_.lines[t.entry];
        l.outcome = LineOutcome::translated;
        l.message = path + ": merged with line " + std::to_string(r.line) + "'s -p " + r.proto +
                    " (xnat masquerades TCP and UDP in one rule)" +
                    (t.notes.empty() ? "" : " (" + join(t.notes) + ")");
    }
    std::string notes = protos.note;
    add_note(notes, match_note);
    if (!r.src)
        add_note(notes, "no -s: every source on the LAN");
    if (r.target == "MASQUERADE")
        add_note(notes, "to the WAN address read at load time");
    return translated(path + ": " + describe(m) + (notes.empty() ? "" : " (" + notes + ")"));
}

} // namespace xnat::iptables
