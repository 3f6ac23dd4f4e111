// Reads iptables-save output (or iptables command lines) line by line: the tables, chain
// policies and rule lines; parse_rule (iptables_options.cpp) reads a rule's options, and the
// Translator (iptables_translator.h) turns the rules into the config and the report.
#include "import/iptables_import.h"

#include <cctype>

#include "core/nat_config.h"
#include "import/iptables_rule.h"
#include "import/iptables_translator.h"

namespace xnat {
namespace {

using iptables::Rule;

std::string trim(std::string_view s)
{
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
    return std::string(s.substr(b, e - b));
}

// The input read so far.
struct Input {
    std::string table; // the *table being read; empty outside one
    ImportReport rep;
    std::vector<Rule> rules;
};

// :CHAIN POLICY [PACKETS:BYTES]
Result<void> read_chain(Input &in, const std::string &line, const std::vector<std::string> &tokens,
                        size_t lineno)
{
    if (in.table.empty())
        return invalid_input("chain " + line + " before any *table");
    if (tokens.size() < 2)
        return invalid_input("expected \":CHAIN POLICY [PACKETS:BYTES]\", got \"" + line + "\"");
    std::string chain = tokens.at(0).substr(1), policy = tokens.at(1);
    ImportLine l{lineno, LineOutcome::no_effect, ""};
    if (policy == "-") {
        l.message = "user chain " + chain + " declared (its rules are reported on their own lines)";
    } else if (!iptables::builtin_chains(in.table).count(chain)) {
        return invalid_input("chain " + chain + " has a policy but is not a built-in chain of table " +
                             in.table);
    } else if (policy == "ACCEPT") {
        l.message = "policy ACCEPT of " + in.table + " " + chain;
    } else {
        l.outcome = LineOutcome::unsupported;
        l.message = "policy " + policy + " of " + in.table + " " + chain +
                    ": xnat does no filtering, and the packets it redirects bypass netfilter";
    }
    in.rep.lines.push_back(l);
    return {};
}

// A rule, as iptables-save writes it (-A CHAIN ...) or as an iptables command line.
Result<void> read_rule(Input &in, const std::vector<std::string> &tokens, size_t lineno)
{
    Rule r;
    r.line = lineno;
    size_t start = 0;
    if (tokens.at(0) == "iptables" || tokens.at(0) == "iptables-legacy" || tokens.at(0) == "iptables-nft") {
        r.table = "filter"; // iptables' default, until -t names another
        start = 1;
    } else {
        const std::string &first = tokens.at(0);
        bool counters = first.size() > 2 && first.front() == '[' && first.back() == ']';
        if (first != "-A" && first != "--append" && !counters)
            return invalid_input(
                "expected a rule (-A CHAIN ...), a chain (:CHAIN POLICY), *TABLE or COMMIT, got \"" + first +
                "\"");
        if (in.table.empty())
            return invalid_input("rule before any *table line");
        r.table = in.table;
    }
    auto parsed = iptables::parse_rule(tokens, start, r, start == 1);
    if (!parsed)
        return parsed.error();
    parsed->entry = in.rep.lines.size();
    in.rep.lines.push_back({lineno, LineOutcome::unsupported, ""});
    in.rules.push_back(std::move(*parsed));
    return {};
}

Result<void> read_line(Input &in, const std::string &line, size_t lineno)
{
    if (line.empty() || line[0] == '#')
        return {};
    if (line[0] == '*') {
        in.table = trim(std::string_view(line).substr(1));
        if (in.table.empty())
            return invalid_input("\"*\" without a table name");
        return {};
    }
    if (line == "COMMIT") {
        if (in.table.empty())
            return invalid_input("COMMIT outside a table");
        in.table.clear();
        return {};
    }
    auto tokens = iptables::tokenize(line);
    if (!tokens)
        return tokens.error();
    if (line[0] == ':')
        return read_chain(in, line, *tokens, lineno);
    return read_rule(in, *tokens, lineno);
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
    Input in;
    size_t lineno = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line =
            trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        ++lineno;
        if (auto read = read_line(in, line, lineno); !read)
            return invalid_input("line " + std::to_string(lineno) + ": " + read.error().message);
    }
    if (!in.table.empty())
        return invalid_input("table " + in.table + " has no COMMIT at the end of the input");

    iptables::Translator(std::move(in.rules), in.rep, opts).run();
    if (auto check = parse_config(in.rep.config_json); !check)
        return system_error("the generated config is refused (a bug in xnat-import): " +
                            check.error().message);
    return std::move(in.rep);
}

} // namespace xnat
