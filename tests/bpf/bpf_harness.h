// Runs the real xnat BPF object through BPF_PROG_TEST_RUN. Each fixture has a copy of the object
// of its own (its own maps, nothing pinned), fresh or reset to its state after load (see
// object_pool.h), and fills its maps with the same library code xnat-load uses.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/nat_config.h"
#include "kernel/conntrack_table.h"
#include "kernel/instance_maps.h"
#include "kernel/skeleton.h"
#include "object_pool.h"
#include "packet.h"
#include "xnat/abi.h"
#include "xnat/config.h"

namespace xnat::test {

enum class Hook { xdp, tc };

inline constexpr int kXdpDrop = 1, kXdpPass = 2, kXdpRedirect = 4;
inline constexpr int kTcOk = 0, kTcShot = 2, kTcRedirect = 7;

int pass_verdict(Hook h);
int drop_verdict(Hook h);
int redirect_verdict(Hook h);
// Sent back out of the interface it came in on (an ICMP refusal): a redirect to it.
int reflect_verdict(Hook h);
const char *hook_name(Hook h);

struct RunResult {
    int verdict = -1;
    Bytes out;
    bool handed_to_tc = false; // XDP passed it up untouched and tc ingress decided it
};

class BpfFixture {
  public:
    explicit BpfFixture(uint32_t max_connections = 1024);

    MapSet maps() const;
    // Interfaces and modes the datapath believes it runs on (0: none, so routes never match).
    void set_interfaces(unsigned wan_ifindex, unsigned lan_ifindex, uint8_t wan_mode, uint8_t lan_mode);
    void set_timeouts(const Timeouts &t);
    void set_sweep_interval_ms(uint32_t ms);
    // Changes the instance config in place (limits, refusals) and writes it.
    void configure(const std::function<void(xnat_config &)> &edit);
    xnat_sweep_stats sweep_stats() const;
    // Publishes a new rule generation, as xnat-load and xnat-map do.
    void install(const std::vector<PortForward> &rules, const std::vector<Masquerade> &masq = {});
    // Ends every flow (or those with only_addr, host order, in a tuple) through the flush
    // program; returns how many it ended.
    size_t flush(uint32_t only_addr = 0);

    // Runs one frame through the hook as the kernel does: for XDP, a frame the XDP program
    // passes then goes through tc ingress of the same side, whose verdict (as its XDP
    // equivalent) and output are the result. Throws if XDP changed a frame it passed.
    RunResult run(Hook hook, Side side, const Bytes &frame, unsigned ingress_ifindex = 0);
    // Runs one frame through this hook's program alone.
    RunResult run_one(Hook hook, Side side, const Bytes &frame, unsigned ingress_ifindex = 0);
    // Runs one frame through the tc egress program.
    RunResult run_egress(const Bytes &frame);
    // Moves the datapath's clock forward.
    void advance_clock_s(uint64_t seconds);
    // Sets the datapath's clock offset outright (the differential fuzzer pins the clock).
    void set_clock_offset_ns(uint64_t offset_ns);
    // Seeds the datapath's test PRNG (0: back to bpf_get_prandom_u32), so port choices replay.
    void set_rand_state(uint64_t state);

    std::vector<Connection> conns() const;
    size_t ct_entries() const;
    // Waits up to 5 s for the sweeper to bring the table to `want` entries; returns how many
    // there are then (the caller checks).
    size_t await_ct_entries(size_t want) const;
    size_t snat_mappings() const;
    uint64_t counter(int index) const;

  private:
    void write();
    PooledObject skel_;
    xnat_config cfg_{};
};

// Port forward from its textual parts; aborts the test on a bad spec.
PortForward fwd(const char *proto, const char *from, const char *to, const char *side = "wan");

// A private network inside the test's namespace, for the forwarding tests: two veth pairs
// with addresses, routes and permanent neighbours.
// The internet is behind 198.51.100.254 on wan0; the LAN is 10.0.0.0/24 on lan0.
struct TestNet {
    unsigned wan0 = 0, lan0 = 0;
    static const TestNet &get();
};

inline constexpr uint16_t kLocalPortLo = 32768, kLocalPortHi = 60999;
inline constexpr const char *kWanAddr = "198.51.100.1"; // wan0's address, the masquerade source

inline uint8_t mode_of(Hook h)
{
    return h == Hook::xdp ? XNAT_MODE_XDP : XNAT_MODE_TC;
}

// A fixture wired to the test network, both interfaces in the hook's mode.
struct NetGateway {
    const TestNet &net = TestNet::get();
    BpfFixture fx;
    Hook hook;

    NetGateway(Hook h, std::vector<PortForward> fwds, std::vector<Masquerade> masqs,
               uint32_t max_connections = 1024);
    RunResult from_lan(const Bytes &frame) { return fx.run(hook, Side::lan, frame, net.lan0); }
    RunResult from_wan(const Bytes &frame) { return fx.run(hook, Side::wan, frame, net.wan0); }
};

inline const Mac kServerMac{0x02, 0, 0, 0, 0, 0x12};
inline const Mac kClientMac{0x02, 0, 0, 0, 0, 0x02};
inline const Mac kRouterMac{0x02, 0, 0, 0, 0, 0xfe}; // 198.51.100.254, the way to the internet
inline const Mac kLanHostMac{0x02, 0, 0, 0, 0, 0x05}; // 10.0.0.5

// A masquerade rule from its parts, resolved (to_source given).
Masquerade masq(const char *source, const char *to_source, uint16_t port_lo = 1024,
                uint16_t port_hi = 65535, bool endpoint_independent = false,
                std::vector<const char *> not_destination = {});

// The MAC of an interface in the test's namespace.
Mac mac_of(const char *ifname);

} // namespace xnat::test
