// The one scenario the BPF packet tests play in (TestNet in bpf_harness.h wires its routes and
// neighbours): who is where, and the packets they send. A test that needs another packet starts
// from one of these and changes what it is about.
//
//   internet: the client 198.51.100.2, behind the router 198.51.100.254 on wan0, and a remote
//             host 203.0.113.50 that LAN hosts reach through masquerade
//   gateway:  198.51.100.1 on wan0 (the masquerade source) and 203.0.113.1, the forwards' address
//   LAN:      the SSH server 10.0.0.12 (22, forwarded from 203.0.113.1:22012), the UDP server
//             10.0.0.20 (6000-6009) and a host 10.0.0.5
#pragma once

#include <cstdint>
#include <utility>

#include "packet.h"

namespace xnat::test {

inline constexpr const char *kClient = "198.51.100.2";
inline constexpr const char *kForwardAddr = "203.0.113.1";
inline constexpr const char *kSshServer = "10.0.0.12";
inline constexpr const char *kUdpServer = "10.0.0.20";
inline constexpr const char *kLanHost = "10.0.0.5";
inline constexpr const char *kRemote = "203.0.113.50";
inline constexpr uint16_t kClientPort = 40000, kSshForwardPort = 22012, kSshPort = 22;
inline constexpr uint16_t kClientUdpPort = 5555, kUdpForwardPort = 6001;

// The client's TCP segment to the SSH forward.
inline PacketSpec client_tcp(uint8_t flags = kSyn, uint16_t sport = kClientPort, uint16_t dport = kSshForwardPort)
{
    PacketSpec s = flow_packet(kTcp, kClient, sport, kForwardAddr, dport);
    s.tcp_flags = flags;
    return s;
}

// The SSH server's TCP segment back to the client, as it enters the gateway from the LAN.
inline PacketSpec server_tcp(uint8_t flags, uint16_t dport = kClientPort)
{
    PacketSpec s = flow_packet(kTcp, kSshServer, kSshPort, kClient, dport);
    s.tcp_flags = flags;
    return s;
}

// A client's packet to the SSH forward as the server receives it.
inline PacketSpec to_ssh_server(PacketSpec s)
{
    s.daddr = ip(kSshServer);
    s.dport = kSshPort;
    return s;
}

// The server's packet as the client receives it: from the forward it spoke to.
inline PacketSpec from_ssh_forward(PacketSpec s)
{
    s.saddr = ip(kForwardAddr);
    s.sport = kSshForwardPort;
    return s;
}

// The client's UDP datagram to the UDP forward.
inline PacketSpec client_udp(uint16_t dport = kUdpForwardPort, Bytes payload = {1, 2, 3})
{
    PacketSpec s = flow_packet(kUdp, kClient, kClientUdpPort, kForwardAddr, dport);
    s.payload = std::move(payload);
    return s;
}

// The UDP server's answer to client_udp(), as it enters the gateway from the LAN.
inline PacketSpec udp_server_reply(uint16_t sport = kUdpForwardPort)
{
    PacketSpec s = flow_packet(kUdp, kUdpServer, sport, kClient, kClientUdpPort);
    s.payload = client_udp().payload;
    return s;
}

// A LAN host's packet to the remote host: what masquerade translates. An echo request's
// identifier is sport.
inline PacketSpec lan_host_to_remote(uint8_t proto, uint16_t sport = 20000, uint16_t dport = 53)
{
    PacketSpec s = lan_to(kLanHost, sport, kRemote, dport, proto);
    s.icmp_id = sport;
    return s;
}

// The same packet as the other end sends it back: addresses, ports and MACs swapped.
inline PacketSpec reversed(PacketSpec s, uint8_t flags)
{
    std::swap(s.saddr, s.daddr);
    std::swap(s.sport, s.dport);
    std::swap(s.eth_src, s.eth_dst);
    s.tcp_flags = flags;
    return s;
}

} // namespace xnat::test
