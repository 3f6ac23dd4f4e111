#include "instance_forwards.h"

#include <bpf/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "core/net.h"
#include "kernel/interfaces.h"
#include "kernel/map_io.h"
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

Result<InstanceForwards> InstanceForwards::open(const std::string &pin_dir, LogSink log)
{
    if (auto r = require_instance(pin_dir); !r)
        return r.error();
    auto maps = InstanceMaps::open(pin_dir);
    if (!maps)
        return maps.error();
    return InstanceForwards(pin_dir, std::move(*maps),
                            pinned_map_id(pin_dir + "/" + XNAT_STR(XNAT_MAP_CONFIG)), std::move(log));
}

bool InstanceForwards::still_pinned() const
{
    return config_map_id_ != 0 && pinned_map_id(pin_dir_ + "/" + XNAT_STR(XNAT_MAP_CONFIG)) == config_map_id_;
}

Result<PinDir> InstanceForwards::lock() const
{
    return PinDir::open_existing(pin_dir_);
}

Result<void> InstanceForwards::refresh()
{
    auto rules = read_rules(maps_.view());
    if (!rules)
        return rules.error();
    auto masq = read_masquerade(maps_.view());
    if (!masq)
        return masq.error();
    auto wan = wan_address_in_use(maps_.view());
    if (!wan)
        return wan.error();
    rules_ = std::move(*rules);
    masq_ = std::move(*masq);
    wan_ = wan->value_or(0);
    return {};
}

Result<void> InstanceForwards::add(const Mapping &m)
{
    if (installed(m))
        return {};
    if (wan_ == 0)
        return system_error("the WAN interface has no IPv4 address");
    PortForward f = forward_of(m);
    f.from.addr = wan_;
    auto id = add_rule(maps_.view(), f);
    if (!id)
        return id.error();
    return refresh();
}

void InstanceForwards::remove(const Mapping &m)
{
    // Only the forward this mapping made: the operator may have put another on the port since.
    if (!installed(m))
        return;
    ForwardFrom from;
    from.wan = true;
    from.ep.port_lo = from.ep.port_hi = m.external_port;
    auto r = delete_rule(maps_.view(), to_proto(m.proto), Side::wan, from);
    if (!r) {
        log_("cannot remove the forward of " + format_ipv4(m.host) + ":" + std::to_string(m.internal_port) +
             ": " + r.error().message + " (tried again at the next tick)");
        if (std::find(unremoved_.begin(), unremoved_.end(), m) == unremoved_.end())
            unremoved_.push_back(m);
    }
    if (auto again = refresh(); !again)
        log_(again.error().message);
}

void InstanceForwards::retry_removals()
{
    std::vector<Mapping> again;
    again.swap(unremoved_);
    for (const Mapping &m : again)
        remove(m);
}

bool InstanceForwards::taken(Protocol proto, uint16_t port, uint32_t host, uint16_t internal_port)
{
    auto [local_lo, local_hi] = local_port_range();
    if (port >= local_lo && port <= local_hi)
        return true;
    Mapping self;
    self.proto = proto;
    self.host = host;
    self.internal_port = internal_port;
    self.external_port = port;
    for (const StoredRule &r : rules_)
        if (r.fwd.side == Side::wan && r.fwd.proto == to_proto(proto) && port >= r.fwd.from.port_lo &&
            port <= r.fwd.from.port_hi && !is_forward_of(r.fwd, self))
            return true;
    for (const Masquerade &r : masq_)
        if (port >= r.port_lo && port <= r.port_hi)
            return true;
    if (wan_) {
        xnat_snat_key key{};
        key.addr = htonl(wan_);
        key.port = htons(port);
        key.proto = static_cast<uint8_t>(proto);
        auto in_use =
            map_lookup<xnat_snat_key, xnat_snat_mapping>(maps_.view().snat, key, XNAT_STR(XNAT_MAP_SNAT));
        if (!in_use)
            return true;
        // The endpoint's own flows leave from its mapped port (the datapath's agreement).
        if (*in_use && ((*in_use)->int_addr != htonl(host) || (*in_use)->int_port != htons(internal_port)))
            return true;
    }
    return gateway_socket_holds(proto, port);
}

std::vector<Mapping> InstanceForwards::mapped() const
{
    std::vector<Mapping> out;
    for (const StoredRule &r : rules_) {
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

bool InstanceForwards::installed(const Mapping &m) const
{
    return std::any_of(rules_.begin(), rules_.end(),
                       [&](const StoredRule &r) { return is_forward_of(r.fwd, m); });
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
    for (const Masquerade &r : masq_)
        if (ports_overlap(pm.port_lo, pm.port_hi, r.port_lo, r.port_hi))
            return invalid_input(ours + " overlaps the running instance's masquerade ports " +
                                 std::to_string(r.port_lo) + "-" + std::to_string(r.port_hi));
    auto [local_lo, local_hi] = local_port_range();
    if (pm.port_lo >= local_lo && pm.port_hi <= local_hi)
        return invalid_input(ours + " lies inside the gateway's own ephemeral ports " +
                             std::to_string(local_lo) + "-" + std::to_string(local_hi) +
                             " (net.ipv4.ip_local_port_range): none could be handed out");
    return {};
}

} // namespace xnat
