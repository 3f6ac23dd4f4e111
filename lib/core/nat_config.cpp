#include "core/nat_config.h"

#include <nlohmann/json.hpp>

#include <set>

#include "core/forward_table.h"
#include "core/json_fields.h"
#include "core/masquerade.h"
#include "core/port_mapping.h"
#include "core/strict_json.h"

namespace xnat {
namespace {

using nlohmann::json;

constexpr uint32_t kMaxTimeoutS = 30u * 86400u;

Result<void> check_usable(const Endpoint &ep)
{
    uint32_t last = ep.addr + static_cast<uint32_t>(ep.hosts() - 1);
    for (uint32_t a : {ep.addr, last})
        if (const char *why = special_address_kind(a))
            return invalid_input("address " + format_ipv4(a) + " is " + why +
                                 " and cannot be forwarded");
    if (ep.hosts() > 1 && ep.ports() > 1)
        return invalid_input("give an address prefix or a port range, not both");
    return {};
}

// Checks a forward and makes `to` the same size as `from`: a single target port with a port
// range on `from` is the base of a range that keeps each port's offset.
Result<PortForward> normalize(PortForward f, const ForwardFieldNames &names)
{
    // A WAN address is whatever the interface has; the datapath takes it as it comes.
    if (f.from_wan && f.side != Side::wan)
        return invalid_input(names.on + ": a forward from wan:PORT applies on \"wan\" (LAN hosts reach it "
                                        "through hairpin), not on \"" + std::string(side_name(f.side)) + "\"");
    if (auto r = f.from_wan ? Result<void>{} : check_usable(f.from); !r)
        return with_context(names.from, r.error());
    if (auto r = check_usable(f.to); !r)
        return with_context(names.to, r.error());
    uint64_t n = f.from.size();
    if (f.to.size() != n) {
        if (f.to.size() == 1 && f.from.hosts() == 1) {
            uint64_t last = uint64_t{f.to.port_lo} + n - 1;
            if (last > 65535)
                return invalid_input(names.to + ": " + std::to_string(n) + " ports from " +
                                     std::to_string(f.to.port_lo) + " would pass 65535");
            f.to.port_hi = static_cast<uint16_t>(last);
        } else {
            return invalid_input(names.from + " names " + std::to_string(n) + " address:port pairs but " +
                                 names.to + " names " + std::to_string(f.to.size()) +
                                 "; they must match one to one");
        }
    }
    return f;
}

Result<PortForward> parse_forward(const json &j, const std::string &path)
{
    if (!j.is_object())
        return invalid_input(path + ": expected an object, got " + json_type(j));
    if (auto r = check_keys(j, path, {"proto", "from", "to", "on"}); !r)
        return r.error();
    auto proto = get_string(j, "proto", path);
    if (!proto)
        return proto.error();
    auto from = get_string(j, "from", path);
    if (!from)
        return from.error();
    auto to = get_string(j, "to", path);
    if (!to)
        return to.error();
    std::string side = "wan";
    if (j.contains("on")) {
        auto on = get_string(j, "on", path);
        if (!on)
            return on.error();
        side = *on;
    }
    // Errors name the field by its JSON path: "port_forwards[1].from: ...".
    ForwardFieldNames names{path + ".proto", path + ".from", path + ".to", path + ".on"};
    return make_port_forward(*proto, *from, *to, side, names);
}

Result<Timeouts> parse_timeouts(const json &j)
{
    if (!j.is_object())
        return invalid_input("timeouts: expected an object, got " + json_type(j));
    if (auto r = check_keys(j, "timeouts",
                            {"tcp_established", "tcp_transitory", "tcp_close", "udp", "icmp", "tcp_syn_sent",
                             "tcp_syn_recv", "udp_unreplied"});
        !r)
        return r.error();
    Timeouts t;
    struct Field {
        const char *name;
        uint32_t *slot;
    } fields[] = {{"tcp_established", &t.tcp_established},
                  {"tcp_transitory", &t.tcp_transitory},
                  {"tcp_close", &t.tcp_close},
                  {"udp", &t.udp},
                  {"icmp", &t.icmp},
                  {"tcp_syn_sent", &t.tcp_syn_sent},
                  {"tcp_syn_recv", &t.tcp_syn_recv},
                  {"udp_unreplied", &t.udp_unreplied}};
    for (const auto &f : fields) {
        if (!j.contains(f.name))
            continue;
        auto v = get_uint(j.at(f.name), std::string("timeouts.") + f.name, 1, kMaxTimeoutS);
        if (!v)
            return v.error();
        *f.slot = *v;
    }
    return t;
}

Result<Limits> parse_limits(const json &j)
{
    if (!j.is_object())
        return invalid_input("limits: expected an object, got " + json_type(j));
    if (auto r = check_keys(j, "limits", {"connections", "host_connections", "host_ports"}); !r)
        return r.error();
    Limits l;
    if (j.contains("connections")) {
        auto v = get_uint(j.at("connections"), "limits.connections", XNAT_MIN_CONNECTIONS,
                          XNAT_MAX_CONNECTIONS);
        if (!v)
            return v.error();
        l.connections = *v;
    }
    // 0 means no limit; a host can hold no more flows than the table, nor more ports than exist
    // across three protocols.
    if (j.contains("host_connections")) {
        auto v = get_uint(j.at("host_connections"), "limits.host_connections", 0, XNAT_MAX_CONNECTIONS);
        if (!v)
            return v.error();
        l.host_connections = *v;
    }
    if (j.contains("host_ports")) {
        auto v = get_uint(j.at("host_ports"), "limits.host_ports", 0, 3 * 65536);
        if (!v)
            return v.error();
        l.host_ports = *v;
    }
    return l;
}

// "pmtu" as iptables' --clamp-mss-to-pmtu, or a number as its --set-mss.
Result<uint16_t> parse_mss_clamp(const json &j)
{
    if (j.is_string()) {
        if (j.get<std::string>() == "pmtu")
            return static_cast<uint16_t>(XNAT_MSS_CLAMP_PMTU);
        return invalid_input("mss_clamp: expected \"pmtu\" or a number, got \"" + j.get<std::string>() + "\"");
    }
    if (!j.is_number_integer() && !j.is_number_unsigned())
        return invalid_input("mss_clamp: expected \"pmtu\" or a number, got " + json_type(j));
    auto v = get_uint(j, "mss_clamp", XNAT_MSS_CLAMP_MIN, XNAT_MSS_CLAMP_MAX);
    if (!v)
        return v.error();
    return static_cast<uint16_t>(*v);
}

Result<IcmpRefusals> parse_icmp_refusals(const json &j)
{
    if (!j.is_object())
        return invalid_input("icmp_refusals: expected an object, got " + json_type(j));
    if (auto r = check_keys(j, "icmp_refusals", {"lan", "wan", "per_second"}); !r)
        return r.error();
    IcmpRefusals r;
    for (auto [key, slot] : {std::pair{"lan", &r.lan}, std::pair{"wan", &r.wan}}) {
        if (!j.contains(key))
            continue;
        if (!j.at(key).is_boolean())
            return invalid_input(std::string("icmp_refusals.") + key + ": expected true or false, got " +
                                 json_type(j.at(key)));
        *slot = j.at(key).get<bool>();
    }
    if (j.contains("per_second")) {
        auto v = get_uint(j.at("per_second"), "icmp_refusals.per_second", 1, 1000000);
        if (!v)
            return v.error();
        r.per_second = *v;
    }
    return r;
}

} // namespace

xnat_timeouts to_kernel(const Timeouts &t)
{
    xnat_timeouts k{};
    k.tcp_established_s = t.tcp_established;
    k.tcp_transitory_s = t.tcp_transitory;
    k.tcp_close_s = t.tcp_close;
    k.udp_s = t.udp;
    k.icmp_s = t.icmp;
    k.tcp_syn_sent_s = t.tcp_syn_sent;
    k.tcp_syn_recv_s = t.tcp_syn_recv;
    k.udp_unreplied_s = t.udp_unreplied;
    return k;
}

Result<PortForward> make_port_forward(std::string_view proto, std::string_view from,
                                      std::string_view to, std::string_view side,
                                      const ForwardFieldNames &names)
{
    PortForward f;
    auto p = parse_proto(proto);
    if (!p)
        return with_context(names.proto, p.error());
    f.proto = *p;
    auto s = parse_side(side);
    if (!s)
        return with_context(names.on, s.error());
    f.side = *s;
    auto fe = parse_forward_from(from);
    if (!fe)
        return with_context(names.from, fe.error());
    f.from = fe->ep;
    f.from_wan = fe->wan;
    if (to.substr(0, 4) == "wan:")
        return invalid_input(names.to + ": wan: is for " + names.from +
                             " only; give the address of the host the traffic goes to");
    auto te = parse_endpoint(to);
    if (!te)
        return with_context(names.to, te.error());
    f.to = *te;
    return normalize(f, names);
}

namespace {

// Ports the daemon may hand out must be no one else's: not a static forward's, not masquerade's.
Result<void> check_port_mapping(const Config &cfg)
{
    const PortMappingConfig &pm = *cfg.port_mapping;
    std::string ours = "port_mapping.ports: " + std::to_string(pm.port_lo) + "-" + std::to_string(pm.port_hi);
    for (size_t i = 0; i < cfg.port_forwards.size(); ++i) {
        const PortForward &f = cfg.port_forwards[i];
        if (f.side == Side::wan && ports_overlap(pm.port_lo, pm.port_hi, f.from.port_lo, f.from.port_hi))
            return invalid_input(ours + " overlaps port_forwards[" + std::to_string(i) + "] (" + describe(f) +
                                 "): a static forward's ports are never handed out");
    }
    for (size_t i = 0; i < cfg.masquerade.size(); ++i) {
        const Masquerade &m = cfg.masquerade[i];
        if (ports_overlap(pm.port_lo, pm.port_hi, m.port_lo, m.port_hi))
            return invalid_input(ours + " overlaps masquerade[" + std::to_string(i) + "].ports " +
                                 std::to_string(m.port_lo) + "-" + std::to_string(m.port_hi) +
                                 ": give each its own range (masquerade's default is 1024-65535)");
    }
    return {};
}

} // namespace

Result<Config> parse_config(std::string_view json_text)
{
    auto parsed = parse_strict_json(json_text);
    if (!parsed)
        return parsed.error();
    const json &root = *parsed;
    if (!root.is_object())
        return invalid_input("expected a JSON object at the top, got " + json_type(root));
    if (auto r = check_keys(root, "", {"port_forwards", "masquerade", "timeouts", "limits", "icmp_refusals",
                                       "mss_clamp", "port_mapping"});
        !r)
        return r.error();

    Config cfg;
    if (root.contains("port_forwards")) {
        const json &list = root.at("port_forwards");
        if (!list.is_array())
            return invalid_input("port_forwards: expected an array, got " + json_type(list));
        if (list.size() > XNAT_MAX_RULES)
            return invalid_input("port_forwards: " + std::to_string(list.size()) +
                                 " rules, at most " + std::to_string(XNAT_MAX_RULES));
        for (size_t i = 0; i < list.size(); ++i) {
            auto fwd = parse_forward(list[i], "port_forwards[" + std::to_string(i) + "]");
            if (!fwd)
                return fwd.error();
            cfg.port_forwards.push_back(*fwd);
        }
    }
    if (root.contains("masquerade")) {
        const json &list = root.at("masquerade");
        if (!list.is_array())
            return invalid_input("masquerade: expected an array, got " + json_type(list));
        // Counted before any is parsed: a huge list is refused at once, not rule by rule.
        if (list.size() > XNAT_MAX_MASQ_RULES)
            return invalid_input("masquerade: " + std::to_string(list.size()) + " rules, at most " +
                                 std::to_string(XNAT_MAX_MASQ_RULES));
        for (size_t i = 0; i < list.size(); ++i) {
            auto m = parse_masquerade(list[i], "masquerade[" + std::to_string(i) + "]");
            if (!m)
                return m.error();
            cfg.masquerade.push_back(*m);
        }
        if (auto r = check_masquerade_set(cfg.masquerade); !r)
            return r.error();
    }
    if (root.contains("timeouts")) {
        auto t = parse_timeouts(root.at("timeouts"));
        if (!t)
            return t.error();
        cfg.timeouts = *t;
    }
    if (root.contains("limits")) {
        auto l = parse_limits(root.at("limits"));
        if (!l)
            return l.error();
        cfg.limits = *l;
    }
    if (root.contains("icmp_refusals")) {
        auto r = parse_icmp_refusals(root.at("icmp_refusals"));
        if (!r)
            return r.error();
        cfg.icmp_refusals = *r;
    }

    if (root.contains("mss_clamp")) {
        auto m = parse_mss_clamp(root.at("mss_clamp"));
        if (!m)
            return m.error();
        cfg.mss_clamp = *m;
    }

    if (root.contains("port_mapping")) {
        auto p = parse_port_mapping(root.at("port_mapping"));
        if (!p)
            return p.error();
        cfg.port_mapping = *p;
        if (auto r = check_port_mapping(cfg); !r)
            return r.error();
    }

    std::vector<LabelledForward> labelled;
    for (size_t i = 0; i < cfg.port_forwards.size(); ++i)
        labelled.push_back({cfg.port_forwards[i], "port_forwards[" + std::to_string(i) + "]"});
    if (auto table = expand_forwards(labelled); !table)
        return table.error();
    return cfg;
}

Result<Config> load_config_file(const std::string &path)
{
    auto text = read_text_file(path);
    if (!text)
        return text.error();
    auto cfg = parse_config(*text);
    if (!cfg)
        return with_context(path, cfg.error());
    return cfg;
}

Result<ForwardFrom> parse_forward_from(std::string_view text)
{
    constexpr std::string_view kWan = "wan:";
    if (text.substr(0, kWan.size()) != kWan) {
        auto ep = parse_endpoint(text);
        if (!ep)
            return ep.error();
        return ForwardFrom{*ep, false};
    }
    std::string_view ports = text.substr(kWan.size());
    if (ports.empty())
        return invalid_input("expected wan:PORT[-PORT], got \"" + std::string(text) + "\"");
    auto range = parse_ports(ports);
    if (!range)
        return range.error();
    ForwardFrom f;
    f.wan = true;
    f.ep.port_lo = range->first;
    f.ep.port_hi = range->second;
    return f;
}

std::string format_forward_from(const PortForward &f)
{
    if (!f.from_wan)
        return format_endpoint(f.from);
    std::string s = "wan:" + std::to_string(f.from.port_lo);
    if (f.from.port_hi != f.from.port_lo)
        s += "-" + std::to_string(f.from.port_hi);
    return s;
}

nlohmann::json port_forward_to_json(const PortForward &f)
{
    return json{{"proto", std::string(proto_name(static_cast<uint8_t>(f.proto)))},
                {"on", std::string(side_name(f.side))},
                {"from", format_forward_from(f)},
                {"to", format_endpoint(f.to)}};
}

std::string describe(const PortForward &f)
{
    std::string s = std::string(proto_name(static_cast<uint8_t>(f.proto))) + " " + format_forward_from(f);
    if (f.from_wan && f.from.addr)
        s += " (" + format_ipv4(f.from.addr) + ")";
    return s + " -> " + format_endpoint(f.to) + " on " + std::string(side_name(f.side));
}

} // namespace xnat
