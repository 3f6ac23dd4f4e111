#include "bpf_harness.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "kernel/kernel_error.h"
#include "kernel/map_io.h"
#include "kernel/rule_store.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat::test {

int pass_verdict(Hook h)
{
    return h == Hook::xdp ? kXdpPass : kTcOk;
}
int drop_verdict(Hook h)
{
    return h == Hook::xdp ? kXdpDrop : kTcShot;
}
int redirect_verdict(Hook h)
{
    return h == Hook::xdp ? kXdpRedirect : kTcRedirect;
}
int reflect_verdict(Hook h)
{
    return redirect_verdict(h);
}
const char *hook_name(Hook h)
{
    return h == Hook::xdp ? "xdp" : "tc";
}

BpfFixture::BpfFixture(uint32_t max_connections) : skel_(max_connections)
{
    cfg_.abi_version = XNAT_ABI_VERSION;
    cfg_.max_connections = max_connections;
    cfg_.max_mappings = max_connections + XNAT_SNAT_HEADROOM;
    cfg_.local_port_lo = kLocalPortLo;
    cfg_.local_port_hi = kLocalPortHi;
    cfg_.sweep_interval_ms = XNAT_DEFAULT_SWEEP_INTERVAL_MS;
    set_timeouts(Timeouts{});
    if (auto r = arm_sweeper(skel_.skeleton()); !r)
        throw std::runtime_error(r.error().message);
}

MapSet BpfFixture::maps() const
{
    return skeleton_maps(skel_.skeleton());
}

void BpfFixture::write()
{
    // Keep the rule generation in force: only install() moves it.
    auto current = read_config(maps());
    if (!current)
        throw std::runtime_error(current.error().message);
    cfg_.rule_gen = current->rule_gen;
    auto r = write_config(maps(), cfg_);
    if (!r)
        throw std::runtime_error(r.error().message);
}

void BpfFixture::set_interfaces(unsigned wan, unsigned lan, uint8_t wan_mode, uint8_t lan_mode)
{
    cfg_.wan_ifindex = wan;
    cfg_.lan_ifindex = lan;
    cfg_.wan_mode = wan_mode;
    cfg_.lan_mode = lan_mode;
    for (uint32_t ifindex : {wan, lan})
        if (ifindex)
            if (!map_update(maps().tx_ports, ifindex, ifindex, "tx")) // a throw: xnat-difffuzz runs no Catch session
                throw std::runtime_error("fill the redirect map");
    write();
}

void BpfFixture::set_timeouts(const Timeouts &t)
{
    cfg_.timeouts = to_kernel(t);
    write();
}

void BpfFixture::configure(const std::function<void(xnat_config &)> &edit)
{
    edit(cfg_);
    write();
}

void BpfFixture::set_sweep_interval_ms(uint32_t ms)
{
    cfg_.sweep_interval_ms = ms;
    write();
}

xnat_sweep_stats BpfFixture::sweep_stats() const
{
    auto s = read_sweep_stats(bpf_map__fd(skel_->maps.XNAT_MAP_SWEEP));
    if (!s)
        throw std::runtime_error(s.error().message);
    return *s;
}

void BpfFixture::install(const std::vector<PortForward> &rules, const std::vector<Masquerade> &masq)
{
    Config c;
    c.port_forwards = rules;
    RuleTables tables;
    auto fwd = build_forward_table(rules_from_config(c));
    if (!fwd)
        throw std::runtime_error(fwd.error().message);
    tables.fwd = std::move(*fwd);
    auto trie = build_masq_table(masq);
    if (!trie)
        throw std::runtime_error(trie.error().message);
    tables.masq = std::move(*trie);
    auto current = read_config(maps());
    if (!current)
        throw std::runtime_error(current.error().message);
    cfg_.rule_gen = current->rule_gen;
    auto r = publish(maps(), tables, cfg_);
    if (!r)
        throw std::runtime_error(r.error().message);
}

