#include "kernel/instance.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "core/mapped_forwards.h"
#include "core/wan_forwards.h"
#include "kernel/attach.h"
#include "kernel/conntrack_table.h"
#include "kernel/instance_maps.h"
#include "kernel/kernel_error.h"
#include "kernel/kernel_features.h"
#include "kernel/map_io.h"
#include "kernel/pin_dir.h"
#include "kernel/redirect_target.h"
#include "kernel/rtnetlink.h"
#include "kernel/rule_store.h"
#include "kernel/skeleton.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat {
namespace {

constexpr const char *kLinkPin[2] = {"link_xdp_wan", "link_xdp_lan"};

// What one interface gets, and what it had before a reload.
struct SidePlan {
    Side side = Side::wan;
    Interface iface;
    Mode mode = Mode::tc;
    std::string reason;
    Mode old_mode = Mode::auto_select; // auto_select: nothing attached yet
    bool clsact_created = false;
    bool auto_chosen = false;
};

std::string side_label(const SidePlan &p)
{
    return std::string(side_name(p.side)) + " " + p.iface.name;
}

// XDP redirects only between XDP-mode interfaces (and back out of the one a packet came in on),
// so those are the targets to check. Explicit --mode xdp onto a target that would drop every
// frame is refused: loading would look fine and forward nothing. --mode auto takes tc there.
// When the kernel cannot tell, the load goes ahead with a warning, since refusing would lock
// out a setup that may be right.
Result<void> check_xdp_targets(SidePlan (&plans)[2], Report &warnings)
{
    for (SidePlan &p : plans) {
        if (p.mode != Mode::xdp)
            continue;
        auto target = check_redirect_target(p.iface);
        if (!target)
            return with_context(side_label(p), target.error());
        switch (target->delivery) {
        case Delivery::delivered:
            if (!target->detail.empty())
                p.reason += "; " + target->detail;
            break;
        case Delivery::unknown:
            warnings.push_back("warning: " + side_label(p) + ": " + target->detail);
            break;
        case Delivery::dropped:
            if (!p.auto_chosen)
                return invalid_input(side_label(p) + ": --mode xdp: " + target->detail);
            p.mode = Mode::tc;
            p.reason = target->detail + "; tc instead";
            break;
        }
    }
    return {};
}

Result<Skeleton> load_programs(const PinDir &pin, const std::string &object_path,
                               uint32_t max_connections, uint32_t max_mappings)
{
    auto opened = open_skeleton(object_path);
    if (!opened)
        return opened.error();
    Skeleton skel = std::move(*opened);
    bpf_map *devmap = skel->maps.XNAT_MAP_TX_PORTS;
    for (const PinnedMap &m : kPinnedMaps) {
        bpf_map *map = bpf_object__find_map_by_name(skel->obj, m.name);
        if (map == devmap)
            continue;
        // libbpf reuses a map already pinned at this path (keeping connections across a
        // reload) and pins the ones it creates.
        if (int err = bpf_map__set_pin_path(map, pin.file(m.name).c_str()))
            return kernel_error("set pin path", err);
    }
    // The kernel adds BPF_F_RDONLY_PROG to every devmap it creates and refuses the flag from
    // userspace, so libbpf 1.1's reuse check never matches a pinned devmap: take it by fd.
    const std::string devmap_pin = pin.file(XNAT_STR(XNAT_MAP_TX_PORTS));
    bool devmap_pinned = pin.has(XNAT_STR(XNAT_MAP_TX_PORTS));
    if (devmap_pinned) {
        auto fd = open_pinned(devmap_pin);
        if (!fd)
            return fd.error();
        if (int err = bpf_map__reuse_fd(devmap, fd->get()))
            return kernel_error("reuse " + devmap_pin, err);
    }
    if (auto sized = size_connection_tables(skel, max_connections, max_mappings); !sized)
        return sized.error();
    if (int err = xnat_bpf__load(skel.get()))
        return kernel_error("load the BPF programs", err, last_libbpf_warning());
    if (!devmap_pinned)
        if (int err = bpf_map__pin(devmap, devmap_pin.c_str()))
            return kernel_error("pin " + devmap_pin, err);
    return skel;
}

int prog_fd(const Skeleton &skel, Side side, Mode mode)
{
    bpf_program *p;
    if (mode == Mode::xdp)
        p = side == Side::wan ? skel->progs.XNAT_PROG_XDP_WAN : skel->progs.XNAT_PROG_XDP_LAN;
    else
        p = side == Side::wan ? skel->progs.XNAT_PROG_TC_WAN : skel->progs.XNAT_PROG_TC_LAN;
    return bpf_program__fd(p);
}

void drop_xdp_link(const PinDir &pin, Side side)
{
    const char *name = kLinkPin[static_cast<int>(side)];
    if (!pin.has(name))
        return;
    if (auto link = open_pinned(pin.file(name)))
        link_detach(link->get());
    (void)pin.unpin(name);
}

Result<void> attach_xdp(const PinDir &pin, SidePlan &plan, int fd)
{
    const char *name = kLinkPin[static_cast<int>(plan.side)];
    if (pin.has(name)) {
        auto link = open_pinned(pin.file(name));
        if (!link)
            return link.error();
        return xdp_link_update(link->get(), fd);
    }
    auto link = xdp_link_create(fd, plan.iface.ifindex);
    if (!link)
        return link.error();
    if (auto r = pin_fd(link->get(), pin.file(name)); !r) {
        link_detach(link->get());
        return r;
    }
    return {};
}

// Attaches the new programs to one interface, replacing what was there without a gap: the
// new hook is in place before the old one is removed. tc is attached at both points in every
// mode: egress mends the ICMP errors the kernel sends about translated packets, and ingress
// runs the NAT in tc mode or, in XDP mode, finishes the packets XDP hands it.
Result<void> attach_side(const PinDir &pin, SidePlan &plan, const Skeleton &skel)
{
    struct {
        TcPoint point;
        int fd;
    } hooks[] = {{TcPoint::egress, bpf_program__fd(plan.iface.link == LinkLayer::bare_ip
                                                        ? skel->progs.XNAT_PROG_TC_EGRESS_L3
                                                        : skel->progs.XNAT_PROG_TC_EGRESS)},
                 {TcPoint::ingress, prog_fd(skel, plan.side, Mode::tc)}};
    for (const auto &h : hooks) {
        auto created = tc_attach(plan.iface.ifindex, h.point, h.fd);
        if (!created)
            return with_context(side_label(plan), created.error());
        plan.clsact_created = plan.clsact_created || *created;
    }
    if (plan.mode == Mode::xdp) {
        auto r = attach_xdp(pin, plan, prog_fd(skel, plan.side, Mode::xdp));
        if (r)
            return {};
        if (!plan.auto_chosen || plan.old_mode == Mode::xdp)
            return with_context(side_label(plan), r.error());
        plan.mode = Mode::tc;
        plan.reason = "native XDP refused (" + r.error().message + "); tc instead";
    }
    drop_xdp_link(pin, plan.side);
    return {};
}

void detach_side(const PinDir &pin, Side side, unsigned ifindex, bool clsact_created)
{
    drop_xdp_link(pin, side);
    tc_detach(ifindex, TcPoint::ingress);
    tc_detach(ifindex, TcPoint::egress);
    if (clsact_created)
        tc_destroy_clsact(ifindex);
}

void remove_pins(const PinDir &pin)
{
    for (const PinnedMap &m : kPinnedMaps)
        (void)pin.unpin(m.name);
    for (const char *name : kLinkPin)
        (void)pin.unpin(name);
    (void)pin.unpin(kFlushProgPin);
    (void)pin.unpin(kSweepPin);
    pin.remove_if_empty();
}

// Pins what belongs to this load of the programs rather than to the instance: the flush
// program, and the sweeper, started here. Replacing the old sweeper's pin stops it.
Result<void> pin_program_state(const PinDir &pin, const Skeleton &skel)
{
    if (auto r = arm_sweeper(skel); !r)
        return r;
    (void)pin.unpin(kFlushProgPin);
    if (auto r = pin_fd(bpf_program__fd(skel->progs.XNAT_PROG_FLUSH), pin.file(kFlushProgPin)); !r)
        return r;
    (void)pin.unpin(kSweepPin);
    return pin_fd(bpf_map__fd(skel->maps.XNAT_MAP_SWEEP), pin.file(kSweepPin));
}

xnat_config make_config(const Config &cfg, const SidePlan &wan, const SidePlan &lan,
                        std::pair<uint16_t, uint16_t> local_ports, std::optional<uint32_t> lan_addr)
{
    xnat_config c{};
    c.abi_version = XNAT_ABI_VERSION;
    c.wan_ifindex = wan.iface.ifindex;
    c.lan_ifindex = lan.iface.ifindex;
    c.wan_mode = mode_code(wan.mode);
    c.lan_mode = mode_code(lan.mode);
    c.mss_clamp = cfg.mss_clamp;
    if (wan.iface.link == LinkLayer::bare_ip)
        c.l3_sides |= XNAT_L3_SIDE(XNAT_SIDE_WAN);
    if (lan.iface.link == LinkLayer::bare_ip)
        c.l3_sides |= XNAT_L3_SIDE(XNAT_SIDE_LAN);
    c.wan_clsact_created = wan.clsact_created;
    c.lan_clsact_created = lan.clsact_created;
    c.timeouts = to_kernel(cfg.timeouts);
    c.netns_ino = current_netns_ino();
    c.max_connections = cfg.limits.connections;
    c.max_mappings = cfg.mapping_capacity();
    c.local_port_lo = local_ports.first;
    c.local_port_hi = local_ports.second;
    c.sweep_interval_ms = XNAT_DEFAULT_SWEEP_INTERVAL_MS;
    c.host_max_flows = cfg.limits.host_connections;
    c.host_max_ports = cfg.limits.host_ports;
    // Without a LAN address, refusals there come from the address the refused packet was sent to.
    c.lan_addr = lan_addr ? htonl(*lan_addr) : 0;
    c.refusal_icmp_rate = cfg.icmp_refusals.per_second;
    c.refusal_icmp = static_cast<uint8_t>((cfg.icmp_refusals.lan ? XNAT_REFUSAL_ICMP_SIDE(XNAT_SIDE_LAN) : 0) |
                                          (cfg.icmp_refusals.wan ? XNAT_REFUSAL_ICMP_SIDE(XNAT_SIDE_WAN) : 0));
    std::strncpy(c.wan_name, wan.iface.name.c_str(), XNAT_IFNAME_LEN - 1);
    std::strncpy(c.lan_name, lan.iface.name.c_str(), XNAT_IFNAME_LEN - 1);
    return c;
}

// A reload must target the same interfaces in the same namespace with the same table size.
Result<void> check_reload(const std::string &dir, const xnat_config &old, const SidePlan &wan,
                          const SidePlan &lan, const Config &cfg)
{
    std::string unload = "xnat-load --unload --pin-dir " + dir;
    if (old.netns_ino != current_netns_ino())
        return invalid_input("the instance at " + dir + " was loaded in another network namespace; "
                             "run xnat-load there, or " + unload + " there first");
    if (old.wan_ifindex != wan.iface.ifindex || old.lan_ifindex != lan.iface.ifindex)
        return invalid_input("the instance at " + dir + " runs on WAN " + old.wan_name + " and LAN " +
                             old.lan_name + "; " + unload + " first, or use another --pin-dir");
    if (old.max_connections != cfg.limits.connections)
        return invalid_input("limits.connections: the running instance was sized for " +
                             std::to_string(old.max_connections) +
                             " connections; resizing needs " + unload + " (connections are lost)");
    if (old.max_mappings != cfg.mapping_capacity())
        return invalid_input("masquerade: the running instance was " +
                             std::string(old.max_mappings > XNAT_HAIRPIN_ONLY_MAPPINGS + XNAT_SNAT_HEADROOM ? "loaded with" : "loaded without") +
                             " masquerade rules, which sizes its mapping tables; adding the first or "
                             "removing the last needs " + unload + " (connections are lost)");
    return {};
}

Result<void> apply_state(const MapSet &maps, const Config &cfg, const std::vector<StoredRule> &rules,
                         RuleTables tables, const xnat_config &c)
{
    for (uint32_t ifindex : {c.wan_ifindex, c.lan_ifindex})
        if (auto r = map_update(maps.tx_ports, ifindex, ifindex, XNAT_STR(XNAT_MAP_TX_PORTS)); !r)
            return r;
    // A (re)load numbers rules afresh, so their hit counts start afresh.
    if (auto r = reset_rule_hits(maps); !r)
        return r;
    if (auto r = publish(maps, tables, c); !r)
        return r;
    if (auto r = write_rule_records(maps, rules); !r)
        return r;
    return write_masq_records(maps, cfg.masquerade);
}

} // namespace

