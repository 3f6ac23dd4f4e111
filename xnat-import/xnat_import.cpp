// xnat-import: translate iptables NAT rules (iptables-save output) into an xnat config.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/cli.h"
#include "core/net.h"
#include "core/strict_json.h"
#include "import/iptables_import.h"

#ifndef XNAT_VERSION
#define XNAT_VERSION "dev"
#endif

int main(int argc, char **argv)
{
    using namespace xnat;
    const char *prog = "xnat-import";
    CLI::App app{"Translate iptables NAT rules into an xnat config.\n\n"
                 "  iptables-save -t nat | xnat-import [--wan IF] [--lan IF] [--wan-address ADDR] [-o CONFIG.json]\n"
                 "  xnat-import [--wan IF] [--lan IF] [--wan-address ADDR] [-o CONFIG.json] RULES\n\n"
                 "The config goes to stdout (or -o), a line-by-line report to stderr.\n"
                 "Exit codes: 0 every rule translated, 3 some rules could not be (reported, left out),\n"
                 "2 bad argument or input that is not iptables-save output, 1 the output could not be written.\n",
                 prog};
    app.set_version_flag("--version", XNAT_VERSION);
    std::string input = "-", output, wan, lan, wan_address;
    bool quiet = false;
    app.add_option("RULES", input, "iptables-save output, full or -t nat (\"-\": stdin)")->capture_default_str();
    app.add_option("-o,--output", output, "write the config here instead of stdout");
    app.add_option("--wan", wan, "the WAN interface as the rules name it (default: the -o of SNAT/MASQUERADE)");
    app.add_option("--lan", lan, "the LAN interface as the rules name it (default: a DNAT's other -i)");
    app.add_option("--wan-address", wan_address,
                   "a fixed WAN address for DNAT rules with -i WAN but no -d (default: \"from\": \"wan:PORT\", "
                   "whatever address the WAN has)");
    app.add_flag("-q,--quiet", quiet, "report only what was not translated");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return cli_parse_failed(prog, app, e);
    }

    ImportOptions opts{wan, lan, std::nullopt};
    if (!wan_address.empty()) {
        auto a = parse_ipv4(wan_address);
        if (!a)
            return fail(prog, with_context("--wan-address", a.error()));
        opts.wan_address = *a;
    }

    std::string text;
    if (input == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        if (std::cin.bad())
            return fail(prog, system_error("cannot read stdin"));
    } else {
        auto t = read_text_file(input);
        if (!t)
            return fail(prog, t.error());
        text = std::move(*t);
    }
    auto report = import_iptables(text, opts);
    if (!report) {
        Error e = report.error();
        if (input != "-")
            e = with_context(input, e);
        return fail(prog, e);
    }

    if (output.empty()) {
        std::fwrite(report->config_json.data(), 1, report->config_json.size(), stdout);
        if (std::fflush(stdout) != 0)
            return fail(prog, system_error("cannot write the config to stdout"));
    } else {
        std::ofstream out(output, std::ios::binary | std::ios::trunc);
        out << report->config_json;
        out.close();
        if (!out)
            return fail(prog, system_error("cannot write " + output));
    }

    for (const ImportLine &l : report->lines) {
        if (quiet && l.outcome != LineOutcome::unsupported)
            continue;
        std::fprintf(stderr, "%s: line %zu: %s: %s\n", prog, l.line, std::string(outcome_name(l.outcome)).c_str(),
                     l.message.c_str());
    }
    size_t bad = report->count(LineOutcome::unsupported);
    std::fprintf(stderr, "%s: %zu translated, %zu without effect, %zu unsupported\n", prog,
                 report->count(LineOutcome::translated), report->count(LineOutcome::no_effect), bad);
    std::fprintf(stderr, "%s: load with: xnat-load %s %s %s\n", prog,
                 report->wan.empty() ? "WAN_IF" : report->wan.c_str(),
                 report->lan.empty() ? "LAN_IF" : report->lan.c_str(),
                 output.empty() ? "CONFIG.json" : output.c_str());
    return bad ? kExitUntranslated : kExitOk;
}
