#include "instance_forwards.h"

#include <bpf/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>

#include "core/net.h"
#include "kernel/interfaces.h"
#include "kernel/map_io.h"
#include "kernel/pin_dir.h"
#include "kernel/rule_store.h"
#include "kernel/unique_fd.h"
#include "xnat/rules.h"

namespace xnat {

using portmap::Mapping;
using portmap::Protocol;

namespace {

Proto to_proto(Protocol p)
{
    return p == Protocol::tcp ? Proto::tcp : Proto::udp;
}

PortForward forward_of(const Mapping &m)
{
    PortForward f;
    f.proto = to_proto(m.proto);
    f.side = Side::wan;
    f.from_wan = true;
    f.mapped = true;
    f.from.port_lo = f.from.port_hi = m.external_port;
    f.from.prefix_len = 32;
    f.to.addr = m.host;
    f.to.port_lo = f.to.port_hi = m.internal_port;
    f.to.prefix_len = 32;
    return f;
}

bool is_forward_of(const PortForward &f, const Mapping &m)
{
    return f.mapped && f.side == Side::wan && f.from_wan && f.proto == to_proto(m.proto) &&
           f.from.port_lo == m.external_port && f.from.port_hi == m.external_port && f.to.addr == m.host &&
           f.to.port_lo == m.internal_port;
}

// The kernel's id of the map pinned at `path`; 0 when there is none.
uint32_t pinned_map_id(const std::string &path)
{
    UniqueFd fd(bpf_obj_get(path.c_str()));
    if (!fd.valid())
        return 0;
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
        return 0;
    return info.id;
}

// A socket of the gateway's holds the port: binding it without SO_REUSEADDR fails.
bool gateway_socket_holds(Protocol proto, uint16_t port)
{
    UniqueFd s(::socket(AF_INET, (proto == Protocol::tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
    if (!s.valid())
        return true; // cannot tell: keep the port
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    return ::bind(s.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0;
}

} // namespace

Result<InstanceForwards> InstanceForwards::open(const std::string &pin_dir)
{
    if (auto r = require_instance(pin_dir); !r)
        return r.error();
    auto maps = InstanceMaps::open(pin_dir);
    if (!maps)
        return maps.error();
    return InstanceForwards(pin_dir, std::move(*maps), pinned_map_id(pin_dir + "/" + XNAT_STR(XNAT_MAP_CONFIG)));
}

bool InstanceForwards::still_pinned() const
{
    return config_map_id_ != 0 && pinned_map_id(pin_dir_ + "/" + XNAT_STR(XNAT_MAP_CONFIG)) == config_map_id_;
}

Result<void> InstanceForwards::add(const Mapping &m)
{
    auto lock = PinDir::open_existing(pin_dir_);
    if (!lock)
        return lock.error();
    auto placed = place_forward(maps_.view(), forward_of(m));
    if (!placed)
        return placed.error();
    if (placed->parked())
        return invalid_input("the WAN interface has no IPv4 address");
    auto id = add_rule(maps_.view(), *placed);
    if (!id)
        return id.error();
    return {};
}

void InstanceForwards::remove(const Mapping &m)
{
    auto lock = PinDir::open_existing(pin_dir_);
    if (!lock) {
        std::fprintf(stderr, "xnat-portmapd: cannot remove the forward of %s:%u: %s\n", format_ipv4(m.host).c_str(),
                     m.internal_port, lock.error().message.c_str());
        return;
    }
    // Only the forward this mapping made: the operator may have put another on the port since.
    auto there = installed(m);
    if (!there || !*there)
        return;
    ForwardFrom from;
    from.wan = true;
    from.ep.port_lo = from.ep.port_hi = m.external_port;
    if (auto r = delete_rule(maps_.view(), to_proto(m.proto), Side::wan, from); !r)
        std::fprintf(stderr, "xnat-portmapd: cannot remove the forward of %s:%u: %s\n", format_ipv4(m.host).c_str(),
                     m.internal_port, r.error().message.c_str());
}

bool InstanceForwards::taken(Protocol proto, uint16_t port)
{
    auto [local_lo, local_hi] = local_port_range();
    if (port >= local_lo && port <= local_hi)
        return true;
    auto rules = read_rules(maps_.view());
    if (!rules)
        return true;
    for (const StoredRule &r : *rules)
        if (!r.fwd.mapped && r.fwd.side == Side::wan && r.fwd.proto == to_proto(proto) &&
            port >= r.fwd.from.port_lo && port <= r.fwd.from.port_hi)
            return true;
    auto masq = read_masquerade(maps_.view());
    if (!masq)
        return true;
    for (const Masquerade &r : *masq)
        if (port >= r.port_lo && port <= r.port_hi)
            return true;
    auto wan = wan_address();
    if (!wan)
        return true;
    if (*wan) {
        xnat_snat_key key{};
        key.addr = htonl(**wan);
        key.port = htons(port);
        key.proto = static_cast<uint8_t>(proto);
        auto in_use = map_lookup<xnat_snat_key, xnat_snat_mapping>(maps_.view().snat, key, XNAT_STR(XNAT_MAP_SNAT));
        if (!in_use || *in_use)
            return true;
    }
    return gateway_socket_holds(proto, port);
}

Result<std::vector<Mapping>> InstanceForwards::mapped() const
{
    auto rules = read_rules(maps_.view());
    if (!rules)
        return rules.error();
    std::vector<Mapping> out;
    for (const StoredRule &r : *rules) {
        const PortForward &f = r.fwd;
        if (!f.mapped || f.from.port_lo != f.from.port_hi)
            continue;
        Mapping m;
        m.proto = f.proto == Proto::tcp ? Protocol::tcp : Protocol::udp;
        m.host = f.to.addr;
        m.internal_port = f.to.port_lo;
        m.external_port = f.from.port_lo;
        out.push_back(m);
    }
    return out;
}

Result<bool> InstanceForwards::installed(const Mapping &m) const
{
    auto rules = read_rules(maps_.view());
    if (!rules)
        return rules.error();
    for (const StoredRule &r : *rules)
        if (is_forward_of(r.fwd, m))
            return true;
    return false;
}

Result<std::optional<uint32_t>> InstanceForwards::wan_address() const
{
    return wan_address_in_use(maps_.view());
}

Result<unsigned> InstanceForwards::lan_ifindex() const
{
    auto cfg = read_config(maps_.view());
    if (!cfg)
        return cfg.error();
    return cfg->lan_ifindex;
}

Result<void> InstanceForwards::check_policy(const PortMappingConfig &pm) const
{
    std::string ours = "port_mapping.ports " + std::to_string(pm.port_lo) + "-" + std::to_string(pm.port_hi);
    auto masq = read_masquerade(maps_.view());
    if (!masq)
        return masq.error();
    for (const Masquerade &r : *masq)
        if (ports_overlap(pm.port_lo, pm.port_hi, r.port_lo, r.port_hi))
            return invalid_input(ours + " overlaps the running instance's masquerade ports " +
                                 std::to_string(r.port_lo) + "-" + std::to_string(r.port_hi));
    auto [local_lo, local_hi] = local_port_range();
    if (pm.port_lo >= local_lo && pm.port_hi <= local_hi)
        return invalid_input(ours + " lies inside the gateway's own ephemeral ports " + std::to_string(local_lo) +
                             "-" + std::to_string(local_hi) + " (net.ipv4.ip_local_port_range): none could be handed out");
    return {};
}

} // namespace xnat
