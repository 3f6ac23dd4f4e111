// xnat-bench: the benchmark's packet generator, sink and bare XDP forwarder (bench/run.py drives
// it). Generator: BPF_PROG_RUN with live frames on one pinned CPU, AF_PACKET where the kernel
// refuses live frames, or writes into a tun device (a WAN without an Ethernet header). Sink: an
// XDP program counting
// and dropping. Forwarder: V0, bare XDP forwarding without NAT.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "bench_fwd.skel.h"
#include "bench_gen.skel.h"
#include "bench_sink.skel.h"
#include "bench_table.skel.h"
#include "cli/cli.h"
#include "core/result.h"
#include "kernel/attach.h"
#include "kernel/kernel_error.h"
#include "kernel/unique_fd.h"

namespace {

using namespace xnat;
using Clock = std::chrono::steady_clock;

template <typename T, void (*Destroy)(T *)> struct Deleter {
    void operator()(T *p) const noexcept { Destroy(p); }
};
using GenSkel = std::unique_ptr<bench_gen, Deleter<bench_gen, bench_gen__destroy>>;
using SinkSkel = std::unique_ptr<bench_sink, Deleter<bench_sink, bench_sink__destroy>>;
using FwdSkel = std::unique_ptr<bench_fwd, Deleter<bench_fwd, bench_fwd__destroy>>;
using TableSkel = std::unique_ptr<bench_table, Deleter<bench_table, bench_table__destroy>>;

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
    std::string dev, src_mac, dst_mac, saddr, daddr, proto = "udp", method = "auto";
    uint32_t n_saddr = 1, sport = 1024, n_sport = 1, dport = 5000, n_dport = 1;
    bool new_flows = false;
    double seconds = 0;
    uint64_t packets = 0;
    uint32_t batch = 1 << 16;
    int cpu = 0;
};

Result<bench_gen_cfg> gen_config(const GenArgs &a)
{
    bench_gen_cfg c{};
    auto smac = parse_mac(a.src_mac), dmac = parse_mac(a.dst_mac);
    auto saddr = parse_addr(a.saddr), daddr = parse_addr(a.daddr);
    for (const Error *e : {smac ? nullptr : &smac.error(), dmac ? nullptr : &dmac.error(),
                           saddr ? nullptr : &saddr.error(), daddr ? nullptr : &daddr.error()})
        if (e)
            return *e;
    if (!a.n_saddr || !a.n_sport || !a.n_dport)
        return invalid_input("--n-saddr, --n-sport and --n-dport must be at least 1");
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
    return c;
}

// The test run, and the AF_PACKET sends, execute on the calling CPU: pin it, so the whole path
// runs where we say.
Result<void> pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        return kernel_error("pin to CPU " + std::to_string(cpu), errno);
    return {};
}

// Sends frames until `packets` are out or `seconds` have passed; `send(n)` sends up to n and
// says how many went.
template <typename Send> Result<uint64_t> send_loop(const GenArgs &a, uint32_t chunk, Send send)
{
    uint64_t sent = 0;
    auto deadline = Clock::now() + std::chrono::duration<double>(a.seconds);
    while (a.packets ? sent < a.packets : Clock::now() < deadline) {
        uint32_t n = chunk;
        if (a.packets && a.packets - sent < n)
            n = static_cast<uint32_t>(a.packets - sent);
        auto r = send(n);
        if (!r)
            return r.error();
        sent += *r;
    }
    return sent;
}

// Live frames: BPF_PROG_RUN turns one frame into `repeat` packets, each built by bench_gen
// and sent with XDP_TX. The cheapest generator there is, but kernels may refuse it (EPERM on
// some builds, EINVAL before 5.18).
class LiveGen {
  public:
    static Result<LiveGen> open(const bench_gen_cfg &cfg, unsigned ifindex)
    {
        LiveGen g;
        g.skel_.reset(bench_gen__open());
        if (!g.skel_)
            return kernel_error("open the generator", errno);
        const_cast<bench_gen_cfg &>(g.skel_->rodata->cfg) = cfg;
        if (int err = bench_gen__load(g.skel_.get()))
            return kernel_error("load the generator", err, last_libbpf_warning());
        g.ctx_.ingress_ifindex = ifindex;
        g.ctx_.data_end = BENCH_FRAME_LEN;
        g.frame_.assign(BENCH_FRAME_LEN, 0);
        return g;
    }

