#include "kernel/wan_follow.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "core/masquerade.h"
#include "core/net.h"
#include "kernel/conntrack_table.h"
#include "kernel/instance_maps.h"
#include "kernel/kernel_error.h"
#include "kernel/pin_dir.h"
#include "kernel/rtnetlink.h"
#include "kernel/rule_store.h"

namespace xnat {

Result<WanStep> follow_wan_once(const std::string &pin_dir)
{
    // The lock orders this against xnat-map changes and reloads, which rewrite the same records.
    auto lock = PinDir::open_existing(pin_dir);
    if (!lock)
        return lock.error();
    auto maps = InstanceMaps::open(pin_dir);
    if (!maps)
        return maps.error();
    auto cfg = read_config(maps->view());
    if (!cfg)
        return cfg.error();
    WanStep step;
    step.wan_ifindex = cfg->wan_ifindex;
    step.wan_name = cfg->wan_name;
    char name[IF_NAMESIZE] = {};
    if (!::if_indextoname(cfg->wan_ifindex, name)) {
        if (errno != ENXIO && errno != ENODEV)
            return system_error("look up the WAN interface " + step.wan_name + ": " + std::strerror(errno),
                                errno);
        step.wan_gone = true;
        return step;
    }
    step.wan_name = name;
    auto address = primary_ipv4(step.wan_ifindex);
    if (!address)
        return address.error();
    step.address = *address;

    auto rules = read_masquerade(maps->view());
    if (!rules)
        return rules.error();
    auto forwards = read_rules(maps->view());
    if (!forwards)
        return forwards.error();
    for (const Masquerade &m : *rules)
        if (m.to_source_is_wan) {
            ++step.following;
            step.in_use = m.to_source;
        }
    for (const StoredRule &r : *forwards)
        if (r.fwd.from_wan) {
            ++step.forwards;
            if (r.fwd.from.addr)
                step.in_use = r.fwd.from.addr;
        }
    if ((!step.following && !step.forwards) || !step.address)
        return step;

    auto replace = [&](uint32_t old) {
        if (old && std::find(step.replaced.begin(), step.replaced.end(), old) == step.replaced.end())
            step.replaced.push_back(old);
    };
    bool masq_moved = false, forwards_moved = false;
    for (Masquerade &m : *rules) {
        if (!m.to_source_is_wan || m.to_source == step.address)
            continue;
        replace(m.to_source.value_or(0));
        m.to_source = step.address;
        masq_moved = true;
    }
    for (StoredRule &r : *forwards) {
        if (!r.fwd.from_wan || r.fwd.from.addr == *step.address)
            continue;
        replace(r.fwd.from.addr);
        r.fwd.from.addr = *step.address;
        forwards_moved = true;
    }
    step.in_use = step.address;
    step.moved = masq_moved || forwards_moved;
    if (!step.moved)
        return step;

    // New flows take the new address from the swap on, so the flush after it leaves none on
    // the old one behind. Forwards and masquerade move in the same swap: source NAT keeps the
    // forwarded ports of the address it uses free, so the two must never disagree on it.
    RuleTables tables;
    if (masq_moved) {
        auto masq = build_masq_table(*rules);
        if (!masq)
            return masq.error();
        tables.masq = std::move(*masq);
    }
    if (forwards_moved) {
        // Refused if the new address is one an explicit forward names on the same port.
        auto fwd = build_forward_table(*forwards);
        if (!fwd)
            return with_context("port forwards on " + format_ipv4(*step.address), fwd.error());
        tables.fwd = std::move(*fwd);
    }
    if (auto r = publish(maps->view(), tables, *cfg); !r)
        return r.error();
    if (masq_moved)
        if (auto r = write_masq_records(maps->view(), *rules); !r)
            return r.error();
    if (forwards_moved)
        if (auto r = write_rule_records(maps->view(), *forwards); !r)
            return r.error();
    for (uint32_t old : step.replaced) {
        auto n = flush_connections(maps->flush_prog(), old);
        if (!n)
            return with_context("end the connections of " + format_ipv4(old), n.error());
        step.flows_ended += *n;
    }
    return step;
}

namespace {

// "1 masquerade rule", "2 port forwards", "1 masquerade rule and 1 port forward".
std::string following_rules(const WanStep &step)
{
    std::string s;
    if (step.following)
        s = std::to_string(step.following) + " masquerade rule" + (step.following == 1 ? "" : "s");
    if (step.forwards)
        s += (s.empty() ? "" : " and ") + std::to_string(step.forwards) + " port forward" +
             (step.forwards == 1 ? "" : "s");
    return s;
}

} // namespace

std::string describe_wan_step(const WanStep &step, bool first)
{
    std::string rules = following_rules(step);
    if (rules.empty())
        return first ? "following " + step.wan_name +
                           ": no masquerade rule or port forward takes the WAN address (all masquerade rules "
                           "have a to_source, no forward is from wan:PORT); watching anyway"
                     : step.wan_name + ": no masquerade rule or port forward takes the WAN address";
    if (!step.address) {
        std::string line = step.wan_name + ": no IPv4 address; ";
        if (step.in_use) {
            std::string who = !step.forwards ? "masquerade keeps"
                              : step.following ? "masquerade and forwards keep"
                                               : "forwards keep";
            line += who + " " + format_ipv4(*step.in_use) + " until one appears (" + rules + ")";
        } else {
            std::string what = step.following && step.forwards ? "no source NAT, nothing forwarded"
                               : step.following                ? "no source NAT"
                                                               : "nothing forwarded";
            line += rules + " parked (" + what + ") until one appears";
        }
        return first ? "following " + line : line;
    }
    std::string line;
    if (!step.replaced.empty()) {
        std::string old;
        for (uint32_t a : step.replaced)
            old += (old.empty() ? "" : ",") + format_ipv4(a);
        line = step.wan_name + ": address " + old + " -> " + format_ipv4(*step.address) + "; " + rules +
               " moved; " + std::to_string(step.flows_ended) + " connection" +
               (step.flows_ended == 1 ? "" : "s") + " of " + old + " ended";
        return first ? "following " + step.wan_name + "; " + line : line;
    }
    if (step.moved) {
        line =
            step.wan_name + ": address " + format_ipv4(*step.address) + " appeared; " + rules + " unparked";
        return first ? "following " + step.wan_name + "; " + line : line;
    }
    if (!first)
        return step.wan_name + ": address " + format_ipv4(*step.address) + " back; " + rules + " unchanged";
    return "following " + step.wan_name + ": address " + format_ipv4(*step.address) + ", " + rules;
}

namespace {

constexpr uint32_t kNoticeGroups = RTMGRP_IPV4_IFADDR | RTMGRP_LINK;

} // namespace

Result<AddressWatch> AddressWatch::open()
{
    auto netlink = open_rtnetlink(kNoticeGroups, true);
    if (!netlink)
        return with_context("subscribe to address notices", netlink.error());

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (::sigprocmask(SIG_BLOCK, &stop, nullptr) != 0)
        return system_error(std::string("block SIGTERM and SIGINT: ") + std::strerror(errno), errno);
    int fd = ::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return system_error(std::string("open a signalfd: ") + std::strerror(errno), errno);
    return AddressWatch(std::move(*netlink), UniqueFd(fd));
}

Result<std::optional<AddressWatch::Event>> AddressWatch::drain(unsigned ifindex)
{
    std::optional<Event> event;
    alignas(nlmsghdr) char buf[16384];
    for (;;) {
        sockaddr_nl from{};
        socklen_t from_len = sizeof(from);
        ssize_t n =
            ::recvfrom(netlink_.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr *>(&from), &from_len);
        if (n < 0) {
            if (errno == EAGAIN)
                return event;
            if (errno == EINTR)
                continue;
            // The kernel dropped notices: one of them may have been ours (a lost link deletion
            // shows in the next look, as the interface is then gone).
            if (errno == ENOBUFS) {
                if (!event)
                    event = Event::address_changed;
                continue;
            }
            return system_error(std::string("read address notices: ") + std::strerror(errno), errno);
        }
        if (from.nl_pid != 0) // only the kernel speaks for the interfaces
            continue;
        for_each_netlink_message(
            buf, static_cast<size_t>(n), [&](const nlmsghdr &hdr, const char *payload, size_t size) {
                if (hdr.nlmsg_type == RTM_DELLINK && size >= sizeof(ifinfomsg)) {
                    ifinfomsg ifi;
                    std::memcpy(&ifi, payload, sizeof(ifi));
                    if (ifi.ifi_index > 0 && static_cast<unsigned>(ifi.ifi_index) == ifindex)
                        event = Event::wan_gone;
                } else if ((hdr.nlmsg_type == RTM_NEWADDR || hdr.nlmsg_type == RTM_DELADDR) &&
                           size >= sizeof(ifaddrmsg)) {
                    ifaddrmsg ifa;
                    std::memcpy(&ifa, payload, sizeof(ifa));
                    if (ifa.ifa_family == AF_INET && ifa.ifa_index == ifindex && event != Event::wan_gone)
                        event = Event::address_changed;
                }
            });
    }
}

Result<bool> AddressWatch::stop_within(int timeout_ms)
{
    for (;;) {
        pollfd fd{signals_.get(), POLLIN, 0};
        int n = ::poll(&fd, 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return system_error(std::string("wait for a stop signal: ") + std::strerror(errno), errno);
        signalfd_siginfo info;
        return n > 0 && ::read(signals_.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info));
    }
}

Result<AddressWatch::Event> AddressWatch::wait(unsigned ifindex, int timeout_ms)
{
    if (!netlink_.valid()) {
        auto stop = stop_within(timeout_ms < 0 ? 1000 : timeout_ms);
        if (!stop)
            return stop.error();
        if (*stop)
            return Event::stop;
        auto netlink = open_rtnetlink(kNoticeGroups, true);
        if (!netlink)
            return with_context("subscribe to address notices", netlink.error());
        netlink_ = std::move(*netlink);
        return Event::timeout;
    }
    for (;;) {
        pollfd fds[2] = {{netlink_.get(), POLLIN, 0}, {signals_.get(), POLLIN, 0}};
        int n = ::poll(fds, 2, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            netlink_.reset();
            return system_error(std::string("wait for address notices: ") + std::strerror(e), e);
        }
        if (n == 0)
            return Event::timeout;
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info;
            if (::read(signals_.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info)))
                return Event::stop;
        }
        if (fds[0].revents & (POLLIN | POLLERR)) {
            auto event = drain(ifindex);
            if (!event) {
                netlink_.reset();
                return event.error();
            }
            if (*event)
                return **event;
        }
    }
}

