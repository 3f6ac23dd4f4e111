// What the two command-line tools share: exit codes and how errors are printed.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "core/one_line.h"
#include "core/result.h"

namespace xnat {

// Documented and stable (docs/CLI.md, "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;     // the kernel or the system refused; nothing half-applied
inline constexpr int kExitBadInput = 2;   // bad argument, config or interface; nothing changed
inline constexpr int kExitWanGone = 3;    // --follow-wan: the WAN interface was deleted (PPPoE redial)
inline constexpr int kExitUntranslated = 3; // xnat-import: some rules left out (each reported); the config holds the rest

inline int fail(const char *prog, const Error &e)
{
    std::fprintf(stderr, "%s: %s\n", prog, one_line(e.message).c_str());
    return e.kind == ErrorKind::invalid_input ? kExitBadInput : kExitFailed;
}

// CLI11's own errors: help and version go to stdout with 0; misuse is one line and exit 2.
inline int cli_parse_failed(const char *prog, CLI::App &app, const CLI::ParseError &e)
{
    if (e.get_exit_code() == 0)
        return app.exit(e);
    std::fprintf(stderr, "%s: %s (see %s --help)\n", prog, e.what(), prog);
    return kExitBadInput;
}

} // namespace xnat
