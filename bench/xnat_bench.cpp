// xnat-bench: the benchmark's packet generator, sink and bare XDP forwarder (bench/run.py drives
// it). Generator: BPF_PROG_RUN with live frames on one pinned CPU. Sink: an XDP program counting
// and dropping. Forwarder: V0, bare XDP forwarding without NAT.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sched.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "attach.h"
#include "bench.h"
#include "bench_fwd.skel.h"
#include "bench_gen.skel.h"
#include "bench_sink.skel.h"
#include "cli.h"
#include "kernel_error.h"
#include "result.h"

namespace {

using namespace xnat;
using Clock = std::chrono::steady_clock;

template <typename T, void (*Destroy)(T *)> struct Deleter {
    void operator()(T *p) const noexcept { Destroy(p); }
};
using GenSkel = std::unique_ptr<bench_gen, Deleter<bench_gen, bench_gen__destroy>>;
using SinkSkel = std::unique_ptr<bench_sink, Deleter<bench_sink, bench_sink__destroy>>;
using FwdSkel = std::unique_ptr<bench_fwd, Deleter<bench_fwd, bench_fwd__destroy>>;

Result<unsigned> ifindex_of(const std::string &dev)
{
    unsigned i = if_nametoindex(dev.c_str());
    if (!i)
        return invalid_input("no interface named \"" + dev + "\"");
    return i;
}

Result<std::array<uint8_t, 6>> parse_mac(const std::string &text)
{
    std::array<uint8_t, 6> mac{};
    unsigned b[6];
    if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
        return invalid_input("bad MAC address \"" + text + "\"");
    for (int i = 0; i < 6; ++i)
        mac[static_cast<size_t>(i)] = static_cast<uint8_t>(b[i]);
    return mac;
}

Result<uint32_t> parse_addr(const std::string &text)
{
    in_addr a{};
    if (inet_pton(AF_INET, text.c_str(), &a) != 1)
        return invalid_input("bad IPv4 address \"" + text + "\"");
    return ntohl(a.s_addr);
}

struct GenArgs {
    std::string dev, src_mac, dst_mac, saddr, daddr, proto = "udp";
    uint32_t n_saddr = 1, sport = 1024, n_sport = 1, dport = 5000, n_dport = 1;
    bool new_flows = false;
    double seconds = 0;
    uint64_t packets = 0;
    uint32_t batch = 1 << 16;
    int cpu = 0;
};

Result<void> cmd_gen(const GenArgs &a)
{
    auto ifindex = ifindex_of(a.dev);
    if (!ifindex)
        return ifindex.error();
    GenSkel skel(bench_gen__open());
    if (!skel)
        return kernel_error("open the generator", errno);
    bench_gen_cfg &c = const_cast<bench_gen_cfg &>(skel->rodata->cfg);
    auto smac = parse_mac(a.src_mac), dmac = parse_mac(a.dst_mac);
    auto saddr = parse_addr(a.saddr), daddr = parse_addr(a.daddr);
    for (const Error *e : {smac ? nullptr : &smac.error(), dmac ? nullptr : &dmac.error(),
                           saddr ? nullptr : &saddr.error(), daddr ? nullptr : &daddr.error()})
        if (e)
            return *e;
    std::copy(smac->begin(), smac->end(), c.src_mac);
    std::copy(dmac->begin(), dmac->end(), c.dst_mac);
    c.saddr_base = *saddr;
    c.n_saddr = a.n_saddr;
    c.daddr = *daddr;
    c.sport_base = a.sport;
    c.n_sport = a.n_sport;
    c.dport_base = a.dport;
    c.n_dport = a.n_dport;
    c.proto = a.proto == "syn" ? 6 : 17;
    c.new_flows = a.new_flows;
    if (int err = bench_gen__load(skel.get()))
        return kernel_error("load the generator", err, last_libbpf_warning());

    // The test run executes on the calling CPU: pin it, so the whole path runs where we say.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(a.cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        return kernel_error("pin to CPU " + std::to_string(a.cpu), errno);

    std::vector<uint8_t> frame(BENCH_FRAME_LEN, 0);
    xdp_md ctx{};
    ctx.ingress_ifindex = *ifindex;
    ctx.data_end = BENCH_FRAME_LEN;
    uint64_t sent = 0;
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(a.seconds);
    while (a.packets ? sent < a.packets : Clock::now() < deadline) {
        uint32_t n = a.batch;
        if (a.packets && a.packets - sent < n)
            n = static_cast<uint32_t>(a.packets - sent);
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                    .data_size_in = BENCH_FRAME_LEN, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
                    .repeat = static_cast<int>(n), .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                    .batch_size = 64);
        if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.bench_gen), &opts) != 0)
            return kernel_error("run the generator", errno);
        sent += n;
    }
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("{\"packets\": %llu, \"seconds\": %.6f, \"pps\": %.0f, \"cpu\": %d}\n",
                static_cast<unsigned long long>(sent), secs, static_cast<double>(sent) / secs, a.cpu);
    return {};
}