namespace {

// Seconds before the next attempt after a failure: 1, 2, 4, ... 60.
unsigned next_retry(unsigned previous)
{
    return previous ? std::min(previous * 2, 60u) : 1;
}

std::string gone_line(const std::string &name, unsigned ifindex)
{
    return "the WAN interface " + name + " (ifindex " + std::to_string(ifindex) +
           ") is gone (deleted, or a PPPoE link redialled); exiting with status 3 so that xnat is "
           "loaded again on the new one";
}

} // namespace

Result<FollowEnd> follow_wan(AddressWatch &watch, const std::string &pin_dir, const LogLine &log)
{
    bool first = true;
    bool had_address = false;
    unsigned ifindex = 0; // a reload keeps the interfaces, so this stays right once known
    std::string wan_name;
    unsigned retry_s = 0; // a failure is retried after this many seconds; 0: none pending
    bool look = true;
    for (;;) {
        if (look) {
            look = false;
            auto step = follow_wan_once(pin_dir);
            if (!step) {
                retry_s = next_retry(retry_s);
                log("error: " + step.error().message + " (retrying in " + std::to_string(retry_s) + "s)");
            } else if (step->wan_gone) {
                log(gone_line(step->wan_name, step->wan_ifindex));
                return FollowEnd::wan_gone;
            } else {
                retry_s = 0;
                ifindex = step->wan_ifindex;
                wan_name = step->wan_name;
                bool has_address = step->address.has_value();
                if (first || step->moved || has_address != had_address)
                    log(describe_wan_step(*step, first));
                first = false;
                had_address = has_address;
            }
        }
        auto event = watch.wait(ifindex, retry_s ? static_cast<int>(retry_s * 1000) : -1);
        if (!event) {
            retry_s = next_retry(retry_s);
            log("error: " + event.error().message + " (watching again in " + std::to_string(retry_s) + "s)");
            continue;
        }
        switch (*event) {
        case AddressWatch::Event::stop:
            log("stopping; xnat stays loaded (xnat-load --unload removes it)");
            return FollowEnd::stopped;
        case AddressWatch::Event::wan_gone:
            log(gone_line(wan_name, ifindex));
            return FollowEnd::wan_gone;
        case AddressWatch::Event::address_changed:
        case AddressWatch::Event::timeout:
            look = true;
            break;
        }
    }
}

} // namespace xnat
