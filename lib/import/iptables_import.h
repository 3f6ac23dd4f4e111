// Translation of iptables NAT rules (iptables-save output, or `iptables -t nat ...` command
// lines) into an xnat config, with a per-line account of what was translated and what was not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace xnat {

struct ImportOptions {
    // Interface names as iptables' -i/-o give them. Empty: learnt from the rules (-o of SNAT and
    // MASQUERADE names the WAN; a DNAT's -i naming another interface is the LAN).
    std::string wan;
    std::string lan;
    // The WAN's address, for DNAT rules that match -i WAN without -d (the form for a WAN address
    // that changes). Unset: such rules become forwards from wan:PORT, on whatever address the
    // WAN interface has when loaded (and, under xnat-load --follow-wan, later).
    std::optional<uint32_t> wan_address;
};

enum class LineOutcome {
    translated,  // became (part of) a config rule
    no_effect,   // changes nothing: ACCEPT policies, empty user chains, trailing ACCEPTs
    unsupported, // has an effect xnat cannot reproduce; left out of the config
};

struct ImportLine {
    size_t line = 0; // 1-based line number in the input
    LineOutcome outcome = LineOutcome::translated;
    std::string message; // what it became, or why it was left out
};

struct ImportReport {
    std::string config_json;        // the config, in the form xnat-load reads
    std::vector<ImportLine> lines;  // one per input line that is not blank, a comment, *table or COMMIT
    std::string wan;                // interface names as learnt or given; empty if unknown
    std::string lan;
    size_t count(LineOutcome o) const;
};

// Errors (invalid input) are lines that are not iptables rules at all: unknown line kinds, a
// rule before any table, a missing option value, unparsable addresses or ports, an
// unterminated quote. They name the line: "line 7: -d: ...".
Result<ImportReport> import_iptables(std::string_view text, const ImportOptions &opts = {});

std::string_view outcome_name(LineOutcome o);

} // namespace xnat
