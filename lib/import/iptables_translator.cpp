#include "import/iptables_translator.h"

#include "core/nat_config.h"

namespace xnat::iptables {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

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

// --set-mss N or --clamp-mss-to-pmtu, as the mss_clamp value.
Result<ordered_json> mss_value(const Rule &r)
{
    if (r.clamp_mss_to_pmtu)
        return ordered_json("pmtu");
    if (!all_digits(r.set_mss) || r.set_mss.size() > 5 || std::stoul(r.set_mss) < XNAT_MSS_CLAMP_MIN ||
        std::stoul(r.set_mss) > XNAT_MSS_CLAMP_MAX)
        return invalid_input("--set-mss " + r.set_mss + ": xnat clamps to " +
                             std::to_string(XNAT_MSS_CLAMP_MIN) + "-" + std::to_string(XNAT_MSS_CLAMP_MAX));
    return ordered_json(std::stoul(r.set_mss));
}

} // namespace

std::string join(const std::vector<std::string> &parts)
{
    std::string s;
    for (size_t i = 0; i < parts.size(); ++i)
        s += (i ? "; " : "") + parts[i];
    return s;
}

Translator::Translator(std::vector<Rule> rules, ImportReport &rep, const ImportOptions &opts)
    : rules_(std::move(rules)), rep_(rep), wan_(opts.wan), lan_(opts.lan), wan_address_(opts.wan_address)
{
}

void Translator::run()
{
    learn_wan();
    for (size_t i = 0; i < rules_.size(); ++i) {
        const Rule &r = rules_[i];
        if (merged_.count(i)) // the udp half of a tcp+udp pair, reported with its twin
            continue;
        Translation t = translate(i);
        ImportLine &out = rep_.lines[r.entry];
        out.outcome = t.outcome;
        out.message = std::move(t.message);
        if (!r.notes.empty())
            out.message += " (" + join(r.notes) + ")";
    }
    rep_.wan = wan_;
    rep_.lan = lan_;
    rep_.config_json = render(forward_json_, masq_json_, mss_json_);
}

// The WAN is where SNAT and MASQUERADE send packets out (-o), unless --wan says so.
void Translator::learn_wan()
{
    if (!wan_.empty())
        return;
    for (const Rule &r : rules_)
        if (r.table == "nat" && r.chain == "POSTROUTING" &&
            (r.target == "SNAT" || r.target == "MASQUERADE") && !r.out_if.empty() && !r.out_neg &&
            r.out_if.back() != '+' && r.out_if != lan_) {
            wan_ = r.out_if;
            wan_line_ = r.line;
            return;
        }
}

Translation Translator::translate(size_t idx)
{
    const Rule &r = rules_[idx];
    if (r.target == "TCPMSS")
        return translate_tcpmss(r);
    if (r.table != "nat")
        return unsupported("table " + r.table +
                           ": xnat does NAT only, and the packets it redirects bypass netfilter");
    if (!builtin_chains("nat").count(r.chain))
        return unsupported("user chain " + r.chain +
                           ": xnat has no chains; write its rules into PREROUTING or POSTROUTING");
    if (r.chain == "INPUT" || r.chain == "OUTPUT")
        return unsupported("chain " + r.chain + ": xnat translates forwarded traffic, not the gateway's own");
    if (!r.unsupported.empty())
        return unsupported(join(r.unsupported));
    if (r.target.empty())
        return no_effect("no -j: the rule only counts packets");
    if (r.target == "ACCEPT" || r.target == "RETURN")
        return translate_accept(idx);
    if (!is_nat_target(r.target))
        return unsupported("-j " + r.target + ": not supported by xnat (DNAT, SNAT and MASQUERADE are)");
    if (r.target == "DNAT") {
        if (r.chain != "PREROUTING")
            return unsupported("-j DNAT in " + r.chain + ": xnat forwards in PREROUTING only");
        return translate_dnat(r);
    }
    if (r.chain != "POSTROUTING")
        return unsupported("-j " + r.target + " in " + r.chain + ": xnat masquerades in POSTROUTING only");
    return translate_masquerade(idx);
}

// TCPMSS on SYNs, in mangle's FORWARD or POSTROUTING, as the usual PPPoE recipe writes it.
// xnat clamps every SYN it translates, in both directions, so an -o or -i on the rule
// makes the config wider, never narrower: said in the note.
Translation Translator::translate_tcpmss(const Rule &r)
{
    if (r.table != "mangle" || (r.chain != "FORWARD" && r.chain != "POSTROUTING"))
        return unsupported("-j TCPMSS in " + r.table + " " + r.chain +
                           ": xnat clamps forwarded SYNs, as TCPMSS in mangle FORWARD or POSTROUTING does");
    if (!r.unsupported.empty())
        return unsupported(join(r.unsupported));
    if (r.proto != "tcp")
        return unsupported("-j TCPMSS without -p tcp: iptables refuses it");
    if (r.tcp_flags != "SYN,RST SYN" && r.tcp_flags != "SYN SYN")
        return unsupported(
            "-j TCPMSS on " +
            (r.tcp_flags.empty() ? std::string("every TCP segment") : "--tcp-flags " + r.tcp_flags) +
            ": xnat clamps SYNs only (--tcp-flags SYN,RST SYN)");
    if (r.src || r.dst)
        return unsupported("-s or -d with -j TCPMSS: xnat clamps every SYN it translates");
    if (r.clamp_mss_to_pmtu == !r.set_mss.empty())
        return unsupported("-j TCPMSS needs one of --clamp-mss-to-pmtu and --set-mss");
    auto value = mss_value(r);
    if (!value)
        return unsupported(value.error().message);
    if (mss_line_)
        return unsupported("a second -j TCPMSS: line " + std::to_string(mss_line_) +
                           " already sets the clamp");
    mss_json_ = *value;
    mss_line_ = r.line;
    std::string msg = "\"mss_clamp\": " + value->dump();
    if (!r.in_if.empty() || !r.out_if.empty())
        msg += " (wider: xnat clamps the SYNs it translates in both directions, whatever the interface)";
    return translated(msg);
}

// An ACCEPT or RETURN in a NAT chain exempts packets from the NAT rules after it. xnat has
// no exemptions, so it is harmless only when no NAT rule follows in its chain.
Translation Translator::translate_accept(size_t idx) const
{
    const Rule &r = rules_[idx];
    for (size_t k = idx + 1; k < rules_.size(); ++k) {
        const Rule &later = rules_[k];
        if (later.table == r.table && later.chain == r.chain && is_nat_target(later.target))
            return unsupported(
                "-j " + r.target + " exempts packets from the NAT rule on line " +
                std::to_string(later.line) +
                "; xnat has no exemptions (for destinations, use ! -d on the SNAT/MASQUERADE rule)");
    }
    return no_effect("-j " + r.target + " with no NAT rule after it in " + r.chain);
}

} // namespace xnat::iptables
