// A reference model of xnat's NAT semantics, written from the documented behaviour (docs/,
// include/xnat/*.h comments) in plain C++, so the differential fuzzer can hold the real BPF
// object against it packet by packet. It shares the ABI types with the datapath (so the
// connection tables compare field by field) but none of its code: its own parser, its own
// checksums, its own rule lookup, flow table and TCP state machine.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/nat_config.h"
#include "core/net.h"
#include "xnat/config.h"
#include "xnat/ct.h"
#include "xnat/frag.h"
#include "xnat/rules.h"

namespace xnat::model {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

// Byte-wise order for the ABI key structs (all padding zeroed), so they can key std::map.
template <typename T> struct BytesLess {
    bool operator()(const T &a, const T &b) const { return std::memcmp(&a, &b, sizeof(T)) < 0; }
};

// How the gateway's routing table treats a destination.
enum class RouteKind { neigh, no_neigh, local, unreachable };
struct Route {
    RouteKind kind = RouteKind::unreachable;
    unsigned ifindex = 0;
    Mac dmac{}; // kind == neigh
};

struct Env {
    bool xdp = true; // both interfaces in XDP mode (with tc ingress behind), else both in tc mode
    unsigned wan_ifindex = 0, lan_ifindex = 0;
    Mac wan_mac{}, lan_mac{};
    uint32_t max_connections = 64;
    xnat_timeouts timeouts{};
    uint16_t local_port_lo = 0, local_port_hi = 0;
    uint32_t host_max_flows = 0, host_max_ports = 0; // 0: no limit
    uint8_t refusal_icmp = 0;                        // XNAT_REFUSAL_ICMP_SIDE bits
    uint32_t refusal_icmp_rate = 0;                  // per tick
    uint32_t lan_addr = 0;                           // network order; 0: none
    std::function<Route(uint32_t daddr_host)> route;
};

// reflect: sent back out of the interface it came in on (an ICMP refusal).
enum class Action { pass, drop, redirect, reflect };

// A checksum field of the expected frame and how it may differ from the model's value: a
// one's complement checksum has two zeros (0x0000, 0xffff) that verify alike.
struct CsumField {
    size_t off = 0;
    bool udp = false; // 0 means "no checksum": it must stay 0, and must not appear otherwise
};

struct Outcome {
    std::map<int, uint64_t> counts; // every counter the packet moves, outcome included
    Action action = Action::pass;
    Bytes frame;                    // expected output frame
    std::vector<CsumField> csums;   // checksum fields in `frame`, compared modulo +-0
    bool needs_kernel_route = false; // a tracked flow's packet whose route XDP cannot finish
};

struct Mapping {
    uint32_t int_addr = 0; // network order, as in the map
    uint16_t int_port = 0;
    uint8_t flags = 0;
    uint32_t refs = 0;
};

using CtTable = std::map<xnat_ct_key, xnat_ct_entry, BytesLess<xnat_ct_key>>;
using SnatTable = std::map<xnat_snat_key, Mapping, BytesLess<xnat_snat_key>>;
using EimTable = std::map<xnat_eim_key, uint16_t, BytesLess<xnat_eim_key>>;

// What one internal host holds through source NAT (the per-host quotas).
struct HostUse {
    uint32_t flows = 0;
    uint32_t ports = 0;
    bool operator==(const HostUse &) const = default;
};
using HostTable = std::map<uint32_t, HostUse>; // by address, network order

// The source port the datapath picked at random for the new flow with this original tuple
// (host order): the flow's, or else the one the mapping hint under this key names (which may be
// an older hint if it picked none), or nullopt. The model cannot predict a random choice; it
// checks the one made.
using PortOracle = std::function<std::optional<uint16_t>(const xnat_ct_key &original, const xnat_eim_key &hint)>;

class NatModel {
  public:
    explicit NatModel(Env env) : env_(std::move(env)) {}

    void set_rules(std::vector<PortForward> forwards, std::vector<Masquerade> masq);
    void set_now(uint32_t tick) { now_ = tick; }
    uint32_t now() const { return now_; }

    // Runs one frame arriving on `side`. On a semantic violation the model can detect by
    // itself (a random port the datapath should not have picked) it fills `error`.
    Outcome packet(Side side, const Bytes &frame, const PortOracle &oracle, std::string &error);
    // Ends every flow, as xnat-map flush does; returns how many.
    uint64_t flush(std::map<int, uint64_t> &counts);

