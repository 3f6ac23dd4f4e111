// xnat-exporter: serves a running instance's metrics over HTTP for Prometheus to scrape.
// Each scrape reads the pinned maps afresh, so it always shows the instance as it is now, and
// a scrape after the instance was unloaded answers 503 instead of stale figures.
#include <httplib.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "cli/cli.h"
#include "core/net.h"
#include "core/prometheus.h"
#include "kernel/instance.h"
#include "kernel/instance_maps.h"
#include "kernel/kernel_error.h"
#include "kernel/metrics_source.h"
#include "kernel/pin_dir.h"
#include "portmap/portmap_metrics.h"
#include "portmap/state_file.h"

#ifndef XNAT_VERSION
#define XNAT_VERSION "dev"
#endif

namespace {

using namespace xnat;

const char *kProg = "xnat-exporter";
const char *kContentType = "text/plain; version=0.0.4; charset=utf-8";

struct ListenAddress {
    std::string host;
    int port = 0;
};

Result<ListenAddress> parse_listen(const std::string &text)
{
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
        return invalid_input("--listen: '" + text + "' is not ADDRESS:PORT");
    auto addr = parse_ipv4(text.substr(0, colon));
    if (!addr)
        return with_context("--listen", addr.error());
    std::string port = text.substr(colon + 1);
    int value = 0;
    for (char c : port) {
        if (c < '0' || c > '9' || value > 65535) {
            value = -1;
            break;
        }
        value = value * 10 + (c - '0');
    }
    if (port.empty() || value < 1 || value > 65535)
        return invalid_input("--listen: '" + port + "' is not a port number (1-65535)");
    return ListenAddress{text.substr(0, colon), value};
}

// xnat-portmapd's figures, when it runs: its state file is read afresh at each scrape. No file
// (no daemon) adds nothing; a file that does not parse is left out too, as a half-written one
// cannot be (the daemon replaces it whole).
std::string portmap_metrics(const std::string &state_path)
{
    std::ifstream in(state_path);
    if (!in)
        return {};
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto state = portmap::parse_state(text);
    return state ? portmap::render_portmap_metrics(*state) : std::string();
}

Result<std::string> scrape(const std::string &pin_dir, MetricsOptions options, const std::string &portmap_state)
{
    auto maps = InstanceMaps::open(pin_dir);
    if (!maps)
        return maps.error();
    auto snapshot = collect_metrics(*maps, options);
    if (!snapshot)
        return snapshot.error();
    return render_prometheus(*snapshot) + portmap_metrics(portmap_state);
}

} // namespace

int main(int argc, char **argv)
{
    CLI::App app{
        "Serve an xnat instance's metrics in the Prometheus text format on /metrics.\n\n"
        "Exit codes: 0 stopped by SIGTERM or SIGINT, 1 the kernel or system refused, 2 bad argument.\n",
        kProg};
    app.set_version_flag("--version", XNAT_VERSION);
    std::string listen = "127.0.0.1:9469";
    std::string pin_dir = kDefaultPinDir;
    app.add_option("--listen", listen, "ADDRESS:PORT to serve on")->capture_default_str();
    app.add_option("--pin-dir", pin_dir, "bpffs directory of the instance")->capture_default_str();
    std::string portmap_state;
    app.add_option("--portmap-state", portmap_state,
                   "xnat-portmapd's state file, whose mappings and requests are served too (default: the "
                   "daemon's default for --pin-dir)");
    MetricsOptions options;
    app.add_flag("--per-state", options.per_state,
                 "serve connections by protocol and state too; each scrape then reads the whole connection "
                 "table, which takes about a second per million connections");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return cli_parse_failed(kProg, app, e);
    }
    if (portmap_state.empty())
        portmap_state = portmap::default_state_path(pin_dir);
    auto addr = parse_listen(listen);
    if (!addr)
        return fail(kProg, addr.error());
    if (auto r = require_root("read xnat's maps"); !r)
        return fail(kProg, r.error());
    capture_libbpf_log();
    // Refuse to start without an instance: a typo in --pin-dir should not look like an outage.
    if (auto first = scrape(pin_dir, options, portmap_state); !first)
        return fail(kProg, first.error());

    // SIGTERM and SIGINT are taken by sigwait below, never by a handler: every thread the server
    // starts inherits this mask, and stopping the server is not async-signal-safe.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGUSR1); // the server thread's own "listening ended"
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    httplib::Server server;
    // Scrapes are rare and cheap; two workers are plenty and keep the exporter small.
    server.new_task_queue = [] { return new httplib::ThreadPool(2); };
    // httplib's default adds SO_REUSEPORT, which would let a second exporter share the port
    // and silently split the scrapes; SO_REUSEADDR alone still allows a quick restart.
    server.set_socket_options([](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server.Get("/metrics", [&pin_dir, &portmap_state, options](const httplib::Request &, httplib::Response &res) {
        auto text = scrape(pin_dir, options, portmap_state);
        if (!text) {
            res.status = 503;
            res.set_content(std::string(kProg) + ": " + text.error().message + "\n",
                            "text/plain; charset=utf-8");
            return;
        }
        res.set_content(*text, kContentType);
    });
    errno = 0;
    if (!server.bind_to_port(addr->host, addr->port)) {
        int err = errno;
        std::fprintf(stderr, "%s: cannot listen on %s: %s\n", kProg, listen.c_str(),
                     err ? std::strerror(err) : "bind failed");
        return kExitFailed;
    }
    std::printf("%s: serving http://%s/metrics for the instance at %s\n", kProg, listen.c_str(),
                pin_dir.c_str());
    std::fflush(stdout);

    bool listen_failed = false;
    std::thread serving([&] {
        if (!server.listen_after_bind())
            listen_failed = true;
        ::kill(::getpid(), SIGUSR1); // stays pending, harmlessly, if main stopped the server
    });
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
    serving.join();
    if (sig == SIGUSR1 && listen_failed) {
        std::fprintf(stderr, "%s: the server stopped unexpectedly\n", kProg);
        return kExitFailed;
    }
    return kExitOk;
}
