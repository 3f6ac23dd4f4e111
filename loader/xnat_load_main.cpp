// xnat-load: load, reload, check or unload an xnat instance.
#include <cstdio>

#include "cli.h"
#include "config.h"
#include "instance.h"
#include "kernel_error.h"
#include "pin_dir.h"

#ifndef XNAT_VERSION
#define XNAT_VERSION "dev"
#endif

int main(int argc, char **argv)
{
    using namespace xnat;
    const char *prog = "xnat-load";
    CLI::App app{"Load xnat's XDP/tc NAT onto a WAN and a LAN interface, or reload it in place.\n\n"
                 "  xnat-load [--pin-dir DIR] [--mode auto|xdp|tc] WAN_IF LAN_IF CONFIG.json\n"
                 "  xnat-load --unload [--pin-dir DIR]\n"
                 "  xnat-load --check CONFIG.json\n\n"
                 "Exit codes: 0 done, 1 the kernel or system refused, 2 bad argument or config.\n",
                 prog};
    app.set_version_flag("--version", XNAT_VERSION);
    LoadOptions opts;
    opts.pin_dir = kDefaultPinDir;
    std::string mode = "auto";
    bool unload = false;
    std::string check_path;
    app.add_option("WAN_IF", opts.wan, "WAN interface: port forwards apply on its ingress");
    app.add_option("LAN_IF", opts.lan, "LAN interface");
    app.add_option("CONFIG", opts.config_path, "JSON config (see README, Config reference)");
    app.add_option("--pin-dir", opts.pin_dir, "bpffs directory of the instance")->capture_default_str();
    app.add_option("--mode", mode,
                   "auto: XDP on NICs, tc on veth and other software devices; xdp or tc force one")
        ->capture_default_str();
    app.add_flag("--unload", unload, "detach everything and remove the pins");
    app.add_option("--check", check_path, "validate CONFIG.json without touching the kernel");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return cli_parse_failed(prog, app, e);
    }
    capture_libbpf_log();

    if (!check_path.empty()) {
        auto cfg = load_config_file(check_path);
        if (!cfg)
            return fail(prog, cfg.error());
        std::printf("%s: ok (%zu port forwards)\n", check_path.c_str(), cfg->port_forwards.size());
        return kExitOk;
    }
    if (unload) {
        if (!opts.wan.empty())
            return fail(prog, invalid_input("--unload takes no interfaces or config"));
        auto report = unload_instance(opts.pin_dir);
        if (!report)
            return fail(prog, report.error());
        for (const auto &line : *report)
            std::printf("%s\n", line.c_str());
        return kExitOk;
    }
    if (opts.config_path.empty())
        return fail(prog, invalid_input("expected WAN_IF LAN_IF CONFIG.json (see xnat-load --help)"));
    auto m = parse_mode(mode);
    if (!m)
        return fail(prog, m.error());
    opts.mode = *m;
    auto report = load_instance(opts);
    if (!report)
        return fail(prog, report.error());
    for (const auto &line : *report)
        std::printf("%s\n", line.c_str());
    return kExitOk;
}
