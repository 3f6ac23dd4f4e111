// The options of an iptables rule line, as one table: names, arguments, what "!" before them
// means, and what they do to the rule.
#include "import/iptables_rule.h"

#include <cctype>

namespace xnat::iptables {
namespace {

enum class Negation {
    handled,     // the handler reads `neg`: xnat can take the negation, or says why not
    unsupported, // the rule is left out: "! OPT: xnat cannot negate it"
    refused,     // invalid input: the option is about running iptables, there is nothing to negate
};

// One occurrence of an option on a rule line.
struct OptionUse {
    std::string name;                 // as written: -s or --source
    std::vector<std::string> values;  // its arguments, as many as the option's arity
    std::optional<std::string> count; // the optional number after them (-I CHAIN [POSITION])
    bool neg = false;                 // "!" came before it
};

using OptionHandler = Result<void> (*)(Rule &r, const OptionUse &use);

struct Option {
    std::vector<std::string_view> names;
    size_t arity = 1; // arguments after the name
    Negation negation = Negation::unsupported;
    OptionHandler handle = nullptr;        // none: taken and ignored
    const char *left_out = nullptr;        // why xnat cannot take it: the rule is reported, not translated
    bool command_only = false;             // -I, -w, -W: iptables-save never writes them
    bool optional_count = false;           // then a number, if the next word is one
    bool attached = false;                 // may be written --name=N, N taken unchecked
    const char *missing = "missing value"; // the error when its arguments are cut short
};

Result<void> set_chain(Rule &r, const OptionUse &u)
{
    r.chain = u.values[0];
    return {};
}

Result<void> insert_chain(Rule &r, const OptionUse &u)
{
    r.chain = u.values[0];
    std::string at = u.count.value_or("1");
    r.notes.push_back("-I " + r.chain + " " + at + ": iptables inserts at position " + at +
                      ", xnat-import takes the lines in input order; check the order where rules overlap");
    return {};
}

Result<void> set_table(Rule &r, const OptionUse &u)
{
    r.table = u.values[0];
    return {};
}

Result<void> set_protocol(Rule &r, const OptionUse &u)
{
    std::string p = u.values[0];
    for (char &c : p)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (p == "6")
        p = "tcp";
    if (p == "17")
        p = "udp";
    if (u.neg)
        r.unsupported.push_back("! -p " + p + ": xnat cannot negate a protocol");
    else if (p != "all" && p != "0")
        r.proto = p;
    return {};
}

Result<void> set_address(Rule &r, const OptionUse &u, bool is_src)
{
    const std::string &v = u.values[0];
    if (v.find(',') != std::string::npos) {
        r.unsupported.push_back(u.name + " " + v + ": xnat takes one prefix per rule");
        return {};
    }
    auto p = parse_prefix(v);
    if (!p)
        return with_context(is_src ? "-s" : "-d", p.error());
    (is_src ? r.src : r.dst) = *p;
    (is_src ? r.src_neg : r.dst_neg) = u.neg;
    return {};
}

Result<void> set_interface(Rule &r, const OptionUse &u, bool is_in)
{
    const std::string &v = u.values[0];
    if (!v.empty() && v.back() == '+')
        r.unsupported.push_back(u.name + " " + v + ": xnat takes exact interface names, not wildcards");
    (is_in ? r.in_if : r.out_if) = v;
    (is_in ? r.in_neg : r.out_neg) = u.neg;
    return {};
}

Result<void> add_match(Rule &r, const OptionUse &u)
{
    const std::string &v = u.values[0];
    if (v != "tcp" && v != "udp" && v != "comment")
        r.unsupported.push_back("-m " + v + ": xnat has no such match");
    return {};
}

Result<void> set_dport(Rule &r, const OptionUse &u)
{
    auto d = parse_dport(u.values[0]);
    if (!d)
        return d.error();
    if (u.neg)
        r.unsupported.push_back("! --dport " + u.values[0] + ": xnat cannot negate a port");
    else
        r.dport = *d;
    return {};
}

Result<void> set_to_destination(Rule &r, const OptionUse &u)
{
    if (r.has_to_destination)
        r.unsupported.push_back("several --to-destination: xnat forwards to one target");
    r.to_destination = u.values[0];
    r.has_to_destination = true;
    return {};
}

Result<void> set_to_source(Rule &r, const OptionUse &u)
{
    if (r.has_to_source)
        r.unsupported.push_back("several --to-source: xnat masquerades to one address");
    r.to_source = u.values[0];
    r.has_to_source = true;
    return {};
}

Result<void> set_to_ports(Rule &r, const OptionUse &u)
{
    r.to_ports = u.values[0];
    r.has_to_ports = true;
    return {};
}

Result<void> set_source(Rule &r, const OptionUse &u)
{
    return set_address(r, u, true);
}

Result<void> set_destination(Rule &r, const OptionUse &u)
{
    return set_address(r, u, false);
}

Result<void> set_in_interface(Rule &r, const OptionUse &u)
{
    return set_interface(r, u, true);
}

Result<void> set_out_interface(Rule &r, const OptionUse &u)
{
    return set_interface(r, u, false);
}

Result<void> set_target(Rule &r, const OptionUse &u)
{
    r.target = u.values[0];
    return {};
}

Result<void> set_tcp_flags(Rule &r, const OptionUse &u)
{
    r.tcp_flags = u.values[0] + " " + u.values[1];
    return {};
}

Result<void> set_clamp_mss_to_pmtu(Rule &r, const OptionUse &)
{
    r.clamp_mss_to_pmtu = true;
    return {};
}

Result<void> set_mss(Rule &r, const OptionUse &u)
{
    r.set_mss = u.values[0];
    return {};
}

const std::vector<Option> &options()
{
    using N = Negation;
    static const std::vector<Option> table{
        {.names = {"-A", "--append"}, .handle = set_chain},
        {.names = {"-I", "--insert"}, .handle = insert_chain, .command_only = true, .optional_count = true},
        // Waiting for the xtables lock is about running iptables, not about the rule.
        {.names = {"-w", "--wait"},
         .arity = 0,
         .negation = N::refused,
         .command_only = true,
         .optional_count = true,
         .attached = true},
        {.names = {"-W", "--wait-interval"}, .negation = N::refused, .command_only = true},
        {.names = {"-t", "--table"}, .handle = set_table},
        {.names = {"-p", "--protocol"}, .negation = N::handled, .handle = set_protocol},
        {.names = {"-s", "--source", "--src"}, .negation = N::handled, .handle = set_source},
        {.names = {"-d", "--destination", "--dst"}, .negation = N::handled, .handle = set_destination},
        {.names = {"-i", "--in-interface"}, .negation = N::handled, .handle = set_in_interface},
        {.names = {"-o", "--out-interface"}, .negation = N::handled, .handle = set_out_interface},
        {.names = {"-m", "--match"}, .handle = add_match},
        {.names = {"--dport", "--destination-port"}, .negation = N::handled, .handle = set_dport},
        {.names = {"--sport", "--source-port"}, .left_out = "xnat rules do not match source ports"},
        {.names = {"-j", "--jump", "-g", "--goto"}, .handle = set_target},
        {.names = {"--to-destination"}, .handle = set_to_destination},
        {.names = {"--to-source"}, .handle = set_to_source},
        {.names = {"--to-ports"}, .handle = set_to_ports},
        {.names = {"--tcp-flags"}, .arity = 2, .handle = set_tcp_flags, .missing = "expected MASK COMP"},
        {.names = {"--clamp-mss-to-pmtu"}, .arity = 0, .handle = set_clamp_mss_to_pmtu},
        {.names = {"--set-mss"}, .handle = set_mss},
        {.names = {"--comment"}},
        // Keeps a client on one address of an address range; xnat targets one address.
        {.names = {"--persistent"}, .arity = 0},
        {.names = {"--random", "--random-fully"},
         .arity = 0,
         .left_out = "xnat keeps a source port when it is free and has no random port choice"},
        {.names = {"-f", "--fragment"}, .arity = 0, .left_out = "xnat does not translate fragments"},
    };
    return table;
}

// An option in the table, with the name as written; for --name=VALUE, the name and the VALUE.
struct Found {
    const Option *option = nullptr;
    std::string name;
    std::optional<std::string> attached;
};

Found find_option(const std::string &token, bool command)
{
    size_t eq = token.rfind("--", 0) == 0 ? token.find('=') : std::string::npos;
    for (const Option &o : options()) {
        if (o.command_only && !command)
            continue;
        for (std::string_view n : o.names) {
            if (token == n)
                return {&o, token, std::nullopt};
            if (o.attached && eq != std::string::npos && std::string_view(token).substr(0, eq) == n)
                return {&o, std::string(n), token.substr(eq + 1)};
        }
    }
    return {};
}

// Takes the option at t[i] and its arguments, leaving i after them.
Result<void> apply_option(const Found &f, const std::vector<std::string> &t, size_t &i, bool neg, Rule &r)
{
    const Option &opt = *f.option;
    if (neg && opt.negation == Negation::refused)
        return invalid_input("\"!\" before " + f.name);
    if (i + opt.arity >= t.size())
        return invalid_input(f.name + ": " + opt.missing);
    auto first = t.begin() + i + 1;
    OptionUse use{f.name, {first, first + opt.arity}, f.attached, neg};
    i += 1 + opt.arity;
    if (opt.optional_count && !f.attached && i < t.size() && all_digits(t[i]))
        use.count = t[i++];
    if (opt.handle)
        if (auto done = opt.handle(r, use); !done)
            return done;
    if (opt.left_out) {
        std::string words = use.name;
        for (const std::string &v : use.values)
            words += " " + v;
        r.unsupported.push_back(words + ": " + opt.left_out);
    }
    if (neg && opt.negation == Negation::unsupported)
        r.unsupported.push_back("! " + f.name + ": xnat cannot negate it");
    return {};
}

// An option of a match or target xnat does not know: its values, up to the next option, go
// with it into the reason the rule is left out.
Result<void> skip_unknown_option(const std::vector<std::string> &t, size_t &i, bool neg, Rule &r)
{
    const std::string &o = t[i];
    if (!(o.size() > 1 && o[0] == '-'))
        return invalid_input("unexpected \"" + o + "\"");
    std::string words = (neg ? "! " : "") + o;
    ++i;
    while (i < t.size() && t[i] != "!" && !(t[i].size() > 1 && t[i][0] == '-'))
        words += " " + t[i++];
    r.unsupported.push_back(words + ": not supported by xnat");
    return {};
}

// Malformed targets are bad input whether or not the rule is otherwise translatable.
Result<void> check_nat_values(const Rule &r)
{
    if (r.has_to_destination)
        if (auto d = parse_nat_target(r.to_destination, "--to-destination"); !d)
            return d.error();
    if (r.has_to_source)
        if (auto s = parse_nat_target(r.to_source, "--to-source"); !s)
            return s.error();
    if (r.has_to_ports)
        if (auto p = parse_nat_ports(r.to_ports, "--to-ports"); !p)
            return p.error();
    return {};
}

} // namespace

Result<Rule> parse_rule(const std::vector<std::string> &t, size_t start, Rule r, bool command)
{
    bool neg = false;
    size_t i = start;
    while (i < t.size()) {
        const std::string &o = t[i];
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
        Found found = find_option(o, command);
        auto taken = found.option ? apply_option(found, t, i, neg, r) : skip_unknown_option(t, i, neg, r);
        if (!taken)
            return taken.error();
        neg = false;
    }
    if (neg)
        return invalid_input("\"!\" at the end of the line");
    if (r.chain.empty())
        return invalid_input("no -A CHAIN");
    if (auto checked = check_nat_values(r); !checked)
        return checked.error();
    return r;
}

} // namespace xnat::iptables
