// systemd's readiness notification (Type=notify), without linking libsystemd: one datagram
// to the socket systemd names in NOTIFY_SOCKET.
#pragma once

#include "core/result.h"

namespace xnat {

// Tells systemd the service is up. Does nothing when not run by systemd (no NOTIFY_SOCKET).
Result<void> notify_service_ready();

} // namespace xnat