size_t BpfFixture::flush(uint32_t only_addr)
{
    auto n = flush_connections(bpf_program__fd(skel_->progs.XNAT_PROG_FLUSH), only_addr);
    if (!n)
        throw std::runtime_error(n.error().message);
    return *n;
}

size_t BpfFixture::snat_mappings() const
{
    size_t n = 0;
    auto walked = map_for_each_key<xnat_snat_key>(maps().snat, "snat", [&](const xnat_snat_key &) { ++n; });
    if (!walked)
        throw std::runtime_error(walked.error().message);
    return n;
}

namespace {

RunResult run_program(bpf_program *prog, Hook hook, const Bytes &frame, unsigned ingress_ifindex)
{
    RunResult res;
    res.out.resize(frame.size() + 256);
    xdp_md xctx{};
    __sk_buff sctx{};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_out = res.out.data(), .data_size_in = static_cast<uint32_t>(frame.size()),
                .data_size_out = static_cast<uint32_t>(res.out.size()), .repeat = 1);
    if (hook == Hook::xdp && ingress_ifindex) {
        xctx.ingress_ifindex = ingress_ifindex;
        xctx.data_end = static_cast<uint32_t>(frame.size());
        opts.ctx_in = &xctx;
        opts.ctx_size_in = sizeof(xctx);
    } else if (hook == Hook::tc && ingress_ifindex) {
        sctx.ifindex = ingress_ifindex;
        opts.ctx_in = &sctx;
        opts.ctx_size_in = sizeof(sctx);
    }
    int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
    if (err)
        throw std::runtime_error("bpf_prog_test_run_opts: " + std::to_string(err));
    res.verdict = static_cast<int>(opts.retval);
    res.out.resize(opts.data_size_out);
    return res;
}

} // namespace

RunResult BpfFixture::run(Hook hook, Side side, const Bytes &frame, unsigned ingress_ifindex)
{
    RunResult r = run_one(hook, side, frame, ingress_ifindex);
    if (hook == Hook::tc || r.verdict != kXdpPass)
        return r;
    if (r.out != frame)
        throw std::runtime_error("XDP passed a frame it had changed; tc would see it half-done");
    RunResult t = run_one(Hook::tc, side, frame, ingress_ifindex);
    t.handed_to_tc = true;
    t.verdict = t.verdict == kTcShot ? kXdpDrop : t.verdict == kTcRedirect ? kXdpRedirect : kXdpPass;
    return t;
}

RunResult BpfFixture::run_one(Hook hook, Side side, const Bytes &frame, unsigned ingress_ifindex)
{
    bpf_program *prog;
    if (hook == Hook::xdp)
        prog = side == Side::wan ? skel_->progs.XNAT_PROG_XDP_WAN : skel_->progs.XNAT_PROG_XDP_LAN;
    else
        prog = side == Side::wan ? skel_->progs.XNAT_PROG_TC_WAN : skel_->progs.XNAT_PROG_TC_LAN;
    return run_program(prog, hook, frame, ingress_ifindex);
}

RunResult BpfFixture::run_egress(const Bytes &frame)
{
    return run_program(skel_->progs.XNAT_PROG_TC_EGRESS, Hook::tc, frame, 0);
}

void BpfFixture::advance_clock_s(uint64_t seconds)
{
    skel_->bss->xnat_test_clock_offset_ns += seconds * 1000000000ull;
}

void BpfFixture::set_clock_offset_ns(uint64_t offset_ns)
{
    skel_->bss->xnat_test_clock_offset_ns = offset_ns;
}

void BpfFixture::set_rand_state(uint64_t state)
{
    skel_->bss->xnat_test_rand_state = state;
}

std::vector<Connection> BpfFixture::conns() const
{
    auto c = read_connections(maps());
    if (!c)
        throw std::runtime_error(c.error().message);
    return *c;
}

