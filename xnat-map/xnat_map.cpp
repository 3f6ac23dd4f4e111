// xnat-map: inspect and change a running xnat instance through its pinned maps.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>

#include "cli/cli.h"
#include "core/conn_filter.h"
#include "core/format.h"
#include "core/nat_config.h"
#include "kernel/conntrack_table.h"
#include "kernel/host_map.h"
#include "kernel/instance.h"
#include "kernel/instance_maps.h"
#include "kernel/kernel_error.h"
#include "kernel/metrics_source.h"
#include "kernel/pin_dir.h"
#include "kernel/rule_store.h"
#include "portmap/state_file.h"

#ifndef XNAT_VERSION
#define XNAT_VERSION "dev"
#endif

namespace {

using namespace xnat;

const char *kProg = "xnat-map";
const ForwardFieldNames kCliNames{"PROTO", "FROM", "TO", "--on"};

void print_json(const nlohmann::json &j)
{
    std::printf("%s\n", j.dump(2).c_str());
}

struct Args {
    std::string pin_dir = kDefaultPinDir;
    std::string proto, from, to, on = "wan";
    bool json = false;
    // conns: filters and output form; stats: --prometheus
    std::string filter_proto, filter_addr, filter_port, filter_state, output = "xnat";
    bool prometheus = false, per_state = false;
    std::string portmap_state; // list: xnat-portmapd's state file (empty: its default)
};

// Opens the instance for reading.
Result<InstanceMaps> open_instance(const Args &a)
{
    if (auto r = require_root("use xnat-map"); !r)
        return r.error();
    return InstanceMaps::open(a.pin_dir);
}

// Opens the instance for a change: its lock is held for as long as the result lives, so two
// changes (or a change and an xnat-load) never interleave.
struct LockedInstance {
    PinDir lock;
    InstanceMaps maps;
};

Result<LockedInstance> open_for_change(const Args &a, const std::string &action)
{
    if (auto r = require_root(action); !r)
        return r.error();
    auto lock = PinDir::open_existing(a.pin_dir);
    if (!lock)
        return lock.error();
    auto maps = InstanceMaps::open(a.pin_dir);
    if (!maps)
        return maps.error();
    return LockedInstance{std::move(*lock), std::move(*maps)};
}

Result<void> cmd_add(const Args &a)
{
    auto fwd = make_port_forward(a.proto, a.from, a.to, a.on, kCliNames);
    if (!fwd)
        return fwd.error();
    auto inst = open_for_change(a, "change rules");
    if (!inst)
        return inst.error();
    auto placed = place_forward(inst->maps.view(), *fwd);
    if (!placed)
        return placed.error();
    auto id = add_rule(inst->maps.view(), *placed);
    if (!id)
        return id.error();
    std::printf("added rule %u: %s%s\n", *id, describe(*placed).c_str(),
                placed->parked() ? " (parked: the WAN has no IPv4 address; xnat-load --follow-wan installs it "
                                   "when one appears)"
                                 : "");
    return {};
}

Result<void> cmd_del(const Args &a)
{
    auto proto = parse_proto(a.proto);
    if (!proto)
        return with_context("PROTO", proto.error());
    auto from = parse_forward_from(a.from);
    if (!from)
        return with_context("FROM", from.error());
    auto side = parse_side(a.on);
    if (!side)
        return with_context("--on", side.error());
    auto inst = open_for_change(a, "change rules");
    if (!inst)
        return inst.error();
    auto removed = delete_rule(inst->maps.view(), *proto, *side, *from);
    if (!removed)
        return removed.error();
    std::printf("deleted rule %u: %s\n", removed->id, describe(removed->fwd).c_str());
    return {};
}

// For each mapped forward, what xnat-portmapd's state says of it: the protocol the host asked
// with and the time left. A forward the state does not know (a daemon that was killed and not
// restarted) is shown as mapped without either.
std::map<uint16_t, std::string> mapped_notes(const std::vector<StoredRule> &rules, const Args &a)
{
    std::map<uint16_t, std::string> notes;
    std::ifstream in(a.portmap_state.empty() ? portmap::default_state_path(a.pin_dir) : a.portmap_state);
    if (!in)
        return notes;
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto state = portmap::parse_state(text);
    if (!state)
        return notes;
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    uint64_t now = static_cast<uint64_t>(ts.tv_sec);
    for (const StoredRule &r : rules)
        for (const portmap::Mapping &m : state->mappings)
            if (r.fwd.mapped && static_cast<uint8_t>(r.fwd.proto) == static_cast<uint8_t>(m.proto) &&
                r.fwd.to.addr == m.host && r.fwd.to.port_lo == m.internal_port && r.fwd.from.port_lo == m.external_port)
                notes[r.id] = std::string(portmap::via_name(m.via)) + ", expires in " +
                              std::to_string(portmap::seconds_left(m, now)) + " s";
    return notes;
}

Result<void> cmd_list(const Args &a)
{
    auto maps = open_instance(a);
    if (!maps)
        return maps.error();
    auto rules = read_rules(maps->view());
    if (!rules)
        return rules.error();
    auto masq = read_masquerade(maps->view());
    if (!masq)
        return masq.error();
    if (a.json) {
        print_json(rules_to_json(*rules, *masq));
        return {};
    }
    auto hits = read_rule_hits(maps->view());
    if (!hits)
        return hits.error();
    std::fputs(format_rules(*rules, *masq, *hits, mapped_notes(*rules, a)).c_str(), stdout);
    return {};
}

Result<void> cmd_conns(const Args &a)
{
    auto filter = parse_conn_filter(a.filter_proto, a.filter_addr, a.filter_port, a.filter_state);
    if (!filter)
        return filter.error();
    auto maps = open_instance(a);
    if (!maps)
        return maps.error();
    auto cfg = read_config(maps->view());
    if (!cfg)
        return cfg.error();
    auto conns = read_connections(maps->view());
    if (!conns)
        return conns.error();
    std::sort(conns->begin(), conns->end(), [](const Connection &x, const Connection &y) {
        return std::memcmp(&x.original_key, &y.original_key, sizeof(x.original_key)) < 0;
    });
    std::erase_if(*conns, [&](const Connection &c) { return !filter->matches(c); });
    uint64_t now = monotonic_now_ns();
    if (a.json) {
        // Written as it is made: a million-connection listing never sits whole in memory.
        std::string out = conns->empty() ? "[]" : "[\n";
        for (size_t i = 0; i < conns->size(); ++i) {
            if (i > 0)
                out += ",\n";
            append_connection_json(out, (*conns)[i], cfg->timeouts, now);
            if (out.size() >= (1u << 20)) {
                std::fwrite(out.data(), 1, out.size(), stdout);
                out.clear();
            }
        }
        out += conns->empty() ? "\n" : "\n]\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
    } else if (a.output == "conntrack" || a.output == "conntrack-acct") {
        auto counters = a.output == "conntrack-acct" ? ConntrackCounters::on : ConntrackCounters::off;
        for (const auto &c : *conns)
            std::printf("%s\n", format_conntrack(c, cfg->timeouts, now, counters).c_str());
    } else {
        for (const auto &c : *conns)
            std::printf("%s\n", format_connection(c, cfg->timeouts, now).c_str());
    }
    return {};
}

Result<void> cmd_hosts(const Args &a)
{
    auto maps = open_instance(a);
    if (!maps)
        return maps.error();
    auto cfg = read_config(maps->view());
    if (!cfg)
        return cfg.error();
    auto hosts = read_host_usage(maps->view());
    if (!hosts)
        return hosts.error();
    if (a.json)
        print_json(hosts_to_json(*hosts, cfg->host_max_flows, cfg->host_max_ports));
    else
        std::fputs(format_hosts(*hosts, cfg->host_max_flows, cfg->host_max_ports).c_str(), stdout);
    return {};
}

Result<void> cmd_stats(const Args &a)
{
    auto maps = open_instance(a);
    if (!maps)
        return maps.error();
    if (a.prometheus) {
        auto snapshot = collect_metrics(*maps, MetricsOptions{a.per_state});
        if (!snapshot)
            return snapshot.error();
        std::fputs(render_prometheus(*snapshot).c_str(), stdout);
        return {};
    }
    auto cfg = read_config(maps->view());
    if (!cfg)
        return cfg.error();
    StatsView view;
    auto counters = read_counters(maps->view());
    if (!counters)
        return counters.error();
    view.counters = *counters;
    // From the counters, not a read of the table: O(1) at any table size.
    view.connections = live_connections(*counters, cfg->max_connections);
    view.max_connections = cfg->max_connections;
    if (maps->sweeper() >= 0) {
        auto sweep = read_sweep_stats(maps->sweeper());
        if (!sweep)
            return sweep.error();
        view.sweep = *sweep;
    }
    if (a.json)
        print_json(stats_to_json(view));
    else
        std::fputs(format_stats(view).c_str(), stdout);
    return {};
}

Result<void> cmd_flush(const Args &a)
{
    auto inst = open_for_change(a, "flush connections");
    if (!inst)
        return inst.error();
    auto n = flush_connections(inst->maps.flush_prog());
    if (!n)
        return n.error();
    std::printf("flushed %zu connections\n", *n);
    return {};
}

} // namespace

