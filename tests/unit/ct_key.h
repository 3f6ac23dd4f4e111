// What unit tests of the connection-table formatters share: a key in host byte order, the
// datapath's clock unit and the default timeouts.
#pragma once

#include <arpa/inet.h>

#include <cstdint>

#include <xnat/config.h>
#include <xnat/ct.h>

namespace xnat::test {

inline constexpr uint64_t kTick = 1ull << XNAT_TICK_SHIFT; // the datapath's clock unit, 1.07 s
inline const xnat_timeouts kTimeouts{7440, 240, 10, 300, 60, 120, 60, 30};

inline xnat_ct_key key(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint8_t proto)
{
    xnat_ct_key k{};
    k.saddr = htonl(saddr);
    k.daddr = htonl(daddr);
    k.sport = htons(sport);
    k.dport = htons(dport);
    k.proto = proto;
    return k;
}

} // namespace xnat::test
