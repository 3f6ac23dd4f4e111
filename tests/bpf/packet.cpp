#include "packet.h"

#include <arpa/inet.h>

#include <cstdio>
#include <stdexcept>

namespace xnat::test {
namespace {

constexpr size_t kEth = 14;

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

uint16_t get16(const Bytes &b, size_t off)
{
    return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}

uint32_t get32(const Bytes &b, size_t off)
{
    return (uint32_t{get16(b, off)} << 16) | get16(b, off + 2);
}

uint32_t sum_bytes(const uint8_t *data, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += static_cast<uint32_t>((data[i] << 8) | data[i + 1]);
    if (len & 1)
        sum += static_cast<uint32_t>(data[len - 1] << 8);
    return sum;
}

uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

// Sum of the IPv4 pseudo-header for a segment of l4_len bytes.
uint32_t pseudo_sum(uint32_t saddr, uint32_t daddr, uint8_t proto, size_t l4_len)
{
    return (saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) + (daddr & 0xffff) + proto +
           static_cast<uint32_t>(l4_len);
}

size_t ihl_bytes(const Bytes &f)
{
    return static_cast<size_t>(f.at(kEth) & 0x0f) * 4;
}

} // namespace

uint32_t ip(const char *dotted)
{
    in_addr a{};
    if (inet_pton(AF_INET, dotted, &a) != 1)
        throw std::invalid_argument(dotted);
    return ntohl(a.s_addr);
}

uint16_t internet_checksum(const uint8_t *data, size_t len, uint32_t seed)
{
    return static_cast<uint16_t>(~fold(sum_bytes(data, len, seed)));
}

PacketSpec flow_packet(uint8_t proto, const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
    PacketSpec s;
    s.proto = proto;
    s.saddr = ip(src);
    s.daddr = ip(dst);
    s.sport = sport;
    s.dport = dport;
    return s;
}

PacketSpec lan_to(const char *src, uint16_t sport, const char *dst, uint16_t dport, uint8_t proto)
{
    PacketSpec s = flow_packet(proto, src, sport, dst, dport);
    s.tcp_flags = kSyn;
    s.payload = {1, 2, 3, 4};
    return s;
}

void set16(Bytes &f, size_t off, uint16_t v)
{
    f[off] = static_cast<uint8_t>(v >> 8);
    f[off + 1] = static_cast<uint8_t>(v);
}

Bytes build(const PacketSpec &s)
{
    size_t ihl = 20 + s.ip_options.size();
    size_t l4_len = s.proto == kTcp ? 20 + s.tcp_options.size() : 8;
    size_t seg = l4_len + s.payload.size();
    Bytes f(kEth + ihl + seg, 0);
    std::copy(s.eth_dst.begin(), s.eth_dst.end(), f.begin());
    std::copy(s.eth_src.begin(), s.eth_src.end(), f.begin() + 6);
    put16(f, 12, s.ethertype);

    size_t l3 = kEth;
    f[l3] = static_cast<uint8_t>(0x40 | (ihl / 4));
    f[l3 + 1] = s.tos;
    put16(f, l3 + 2, static_cast<uint16_t>(ihl + seg));
    put16(f, l3 + 4, s.ip_id);
    put16(f, l3 + 6, s.frag);
    f[l3 + 8] = s.ttl;
    f[l3 + 9] = s.proto;
    put32(f, l3 + 12, s.saddr);
    put32(f, l3 + 16, s.daddr);
    std::copy(s.ip_options.begin(), s.ip_options.end(), f.begin() + static_cast<long>(l3 + 20));
    put16(f, l3 + 10, internet_checksum(&f[l3], ihl));

    size_t l4 = l3 + ihl;
    std::copy(s.payload.begin(), s.payload.end(), f.begin() + static_cast<long>(l4 + l4_len));
    if (s.proto == kTcp) {
        put16(f, l4, s.sport);
        put16(f, l4 + 2, s.dport);
        put32(f, l4 + 4, s.seq);
        put32(f, l4 + 8, s.ack_seq);
        f[l4 + 12] = static_cast<uint8_t>((l4_len / 4) << 4);
        std::copy(s.tcp_options.begin(), s.tcp_options.end(), f.begin() + static_cast<long>(l4 + 20));
        f[l4 + 13] = s.tcp_flags;
        put16(f, l4 + 14, 65535);
        put16(f, l4 + 16, internet_checksum(&f[l4], seg, pseudo_sum(s.saddr, s.daddr, kTcp, seg)));
    } else if (s.proto == kUdp) {
        put16(f, l4, s.sport);
        put16(f, l4 + 2, s.dport);
        put16(f, l4 + 4, static_cast<uint16_t>(seg));
        if (!s.udp_no_checksum) {
            uint16_t c = internet_checksum(&f[l4], seg, pseudo_sum(s.saddr, s.daddr, kUdp, seg));
            put16(f, l4 + 6, c == 0 ? 0xffff : c); // RFC 768: a computed 0 is sent as all ones
        }
    } else if (s.proto == kIcmp) {
        f[l4] = s.icmp_type;
        f[l4 + 1] = s.icmp_code;
        put16(f, l4 + 4, s.icmp_id);
        put16(f, l4 + 6, s.icmp_seq);
        put16(f, l4 + 2, internet_checksum(&f[l4], seg));
    } else {
        f[l4] = 0x5a; // some other protocol: opaque bytes
    }
    return f;
}

Bytes ip_packet(const Bytes &frame, size_t len)
{
    Bytes b(frame.begin() + kEth, frame.end());
    if (len && len < b.size())
        b.resize(len);
    return b;
}

bool icmp_checksum_ok(const Bytes &f)
{
    Fields x = fields(f);
    size_t seg = get16(f, kEth + 2) - ihl_bytes(f);
    return fold(sum_bytes(&f.at(x.l4_off), seg, 0)) == 0xffff;
}

Bytes quoted_frame(const Bytes &f)
{
    Fields x = fields(f);
    Bytes q(f.begin() + static_cast<long>(x.l4_off + 8), f.end());
    q.insert(q.begin(), kEth, uint8_t{0});
    q[12] = 0x08;
    return q;
}

Fields fields(const Bytes &f)
{
    Fields x;
    std::copy(f.begin(), f.begin() + 6, x.eth_dst.begin());
    std::copy(f.begin() + 6, f.begin() + 12, x.eth_src.begin());
    x.ttl = f.at(kEth + 8);
    x.proto = f.at(kEth + 9);
    x.ip_check = get16(f, kEth + 10);
    x.saddr = get32(f, kEth + 12);
    x.daddr = get32(f, kEth + 16);
    x.l4_off = kEth + ihl_bytes(f);
    if (x.proto == kTcp || x.proto == kUdp) {
        x.sport = get16(f, x.l4_off);
        x.dport = get16(f, x.l4_off + 2);
        x.l4_check = get16(f, l4_check_offset(f));
    } else if (x.proto == kIcmp) {
        x.icmp_id = get16(f, x.l4_off + 4);
        x.l4_check = get16(f, x.l4_off + 2);
    }
    return x;
}

bool ipv4_checksum_ok(const Bytes &f)
{
    return fold(sum_bytes(&f.at(kEth), ihl_bytes(f), 0)) == 0xffff;
}

bool l4_checksum_ok(const Bytes &f, bool allow_udp_none)
{
    Fields x = fields(f);
    size_t tot = get16(f, kEth + 2);
    size_t seg = tot - ihl_bytes(f);
    if (x.proto == kUdp && x.l4_check == 0)
        return allow_udp_none;
    return fold(sum_bytes(&f.at(x.l4_off), seg, pseudo_sum(x.saddr, x.daddr, x.proto, seg))) == 0xffff;
}

size_t ip_check_offset()
{
    return kEth + 10;
}

size_t l4_check_offset(const Bytes &f)
{
    size_t l4 = kEth + ihl_bytes(f);
    uint8_t proto = f.at(kEth + 9);
    return l4 + (proto == kTcp ? 16 : proto == kIcmp ? 2 : 6);
}

std::string hex(const Bytes &b)
{
    std::string s;
    char buf[4];
    for (size_t i = 0; i < b.size(); ++i) {
        std::snprintf(buf, sizeof(buf), "%02x", b[i]);
        s += buf;
        if (i % 16 == 15)
            s += '\n';
        else if (i % 2 == 1)
            s += ' ';
    }
    return s;
}

} // namespace xnat::test