Result<void> require_root(const std::string &action)
{
    if (::geteuid() != 0)
        return system_error("must be run as root to " + action +
                                " (xnat needs CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)",
                            EPERM);
    return {};
}

Result<Report> load_instance(const LoadOptions &o)
{
    auto cfg = load_config_file(o.config_path);
    if (!cfg)
        return cfg.error();
    SidePlan plans[2];
    plans[0].side = Side::wan;
    plans[1].side = Side::lan;
    for (SidePlan &p : plans) {
        auto iface = find_interface(p.side == Side::wan ? o.wan : o.lan, p.side == Side::wan ? "WAN_IF" : "LAN_IF");
        if (!iface)
            return iface.error();
        p.iface = *iface;
        if (o.mode == Mode::auto_select) {
            ModeChoice choice = choose_mode(p.iface);
            p.mode = choice.mode;
            p.reason = choice.reason;
            p.auto_chosen = true;
        } else {
            if (auto r = check_mode(p.iface, o.mode, p.side == Side::wan ? "WAN_IF" : "LAN_IF"); !r)
                return r.error();
            p.mode = o.mode;
            p.reason = "--mode " + mode_name(o.mode);
        }
    }
    if (plans[0].iface.ifindex == plans[1].iface.ifindex)
        return invalid_input("WAN_IF and LAN_IF must be two different interfaces");
    auto local_ports = local_port_range();
    auto wan_addr = primary_ipv4(plans[0].iface.ifindex);
    if (!wan_addr)
        return wan_addr.error();
    auto lan_addr = primary_ipv4(plans[1].iface.ifindex);
    if (!lan_addr)
        return lan_addr.error();
    auto masq = resolve_masquerade(cfg->masquerade, *wan_addr, plans[0].iface.name, local_ports.first,
                                   local_ports.second, o.park_without_wan_address);
    if (!masq)
        return with_context(o.config_path, masq.error());
    cfg->masquerade = *masq;
    auto forwards = resolve_wan_forwards(cfg->port_forwards, *wan_addr, plans[0].iface.name,
                                         o.park_without_wan_address);
    if (!forwards)
        return with_context(o.config_path, forwards.error());
    cfg->port_forwards = *forwards;
    if (auto r = require_root("load xnat"); !r)
        return r.error();
    // Before anything is created: a kernel below the floor gets one message, and nothing behind.
    auto features = probe_kernel_features();
    if (!features)
        return features.error();
    if (auto r = require_kernel_features(*features); !r)
        return r.error();
    Report warnings;
    if (auto r = check_xdp_targets(plans, warnings); !r)
        return r.error();

    auto pin = PinDir::open_or_create(o.pin_dir);
    if (!pin)
        return pin.error();
    bool reload = instance_exists(pin->path());
    // A half-removed instance's leftovers would be taken up as if they were fresh.
    if (!reload && leftover_pins(pin->path()) > 0)
        return require_instance(pin->path()).error();
    size_t kept_connections = 0;
    std::vector<StoredRule> running;
    if (reload) {
        auto maps = InstanceMaps::open(pin->path());
        if (!maps)
            return maps.error();
        auto old = read_config(maps->view());
        if (!old)
            return old.error();
        if (auto r = check_reload(pin->path(), *old, plans[0], plans[1], *cfg); !r)
            return r.error();
        plans[0].old_mode = mode_from_code(old->wan_mode);
        plans[1].old_mode = mode_from_code(old->lan_mode);
        plans[0].clsact_created = old->wan_clsact_created;
        plans[1].clsact_created = old->lan_clsact_created;
        if (auto n = count_ct_entries(maps->view()))
            kept_connections = *n / 2;
        auto old_rules = read_rules(maps->view());
        if (!old_rules)
            return old_rules.error();
        running = std::move(*old_rules);
    }
    KeptMapped rules = keep_mapped_forwards(rules_from_config(*cfg), running, *wan_addr);

    auto skel = load_programs(*pin, o.object_path, cfg->limits.connections, cfg->mapping_capacity());
    if (!skel) {
        if (!reload)
            pin->remove_if_empty();
        return skel.error();
    }
    auto fail = [&](const Error &e) -> Result<Report> {
        if (!reload) {
            for (const SidePlan &p : plans)
                if (p.old_mode != Mode::auto_select)
                    detach_side(*pin, p.side, p.iface.ifindex, p.clsact_created);
            remove_pins(*pin);
        }
        return e;
    };
    // The new rule tables are built, and so validated, before anything is attached.
    RuleTables tables;
    auto fwd = build_forward_table(rules.rules);
    if (!fwd)
        return fail(fwd.error());
    tables.fwd = std::move(*fwd);
    auto masq_table = build_masq_table(cfg->masquerade);
    if (!masq_table)
        return fail(masq_table.error());
    tables.masq = std::move(*masq_table);

    for (SidePlan &p : plans) {
        if (auto r = attach_side(*pin, p, *skel); !r)
            return fail(r.error());
        p.old_mode = p.mode; // attached now: a rollback must undo it
    }
    if (auto r = apply_state(skeleton_maps(*skel), *cfg, rules.rules, std::move(tables),
                             make_config(*cfg, plans[0], plans[1], local_ports, *lan_addr));
        !r)
        return fail(r.error());
    if (auto r = pin_program_state(*pin, *skel); !r)
        return fail(r.error());

    Report report;
    for (const SidePlan &p : plans)
        report.push_back(side_label(p) + ": " + mode_name(p.mode) + " (" + p.reason + ")");
    std::string counts = std::to_string(cfg->port_forwards.size()) + " rule" +
                         (cfg->port_forwards.size() == 1 ? "" : "s");
    if (!cfg->masquerade.empty())
        counts += ", " + std::to_string(cfg->masquerade.size()) + " masquerade";
    if (reload)
        report.push_back("reloaded " + pin->path() + ": " + counts + ", " +
                         std::to_string(kept_connections) + " connections kept");
    else
        report.push_back("loaded " + counts + "; pinned at " + pin->path());
    if (rules.kept)
        report.push_back("kept " + std::to_string(rules.kept) + " mapped forward(s) of xnat-portmapd");
    if (rules.dropped)
        report.push_back("dropped " + std::to_string(rules.dropped) +
                         " mapped forward(s) of xnat-portmapd: the config's forwards now claim their ports");
    for (const Masquerade &m : cfg->masquerade)
        report.push_back(describe(m));
    report.insert(report.end(), warnings.begin(), warnings.end());
    for (const PortForward &f : cfg->port_forwards)
        if (f.parked())
            report.push_back(describe(f) + ": parked until the WAN has an IPv4 address");
    if (!ipv4_forwarding_enabled())
        report.push_back("warning: IPv4 forwarding is off in this namespace, so packets xnat hands to "
                         "the kernel (unresolved neighbours, TTL expiry) will not be forwarded; "
                         "enable it with: sysctl -w net.ipv4.ip_forward=1");
    return report;
}

Result<Report> unload_instance(const std::string &pin_dir)
{
    if (auto r = require_root("unload xnat"); !r)
        return r.error();
    auto pin = PinDir::open_existing(pin_dir);
    if (!pin)
        return pin.error();
    // Only the config is needed, for the interfaces: a half-removed instance (a pin deleted by
    // hand, an interrupted unload) must still be removable.
    auto c = read_pinned_config(pin->path());
    if (!c)
        return c.error();
    // tc filters (every instance has egress ones) live in the namespace of their interfaces.
    if (c->netns_ino != current_netns_ino())
        return invalid_input("the instance at " + pin->path() +
                             " was loaded in another network namespace, where its tc filters "
                             "live; run xnat-load --unload there");
    detach_side(*pin, Side::wan, c->wan_ifindex, c->wan_clsact_created);
    detach_side(*pin, Side::lan, c->lan_ifindex, c->lan_clsact_created);
    remove_pins(*pin);
    return Report{"unloaded xnat from " + std::string(c->wan_name) + " and " + c->lan_name +
                  "; removed " + pin->path()};
}

} // namespace xnat