    const CtTable &ct() const { return ct_; }
    const SnatTable &snat() const { return snat_; }
    const HostTable &hosts() const { return hosts_; }
    EimTable &eim() { return eim_; } // the datapath's hints are an LRU: the fuzzer drops evicted ones
    // Hint writes so far, new key or not: each takes an LRU node, the only time the kernel evicts.
    uint64_t hint_writes() const { return hint_writes_; }

    // How often each interesting branch of the semantics was taken, to judge what a run covered.
    mutable std::map<std::string, uint64_t> coverage;

  private:
    struct Pkt;
    struct Target {
        uint32_t addr;
        uint16_t port;
        uint16_t rule;
    };
    Outcome decide(Side side, const Bytes &frame, const PortOracle &oracle, std::string &error);
    std::optional<Target> forward_for(const xnat_ct_key &t, Side side) const;
    const Masquerade *masq_for(uint32_t saddr, uint32_t daddr, uint16_t &rule_id) const;
    bool egress_is_wan(uint32_t daddr) const;

    uint32_t timeout_ticks(const xnat_ct_key &key, const xnat_ct_entry &orig) const;
    bool expired(const xnat_ct_key &key, const xnat_ct_entry &e) const;
    bool stale(const Pkt &p, const xnat_ct_entry &e) const;
    void end_flow(const xnat_ct_key &key, std::map<int, uint64_t> &counts);
    void release(uint8_t proto, uint32_t addr, uint16_t port);
    int create(const Pkt &p, const xnat_ct_key &to, uint16_t rule, uint8_t orig_nat, uint8_t reply_nat,
               std::map<int, uint64_t> &counts);
    int new_wan(const Pkt &p, std::map<int, uint64_t> &counts);
    int new_lan(const Pkt &p, const PortOracle &oracle, std::string &error, std::map<int, uint64_t> &counts);
    int acquire(const xnat_ct_key &tuple, uint32_t int_addr, uint16_t int_port, uint32_t ext_addr, uint16_t lo,
                uint16_t hi, uint8_t flags, const PortOracle &oracle, std::string &error, uint16_t &ext_port);
    bool port_free(uint8_t proto, uint32_t ext_addr, uint16_t port) const;
    // Accounts a packet to its flow; a drop outcome for an RST outside its sender's window.
    int account(const xnat_ct_key &key, const Pkt &p);
    int send(const xnat_ct_key &key, const Pkt &p, Outcome &out);
    int later_fragment(const Pkt &p, Outcome &out);
    int finish(int route, const Route &r, const Pkt &p, uint16_t ip_residual, Outcome &out) const;
    void remember_untranslated(const Pkt &p, Outcome &out);
    bool forwarded_between_sides(uint32_t daddr_be) const;
    uint64_t now_ns() const;
    static xnat_frag_key frag_key(const Pkt &p);
    int icmp_error(const Pkt &p, Outcome &out, std::map<int, uint64_t> &counts);
    int route_outcome(const Pkt &p, uint32_t daddr_be, Route &r) const;
    bool evict_one(std::map<int, uint64_t> &counts);
    // 1 charged, 0 uncounted (no room to count), -1 refused (unit: 0 flow, 1 port).
    int charge(uint32_t addr, int unit, uint32_t limit);
    void uncharge(uint32_t addr, int unit);
    void refuse(Side side, const Pkt &p, int outcome, Outcome &out);

    Env env_;
    std::vector<PortForward> forwards_;
    std::vector<Masquerade> masq_;
    uint32_t now_ = 0;
    CtTable ct_;
    SnatTable snat_;
    EimTable eim_;
    uint64_t hint_writes_ = 0;
    std::deque<xnat_ct_key> evict_q_; // original keys of new flows, oldest first
    HostTable hosts_;
    // First fragments' translations; unbounded here (the datapath's LRU never fills in a run).
    std::map<xnat_frag_key, xnat_frag_entry, BytesLess<xnat_frag_key>> frags_;
    uint32_t refusal_tick_ = 0, refusal_sent_ = 0;
};

// RFC 1071 sum helpers, the model's own.
uint32_t sum16(const uint8_t *data, size_t len, uint32_t sum = 0);
uint16_t fold16(uint32_t sum);

} // namespace xnat::model