    Result<uint32_t> send(uint32_t n)
    {
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame_.data(),
                    .data_size_in = BENCH_FRAME_LEN, .ctx_in = &ctx_, .ctx_size_in = sizeof(ctx_),
                    .repeat = static_cast<int>(n), .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                    .batch_size = 64);
        if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.bench_gen), &opts) != 0)
            return kernel_error("run the live-frames generator", errno);
        return n;
    }

  private:
    GenSkel skel_;
    xdp_md ctx_{};
    std::vector<uint8_t> frame_;
};

// AF_PACKET: sendmmsg() of frames built in user space, bypassing the qdisc. The veth hands each
// frame to its peer's NAPI on this CPU, which runs when the send re-enables bottom halves: the
// frame crosses the whole path before the next is sent, as with live frames, at the price of a
// socket buffer per frame. That price is in the path without a gateway too, which run.py
// subtracts.
class PacketGen {
  public:
    static constexpr uint32_t kBatch = 64;

    static Result<PacketGen> open(const bench_gen_cfg &cfg, unsigned ifindex)
    {
        PacketGen g;
        g.cfg_ = cfg;
        g.fd_ = UniqueFd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
        if (!g.fd_.valid())
            return kernel_error("open an AF_PACKET socket", errno);
        int one = 1;
        if (::setsockopt(g.fd_.get(), SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) != 0)
            return kernel_error("set PACKET_QDISC_BYPASS", errno);
        g.addr_.sll_family = AF_PACKET;
        g.addr_.sll_ifindex = static_cast<int>(ifindex);
        g.addr_.sll_halen = 6;
        std::copy(cfg.dst_mac, cfg.dst_mac + 6, g.addr_.sll_addr);
        if (::bind(g.fd_.get(), reinterpret_cast<sockaddr *>(&g.addr_), sizeof(g.addr_)) != 0)
            return kernel_error("bind the AF_PACKET socket", errno);
        g.frames_.assign(size_t{kBatch} * BENCH_FRAME_LEN, 0);
        return g;
    }

    Result<uint32_t> send(uint32_t n)
    {
        n = std::min(n, kBatch);
        std::array<iovec, kBatch> iov{};
        std::array<mmsghdr, kBatch> msgs{};
        for (uint32_t i = 0; i < n; ++i) {
            uint8_t *f = frames_.data() + size_t{i} * BENCH_FRAME_LEN;
            bench_build_frame(&cfg_, static_cast<uint32_t>(seq_ + i), f);
            iov[i] = {f, BENCH_FRAME_LEN};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int sent = ::sendmmsg(fd_.get(), msgs.data(), n, 0);
        if (sent < 0) {
            // A full transmit ring on the veth: count nothing, try again.
            if (errno == ENOBUFS || errno == EAGAIN)
                return 0u;
            return kernel_error("send on the AF_PACKET socket", errno);
        }
        seq_ += static_cast<uint64_t>(sent);
        return static_cast<uint32_t>(sent);
    }

  private:
    bench_gen_cfg cfg_{};
    UniqueFd fd_;
    sockaddr_ll addr_{};
    std::vector<uint8_t> frames_;
    uint64_t seq_ = 0;
};

// tun: the frames without their Ethernet header, written one per write() into an existing tun
// device (IFF_TUN, no packet information), which the kernel receives as if the device's link
// had delivered them. tun hands each packet to the stack inside write(), bottom halves off, so
// as with the other methods a packet crosses the whole path on this CPU before the next. A
// write() and a socket buffer per packet are the price; they are the same for every variant.
class TunGen {
  public:
    static constexpr uint32_t kBatch = 64;

