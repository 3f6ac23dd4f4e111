// The daemon's one socket: UDP port 5351 on the LAN interface only (RFC 6886 §3, RFC 6887
// §8: a server listens on the internal side), answering from the address a request was sent to,
// and multicasting announcements to 224.0.0.1:5350 out of the LAN interface.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/result.h"
#include "kernel/unique_fd.h"
#include "portmap/wire_bytes.h"

namespace xnat {

inline constexpr uint16_t kServerPort = 5351;
inline constexpr uint16_t kClientPort = 5350;

struct Datagram {
    portmap::Bytes bytes;
    uint32_t source = 0; // host order
    uint16_t source_port = 0;
    uint32_t to = 0; // the local address it reached: the answer comes from it
};

class LanSocket
{
  public:
    static Result<LanSocket> open(const std::string &lan_name, unsigned lan_ifindex,
                                  uint16_t port = kServerPort);
    int fd() const
    {
        return fd_.get();
    }
    // One datagram, or nullopt when none is waiting.
    Result<std::optional<Datagram>> receive();
    Result<void> reply(const Datagram &to, const portmap::Bytes &bytes);
    // To all nodes on the LAN (224.0.0.1) at the clients' port.
    Result<void> announce(const portmap::Bytes &bytes);

  private:
    explicit LanSocket(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

} // namespace xnat