size_t BpfFixture::ct_entries() const
{
    auto n = count_ct_entries(maps());
    if (!n)
        throw std::runtime_error(n.error().message);
    return *n;
}

size_t BpfFixture::await_ct_entries(size_t want) const
{
    size_t n = ct_entries();
    for (int i = 0; i < 50 && n != want; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        n = ct_entries();
    }
    return n;
}

uint64_t BpfFixture::counter(int index) const
{
    auto c = read_counters(maps());
    if (!c)
        throw std::runtime_error(c.error().message);
    return (*c)[static_cast<size_t>(index)];
}

PortForward fwd(const char *proto, const char *from, const char *to, const char *side)
{
    auto f = make_port_forward(proto, from, to, side);
    if (!f)
        throw std::invalid_argument(f.error().message);
    return *f;
}

NetGateway::NetGateway(Hook h, std::vector<PortForward> fwds, std::vector<Masquerade> masqs,
                       uint32_t max_connections)
    : fx(max_connections), hook(h)
{
    fx.set_interfaces(net.wan0, net.lan0, mode_of(h), mode_of(h));
    fx.install(fwds, masqs);
}

Masquerade masq(const char *source, const char *to_source, uint16_t port_lo, uint16_t port_hi,
                bool endpoint_independent, std::vector<const char *> not_destination)
{
    Masquerade m;
    m.source = *parse_prefix(source);
    m.to_source = *parse_ipv4(to_source);
    m.port_lo = port_lo;
    m.port_hi = port_hi;
    m.filtering = endpoint_independent ? Filtering::endpoint_independent : Filtering::address_port_dependent;
    for (const char *p : not_destination)
        m.not_destination.push_back(*parse_prefix(p));
    return m;
}

Mac mac_of(const char *ifname)
{
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    ifreq req{};
    std::strncpy(req.ifr_name, ifname, IFNAMSIZ - 1);
    int rc = ::ioctl(fd, SIOCGIFHWADDR, &req);
    ::close(fd);
    if (rc != 0)
        throw std::runtime_error(std::string("no MAC for ") + ifname);
    Mac m;
    std::memcpy(m.data(), req.ifr_hwaddr.sa_data, 6);
    return m;
}

namespace {

void sh(const std::string &cmd)
{
    if (std::system(cmd.c_str()) != 0)
        throw std::runtime_error("test network setup failed: " + cmd);
}

} // namespace

const TestNet &TestNet::get()
{
    // The test binary runs in a network namespace of its own (see main.cpp), so these
    // interfaces exist only for it.
    static const TestNet net = [] {
        sh("ip link add wan0 type veth peer name wan0p && ip link add lan0 type veth peer name lan0p");
        sh("for d in wan0 wan0p lan0 lan0p lo; do ip link set $d up; done");
        sh("ip addr add 198.51.100.1/24 dev wan0 && ip addr add 203.0.113.1/32 dev wan0");
        sh("ip addr add 10.0.0.1/24 dev lan0");
        sh("ip neigh replace 10.0.0.12 lladdr 02:00:00:00:00:12 dev lan0 nud permanent");
        sh("ip neigh replace 198.51.100.2 lladdr 02:00:00:00:00:02 dev wan0 nud permanent");
        sh("ip neigh replace 198.51.100.254 lladdr 02:00:00:00:00:fe dev wan0 nud permanent");
        sh("ip neigh replace 10.0.0.5 lladdr 02:00:00:00:00:05 dev lan0 nud permanent");
        sh("ip route add default via 198.51.100.254 dev wan0");
        sh("ip route add unreachable 192.0.2.0/24"); // a destination that routes nowhere
        std::ofstream("/proc/sys/net/ipv4/ip_forward") << "1";
        TestNet n;
        n.wan0 = if_nametoindex("wan0");
        n.lan0 = if_nametoindex("lan0");
        if (!n.wan0 || !n.lan0)
            throw std::runtime_error("test network interfaces missing");
        return n;
    }();
    return net;
}

} // namespace xnat::test