    static Result<TunGen> open(const bench_gen_cfg &cfg, const std::string &dev)
    {
        TunGen g;
        g.cfg_ = cfg;
        g.fd_ = UniqueFd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
        if (!g.fd_.valid())
            return kernel_error("open /dev/net/tun", errno);
        ifreq ifr{};
        if (dev.size() >= sizeof(ifr.ifr_name))
            return invalid_input("interface name too long: \"" + dev + "\"");
        std::copy(dev.begin(), dev.end(), ifr.ifr_name);
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
        if (::ioctl(g.fd_.get(), TUNSETIFF, &ifr) != 0)
            return kernel_error("attach to tun device " + dev, errno);
        g.frame_.assign(BENCH_FRAME_LEN, 0);
        return g;
    }

    Result<uint32_t> send(uint32_t n)
    {
        n = std::min(n, kBatch);
        constexpr size_t kEth = 14;
        for (uint32_t i = 0; i < n; ++i) {
            bench_build_frame(&cfg_, static_cast<uint32_t>(seq_++), frame_.data());
            if (::write(fd_.get(), frame_.data() + kEth, BENCH_FRAME_LEN - kEth) < 0)
                return kernel_error("write to the tun device", errno);
        }
        return n;
    }

  private:
    bench_gen_cfg cfg_{};
    UniqueFd fd_;
    std::vector<uint8_t> frame_;
    uint64_t seq_ = 0;
};

Result<void> cmd_gen(const GenArgs &a)
{
    auto ifindex = ifindex_of(a.dev);
    if (!ifindex)
        return ifindex.error();
    auto cfg = gen_config(a);
    if (!cfg)
        return cfg.error();
    if (auto r = pin_to_cpu(a.cpu); !r)
        return r;

    std::string method = a.method;
    std::optional<LiveGen> live;
    if (method != "afpacket" && method != "tun") {
        auto g = LiveGen::open(*cfg, *ifindex);
        // One frame tells whether this kernel runs live frames at all.
        Result<uint32_t> probe = g ? g->send(1) : Result<uint32_t>(g.error());
        if (probe)
            live.emplace(std::move(*g));
        else if (method == "live")
            return probe.error();
        method = live ? "live" : "afpacket";
    }
    Result<uint64_t> sent = 0ull;
    auto start = Clock::now();
    if (live) {
        sent = send_loop(a, a.batch, [&](uint32_t n) { return live->send(n); });
    } else if (method == "tun") {
        auto g = TunGen::open(*cfg, a.dev);
        if (!g)
            return g.error();
        start = Clock::now();
        sent = send_loop(a, TunGen::kBatch, [&](uint32_t n) { return g->send(n); });
    } else {
        auto g = PacketGen::open(*cfg, *ifindex);
        if (!g)
            return g.error();
        start = Clock::now();
        sent = send_loop(a, PacketGen::kBatch, [&](uint32_t n) { return g->send(n); });
    }
    if (!sent)
        return sent.error();
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("{\"packets\": %llu, \"seconds\": %.6f, \"pps\": %.0f, \"cpu\": %d, \"method\": \"%s\"}\n",
                static_cast<unsigned long long>(*sent), secs, static_cast<double>(*sent) / secs, a.cpu,
                method.c_str());
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

// Lets the forwarders redirect to each device (the devmap is keyed by ifindex).
Result<void> fill_devmap(int map_fd, std::initializer_list<std::string> devs)
{
    for (const std::string &dev : devs) {
        auto ifindex = ifindex_of(dev);
        if (!ifindex)
            return ifindex.error();
        uint32_t i = *ifindex;
        if (bpf_map_update_elem(map_fd, &i, &i, BPF_ANY) != 0)
            return kernel_error("fill the devmap", errno);
    }
    return {};
}

Result<void> cmd_attach_fwd(const std::string &wan, const std::string &lan, const std::string &pin_dir)
{
    FwdSkel skel(bench_fwd__open_and_load());
    if (!skel)
        return kernel_error("load the forwarder", errno, last_libbpf_warning());
    if (auto r = fill_devmap(bpf_map__fd(skel->maps.bench_fwd_tx), {wan, lan}); !r)
        return r;
    for (const std::string &dev : {wan, lan})
        if (auto r = attach_pinned(bpf_program__fd(skel->progs.bench_fwd), dev, pin_dir); !r)
            return r;
    return {};
}

struct TableArgs {
    std::string wan, lan, to, table = "hash", pin_dir;
    uint32_t entries = 1 << 19;
};

// The connection-table experiment (bench/bpf/bench_table.bpf.c): a minimal port forward over a
// hash map or a slot array of `entries` halves, both sized alike.
Result<void> cmd_attach_table(const TableArgs &a)
{
    auto to = parse_addr(a.to);
    if (!to)
        return to.error();
    if (a.entries < 2 || (a.entries & (a.entries - 1)))
        return invalid_input("--entries must be a power of two");
    TableSkel skel(bench_table__open());
    if (!skel)
        return kernel_error("open the table experiment", errno);
    bool paged = a.table == "slots-paged", slots = a.table == "slots" || paged;
    if (a.table == "hash-alloc")
        if (int err = bpf_map__set_map_flags(skel->maps.bench_ct, BPF_F_NO_PREALLOC))
            return kernel_error("set the table's flags", err);
    const_cast<uint32_t &>(skel->rodata->use_slots) = paged ? 2 : slots;
    const_cast<uint32_t &>(skel->rodata->slot_mask) = a.entries - 1;
    const_cast<uint32_t &>(skel->rodata->to_addr) = htonl(*to);
    // The table not in use stays at its minimum size.
    const uint32_t page_slots = bpf_map__max_entries(skel->maps.bench_slot_page0);
    if (paged) {
        if (a.entries < page_slots)
            return invalid_input("--entries must be at least " + std::to_string(page_slots));
        if (int err = bpf_map__set_max_entries(skel->maps.bench_slot_pages, a.entries / page_slots))
            return kernel_error("size the table", err);
    } else if (int err = bpf_map__set_max_entries(slots ? skel->maps.bench_slots : skel->maps.bench_ct, a.entries)) {
        return kernel_error("size the table", err);
    }
    if (int err = bench_table__load(skel.get()))
        return kernel_error("load the table experiment", err, last_libbpf_warning());
    if (paged) {
        // Page 0 is the template the program was verified with; the others are made alike.
        int outer = bpf_map__fd(skel->maps.bench_slot_pages);
        for (uint32_t i = 1; i < a.entries / page_slots; ++i) {
            UniqueFd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_slot_page", sizeof(uint32_t),
                                          bpf_map__value_size(skel->maps.bench_slot_page0), page_slots, nullptr));
            if (!inner.valid())
                return kernel_error("create a slot page", errno);
            int fd = inner.get();
            if (bpf_map_update_elem(outer, &i, &fd, BPF_ANY) != 0)
                return kernel_error("fill the slot pages", errno);
        }
    }
    if (auto r = fill_devmap(bpf_map__fd(skel->maps.bench_table_tx), {a.wan, a.lan}); !r)
        return r;
    return attach_pinned(bpf_program__fd(skel->progs.bench_table), a.wan, a.pin_dir);
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
    gen->add_option("--method", g.method,
                    "live: BPF live frames; afpacket: AF_PACKET sendmmsg; auto: live where the kernel allows it; "
                    "tun: writes into the tun device DEV (never chosen by auto)")
        ->check(CLI::IsMember({"auto", "live", "afpacket", "tun"}));
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

    TableArgs t;
    CLI::App *table = app.add_subcommand("attach-table", "connection-table experiment on WAN: minimal DNAT over a hash map or a slot array");
    table->add_option("--wan", t.wan)->required();
    table->add_option("--lan", t.lan)->required();
    table->add_option("--to", t.to, "the forward's internal address")->required();
    table->add_option("--table", t.table)->check(CLI::IsMember({"hash", "hash-alloc", "slots", "slots-paged"}));
    table->add_option("--entries", t.entries, "halves the table holds (a power of two)");
    table->add_option("--pin-dir", t.pin_dir)->required();
    table->callback([&] { action = [&] { return cmd_attach_table(t); }; });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return cli_parse_failed(prog, app, e);
    }
    auto r = action();
    return r ? kExitOk : fail(prog, r.error());
}
