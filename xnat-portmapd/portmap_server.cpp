#include "portmap_server.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <fstream>
#include <random>

#include "core/strict_json.h"
#include "kernel/kernel_error.h"
#include "kernel/unique_fd.h"
#include "portmap/natpmp_wire.h"
#include "portmap/pcp_wire.h"
#include "portmap/state_file.h"

namespace xnat {

using portmap::Mapping;

namespace {

// A host may ask this often: enough for a client that retransmits and renews, too little for
// one that makes the handler scan a full range on every datagram.
constexpr double kRequestsPerSecond = 10;
constexpr double kBurst = 20;
constexpr int kAnnouncements = 10;
constexpr uint64_t kFirstAnnounceGapMs = 250;
constexpr int kTickMs = 1000;

uint64_t clock_ms(clockid_t id)
{
    timespec ts{};
    ::clock_gettime(id, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// The LAN interface's own subnets: the sources served when the config names none.
std::vector<Prefix> lan_subnets(const std::string &name)
{
    std::vector<Prefix> out;
    ifaddrs *list = nullptr;
    if (::getifaddrs(&list) != 0)
        return out;
    for (ifaddrs *i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask ||
            std::string(i->ifa_name) != name)
            continue;
        uint32_t addr = ntohl(reinterpret_cast<sockaddr_in *>(i->ifa_addr)->sin_addr.s_addr);
        uint32_t mask = ntohl(reinterpret_cast<sockaddr_in *>(i->ifa_netmask)->sin_addr.s_addr);
        Prefix p;
        p.len = static_cast<uint8_t>(__builtin_popcount(mask));
        p.addr = addr & mask;
        out.push_back(p);
    }
    ::freeifaddrs(list);
    return out;
}

std::string describe(const Mapping &m)
{
    return std::string(portmap::protocol_name(m.proto)) + " " + format_ipv4(m.host) + ":" +
           std::to_string(m.internal_port) + " <- wan:" + std::to_string(m.external_port);
}

Result<void> write_atomically(const std::string &path, const std::string &text)
{
    std::string tmp = path + ".tmp";
    // 0600: the PCP nonces in it are what lets a client renew or delete its mappings.
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid())
        return kernel_error("write " + tmp, errno);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return kernel_error("write " + tmp, errno);
    // rename() replaces it whole: a reader (xnat-map, the exporter) never sees half a file.
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return kernel_error("replace " + path, errno);
    return {};
}

} // namespace

PortmapServer::PortmapServer(ServerOptions opts, InstanceForwards forwards, portmap::MappingTable table,
                             LanSocket socket, std::vector<Prefix> clients)
    : opts_(std::move(opts)), forwards_(std::move(forwards)), table_(std::move(table)),
      handler_(table_, forwards_), socket_(std::move(socket)), clients_(std::move(clients)),
      epoch_start_ms_(clock_ms(CLOCK_MONOTONIC))
{
}

namespace {

// The instance's LAN interface, by index and by name.
struct Lan {
    unsigned ifindex = 0;
    std::string name;
};

Result<Lan> lan_of(const InstanceForwards &forwards)
{
    auto lan = forwards.lan_ifindex();
    if (!lan)
        return lan.error();
    char name[IF_NAMESIZE] = {};
    if (!::if_indextoname(*lan, name))
        return kernel_error("find the instance's LAN interface (index " + std::to_string(*lan) + ")", errno);
    return Lan{*lan, name};
}

// What start() and check() both refuse, under the instance's lock; the sources to serve: the
// config's, else the LAN interface's subnets.
Result<std::vector<Prefix>> check_instance(InstanceForwards &forwards, const PortMappingConfig &policy,
                                           const Lan &lan)
{
    if (auto r = forwards.refresh(); !r)
        return r.error();
    if (auto r = forwards.check_policy(policy); !r)
        return r.error();
    if (auto table = portmap::MappingTable::make(policy, 1); !table)
        return with_context("port_mapping", table.error());
    std::vector<Prefix> clients = policy.clients.empty() ? lan_subnets(lan.name) : policy.clients;
    if (clients.empty())
        return system_error("the LAN interface " + lan.name +
                            " has no IPv4 address, and port_mapping.clients names no sources to serve");
    return clients;
}

} // namespace

Result<void> PortmapServer::check(const ServerOptions &opts)
{
    auto forwards = InstanceForwards::open(opts.pin_dir, opts.log);
    if (!forwards)
        return forwards.error();
    auto lan = lan_of(*forwards);
    if (!lan)
        return lan.error();
    auto lock = forwards->lock();
    if (!lock)
        return lock.error();
    auto clients = check_instance(*forwards, opts.policy, *lan);
    if (!clients)
        return clients.error();
    return {};
}

Result<std::unique_ptr<PortmapServer>> PortmapServer::start(const ServerOptions &opts)
{
    auto forwards = InstanceForwards::open(opts.pin_dir, opts.log);
    if (!forwards)
        return forwards.error();
    auto lan = lan_of(*forwards);
    if (!lan)
        return lan.error();
    // First the socket: while another daemon serves this LAN, its forwards are its own.
    auto socket = LanSocket::open(lan->name, lan->ifindex, opts.port);
    if (!socket)
        return socket.error();
    std::unique_ptr<PortmapServer> server;
    {
        auto lock = forwards->lock();
        if (!lock)
            return lock.error();
        auto clients = check_instance(*forwards, opts.policy, *lan);
        if (!clients) {
            // Nothing will serve, renew or expire the forwards a previous run left: none may stay.
            for (const Mapping &m : forwards->mapped()) {
                opts.log("removed " + describe(m) + " (no daemon to serve it)");
                forwards->remove(m);
            }
            return clients.error();
        }
        auto table = portmap::MappingTable::make(opts.policy, std::random_device{}());
        if (!table)
            return with_context("port_mapping", table.error());
        server.reset(
            new PortmapServer(opts, std::move(*forwards), std::move(*table), std::move(*socket), *clients));
        opts.log("serving NAT-PMP and PCP on " + lan->name + " port " + std::to_string(opts.port) +
                 ", external ports " + std::to_string(opts.policy.port_lo) + "-" +
                 std::to_string(opts.policy.port_hi));
        server->adopt();
    }
    if (auto r = server->tick(); !r)
        return r.error();
    // At start: clients whose mappings a previous run held renew them (RFC 6887 §14.1.3).
    server->schedule_announcements();
    return server;
}

uint64_t PortmapServer::now_s() const
{
    // Expiry survives a restart of the daemon but not of the machine, as the forwards do.
    return clock_ms(CLOCK_BOOTTIME) / 1000;
}

uint32_t PortmapServer::epoch() const
{
    return static_cast<uint32_t>((clock_ms(CLOCK_MONOTONIC) - epoch_start_ms_) / 1000);
}

// RFC 6887 §8.5: a server that lost mappings or changed its external address starts its epoch
// again, and a client that sees the epoch go back renews everything it holds.
void PortmapServer::reset_epoch()
{
    epoch_start_ms_ = clock_ms(CLOCK_MONOTONIC);
    schedule_announcements();
}

void PortmapServer::adopt()
{
    std::vector<Mapping> saved;
    if (std::ifstream in(opts_.state_path); in) {
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (auto state = portmap::parse_state(text))
            saved = state->mappings;
        else
            opts_.log("ignoring " + opts_.state_path + ": " + state.error().message);
    }
    uint64_t now = now_s();
    for (const Mapping &f : forwards_.mapped()) {
        auto it = std::find_if(saved.begin(), saved.end(), [&](const Mapping &s) {
            return s.proto == f.proto && s.host == f.host && s.internal_port == f.internal_port &&
                   s.external_port == f.external_port;
        });
        auto taken_elsewhere = [&](portmap::Protocol p, uint16_t port) {
            return forwards_.taken(p, port, f.host, f.internal_port);
        };
        if (it != saved.end() && table_.adopt(*it, now, taken_elsewhere)) {
            opts_.log("adopted " + describe(*it) + ", " + std::to_string(portmap::seconds_left(*it, now)) +
                      " s left");
            continue;
        }
        // Unknown to the saved state, expired, or no longer allowed: no forward outlives its mapping.
        opts_.log("removed " + describe(f) +
                  (it == saved.end() ? " (not in the saved state)" : " (expired or no longer allowed)"));
        forwards_.remove(f);
    }
    dirty_ = true;
}

bool PortmapServer::served(uint32_t source) const
{
    return std::any_of(clients_.begin(), clients_.end(), [&](const Prefix &p) { return p.contains(source); });
}

bool PortmapServer::within_rate(uint32_t source, uint64_t now_ms)
{
    // Buckets of sources quiet for a minute are dropped at each tick; a wide `clients` prefix
    // can still name many, so a flood of spoofed sources is capped here.
    if (buckets_.size() >= 65536 && !buckets_.count(source))
        return false;
    Bucket &b = buckets_[source];
    if (b.last_ms == 0)
        b.tokens = kBurst;
    else
        b.tokens = std::min(kBurst,
                            b.tokens + static_cast<double>(now_ms - b.last_ms) * kRequestsPerSecond / 1000.0);
    b.last_ms = now_ms;
    if (b.tokens < 1)
        return false;
    b.tokens -= 1;
    return true;
}

void PortmapServer::serve_one(const Datagram &d)
{
    dirty_ = true;
    if (!served(d.source)) {
        ++requests_["not_served"];
        return;
    }
    if (!within_rate(d.source, clock_ms(CLOCK_MONOTONIC))) {
        ++requests_["rate_limited"];
        return;
    }
    // The request's reads and changes see one state of the instance's rules, and no reload or
    // xnat-map change comes between them.
    auto lock = forwards_.lock();
    if (!lock) {
        opts_.log(lock.error().message);
        return;
    }
    if (auto r = forwards_.refresh(); !r) {
        opts_.log(r.error().message);
        return;
    }
    size_t before = table_.mappings().size();
    auto answer =
        handler_.handle(portmap::ByteView(d.bytes.data(), d.bytes.size()), d.source, now_s(), epoch());
    ++requests_[portmap::outcome_name(answer.outcome)];
    if (!answer.why.empty())
        opts_.log(format_ipv4(d.source) + ":" + std::to_string(d.source_port) + ": " +
                  portmap::outcome_name(answer.outcome) + ": " + answer.why);
    if (!answer.reply.empty())
        if (auto r = socket_.reply(d, answer.reply); !r)
            opts_.log(r.error().message);
    if (table_.mappings().size() != before || answer.outcome == portmap::Outcome::renewed)
        save(); // at once: xnat-map list shows a new expiry as soon as the client has it
}

void PortmapServer::schedule_announcements()
{
    announcements_left_ = kAnnouncements;
    announce_gap_ms_ = kFirstAnnounceGapMs;
    next_announcement_ms_ = clock_ms(CLOCK_MONOTONIC);
}

void PortmapServer::announce_if_due(uint64_t now_ms)
{
    if (announcements_left_ == 0 || now_ms < next_announcement_ms_)
        return;
    if (auto r = socket_.announce(pcp::encode_announce(epoch())); !r)
        opts_.log(r.error().message);
    if (wan_)
        if (auto r =
                socket_.announce(natpmp::encode_external_address(natpmp::ResultCode::success, epoch(), wan_));
            !r)
            opts_.log(r.error().message);
    --announcements_left_;
    next_announcement_ms_ = now_ms + announce_gap_ms_;
    announce_gap_ms_ *= 2;
}

void PortmapServer::reconcile()
{
    if (!wan_)
        return; // forwards on the WAN address wait for one
    // A reload keeps mapped forwards; one that is gone was deleted by the operator (xnat-map
    // del) or claimed by a reloaded config. Either way the mapping is over, and the host
    // learns it from the epoch.
    std::vector<Mapping> gone;
    for (const Mapping &m : table_.mappings())
        if (!forwards_.installed(m))
            gone.push_back(m);
    for (const Mapping &m : gone) {
        opts_.log("dropped " + describe(m) + ": its forward was removed from the instance");
        table_.remove(m.proto, m.host, m.internal_port);
    }
    if (!gone.empty()) {
        dirty_ = true;
        reset_epoch();
    }
}

Result<void> PortmapServer::tick()
{
    if (!forwards_.still_pinned())
        return system_error("the instance at " + opts_.pin_dir + " was unloaded");
    // Anything else that fails here is logged and tried again at the next tick.
    auto lock = forwards_.lock();
    if (!lock) {
        opts_.log(lock.error().message);
        return {};
    }
    if (auto r = forwards_.refresh(); !r) {
        opts_.log(r.error().message);
        return {};
    }
    forwards_.retry_removals();
    uint32_t now_wan = forwards_.wan_address();
    if (!wan_known_ || now_wan != wan_) {
        bool changed = wan_known_;
        wan_known_ = true;
        wan_ = now_wan;
        handler_.set_external_address(wan_);
        if (changed) {
            opts_.log("the WAN address is now " + (wan_ ? format_ipv4(wan_) : std::string("none")));
            reset_epoch(); // RFC 6887 §8.5, RFC 6886 §3.2.1
        }
    }
    for (const Mapping &m : table_.expire(now_s())) {
        opts_.log("expired " + describe(m));
        forwards_.remove(m);
        dirty_ = true;
    }
    reconcile();
    if (dirty_)
        save();
    uint64_t now_ms = clock_ms(CLOCK_MONOTONIC);
    for (auto it = buckets_.begin(); it != buckets_.end();)
        it = now_ms - it->second.last_ms > 60000 ? buckets_.erase(it) : std::next(it);
    return {};
}

void PortmapServer::save()
{
    portmap::State state{table_.mappings(), requests_};
    if (auto r = write_atomically(opts_.state_path, portmap::state_to_json(state)); !r)
        opts_.log(r.error().message);
    dirty_ = false;
}

Result<void> PortmapServer::run(int signal_fd)
{
    uint64_t next_tick = clock_ms(CLOCK_MONOTONIC) + kTickMs;
    for (;;) {
        uint64_t now = clock_ms(CLOCK_MONOTONIC);
        announce_if_due(now);
        uint64_t wake = next_tick;
        if (announcements_left_ > 0)
            wake = std::min(wake, next_announcement_ms_);
        int timeout = wake > now ? static_cast<int>(wake - now) : 0;
        pollfd fds[2] = {{socket_.fd(), POLLIN, 0}, {signal_fd, POLLIN, 0}};
        if (::poll(fds, 2, timeout) < 0 && errno != EINTR)
            return kernel_error("wait for requests", errno);
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info{};
            if (::read(signal_fd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
                if (info.ssi_signo == SIGHUP) {
                    opts_.log(
                        "SIGHUP: the policy is read at start; restart xnat-portmapd to apply a new one");
                    continue;
                }
                opts_.log("signal " + std::to_string(info.ssi_signo) + ": stopping");
            }
            return {};
        }
        // A burst is served in turns with the clock: at most this many before a tick.
        for (int i = 0; i < 256 && (fds[0].revents & POLLIN); ++i) {
            auto d = socket_.receive();
            if (!d) {
                opts_.log(d.error().message);
                break;
            }
            if (!*d)
                break;
            serve_one(**d);
        }
        if (clock_ms(CLOCK_MONOTONIC) >= next_tick) {
            if (auto r = tick(); !r)
                return r;
            next_tick = clock_ms(CLOCK_MONOTONIC) + kTickMs;
        }
    }
}

void PortmapServer::stop()
{
    auto lock = forwards_.lock();
    if (lock && forwards_.refresh())
        for (const Mapping &m : table_.mappings()) {
            forwards_.remove(m);
            opts_.log("removed " + describe(m));
        }
    forget();
}

void PortmapServer::forget()
{
    ::unlink(opts_.state_path.c_str());
}

} // namespace xnat
