// DNAT rules into port forwards.
#include "import/iptables_translator.h"

#include "core/nat_config.h"

namespace xnat::iptables {
namespace {

using nlohmann::ordered_json;

bool is_private(uint32_t a)
{
    return (a >> 24) == 10 || (a >> 20) == ((172u << 4) | 1u) || (a >> 16) == ((192u << 8) | 168u) ||
           (a >> 22) == ((100u << 2) | 1u);
}

// The destination a DNAT matches.
struct DnatFrom {
    Prefix dst{};
    bool from_wan = false; // the WAN interface's address, whatever it is
    std::string wan_note;  // how the destination was found without -d; empty with -d
};

// A DNAT on -i WAN without -d is the usual form for a WAN address that changes: it becomes a
// forward from wan:PORT, on whatever address the WAN has (--wan-address pins one instead). On
// other interfaces it catches every destination, which xnat cannot.
Result<DnatFrom> dnat_from(const Rule &r, const std::string &lan, const std::optional<uint32_t> &wan_address)
{
    DnatFrom from;
    if (r.dst) {
        from.dst = *r.dst;
    } else if (r.in_if.empty() || r.in_neg) {
        return invalid_input(
            "DNAT without -d or -i: iptables forwards the port on every destination from every "
            "interface; xnat forwards need the destination address, or -i naming the WAN interface");
    } else if (r.in_if == lan) {
        return invalid_input(
            "DNAT without -d on the LAN interface " + r.in_if +
            ": iptables forwards the port for every destination; xnat forwards match one address");
    } else if (wan_address) {
        from.dst = Prefix{*wan_address, 32};
        from.wan_note = "no -d: the WAN address " + format_ipv4(*wan_address) + " from --wan-address";
    } else {
        from.from_wan = true;
        from.wan_note = "no -d: the WAN interface's address, whatever it is";
    }
    if (r.dst_neg)
        return invalid_input("! -d on a DNAT: xnat forwards match one destination");
    if (from.dst.len != 32)
        return invalid_input(
            "-d " + format_prefix(from.dst) +
            ": DNAT sends every address of the prefix to one target; xnat forwards map one to one");
    return from;
}

// The ports a DNAT's --dport range goes to, from the ports of its --to-destination.
Result<PortRange> dnat_to_ports(const Rule &r, PortRange from, const NatTarget &target)
{
    if (!target.ports)
        return from;
    PortRange p = *target.ports;
    uint32_t n = uint32_t{from.hi} - from.lo + 1;
    if (target.base) {
        // --to-destination ADDR:LO-HI/BASE: port d goes to LO + (d - BASE) mod size.
        uint32_t size = uint32_t{p.hi} - p.lo + 1;
        if (from.lo < *target.base || uint32_t{from.hi} - *target.base >= size)
            return invalid_input("--to-destination " + r.to_destination + ": ports " +
                                 std::to_string(from.lo) + "-" + std::to_string(from.hi) +
                                 " wrap around the target range; xnat maps ranges one to one");
        PortRange to;
        to.lo = static_cast<uint16_t>(p.lo + (from.lo - *target.base));
        to.hi = static_cast<uint16_t>(to.lo + n - 1);
        return to;
    }
    if (p.lo == p.hi) {
        if (n != 1)
            return invalid_input("--dport " + std::to_string(from.lo) + ":" + std::to_string(from.hi) +
                                 " to the single port " + std::to_string(p.lo) +
                                 ": iptables sends every port to one; xnat maps ranges one to one "
                                 "(--to-destination ADDR:LO-HI/BASE keeps the offset)");
        return p;
    }
    // Ports already inside the target range are kept by netfilter.
    if (p.lo <= from.lo && from.hi <= p.hi)
        return from;
    return invalid_input("--to-destination " + r.to_destination +
                         ": netfilter picks a port of the range per connection; xnat maps ports one to one");
}

// Where a DNAT sends its packets: --to-destination's one address, and the ports.
struct DnatTo {
    uint32_t addr = 0;
    PortRange ports;
};

Result<DnatTo> dnat_to(const Rule &r, const Prefix &dst)
{
    auto target = parse_nat_target(r.to_destination, "--to-destination");
    if (!target)
        return target.error();
    if (target->addr_lo && *target->addr_lo != *target->addr_hi)
        return invalid_input(
            "--to-destination " + r.to_destination +
            ": an address range is chosen from per connection; xnat forwards to one address");
    if (!target->addr_lo || *target->addr_lo == dst.addr)
        return invalid_input(
            "--to-destination " + r.to_destination +
            ": keeps the address, a redirect to the gateway itself; xnat forwards to other hosts");
    auto ports = dnat_to_ports(r, *r.dport, *target);
    if (!ports)
        return ports.error();
    return DnatTo{*target->addr_lo, *ports};
}

std::string port_range(PortRange p)
{
    return std::to_string(p.lo) + (p.lo == p.hi ? "" : "-" + std::to_string(p.hi));
}

} // namespace

Translation Translator::translate_dnat(const Rule &r)
{
    if (r.proto != "tcp" && r.proto != "udp")
        return unsupported(r.proto.empty()
                               ? "DNAT without -p tcp or -p udp: xnat forwards TCP and UDP ports only"
                               : "-p " + r.proto + ": xnat forwards TCP and UDP only");
    if (r.src)
        return unsupported("-s: xnat forwards match the destination only");
    if (!r.out_if.empty())
        return unsupported("-o in PREROUTING: not a valid match");
    if (r.has_to_ports)
        return unsupported("--to-ports with -j DNAT: iptables refuses it (the port goes in --to-destination "
                           "ADDR:PORT)");
    auto from = dnat_from(r, lan_, wan_address_);
    if (!from)
        return unsupported(from.error().message);
    if (!r.dport)
        return unsupported("DNAT without --dport: xnat forwards need a port or port range");
    if (!r.has_to_destination)
        return unsupported("DNAT without --to-destination");
    auto to = dnat_to(r, from->dst);
    if (!to)
        return unsupported(to.error().message);
    auto side = dnat_side(r, from->dst, !from->wan_note.empty());
    if (!side)
        return unsupported(side.error().message);
    std::string note = side->note;
    if (!from->wan_note.empty()) {
        if (side->side != Side::wan)
            return unsupported(
                "DNAT without -d on the LAN interface " + r.in_if +
                ": iptables forwards the port for every destination; xnat forwards match one address");
        note = from->wan_note + (note.empty() ? "" : "; " + note);
    }
    ForwardFieldNames names{"-p", "-d/--dport", "--to-destination", "-i"};
    auto fwd = make_port_forward(
        r.proto, (from->from_wan ? "wan" : format_ipv4(from->dst.addr)) + ":" + port_range(*r.dport),
        format_ipv4(to->addr) + ":" + port_range(to->ports), side_name(side->side), names);
    if (!fwd)
        return unsupported(fwd.error().message);
    return add_forward(r, *fwd, note);
}

// Which interface's ingress a DNAT applies on, from -i, or from the address when -i is absent.
// `wan_filled`: -d came from --wan-address, so an unknown -i is the WAN.
Result<Translator::DnatSide> Translator::dnat_side(const Rule &r, const Prefix &dst, bool wan_filled)
{
    Side guess = wan_filled ? Side::wan : is_private(dst.addr) ? Side::lan : Side::wan;
    if (r.in_if.empty())
        return DnatSide{guess,
                        std::string("no -i: on ") + std::string(side_name(guess)) + ", as " +
                            format_ipv4(dst.addr) +
                            (guess == Side::lan ? " is a private address" : " is not a private address")};
    if (r.in_neg)
        return invalid_input("! -i " + r.in_if + ": xnat cannot negate an interface");
    if (r.in_if == wan_)
        return DnatSide{Side::wan, ""};
    if (r.in_if == lan_)
        return DnatSide{Side::lan, ""};
    if (!wan_.empty() && !lan_.empty())
        return invalid_input("-i " + r.in_if + " is neither the WAN (" + wan_ + ") nor the LAN (" + lan_ +
                             ") interface");
    Side side = !wan_.empty() ? Side::lan : !lan_.empty() ? Side::wan : guess;
    (side == Side::wan ? wan_ : lan_) = r.in_if;
    return DnatSide{side,
                    "-i " + r.in_if + " taken as the " + (side == Side::wan ? "WAN" : "LAN") + " interface"};
}

// Takes the forward unless an earlier one hides it or overlaps it.
Translation Translator::add_forward(const Rule &r, const PortForward &fwd, const std::string &note)
{
    std::string label = "line " + std::to_string(r.line);
    // A rule an earlier one covers entirely never sees a packet in iptables either.
    for (const LabelledForward &e : forwards_) {
        const PortForward &f = e.fwd;
        if (f.proto == fwd.proto && f.side == fwd.side && f.from_wan == fwd.from_wan &&
            f.from.prefix_len == 32 && f.from.addr == fwd.from.addr && f.from.port_lo <= fwd.from.port_lo &&
            fwd.from.port_hi <= f.from.port_hi)
            return no_effect("never reached: " + e.label + " forwards " + describe(f) + " first");
    }
    auto all = forwards_;
    all.push_back({fwd, label, 0});
    if (auto table = expand_forwards(all); !table) {
        std::string msg = table.error().message;
        if (msg.rfind(label + ": ", 0) == 0)
            msg = msg.substr(label.size() + 2);
        return unsupported(msg + " (the first match wins in iptables; xnat refuses overlaps)");
    }
    forwards_ = std::move(all);
    std::string path = "port_forwards[" + std::to_string(forward_json_.size()) + "]";
    ordered_json j;
    j["proto"] = r.proto;
    j["on"] = std::string(side_name(fwd.side));
    j["from"] = format_forward_from(fwd);
    j["to"] = format_endpoint(fwd.to);
    forward_json_.push_back(j);
    return translated(path + ": " + describe(fwd) + (note.empty() ? "" : " (" + note + ")"));
}

} // namespace xnat::iptables
