// xnat-portmapd's life: adopt what a previous run left, answer requests, expire mappings, keep
// the table in agreement with the instance's forwards, save the state, and clean up on stop.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/net.h"
#include "core/port_mapping.h"
#include "core/result.h"
#include "instance_forwards.h"
#include "lan_socket.h"
#include "portmap/mapping_table.h"
#include "portmap/request_handler.h"

namespace xnat {

struct ServerOptions {
    std::string pin_dir;
    std::string state_path;
    PortMappingConfig policy;
    uint16_t port = kServerPort;
    LogSink log; // one line each: what was granted, refused, adopted, removed
};

class PortmapServer
{
  public:
    // What start() would refuse, without touching anything: the instance, the policy against
    // it, the LAN interface and the sources to serve.
    static Result<void> check(const ServerOptions &opts);
    // Opens the instance and the socket, checks the policy against the instance, and adopts or
    // removes the forwards a previous run left. If it cannot serve once the socket is its own,
    // it removes them all: no daemon, no mappings.
    static Result<std::unique_ptr<PortmapServer>> start(const ServerOptions &opts);
    PortmapServer(const PortmapServer &) = delete; // the handler refers to the table and the forwards
    PortmapServer &operator=(const PortmapServer &) = delete;

    // Serves until SIGTERM or SIGINT arrives on `signal_fd` (ok) or the instance goes away (error).
    Result<void> run(int signal_fd);
    // Removes every mapping's forward and the state file.
    void stop();
    // The instance went away: its forwards went with it, and the state file goes too.
    void forget();

  private:
    PortmapServer(ServerOptions opts, InstanceForwards forwards, portmap::MappingTable table,
                  LanSocket socket, std::vector<Prefix> clients);
    void adopt();
    void serve_one(const Datagram &d);
    bool served(uint32_t source) const;
    bool within_rate(uint32_t source, uint64_t now_ms);
    Result<void> tick();
    void reset_epoch();
    void schedule_announcements();
    void announce_if_due(uint64_t now_ms);
    void reconcile();
    void save();
    uint64_t now_s() const;
    uint32_t epoch() const;

    ServerOptions opts_;
    InstanceForwards forwards_;
    portmap::MappingTable table_;
    portmap::RequestHandler handler_;
    LanSocket socket_;
    std::vector<Prefix> clients_;
    uint64_t epoch_start_ms_ = 0;
    uint32_t wan_ = 0; // 0: the WAN has no address
    bool wan_known_ = false;
    // Announcements (RFC 6886 §3.2.1, RFC 6887 §14.1.3): ten, 250 ms apart and then doubling.
    int announcements_left_ = 0;
    uint64_t next_announcement_ms_ = 0;
    uint64_t announce_gap_ms_ = 0;
    struct Bucket {
        double tokens = 0;
        uint64_t last_ms = 0;
    };
    std::map<uint32_t, Bucket> buckets_;
    std::map<std::string, uint64_t> requests_;
    bool dirty_ = true;
};

} // namespace xnat
