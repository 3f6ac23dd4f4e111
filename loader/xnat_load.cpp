// xnat-load: load, reload, check or unload an xnat instance.
#include <cstdio>
#include <optional>

#include "cli/cli.h"
#include "core/nat_config.h"
#include "kernel/instance.h"
#include "kernel/kernel_error.h"
#include "kernel/kernel_features.h"
#include "kernel/pin_dir.h"
#include "kernel/service_notify.h"
#include "kernel/wan_follow.h"

#ifndef XNAT_VERSION
#define XNAT_VERSION "dev"
#endif

int main(int argc, char **argv)
{
    using namespace xnat;
    const char *prog = "xnat-load";
    CLI::App app{"Load xnat's XDP/tc NAT onto a WAN and a LAN interface, or reload it in place.\n\n"
                 "  xnat-load [--pin-dir DIR] [--mode auto|xdp|tc] [--object FILE.bpf.o] WAN_IF LAN_IF CONFIG.json\n"
                 "  xnat-load --follow-wan [--pin-dir DIR] [--mode auto|xdp|tc] WAN_IF LAN_IF CONFIG.json\n"
                 "  xnat-load --unload [--pin-dir DIR]\n"
                 "  xnat-load --check CONFIG.json\n"
                 "  xnat-load --features\n\n"
                 "Exit codes: 0 done, 1 the kernel or system refused, 2 bad argument or config,\n"
                 "3 (--follow-wan) the WAN interface was deleted.\n",
                 prog};
    app.set_version_flag("--version", XNAT_VERSION);
    LoadOptions opts;
    opts.pin_dir = kDefaultPinDir;
    std::string mode = "auto";
    bool unload = false;
    std::string check_path;
    app.add_option("WAN_IF", opts.wan, "WAN interface: port forwards apply on its ingress");
    app.add_option("LAN_IF", opts.lan, "LAN interface");
    app.add_option("CONFIG", opts.config_path, "JSON config (see docs/CONFIG.md)");
    app.add_option("--pin-dir", opts.pin_dir, "bpffs directory of the instance")->capture_default_str();
    app.add_option("--mode", mode,
                   "auto: XDP on NICs, tc on veth and other software devices; xdp or tc force one "
                   "(xdp is refused on a veth whose peer has neither GRO nor an XDP program)")
        ->capture_default_str();
    app.add_option("--object", opts.object_path,
                   "load the programs from this object (a build of xnat_bpf.bpf.o) instead of the one built in");
    app.add_flag("--unload", unload, "detach everything and remove the pins");
    app.add_option("--check", check_path, "validate CONFIG.json without touching the kernel");
    bool features = false;
    app.add_flag("--features", features,
                 "probe the running kernel for every BPF feature xnat uses and print what it has; "
                 "exit 1 if it lacks one");
    bool follow = false;
    app.add_flag("--follow-wan", follow,
                 "after loading, stay in the foreground and keep masquerade rules without a to_source, "
                 "and forwards from wan:PORT, on the WAN interface's address as it changes (DHCP, PPPoE); "
                 "SIGTERM or SIGINT stops the watch and leaves xnat loaded");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return cli_parse_failed(prog, app, e);
    }
    capture_libbpf_log();

    if (follow && (unload || !check_path.empty()))
        return fail(prog, invalid_input("--follow-wan goes with WAN_IF LAN_IF CONFIG.json, not --unload or --check"));
    if (features) {
        auto found = probe_kernel_features();
        if (!found)
            return fail(prog, found.error());
        std::fputs(format_kernel_features(*found).c_str(), stdout);
        if (auto r = require_kernel_features(*found); !r)
            return fail(prog, r.error());
        return kExitOk;
    }
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
    opts.park_without_wan_address = follow;
    // Subscribed before loading, so an address change during the load is not missed.
    std::optional<AddressWatch> watch;
    if (follow) {
        auto w = AddressWatch::open();
        if (!w)
            return fail(prog, w.error());
        watch.emplace(std::move(*w));
    }
    auto report = load_instance(opts);
    if (!report)
        return fail(prog, report.error());
    for (const auto &line : *report)
        std::printf("%s\n", line.c_str());
    if (!watch)
        return kExitOk;
    std::fflush(stdout);
    if (auto r = notify_service_ready(); !r)
        std::fprintf(stderr, "%s: warning: %s\n", prog, r.error().message.c_str());
    auto followed = follow_wan(*watch, opts.pin_dir, [](const std::string &line) {
        std::printf("%s\n", line.c_str());
        std::fflush(stdout); // one line per change, seen as it happens (journal, log file)
    });
    if (!followed)
        return fail(prog, followed.error());
    if (*followed == FollowEnd::wan_gone) {
        std::fprintf(stderr, "%s: the WAN interface is gone; run xnat-load again on the new one\n", prog);
        return kExitWanGone;
    }
    return kExitOk;
}
