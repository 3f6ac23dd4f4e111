// xnat-portmapd: NAT-PMP (RFC 6886) and PCP (RFC 6887) for the LAN hosts of a running xnat
// instance. What hosts ask for becomes forwards in the instance, within the config's
// port_mapping policy; they go when they expire, when deleted, and when the daemon stops.
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "core/nat_config.h"
#include "kernel/instance.h"
#include "kernel/kernel_error.h"
#include "kernel/pin_dir.h"
#include "kernel/service_notify.h"
#include "kernel/unique_fd.h"
#include "portmap/state_file.h"
#include "portmap_server.h"

#ifndef XNAT_VERSION
#define XNAT_VERSION "dev"
#endif

namespace {

using namespace xnat;

const char *kProg = "xnat-portmapd";

struct Args {
    std::string config;
    std::string pin_dir = kDefaultPinDir;
    std::string state;
    bool check = false;
};

Result<PortMappingConfig> policy_of(const std::string &path)
{
    auto cfg = load_config_file(path);
    if (!cfg)
        return cfg.error();
    if (!cfg->port_mapping)
        return invalid_input(path +
                             ": no port_mapping section: nothing may be handed out (docs/PORT_MAPPING.md)");
    return *cfg->port_mapping;
}

// SIGTERM, SIGINT and SIGHUP arrive as reads, between requests, never in the middle of a change.
Result<UniqueFd> stop_signals()
{
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
        sigaddset(&set, sig);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
        return kernel_error("block SIGTERM", errno);
    UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd.valid())
        return kernel_error("open a signalfd", errno);
    return fd;
}

Result<void> ensure_state_dir(const std::string &path)
{
    std::string dir = path.substr(0, path.rfind('/'));
    if (dir.empty() || ::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST)
        return {};
    return kernel_error("create " + dir, errno);
}

void log_line(const std::string &line)
{
    std::fprintf(stderr, "%s: %s\n", kProg, line.c_str());
}

Result<void> run(const Args &a)
{
    auto policy = policy_of(a.config);
    if (!policy)
        return policy.error();
    if (auto r = require_root("serve port mappings"); !r)
        return r.error();
    ServerOptions opts;
    opts.pin_dir = a.pin_dir;
    opts.state_path = a.state.empty() ? portmap::default_state_path(a.pin_dir) : a.state;
    opts.policy = *policy;
    opts.log = log_line;
    if (a.check)
        return PortmapServer::check(opts);
    if (auto r = ensure_state_dir(opts.state_path); !r)
        return r;
    auto signals = stop_signals();
    if (!signals)
        return signals.error();
    auto server = PortmapServer::start(opts);
    if (!server)
        return server.error();
    if (auto r = notify_service_ready(); !r)
        log_line(r.error().message);
    auto served = (*server)->run(signals->get());
    if (!served) {
        (*server)->forget(); // the instance is gone, and its forwards with it
        return served;
    }
    (*server)->stop();
    return {};
}

} // namespace

int main(int argc, char **argv)
{
    Args a;
    CLI::App app{"Answers NAT-PMP and PCP requests from the LAN with forwards in a running xnat instance."};
    app.set_version_flag("--version", XNAT_VERSION);
    app.add_option("CONFIG", a.config, "the instance's config, with a port_mapping section")->required();
    app.add_option("--pin-dir", a.pin_dir, "the instance's pin directory")->capture_default_str();
    app.add_option("--state", a.state,
                   "where the mappings are kept (default /run/xnat/portmapd.json for the default --pin-dir)");
    app.add_flag("--check", a.check,
                 "check the config against the running instance and exit; changes nothing");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return cli_parse_failed(kProg, app, e);
    }
    if (auto r = run(a); !r)
        return fail(kProg, r.error());
    return kExitOk;
}
