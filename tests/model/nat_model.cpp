#include "nat_model.h"

#include <arpa/inet.h>

#include <algorithm>

#include "xnat/counters.h"
#include "xnat/maps.h"

namespace xnat::model {
namespace {

constexpr size_t kEth = 14;
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr uint16_t kNoRule = 0xffff;
constexpr uint16_t kHairpinLo = 1024, kHairpinHi = 65535;
constexpr unsigned kRandomProbes = 63; // after the internal port, this many random candidates

uint16_t get16(const Bytes &b, size_t off)
{
    return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}

uint32_t get32(const Bytes &b, size_t off)
{
    return (uint32_t{get16(b, off)} << 16) | get16(b, off + 2);
}

void put16(Bytes &b, size_t off, uint16_t v)
{
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}

void put32(Bytes &b, size_t off, uint32_t v)
{
    put16(b, off, static_cast<uint16_t>(v >> 16));
    put16(b, off + 2, static_cast<uint16_t>(v));
}

xnat_ct_key reversed(const xnat_ct_key &t)
{
    xnat_ct_key r{};
    r.saddr = t.daddr;
    r.daddr = t.saddr;
    r.sport = t.dport;
    r.dport = t.sport;
    r.proto = t.proto;
    return r;
}

bool is_drop(int counter)
{
    return counter == XNAT_CNT_DROP_CT_FULL || counter == XNAT_CNT_DROP_CT_COLLISION ||
           counter == XNAT_CNT_DROP_TX_PORT || counter == XNAT_CNT_DROP_PORTS_EXHAUSTED ||
           counter == XNAT_CNT_DROP_TCP_RST_WINDOW || counter == XNAT_CNT_DROP_HOST_FLOWS ||
           counter == XNAT_CNT_DROP_HOST_PORTS || counter == XNAT_CNT_DROP_FRAG_NO_FIRST ||
           counter == XNAT_CNT_DROP_FRAG_CLASH;
}

// A new flow refused for lack of room, which an ICMP refusal may answer.
bool for_lack_of_room(int counter)
{
    return counter == XNAT_CNT_DROP_CT_FULL || counter == XNAT_CNT_DROP_PORTS_EXHAUSTED ||
           counter == XNAT_CNT_DROP_HOST_FLOWS || counter == XNAT_CNT_DROP_HOST_PORTS;
}

constexpr int kFlowUnit = 0, kPortUnit = 1;
constexpr unsigned kEvictProbes = 8;

// Pseudo-header sum for a segment of `len` bytes.
uint32_t pseudo(const Bytes &f, uint8_t proto, size_t len)
{
    uint32_t s = get16(f, kEth + 12) + get16(f, kEth + 14) + get16(f, kEth + 16) + get16(f, kEth + 18);
    return s + proto + static_cast<uint32_t>(len);
}

// Sets the checksum at `field` so that the bytes [from, from+len) plus `extra` sum to what
// `residual` says the original packet summed to: a translation must keep a good checksum good
// and a bad one exactly as bad.
void refit(Bytes &f, size_t field, size_t from, size_t len, uint32_t extra, uint16_t residual)
{
    put16(f, field, 0);
    uint16_t s = fold16(sum16(&f[from], len, extra));
    put16(f, field, fold16(uint32_t{residual} + static_cast<uint16_t>(~s)));
}

} // namespace

uint32_t sum16(const uint8_t *data, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += static_cast<uint32_t>((data[i] << 8) | data[i + 1]);
    if (len & 1)
        sum += static_cast<uint32_t>(data[len - 1] << 8);
    return sum;
}

uint16_t fold16(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

// What the model needs of a packet it translates. Tuple in network order, as in the maps.
struct NatModel::Pkt {
    xnat_ct_key tuple{};
    size_t ihl = 0, l4_off = 0, l4_len = 0;
    uint16_t tot_len = 0, udp_len = 0;
    uint8_t ttl = 0, tcp = 0;
    uint32_t seq = 0, next = 0;
    bool udp_none = false;
    bool frag_first = false; // MF set, offset 0: the L4 header is here, the datagram goes on
    uint16_t frag_id = 0;    // network order
};

namespace {

constexpr int kIcmpError = -2;
constexpr int kLaterFragment = -3; // a fragment past the first: IP fields only

constexpr uint64_t kFragLifetimeNs = uint64_t{XNAT_FRAG_LIFETIME_S} * 1000000000ull;

// The spec of what xnat handles: an IPv4 packet (or a datagram's first fragment) whose TCP, UDP
// or ICMP echo header lies whole inside the IP packet, or a later fragment. 0, or the counter
// saying why it is left alone.
template <typename P> int parse(const Bytes &f, P &p)
{
    if (f.size() < kEth)
        return XNAT_CNT_PASS_MALFORMED;
    if (get16(f, 12) != 0x0800)
        return XNAT_CNT_PASS_NOT_IPV4;
    if (f.size() < kEth + 20)
        return XNAT_CNT_PASS_MALFORMED;
    uint8_t vihl = f[kEth];
    if ((vihl >> 4) != 4 || (vihl & 0x0f) < 5)
        return XNAT_CNT_PASS_MALFORMED;
    p.ihl = size_t{vihl & 0x0fu} * 4;
    p.tot_len = get16(f, kEth + 2);
    if (p.tot_len < p.ihl || p.tot_len > f.size() - kEth)
        return XNAT_CNT_PASS_MALFORMED;
    p.ttl = f[kEth + 8];
    p.tuple.proto = f[kEth + 9];
    p.tuple.saddr = htonl(get32(f, kEth + 12));
    p.tuple.daddr = htonl(get32(f, kEth + 16));
    const uint16_t frag = get16(f, kEth + 6);
    p.frag_id = htons(get16(f, kEth + 4));
    if (frag & 0x1fff)
        return kLaterFragment;
    p.frag_first = (frag & 0x2000) != 0;
    p.l4_off = kEth + p.ihl;
    p.l4_len = p.tot_len - p.ihl;
    size_t l4 = p.l4_off;
    switch (p.tuple.proto) {
    case 6: {
        if (p.l4_len < 20)
            return XNAT_CNT_PASS_MALFORMED;
        size_t doff = static_cast<size_t>(f[l4 + 12] >> 4) * 4;
        if (doff < 20 || doff > p.l4_len)
            return XNAT_CNT_PASS_MALFORMED;
        p.tuple.sport = htons(get16(f, l4));
        p.tuple.dport = htons(get16(f, l4 + 2));
        p.tcp = f[l4 + 13];
        p.seq = get32(f, l4 + 4);
        p.next = p.seq + static_cast<uint32_t>(p.l4_len - doff) + ((p.tcp & kSyn) ? 1 : 0) + ((p.tcp & kFin) ? 1 : 0);
        return 0;
    }
    case 17:
        if (p.l4_len < 8)
            return XNAT_CNT_PASS_MALFORMED;
        p.udp_len = get16(f, l4 + 4);
        if (p.udp_len < 8 || (p.udp_len > p.l4_len && !p.frag_first))
            return XNAT_CNT_PASS_MALFORMED;
        p.tuple.sport = htons(get16(f, l4));
        p.tuple.dport = htons(get16(f, l4 + 2));
        p.udp_none = get16(f, l4 + 6) == 0;
        return 0;
    case 1:
        if (p.l4_len < 8)
            return XNAT_CNT_PASS_MALFORMED;
        switch (f[l4]) {
        case 8: // echo request: (id, 0)
            p.tuple.sport = htons(get16(f, l4 + 4));
            return 0;
        case 0: // echo reply: (0, id)
            p.tuple.dport = htons(get16(f, l4 + 4));
            return 0;
        case 3:
        case 11:
        case 12:
            return p.frag_first ? XNAT_CNT_PASS_FRAGMENT : kIcmpError;
        default:
            return XNAT_CNT_PASS_L4_PROTO;
        }
    default:
        return XNAT_CNT_PASS_L4_PROTO;
    }
}

} // namespace

void NatModel::set_rules(std::vector<PortForward> forwards, std::vector<Masquerade> masq)
{
    forwards_ = std::move(forwards);
    masq_ = std::move(masq);
}

std::optional<NatModel::Target> NatModel::forward_for(const xnat_ct_key &t, Side side) const
{
    uint32_t daddr = ntohl(t.daddr);
    uint16_t dport = ntohs(t.dport);
    for (size_t i = 0; i < forwards_.size(); ++i) {
        const PortForward &f = forwards_[i];
        if (static_cast<uint8_t>(f.proto) != t.proto || f.side != side)
            continue;
        if (!Prefix{f.from.addr, f.from.prefix_len}.contains(daddr) || dport < f.from.port_lo ||
            dport > f.from.port_hi)
            continue;
        return Target{f.to.addr + (daddr - f.from.addr), static_cast<uint16_t>(f.to.port_lo + (dport - f.from.port_lo)),
                      static_cast<uint16_t>(i)};
    }
    return std::nullopt;
}

// The most specific source prefix decides; its excluded destinations opt out (no fallback to
// a less specific rule).
const Masquerade *NatModel::masq_for(uint32_t saddr, uint32_t daddr, uint16_t &rule_id) const
{
    const Masquerade *best = nullptr;
    for (size_t i = 0; i < masq_.size(); ++i)
        if (masq_[i].source.contains(saddr) && (!best || masq_[i].source.len > best->source.len)) {
            best = &masq_[i];
            rule_id = static_cast<uint16_t>(i);
        }
    if (!best)
        return nullptr;
    for (const Prefix &ex : best->not_destination)
        if (ex.contains(daddr))
            return nullptr;
    return best;
}

bool NatModel::egress_is_wan(uint32_t daddr) const
{
    Route r = env_.route(daddr);
    return (r.kind == RouteKind::neigh || r.kind == RouteKind::no_neigh) && r.ifindex == env_.wan_ifindex;
}

uint32_t NatModel::timeout_ticks(const xnat_ct_key &key, const xnat_ct_entry &orig) const
{
    return static_cast<uint32_t>(xnat_secs_to_ticks(xnat_timeout_s(&env_.timeouts, key.proto, orig.state, orig.flags)));
}

// A flow lives while either direction is active; a half without its peer is dead.
bool NatModel::expired(const xnat_ct_key &key, const xnat_ct_entry &e) const
{
    auto peer = ct_.find(e.peer);
    if (peer == ct_.end())
        return true;
    const xnat_ct_entry &orig = e.dir == XNAT_DIR_ORIGINAL ? e : peer->second;
    auto idle = [&](uint32_t last) {
        int32_t d = static_cast<int32_t>(now_ - last);
        return d > 0 ? static_cast<uint32_t>(d) : 0u;
    };
    return std::min(idle(e.last_seen), idle(peer->second.last_seen)) >= timeout_ticks(key, orig);
}

bool NatModel::stale(const Pkt &p, const xnat_ct_entry &e) const
{
    // A fresh SYN reopens a closed TCP tuple with the rules now in force.
    if (p.tuple.proto == 6 && e.dir == XNAT_DIR_ORIGINAL && (p.tcp & (kSyn | kAck | kRst)) == kSyn &&
        (e.state == XNAT_TCP_CLOSE || e.state == XNAT_TCP_TIME_WAIT))
    {
        coverage["tcp: SYN reopens a closed flow"]++;
        return true;
    }
    return expired(p.tuple, e);
}

void NatModel::release(uint8_t proto, uint32_t addr, uint16_t port)
{
    xnat_snat_key k{};
    k.addr = addr;
    k.port = port;
    k.proto = proto;
    auto it = snat_.find(k);
    if (it == snat_.end() || --it->second.refs != 0)
        return;
    if (it->second.flags & XNAT_SNAT_F_HOST)
        uncharge(it->second.int_addr, kPortUnit);
    snat_.erase(it);
}

// Hosts: created on first charge, never reclaimed here (the fuzzer runs no sweeper), so the
// table can fill with entries that hold nothing, as the datapath's does.
int NatModel::charge(uint32_t addr, int unit, uint32_t limit)
{
    auto it = hosts_.find(addr);
    if (it == hosts_.end()) {
        if (hosts_.size() >= env_.max_connections) {
            coverage["host: table full, uncounted"]++;
            return 0;
        }
        it = hosts_.emplace(addr, HostUse{}).first;
    }
    uint32_t &held = unit == kFlowUnit ? it->second.flows : it->second.ports;
    if (limit && held >= limit) {
        coverage[unit == kFlowUnit ? "host: connection quota refuses" : "host: port quota refuses"]++;
        return -1;
    }
    held++;
    return 1;
}

void NatModel::uncharge(uint32_t addr, int unit)
{
    HostUse &h = hosts_.at(addr);
    (unit == kFlowUnit ? h.flows : h.ports)--;
}

// Early drop: the oldest unassured flow among the next kEvictProbes keys of the queue of new
// flows; keys of assured or ended flows leave the queue for good.
bool NatModel::evict_one(std::map<int, uint64_t> &counts)
{
    for (unsigned i = 0; i < kEvictProbes && !evict_q_.empty(); ++i) {
        xnat_ct_key k = evict_q_.front();
        evict_q_.pop_front();
        auto it = ct_.find(k);
        if (it == ct_.end() || it->second.dir != XNAT_DIR_ORIGINAL || (it->second.flags & XNAT_CT_F_ASSURED))
            continue;
        coverage["ct: unassured flow evicted"]++;
        end_flow(k, counts);
        counts[XNAT_CNT_CT_EARLY_DROP]++;
        return true;
    }
    coverage["ct: nothing to evict"]++;
    return false;
}

void NatModel::end_flow(const xnat_ct_key &key, std::map<int, uint64_t> &counts)
{
    xnat_ct_entry e = ct_.at(key);
    bool peer_gone = ct_.erase(e.peer) == 1;
    bool self_gone = ct_.erase(key) == 1;
    if (!(e.dir == XNAT_DIR_ORIGINAL ? self_gone : peer_gone))
        return;
    counts[XNAT_CNT_FLOW_ENDED]++;
    if (e.nat & XNAT_NAT_HOST)
        uncharge(e.dir == XNAT_DIR_ORIGINAL ? key.saddr : e.peer.saddr, kFlowUnit);
    if (e.nat & XNAT_NAT_MAP_SELF)
        release(key.proto, key.daddr, key.dport);
    else if (e.nat & XNAT_NAT_MAP_PEER)
        release(e.peer.proto, e.peer.daddr, e.peer.dport);
}

int NatModel::create(const Pkt &p, const xnat_ct_key &to, uint16_t rule, uint8_t orig_nat, uint8_t reply_nat,
                     std::map<int, uint64_t> &counts)
{
    const size_t capacity = 2 * size_t{env_.max_connections};
    xnat_ct_key rkey = reversed(to);
    if (ct_.size() >= capacity && (!evict_one(counts) || ct_.size() >= capacity))
        return XNAT_CNT_DROP_CT_FULL;
    xnat_ct_entry half{};
    half.peer = rkey;
    half.last_seen = now_;
    half.dir = XNAT_DIR_ORIGINAL;
    half.state = p.tuple.proto == 6 ? XNAT_TCP_SYN_SENT : XNAT_TCP_NONE;
    half.nat = orig_nat;
    half.rule = rule;
    ct_[p.tuple] = half;

    // The reply tuple may be taken: by a dead flow it is reclaimed, by a live one it refuses.
    if (auto it = ct_.find(rkey); it != ct_.end()) {
        if (!expired(rkey, it->second)) {
            coverage["ct: reply tuple taken"]++;
            ct_.erase(p.tuple);
            return XNAT_CNT_DROP_CT_COLLISION;
        }
        coverage["ct: dead flow's reply tuple reclaimed"]++;
        end_flow(rkey, counts);
    } else if (ct_.size() >= capacity && (!evict_one(counts) || ct_.size() >= capacity)) {
        ct_.erase(p.tuple);
        return XNAT_CNT_DROP_CT_FULL;
    }
    if (!ct_.count(p.tuple)) // the reclaimed flow was this very tuple's orphan
        return XNAT_CNT_DROP_CT_FULL;
    half.peer = p.tuple;
    half.dir = XNAT_DIR_REPLY;
    half.state = XNAT_TCP_NONE;
    half.nat = reply_nat;
    ct_[rkey] = half;
    if (evict_q_.size() >= env_.max_connections)
        evict_q_.pop_front();
    evict_q_.push_back(p.tuple);
    counts[XNAT_CNT_NEW_FLOW]++;
    return 0;
}

namespace {

// Only a SYN opens a TCP flow, only an echo request an ICMP one.
template <typename P> int refuse_open(const P &p)
{
    if (p.tuple.proto == 6 && (p.tcp & (kSyn | kAck | kRst | kFin)) != kSyn)
        return XNAT_CNT_PASS_TCP_NOT_SYN;
    if (p.tuple.proto == 1 && p.tuple.sport == 0)
        return XNAT_CNT_PASS_NO_MATCH;
    return 0;
}

} // namespace

int NatModel::new_wan(const Pkt &p, std::map<int, uint64_t> &counts)
{
    xnat_ct_key to = p.tuple;
    if (auto t = forward_for(p.tuple, Side::wan)) {
        if (int rc = refuse_open(p))
            return rc;
        to.daddr = htonl(t->addr);
        to.dport = htons(t->port);
        return create(p, to, t->rule, XNAT_NAT_DNAT, XNAT_NAT_DNAT, counts);
    }
    // Endpoint-independent filtering: anyone may reach a mapping made with it.
    if (p.tuple.proto == 1)
        return XNAT_CNT_PASS_NO_MATCH;
    xnat_snat_key k{};
    k.addr = p.tuple.daddr;
    k.port = p.tuple.dport;
    k.proto = p.tuple.proto;
    auto m = snat_.find(k);
    if (m == snat_.end() || !(m->second.flags & XNAT_MASQ_F_EIF))
        return XNAT_CNT_PASS_NO_MATCH;
    if (int rc = refuse_open(p))
        return rc;
    m->second.refs++;
    coverage["snat: inbound through endpoint-independent mapping"]++;
    to.daddr = m->second.int_addr;
    to.dport = m->second.int_port;
    int rc = create(p, to, kNoRule, XNAT_NAT_DNAT | XNAT_NAT_INBOUND | XNAT_NAT_MAP_SELF,
                    XNAT_NAT_SNAT | XNAT_NAT_INBOUND | XNAT_NAT_MAP_PEER, counts);
    if (rc)
        release(k.proto, k.addr, k.port);
    return rc;
}

bool NatModel::port_free(uint8_t proto, uint32_t ext_addr, uint16_t port) const
{
    xnat_snat_key k{};
    k.addr = htonl(ext_addr);
    k.port = htons(port);
    k.proto = proto;
    if (snat_.count(k) || snat_.size() >= env_.max_connections + XNAT_SNAT_HEADROOM)
        return false;
    // A port a WAN-side forward owns on this address is never handed out.
    xnat_ct_key t{};
    t.daddr = k.addr;
    t.dport = k.port;
    t.proto = proto;
    return !forward_for(t, Side::wan);
}

int NatModel::acquire(const xnat_ct_key &tuple, uint32_t int_addr, uint16_t int_port, uint32_t ext_addr, uint16_t lo,
                      uint16_t hi, uint8_t flags, const PortOracle &oracle, std::string &error, uint16_t &ext_port)
{
    const uint8_t proto = tuple.proto;
    xnat_eim_key ek{};
    ek.int_addr = htonl(int_addr);
    ek.ext_addr = htonl(ext_addr);
    ek.int_port = htons(int_port);
    ek.proto = proto;
    // Endpoint-independent mapping: the internal endpoint keeps its external port while the
    // mapping lives.
    if (auto h = eim_.find(ek); h != eim_.end()) {
        xnat_snat_key k{};
        k.addr = ek.ext_addr;
        k.port = htons(h->second);
        k.proto = proto;
        auto m = snat_.find(k);
        if (m != snat_.end() && m->second.int_addr == ek.int_addr && m->second.int_port == ek.int_port &&
            m->second.refs > 0) {
            m->second.refs++;
            coverage["snat: mapping reused by hint"]++;
            ext_port = h->second;
            return 0;
        }
    }
    // The pool: the rule's range minus the gateway's own ephemeral ports.
    std::vector<uint16_t> pool;
    for (uint32_t port = lo; port <= hi; ++port)
        if (port < env_.local_port_lo || port > env_.local_port_hi || env_.local_port_lo == 0)
            pool.push_back(static_cast<uint16_t>(port));
    if (pool.empty())
        return XNAT_CNT_DROP_PORTS_EXHAUSTED;
    const int charged = charge(htonl(int_addr), kPortUnit, env_.host_max_ports);
    if (charged < 0)
        return XNAT_CNT_DROP_HOST_PORTS;
    const uint8_t map_flags = static_cast<uint8_t>(flags | (charged > 0 ? XNAT_SNAT_F_HOST : 0));
    auto refuse = [&] {
        if (charged > 0)
            uncharge(htonl(int_addr), kPortUnit);
        return XNAT_CNT_DROP_PORTS_EXHAUSTED;
    };
    bool keep = std::find(pool.begin(), pool.end(), int_port) != pool.end() && port_free(proto, ext_addr, int_port);
    if (keep) {
        coverage["snat: internal port kept"]++;
        ext_port = int_port;
    } else {
        // Random candidates: a window of kRandomProbes consecutive pool positions.
        std::vector<bool> avail(pool.size());
        size_t n_avail = 0;
        for (size_t i = 0; i < pool.size(); ++i)
            n_avail += (avail[i] = port_free(proto, ext_addr, pool[i]));
        size_t run = 0, longest = 0;
        for (size_t i = 0; i < 2 * pool.size() && longest < pool.size(); ++i) {
            run = avail[i % pool.size()] ? 0 : run + 1;
            longest = std::max(longest, run);
        }
        bool may_fail = n_avail == 0 || longest >= std::min<size_t>(kRandomProbes, pool.size());
        std::optional<uint16_t> got = oracle(tuple, ek);
        coverage[got ? "snat: random port checked" : "snat: no port seen"]++;
        if (!got) {
            if (may_fail)
                return refuse();
            // The datapath refused or dropped the flow later; any free port stands in.
            for (size_t i = 0; i < pool.size(); ++i)
                if (avail[i]) {
                    got = pool[i];
                    break;
                }
        } else {
            auto pos = std::find(pool.begin(), pool.end(), *got);
            bool usable = pos != pool.end() && avail[static_cast<size_t>(pos - pool.begin())];
            if (!usable && may_fail)
                return refuse(); // what was seen is an older hint
            if (!usable) {
                error = "source NAT picked port " + std::to_string(*got) + " for " + format_ipv4(int_addr) + ":" +
                        std::to_string(int_port) + ", which is outside the pool, forwarded or taken";
                return refuse();
            }
        }
        ext_port = *got;
    }
    xnat_snat_key k{};
    k.addr = ek.ext_addr;
    k.port = htons(ext_port);
    k.proto = proto;
    snat_[k] = Mapping{ek.int_addr, ek.int_port, map_flags, 1};
    eim_[ek] = ext_port;
    ++hint_writes_;
    return 0;
}

int NatModel::new_lan(const Pkt &p, const PortOracle &oracle, std::string &error, std::map<int, uint64_t> &counts)
{
    xnat_ct_key to = p.tuple;
    uint16_t rule = kNoRule;
    uint8_t nat = 0;
    uint32_t ext_addr = 0; // host order; 0: no source NAT
    uint16_t lo = 0, hi = 0;
    uint8_t flags = 0;
    if (auto t = forward_for(p.tuple, Side::lan)) {
        to.daddr = htonl(t->addr);
        to.dport = htons(t->port);
        rule = t->rule;
        nat = XNAT_NAT_DNAT;
    } else if (auto w = forward_for(p.tuple, Side::wan)) {
        // Hairpin: the server must answer through the gateway, so the source becomes the
        // forward's public address.
        to.daddr = htonl(w->addr);
        to.dport = htons(w->port);
        rule = w->rule;
        nat = XNAT_NAT_DNAT | XNAT_NAT_HAIRPIN;
        ext_addr = ntohl(p.tuple.daddr);
        coverage["flow: hairpin"]++;
        lo = kHairpinLo;
        hi = kHairpinHi;
    }
    if (!(nat & XNAT_NAT_HAIRPIN)) {
        uint16_t id = 0;
        const Masquerade *m = masq_for(ntohl(p.tuple.saddr), ntohl(to.daddr), id);
        if (m && egress_is_wan(ntohl(to.daddr))) {
            ext_addr = m->to_source.value_or(0);
            lo = m->port_lo;
            hi = m->port_hi;
            flags = m->filtering == Filtering::endpoint_independent ? XNAT_MASQ_F_EIF : 0;
            if (rule == kNoRule)
                rule = static_cast<uint16_t>(XNAT_MAX_RULES + id);
        }
    }
    if (!nat && !ext_addr)
        return XNAT_CNT_PASS_NO_MATCH;
    if (int rc = refuse_open(p))
        return rc;
    uint8_t reply_nat = nat;
    int charged = 0;
    if (ext_addr) {
        // The flow counts against its host's quota before it may take a port.
        charged = charge(p.tuple.saddr, kFlowUnit, env_.host_max_flows);
        if (charged < 0)
            return XNAT_CNT_DROP_HOST_FLOWS;
        uint16_t port = 0;
        if (int rc = acquire(p.tuple, ntohl(p.tuple.saddr), ntohs(p.tuple.sport), ext_addr, lo, hi, flags,
                             oracle, error, port)) {
            if (charged > 0)
                uncharge(p.tuple.saddr, kFlowUnit);
            return rc;
        }
        to.saddr = htonl(ext_addr);
        to.sport = htons(port);
        nat |= XNAT_NAT_SNAT | XNAT_NAT_MAP_PEER;
        reply_nat |= XNAT_NAT_SNAT | XNAT_NAT_MAP_SELF;
        if (charged > 0) {
            nat |= XNAT_NAT_HOST;
            reply_nat |= XNAT_NAT_HOST;
        }
    }
    int rc = create(p, to, rule, nat, reply_nat, counts);
    if (rc && ext_addr)
        release(to.proto, to.saddr, to.sport);
    if (rc && charged > 0)
        uncharge(p.tuple.saddr, kFlowUnit);
    return rc;
}

namespace {

// conntrack's TCP states, as the original half keeps them.
uint8_t tcp_next_state(uint8_t state, uint8_t &flags, uint8_t dir, uint8_t tcp)
{
    if (tcp & kRst)
        return XNAT_TCP_CLOSE;
    if (tcp & kSyn)
        return dir == XNAT_DIR_REPLY && (tcp & kAck) && state == XNAT_TCP_SYN_SENT ? XNAT_TCP_SYN_RECV : state;
    if (tcp & kFin) {
        flags |= dir == XNAT_DIR_ORIGINAL ? XNAT_CT_F_FIN_ORIG : XNAT_CT_F_FIN_REPLY;
        if ((flags & XNAT_CT_F_FIN_ORIG) && (flags & XNAT_CT_F_FIN_REPLY))
            return XNAT_TCP_TIME_WAIT;
        if (state == XNAT_TCP_CLOSE)
            return state;
        return dir == XNAT_DIR_ORIGINAL ? XNAT_TCP_FIN_WAIT : XNAT_TCP_CLOSE_WAIT;
    }
    if ((tcp & kAck) && dir == XNAT_DIR_ORIGINAL && state == XNAT_TCP_SYN_RECV)
        return XNAT_TCP_ESTABLISHED;
    return state;
}

} // namespace

int NatModel::account(const xnat_ct_key &key, const Pkt &p)
{
    xnat_ct_entry &e = ct_.at(key);
    if (p.tuple.proto == 6 && (p.tcp & kRst)) {
        // An RST far from its sender's sequence numbers is dropped, uncounted, state kept.
        uint32_t d = p.seq - e.next_seq;
        if (e.seq_known && d > XNAT_RST_WINDOW && 0u - d > XNAT_RST_WINDOW) {
            coverage["tcp: RST outside window"]++;
            return XNAT_CNT_DROP_TCP_RST_WINDOW;
        }
    }
    e.packets += 1;
    e.bytes += p.tot_len;
    if (p.tuple.proto == 6 && !(p.tcp & kRst)) {
        if (!e.seq_known || static_cast<int32_t>(p.next - e.next_seq) > 0) {
            e.next_seq = p.next;
            e.seq_known = 1;
        }
    }
    e.last_seen = now_;
    if (e.dir == XNAT_DIR_REPLY)
        e.flags |= XNAT_CT_F_SEEN_REPLY;
    auto orig = e.dir == XNAT_DIR_ORIGINAL ? ct_.find(key) : ct_.find(e.peer);
    if (orig == ct_.end())
        return 0;
    uint8_t flags = orig->second.flags;
    if (e.dir == XNAT_DIR_REPLY)
        flags |= XNAT_CT_F_SEEN_REPLY;
    if (p.tuple.proto == 6) {
        uint8_t was = orig->second.state;
        orig->second.state = tcp_next_state(was, flags, e.dir, p.tcp);
        if (was != orig->second.state)
            coverage["tcp: " + std::to_string(was) + " -> " + std::to_string(orig->second.state)]++;
        // Assured once the handshake completes, and for good.
        if (orig->second.state == XNAT_TCP_ESTABLISHED)
            flags |= XNAT_CT_F_ASSURED;
    } else if (flags & XNAT_CT_F_SEEN_REPLY) {
        flags |= XNAT_CT_F_ASSURED;
    }
    orig->second.flags = flags;
    return 0;
}

// 0 when the fast path can send a packet to daddr, else the pass counter saying why not.
int NatModel::route_outcome(const Pkt &p, uint32_t daddr_be, Route &r) const
{
    r = env_.route(ntohl(daddr_be));
    if (p.ttl <= 1)
        return XNAT_CNT_PASS_TTL;
    if (r.kind == RouteKind::local || r.kind == RouteKind::unreachable ||
        (r.ifindex != env_.wan_ifindex && r.ifindex != env_.lan_ifindex))
        return XNAT_CNT_PASS_FIB;
    if (r.kind == RouteKind::no_neigh)
        return XNAT_CNT_PASS_NO_NEIGH;
    return 0;
}

uint64_t NatModel::now_ns() const
{
    // The fuzzer pins the datapath's clock in the middle of the model's tick.
    return (uint64_t{now_} << XNAT_TICK_SHIFT) + (1ull << (XNAT_TICK_SHIFT - 1));
}

xnat_frag_key NatModel::frag_key(const Pkt &p)
{
    xnat_frag_key k{};
    k.saddr = p.tuple.saddr;
    k.daddr = p.tuple.daddr;
    k.id = p.frag_id;
    k.proto = p.tuple.proto;
    return k;
}

// A later fragment: the addresses of its first fragment's translation, routed the same way; if
// there is none, dropped when the kernel would forward it between the two interfaces, else left
// to the kernel.
bool NatModel::forwarded_between_sides(uint32_t daddr_be) const
{
    Route r = env_.route(ntohl(daddr_be));
    return (r.kind == RouteKind::neigh || r.kind == RouteKind::no_neigh) &&
           (r.ifindex == env_.wan_ifindex || r.ifindex == env_.lan_ifindex);
}

// A first fragment no rule translates, which the kernel forwards: its later fragments follow it
// to the kernel (an entry without a flow).
void NatModel::remember_untranslated(const Pkt &p, Outcome &out)
{
    if (!forwarded_between_sides(p.tuple.daddr))
        return;
    const xnat_frag_key fk = frag_key(p);
    auto it = frags_.find(fk);
    if (it != frags_.end() && it->second.expires_ns > now_ns())
        return;
    xnat_frag_entry e{};
    e.saddr = p.tuple.saddr;
    e.daddr = p.tuple.daddr;
    e.expires_ns = now_ns() + kFragLifetimeNs;
    frags_[fk] = e;
    out.counts[XNAT_CNT_FRAG_TRACKED]++;
    coverage["fragment: first left untranslated"]++;
}

// A translated packet's last steps, as fwd_finish takes them: TTL down (IP checksum refitted
// from the residual of the translated header), then tc has the kernel resolve a missing
// neighbour, or the MACs are rewritten for the redirect; any other route outcome goes as is.
int NatModel::finish(int route, const Route &r, const Pkt &p, uint16_t ip_residual, Outcome &out) const
{
    Bytes &f = out.frame;
    if (route && route != XNAT_CNT_PASS_NO_NEIGH)
        return route;
    f[kEth + 8]--;
    refit(f, kEth + 10, kEth, p.ihl, 0, ip_residual);
    out.action = Action::redirect;
    if (route == XNAT_CNT_PASS_NO_NEIGH) // tc has the kernel resolve the neighbour
        return XNAT_CNT_REDIRECTED_NEIGH;
    std::copy(r.dmac.begin(), r.dmac.end(), f.begin());
    const Mac &smac = r.ifindex == env_.wan_ifindex ? env_.wan_mac : env_.lan_mac;
    std::copy(smac.begin(), smac.end(), f.begin() + 6);
    return XNAT_CNT_REDIRECTED;
}

int NatModel::later_fragment(const Pkt &p, Outcome &out)
{
    auto it = frags_.find(frag_key(p));
    if (it == frags_.end() || it->second.expires_ns <= now_ns()) {
        bool forwarded = forwarded_between_sides(p.tuple.daddr);
        coverage[forwarded ? "fragment: orphan dropped" : "fragment: orphan passed"]++;
        return forwarded ? XNAT_CNT_DROP_FRAG_NO_FIRST : XNAT_CNT_PASS_FRAGMENT;
    }
    if (it->second.flow.proto == 0) {
        coverage["fragment: later untranslated"]++;
        return XNAT_CNT_PASS_FRAGMENT;
    }
    coverage["fragment: later translated"]++;
    const xnat_frag_entry e = it->second;
    Route r;
    int route = route_outcome(p, e.daddr, r);
    out.needs_kernel_route = route != 0;
    if (auto c = ct_.find(e.flow); c != ct_.end()) {
        c->second.packets++;
        c->second.bytes += p.tot_len;
    }
    if (route == XNAT_CNT_PASS_TTL && p.tuple.saddr != e.saddr)
        return XNAT_CNT_PASS_FOR_ERROR;
    Bytes &f = out.frame;
    const size_t ip_check = kEth + 10;
    const uint16_t ip_residual = fold16(sum16(&f[kEth], p.ihl));
    put32(f, kEth + 12, ntohl(e.saddr));
    put32(f, kEth + 16, ntohl(e.daddr));
    refit(f, ip_check, kEth, p.ihl, 0, ip_residual);
    out.csums = {{ip_check, false}};
    return finish(route, r, p, ip_residual, out);
}

int NatModel::send(const xnat_ct_key &key, const Pkt &p, Outcome &out)
{
    const xnat_ct_key to = reversed(ct_.at(key).peer);
    if (p.frag_first) {
        // The first translation of a datagram identity wins while it lives.
        const xnat_frag_key fk = frag_key(p);
        auto it = frags_.find(fk);
        if (it != frags_.end() && it->second.expires_ns > now_ns()) {
            if (it->second.saddr != to.saddr || it->second.daddr != to.daddr) {
                coverage["fragment: clash"]++;
                return XNAT_CNT_DROP_FRAG_CLASH;
            }
        } else {
            xnat_frag_entry e{};
            e.saddr = to.saddr;
            e.daddr = to.daddr;
            e.flow = key;
            e.expires_ns = now_ns() + kFragLifetimeNs;
            frags_[fk] = e;
            out.counts[XNAT_CNT_FRAG_TRACKED]++;
            coverage["fragment: first remembered"]++;
        }
    }
    Route r;
    int route = route_outcome(p, to.daddr, r);
    out.needs_kernel_route = route != 0;

    if (int rc = account(key, p))
        return rc;
    // A packet whose source is translated and which the kernel must answer with an error goes
    // up untranslated, so the error reaches its real sender.
    if (route == XNAT_CNT_PASS_TTL && (p.tuple.saddr != to.saddr || p.tuple.sport != to.sport))
        return XNAT_CNT_PASS_FOR_ERROR;

    Bytes &f = out.frame;
    const size_t ip_check = kEth + 10;
    const uint16_t ip_residual = fold16(sum16(&f[kEth], p.ihl));
    const size_t l4 = p.l4_off;
    uint16_t l4_residual = 0;
    // A first fragment's UDP length counts the whole datagram; the sum is over what is here.
    size_t l4_cover = p.tuple.proto == 17 ? std::min<size_t>(p.udp_len, p.l4_len) : p.l4_len;
    uint32_t extra_in = p.tuple.proto == 1 ? 0 : pseudo(f, p.tuple.proto, l4_cover);
    l4_residual = fold16(sum16(&f[l4], l4_cover, extra_in));

    put32(f, kEth + 12, ntohl(to.saddr));
    put32(f, kEth + 16, ntohl(to.daddr));
    size_t l4_check = l4 + (p.tuple.proto == 6 ? 16 : p.tuple.proto == 17 ? 6 : 2);
    if (p.tuple.proto == 1) {
        put16(f, l4 + 4, ntohs(static_cast<uint16_t>(to.sport | to.dport)));
    } else {
        put16(f, l4, ntohs(to.sport));
        put16(f, l4 + 2, ntohs(to.dport));
    }
    refit(f, ip_check, kEth, p.ihl, 0, ip_residual);
    if (!(p.tuple.proto == 17 && p.udp_none)) {
        uint32_t extra_out = p.tuple.proto == 1 ? 0 : pseudo(f, p.tuple.proto, l4_cover);
        refit(f, l4_check, l4, l4_cover, extra_out, l4_residual);
        if (p.tuple.proto == 17 && get16(f, l4_check) == 0)
            put16(f, l4_check, 0xffff);
    }
    out.csums = {{ip_check, false}, {l4_check, p.tuple.proto == 17}};

    return finish(route, r, p, ip_residual, out);
}

namespace {

// RFC 1624 eqn. 3 over 16-bit words that changed: what a checksum over bytes we cannot see
// whole (a quoted segment) becomes.
uint16_t csum_update(uint16_t check, const std::vector<std::pair<uint16_t, uint16_t>> &changes)
{
    uint32_t acc = static_cast<uint16_t>(~check);
    for (const auto &[was, now] : changes)
        acc += static_cast<uint16_t>(~was) + uint32_t{now};
    return static_cast<uint16_t>(~fold16(acc));
}

void words32(std::vector<std::pair<uint16_t, uint16_t>> &w, uint32_t was, uint32_t now)
{
    w.emplace_back(static_cast<uint16_t>(was >> 16), static_cast<uint16_t>(now >> 16));
    w.emplace_back(static_cast<uint16_t>(was), static_cast<uint16_t>(now));
}

} // namespace

// An ICMP error about a translated packet (RFC 5508): the quote is put back in the form its
// recipient sent, the error goes to that sender, from the address it talked to. Nothing in the
// flow changes.
int NatModel::icmp_error(const Pkt &p, Outcome &out, std::map<int, uint64_t> &counts)
{
    const Bytes &in = out.frame;
    const size_t end = kEth + p.tot_len; // the quote ends where the IP packet does
    const size_t q3 = p.l4_off + 8;
    if (q3 + 20 > end || (in[q3] >> 4) != 4 || (in[q3] & 0x0f) < 5)
        return XNAT_CNT_PASS_MALFORMED;
    if (get16(in, q3 + 6) & 0x1fff)
        return XNAT_CNT_PASS_ICMP_NO_FLOW; // a later fragment names no ports
    const size_t qihl = size_t{in[q3] & 0x0fu} * 4;
    const size_t q4 = q3 + qihl;
    if (q4 + 8 > end)
        return XNAT_CNT_PASS_MALFORMED;
    xnat_ct_key was{};
    was.proto = in[q3 + 9];
    was.saddr = htonl(get32(in, q3 + 12));
    was.daddr = htonl(get32(in, q3 + 16));
    size_t q_check = 0; // offset of the quoted L4 checksum, 0 if it is not quoted
    if (was.proto == 6 || was.proto == 17) {
        was.sport = htons(get16(in, q4));
        was.dport = htons(get16(in, q4 + 2));
        if (was.proto == 6 && q4 + 18 <= end)
            q_check = q4 + 16;
        if (was.proto == 17 && get16(in, q4 + 6) != 0)
            q_check = q4 + 6;
    } else if (was.proto == 1 && (in[q4] == 8 || in[q4] == 0)) {
        (in[q4] == 8 ? was.sport : was.dport) = htons(get16(in, q4 + 4));
        q_check = q4 + 2;
    } else {
        return XNAT_CNT_PASS_ICMP_NO_FLOW;
    }
    // The quote is a packet of the flow's other half; that half's peer is the original form.
    auto h = ct_.find(reversed(was));
    if (h == ct_.end())
        return XNAT_CNT_PASS_ICMP_NO_FLOW;
    const xnat_ct_key quoted = h->second.peer;
    xnat_ct_key outer{};
    outer.saddr = was.daddr != quoted.daddr ? quoted.daddr : p.tuple.saddr;
    outer.daddr = quoted.saddr;
    Route r;
    int route = route_outcome(p, outer.daddr, r);
    coverage["icmp error translated"]++;

    Bytes &f = out.frame;
    const uint16_t ip_res = fold16(sum16(&f[kEth], p.ihl));
    const uint16_t q_ip_res = fold16(sum16(&f[q3], qihl));
    const uint16_t icmp_res = fold16(sum16(&f[p.l4_off], p.l4_len));
    std::vector<std::pair<uint16_t, uint16_t>> changed;
    words32(changed, ntohl(was.saddr), ntohl(quoted.saddr));
    words32(changed, ntohl(was.daddr), ntohl(quoted.daddr));
    put32(f, q3 + 12, ntohl(quoted.saddr));
    put32(f, q3 + 16, ntohl(quoted.daddr));
    refit(f, q3 + 10, q3, qihl, 0, q_ip_res);
    if (was.proto == 1) {
        changed.clear(); // no pseudo-header: only the identifier counts
        uint16_t id_was = get16(f, q4 + 4), id_now = ntohs(static_cast<uint16_t>(quoted.sport | quoted.dport));
        changed.emplace_back(id_was, id_now);
        put16(f, q4 + 4, id_now);
    } else {
        changed.emplace_back(get16(f, q4), ntohs(quoted.sport));
        changed.emplace_back(get16(f, q4 + 2), ntohs(quoted.dport));
        put16(f, q4, ntohs(quoted.sport));
        put16(f, q4 + 2, ntohs(quoted.dport));
    }
    if (q_check) {
        uint16_t c = csum_update(get16(f, q_check), changed);
        put16(f, q_check, was.proto == 17 && c == 0 ? 0xffff : c);
        out.csums.push_back({q_check, was.proto == 17});
    }
    refit(f, p.l4_off + 2, p.l4_off, p.l4_len, 0, icmp_res);
    put32(f, kEth + 12, ntohl(outer.saddr));
    put32(f, kEth + 16, ntohl(outer.daddr));
    refit(f, kEth + 10, kEth, p.ihl, 0, ip_res);
    out.csums.push_back({kEth + 10, false});
    out.csums.push_back({p.l4_off + 2, false});
    out.csums.push_back({q3 + 10, false});
    counts[XNAT_CNT_ICMP_ERROR_TRANSLATED]++;
    if (route)
        return route;
    f[kEth + 8]--;
    refit(f, kEth + 10, kEth, p.ihl, 0, ip_res);
    std::copy(r.dmac.begin(), r.dmac.end(), f.begin());
    const Mac &smac = r.ifindex == env_.wan_ifindex ? env_.wan_mac : env_.lan_mac;
    std::copy(smac.begin(), smac.end(), f.begin() + 6);
    out.action = Action::redirect;
    return XNAT_CNT_REDIRECTED;
}

// A new flow refused for lack of room, answered (RFC 5508 REQ-8) with ICMP destination
// unreachable, administratively prohibited, made of the refused packet and sent back where it
// came from: MACs swapped; from the gateway's LAN address (LAN side, if it has one) or the
// address the packet was sent to; quoting the IP header and 8 bytes of payload, 20 for TCP.
// At most refusal_icmp_rate a tick; beyond that the packet is dropped unanswered.
void NatModel::refuse(Side side, const Pkt &p, int outcome, Outcome &out)
{
    out.counts[outcome]++;
    out.action = Action::drop;
    if (refusal_tick_ != now_) {
        refusal_tick_ = now_;
        refusal_sent_ = 0;
    }
    if (refusal_sent_ >= env_.refusal_icmp_rate) {
        coverage["refusal: over the rate"]++;
        out.counts[XNAT_CNT_REFUSAL_ICMP_LIMITED]++;
        return;
    }
    refusal_sent_++;
    const Bytes in = out.frame;
    const size_t quote = p.ihl + (p.tuple.proto == 6 ? 20 : 8);
    Bytes f(kEth + 28 + quote);
    std::copy(in.begin() + 6, in.begin() + 12, f.begin());
    std::copy(in.begin(), in.begin() + 6, f.begin() + 6);
    put16(f, 12, 0x0800);
    const size_t ip = kEth, icmp = kEth + 20;
    f[ip] = 0x45;
    f[ip + 1] = 0xc0;
    put16(f, ip + 2, static_cast<uint16_t>(28 + quote));
    f[ip + 8] = 64;
    f[ip + 9] = 1;
    uint32_t from = side == Side::lan && env_.lan_addr ? env_.lan_addr : p.tuple.daddr;
    put32(f, ip + 12, ntohl(from));
    put32(f, ip + 16, ntohl(p.tuple.saddr));
    put16(f, ip + 10, static_cast<uint16_t>(~fold16(sum16(&f[ip], 20))));
    f[icmp] = 3;
    f[icmp + 1] = 13;
    std::copy(in.begin() + kEth, in.begin() + static_cast<long>(kEth + quote), f.begin() + kEth + 28);
    // tc takes an L4 checksum that holds just the pseudo-header sum for a CHECKSUM_PARTIAL
    // packet, whose quoted L4 bytes will sum to its complement once the transmitter finishes it.
    uint32_t sum;
    const size_t field = p.l4_off + (p.tuple.proto == 6 ? 16 : 6);
    const bool csummed = p.tuple.proto == 6 || (p.tuple.proto == 17 && !p.udp_none);
    const uint16_t pseudo_sum = csummed ? fold16(pseudo(in, p.tuple.proto, p.l4_len)) : 0;
    if (!env_.xdp && csummed && get16(in, field) == pseudo_sum) {
        coverage["refusal: checksum-partial packet"]++;
        sum = sum16(&f[icmp], 8 + p.ihl) + static_cast<uint16_t>(~pseudo_sum);
    } else {
        sum = sum16(&f[icmp], 8 + quote);
    }
    put16(f, icmp + 2, static_cast<uint16_t>(~fold16(sum)));
    out.frame = f;
    out.csums = {{ip + 10, false}, {icmp + 2, false}};
    out.action = Action::reflect;
    out.counts[XNAT_CNT_REFUSAL_ICMP_SENT]++;
    coverage["refusal: ICMP sent"]++;
}

// The kernel runs XDP first, then tc ingress on whatever XDP passes. XDP ends a packet only by
// redirecting it (neighbour known) or dropping it; anything else, and any packet of a flow whose
// route it cannot finish, it passes up untouched before touching the flow, and tc decides it
// with the same state and the same rules. So the end result is always tc's, and XDP's part
// shows only as a handoff for the packets tc finishes.
Outcome NatModel::packet(Side side, const Bytes &frame, const PortOracle &oracle, std::string &error)
{
    Outcome out = decide(side, frame, oracle, error);
    if (env_.xdp && (out.action == Action::pass || out.needs_kernel_route))
        out.counts[XNAT_CNT_XDP_HANDOFF]++;
    return out;
}

Outcome NatModel::decide(Side side, const Bytes &frame, const PortOracle &oracle, std::string &error)
{
    Outcome out;
    out.frame = frame;
    Pkt p;
    int rc = parse(frame, p);
    if (rc == kLaterFragment) {
        rc = later_fragment(p, out);
        out.counts[rc]++;
        if (is_drop(rc))
            out.action = Action::drop;
        if (rc == XNAT_CNT_PASS_FRAGMENT || rc == XNAT_CNT_PASS_FOR_ERROR || is_drop(rc))
            out.frame = frame; // left untouched
        return out;
    }
    if (rc == kIcmpError) {
        rc = icmp_error(p, out, out.counts);
        if (rc == XNAT_CNT_REDIRECTED)
            out.counts[rc]++;
        else {
            if (rc != XNAT_CNT_PASS_TTL && rc != XNAT_CNT_PASS_FIB && rc != XNAT_CNT_PASS_NO_NEIGH)
                out.frame = frame; // left untouched
            out.counts[rc]++;
        }
        return out;
    }
    if (rc) {
        if (rc == XNAT_CNT_PASS_L4_PROTO && p.frag_first)
            remember_untranslated(p, out);
        out.counts[rc]++;
        return out;
    }
    auto it = ct_.find(p.tuple);
    if (it != ct_.end() && stale(p, it->second)) {
        end_flow(p.tuple, out.counts);
        out.counts[XNAT_CNT_CT_EXPIRED]++;
        it = ct_.end();
    }
    if (it == ct_.end()) {
        rc = side == Side::wan ? new_wan(p, out.counts) : new_lan(p, oracle, error, out.counts);
        if (rc && for_lack_of_room(rc) && (env_.refusal_icmp & XNAT_REFUSAL_ICMP_SIDE(static_cast<int>(side)))) {
            refuse(side, p, rc, out);
            return out;
        }
        if (rc) {
            if (rc == XNAT_CNT_PASS_NO_MATCH && p.frag_first)
                remember_untranslated(p, out);
            out.counts[rc]++;
            if (is_drop(rc))
                out.action = Action::drop;
            return out;
        }
    }
    rc = send(p.tuple, p, out);
    if (rc >= 0)
        out.counts[rc]++;
    if (rc >= 0 && is_drop(rc))
        out.action = Action::drop; // an RST outside the window
    return out;
}

uint64_t NatModel::flush(std::map<int, uint64_t> &counts)
{
    std::vector<xnat_ct_key> origs;
    for (const auto &[k, e] : ct_)
        if (e.dir == XNAT_DIR_ORIGINAL)
            origs.push_back(k);
    for (const auto &k : origs)
        if (ct_.count(k))
            end_flow(k, counts);
    ct_.clear(); // orphaned reply halves go too, uncounted
    return origs.size();
}

} // namespace xnat::model
