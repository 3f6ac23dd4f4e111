#include "kernel/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernel/unique_fd.h"

namespace xnat {

Result<void> notify_service_ready()
{
    const char *path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return {};
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    size_t len = std::strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path))
        return system_error("NOTIFY_SOCKET is not a socket path: " + std::string(path));
    std::memcpy(addr.sun_path, path, len);
    if (path[0] == '@') // an abstract socket
        addr.sun_path[0] = '\0';
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return system_error(std::string("notify systemd: ") + std::strerror(errno), errno);
    static constexpr char kReady[] = "READY=1";
    auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    if (::sendto(fd.get(), kReady, sizeof(kReady) - 1, MSG_NOSIGNAL, reinterpret_cast<const sockaddr *>(&addr),
                 addr_len) < 0)
        return system_error(std::string("notify systemd: ") + std::strerror(errno), errno);
    return {};
}

} // namespace xnat
