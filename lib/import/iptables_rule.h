// The importer's view of one iptables rule line, and the parsers of the values in it. Internal
// to xnat-import's translation (iptables_import.h is its interface).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/net.h"
#include "core/result.h"

namespace xnat::iptables {

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
    std::string tcp_flags;          // --tcp-flags MASK COMP, as "MASK COMP"
    bool clamp_mss_to_pmtu = false; // -j TCPMSS --clamp-mss-to-pmtu
    std::string set_mss;            // -j TCPMSS --set-mss N
    std::vector<std::string> unsupported;
    std::vector<std::string> notes; // true of the line whatever it becomes (-I's order)
};

// --to-destination/--to-source: [ADDR[-ADDR]][:PORT[-PORT][/BASE]].
struct NatTarget {
    std::optional<uint32_t> addr_lo, addr_hi;
    std::optional<PortRange> ports;
    std::optional<uint16_t> base;
};

bool is_nat_target(const std::string &t);
const std::set<std::string> &builtin_chains(const std::string &table);
bool all_digits(const std::string &s);

// Splits a line as iptables-save quotes it ("--comment \"a b\""); single quotes too, for
// command lines copied from a shell.
Result<std::vector<std::string>> tokenize(std::string_view s);

Result<uint16_t> parse_port_number(std::string_view text, const std::string &what);
// --dport as iptables writes it: N, N:M, :M (from 0) or N: (to 65535).
Result<PortRange> parse_dport(std::string_view text);
// PORT or PORT-PORT (--to-ports, and the port part of --to-destination/--to-source).
Result<PortRange> parse_nat_ports(std::string_view text, const std::string &what);
Result<NatTarget> parse_nat_target(std::string_view text, const std::string &what);

// Parses the options of one rule from t[start]. `r.table` is the current *table (save form) or
// "filter" (command form, until -t says otherwise). The command form also takes -I and -w,
// which iptables-save never writes.
Result<Rule> parse_rule(const std::vector<std::string> &t, size_t start, Rule r, bool command);

} // namespace xnat::iptables
