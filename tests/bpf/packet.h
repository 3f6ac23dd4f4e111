// Test packets: a builder that computes every checksum from scratch (RFC 1071 over the bytes),
// and readers that check them. This is the independent oracle the datapath's incremental
// checksum updates are judged against; it shares no code with bpf/.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xnat::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
inline constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1;

uint32_t ip(const char *dotted); // host order

struct PacketSpec {
    Mac eth_dst{0x02, 0, 0, 0, 0, 0x01};
    Mac eth_src{0x02, 0, 0, 0, 0, 0x02};
    uint16_t ethertype = 0x0800;
    uint32_t saddr = 0; // host order
    uint32_t daddr = 0;
    uint8_t proto = kTcp;
    uint16_t sport = 0;
    uint16_t dport = 0;
    uint8_t ttl = 64;
    uint8_t tos = 0;
    uint16_t ip_id = 0x1234;
    uint16_t frag = 0x4000; // DF
    Bytes ip_options;       // multiple of 4
    uint8_t tcp_flags = kSyn;
    Bytes tcp_options; // multiple of 4, after the 20-byte TCP header
    uint32_t seq = 1000;
    uint32_t ack_seq = 0;
    Bytes payload; // for an ICMP error: the quoted packet (IP header onward)
    bool udp_no_checksum = false;
    // ICMP (proto kIcmp): type and code; for echo, the identifier (and sequence) follow,
    // for errors the second word (frag-needed: the next-hop MTU).
    uint8_t icmp_type = 8;
    uint8_t icmp_code = 0;
    uint16_t icmp_id = 0;
    uint16_t icmp_seq = 1;
};

inline constexpr uint8_t kEchoReply = 0, kUnreach = 3, kEcho = 8, kTimeExceeded = 11;

// The IP packet inside a frame (no Ethernet header), cut to `len` bytes if given: what an
// ICMP error quotes.
Bytes ip_packet(const Bytes &frame, size_t len = 0);

Bytes build(const PacketSpec &spec);
// A packet of proto from src:sport to dst:dport; every other field keeps PacketSpec's default.
PacketSpec flow_packet(uint8_t proto, const char *src, uint16_t sport, const char *dst, uint16_t dport);
// A flow's first packet, src:sport -> dst:dport, with a 4-byte payload (a SYN for TCP).
PacketSpec lan_to(const char *src, uint16_t sport, const char *dst, uint16_t dport, uint8_t proto = kTcp);

// Writes a 16-bit field in network order: tests that break a header on purpose.
void set16(Bytes &f, size_t off, uint16_t v);

// RFC 1071 one's complement sum over bytes, folded and complemented.
uint16_t internet_checksum(const uint8_t *data, size_t len, uint32_t seed = 0);

// Views of a built or transformed Ethernet/IPv4 frame.
struct Fields {
    Mac eth_dst{}, eth_src{};
    uint32_t saddr = 0, daddr = 0; // host order
    uint16_t sport = 0, dport = 0; // ICMP: type/code are not here; see icmp_id
    uint16_t icmp_id = 0;
    uint8_t ttl = 0, proto = 0;
    uint16_t ip_check = 0, l4_check = 0;
    size_t l4_off = 0;
};
Fields fields(const Bytes &frame);

bool ipv4_checksum_ok(const Bytes &frame);
// The ICMP checksum over the whole message (ICMP has no pseudo-header).
bool icmp_checksum_ok(const Bytes &frame);
// The packet an ICMP error quotes, as a frame of its own (zero Ethernet header), so the
// checks above can be run on it.
Bytes quoted_frame(const Bytes &icmp_frame);
// TCP/UDP checksum over the pseudo-header and segment; a UDP checksum of 0 is "none" and
// counts as valid only when allow_udp_none.
bool l4_checksum_ok(const Bytes &frame, bool allow_udp_none = false);

// Offsets of the two checksum fields, so byte comparisons can single them out.
size_t ip_check_offset();
size_t l4_check_offset(const Bytes &frame);

std::string hex(const Bytes &b);

} // namespace xnat::test