int main(int argc, char **argv)
{
    CLI::App app{"Inspect and change a running xnat instance.\n\n"
                 "Exit codes: 0 done, 1 the kernel or system refused, 2 bad argument.\n",
                 kProg};
    app.set_version_flag("--version", XNAT_VERSION);
    app.require_subcommand(1);
    Args args;
    app.add_option("--pin-dir", args.pin_dir, "bpffs directory of the instance")->capture_default_str();

    std::function<Result<void>(const Args &)> action;
    auto sub = [&](const char *name, const char *help, Result<void> (*fn)(const Args &)) {
        CLI::App *s = app.add_subcommand(name, help);
        s->fallthrough();
        s->callback([&action, fn] { action = fn; });
        return s;
    };
    CLI::App *add = sub("add", "add a port forward: add PROTO FROM TO [--on wan|lan]", cmd_add);
    add->add_option("PROTO", args.proto, "tcp or udp")->required();
    add->add_option("FROM", args.from,
                    "ADDRESS[/PREFIX]:PORT[-PORT] the rule matches, or wan:PORT[-PORT] (the WAN's address, whatever it is)")->required();
    add->add_option("TO", args.to, "ADDRESS[/PREFIX]:PORT[-PORT] it is rewritten to")->required();
    add->add_option("--on", args.on, "interface whose ingress the rule applies on")->capture_default_str();
    CLI::App *del = sub("del", "delete a port forward: del PROTO FROM [--on wan|lan]", cmd_del);
    del->add_option("PROTO", args.proto, "tcp or udp")->required();
    del->add_option("FROM", args.from, "the rule's FROM, as listed")->required();
    del->add_option("--on", args.on, "interface of the rule")->capture_default_str();
    CLI::App *list = sub("list", "show the rules", cmd_list);
    list->add_flag("--json", args.json, "as a config's port_forwards (mapped forwards left out)");
    list->add_option("--portmap-state", args.portmap_state,
                     "xnat-portmapd's state file, for mapped forwards' expiry (default: its default for --pin-dir)");
    CLI::App *conns = sub("conns", "show connections: original tuple, reply tuple, state, timeout, counts", cmd_conns);
    CLI::Option *conns_json = conns->add_flag("--json", args.json, "as JSON");
    conns->add_option("--proto", args.filter_proto, "only tcp, udp or icmp connections");
    conns->add_option("--addr", args.filter_addr, "only connections with this address in either tuple");
    conns->add_option("--port", args.filter_port, "only connections with this TCP/UDP port in either tuple");
    conns->add_option("--state", args.filter_state,
                      "only connections in this state (SYN_SENT, ESTABLISHED, ... for TCP; UNREPLIED or REPLIED)");
    conns->add_option("-o,--output", args.output,
                      "xnat (default); conntrack: lines as `conntrack -L` prints them; "
                      "conntrack-acct: the same with packets= and bytes=, as with nf_conntrack_acct=1")
        ->check(CLI::IsMember({"xnat", "conntrack", "conntrack-acct"}))
        ->excludes(conns_json);
    CLI::App *hosts = sub("hosts", "show what each LAN host holds through source NAT, against its quota", cmd_hosts);
    hosts->add_flag("--json", args.json, "as JSON");
    CLI::App *stats = sub("stats", "show outcome counters and table use", cmd_stats);
    CLI::Option *stats_json = stats->add_flag("--json", args.json, "as JSON");
    CLI::Option *stats_prom =
        stats->add_flag("--prometheus", args.prometheus, "in the Prometheus text format, as xnat-exporter serves it")
            ->excludes(stats_json);
    stats->add_flag("--per-state", args.per_state,
                    "with --prometheus: add connections by protocol and state (reads the whole table)")
        ->needs(stats_prom);
    sub("flush", "delete all connections", cmd_flush);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return cli_parse_failed(kProg, app, e);
    }
    capture_libbpf_log();
    auto r = action(args);
    return r ? kExitOk : fail(kProg, r.error());
}