// Attaches an XDP program to a device by a pinned link named after the device.
Result<void> attach_pinned(int prog_fd, const std::string &dev, const std::string &pin_dir)
{
    auto ifindex = ifindex_of(dev);
    if (!ifindex)
        return ifindex.error();
    auto link = xdp_link_create(prog_fd, *ifindex);
    if (!link)
        return link.error();
    return pin_fd(link->get(), pin_dir + "/link_" + dev);
}

Result<void> cmd_attach_sink(const std::string &dev, const std::string &pin_dir)
{
    SinkSkel skel(bench_sink__open_and_load());
    if (!skel)
        return kernel_error("load the sink", errno, last_libbpf_warning());
    if (auto r = pin_fd(bpf_map__fd(skel->maps.bench_sink_packets), pin_dir + "/sink_packets"); !r)
        return r;
    return attach_pinned(bpf_program__fd(skel->progs.bench_sink), dev, pin_dir);
}

Result<void> cmd_read_sink(const std::string &pin_dir)
{
    auto fd = open_pinned(pin_dir + "/sink_packets");
    if (!fd)
        return fd.error();
    std::vector<uint64_t> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(fd->get(), &zero, per_cpu.data()) != 0)
        return kernel_error("read the sink", errno);
    uint64_t total = 0;
    for (uint64_t v : per_cpu)
        total += v;
    std::printf("%llu\n", static_cast<unsigned long long>(total));
    return {};
}

Result<void> cmd_attach_fwd(const std::string &wan, const std::string &lan, const std::string &pin_dir)
{
    FwdSkel skel(bench_fwd__open_and_load());
    if (!skel)
        return kernel_error("load the forwarder", errno, last_libbpf_warning());
    for (const std::string &dev : {wan, lan}) {
        auto ifindex = ifindex_of(dev);
        if (!ifindex)
            return ifindex.error();
        uint32_t i = *ifindex;
        if (bpf_map_update_elem(bpf_map__fd(skel->maps.bench_fwd_tx), &i, &i, BPF_ANY) != 0)
            return kernel_error("fill the devmap", errno);
        if (auto r = attach_pinned(bpf_program__fd(skel->progs.bench_fwd), dev, pin_dir); !r)
            return r;
    }
    return {};
}

} // namespace

int main(int argc, char **argv)
{
    const char *prog = "xnat-bench";
    CLI::App app{"The benchmark's generator, sink and bare XDP forwarder (see bench/run.py).", prog};
    app.require_subcommand(1);
    capture_libbpf_log();
    GenArgs g;
    std::string dev, pin_dir, wan, lan;
    std::function<Result<void>()> action;

    CLI::App *gen = app.add_subcommand("gen", "send 64-byte frames out of DEV at full speed from one CPU");
    gen->add_option("--dev", g.dev)->required();
    gen->add_option("--src-mac", g.src_mac)->required();
    gen->add_option("--dst-mac", g.dst_mac)->required();
    gen->add_option("--saddr", g.saddr)->required();
    gen->add_option("--n-saddr", g.n_saddr);
    gen->add_option("--daddr", g.daddr)->required();
    gen->add_option("--sport", g.sport);
    gen->add_option("--n-sport", g.n_sport);
    gen->add_option("--dport", g.dport);
    gen->add_option("--n-dport", g.n_dport);
    gen->add_option("--proto", g.proto)->check(CLI::IsMember({"udp", "syn"}));
    gen->add_flag("--new-flows", g.new_flows, "every packet a new tuple");
    gen->add_option("--seconds", g.seconds);
    gen->add_option("--packets", g.packets, "send exactly this many instead");
    gen->add_option("--batch", g.batch);
    gen->add_option("--cpu", g.cpu);
    gen->callback([&] { action = [&] { return cmd_gen(g); }; });

    CLI::App *sink = app.add_subcommand("attach-sink", "count and drop everything arriving on DEV");
    sink->add_option("--dev", dev)->required();
    sink->add_option("--pin-dir", pin_dir)->required();
    sink->callback([&] { action = [&] { return cmd_attach_sink(dev, pin_dir); }; });

    CLI::App *read = app.add_subcommand("read-sink", "print the packets the sink has counted");
    read->add_option("--pin-dir", pin_dir)->required();
    read->callback([&] { action = [&] { return cmd_read_sink(pin_dir); }; });

    CLI::App *fwd = app.add_subcommand("attach-fwd", "bare XDP forwarding between WAN and LAN (V0)");
    fwd->add_option("--wan", wan)->required();
    fwd->add_option("--lan", lan)->required();
    fwd->add_option("--pin-dir", pin_dir)->required();
    fwd->callback([&] { action = [&] { return cmd_attach_fwd(wan, lan, pin_dir); }; });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return cli_parse_failed(prog, app, e);
    }
    auto r = action();
    return r ? kExitOk : fail(prog, r.error());
}
