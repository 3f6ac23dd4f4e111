#include "wan_follow.h"

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

#include "conntrack_table.h"
#include "instance_maps.h"
#include "interfaces.h"
#include "kernel_error.h"
#include "masquerade.h"
#include "net.h"
#include "pin_dir.h"
#include "rule_store.h"

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
    char name[IF_NAMESIZE] = {};
    if (!::if_indextoname(cfg->wan_ifindex, name))
        return system_error("the WAN interface " + std::string(cfg->wan_name) + " (ifindex " +
                                std::to_string(cfg->wan_ifindex) + ") is gone",
                            errno);
    step.wan_name = name;
    step.address = primary_ipv4(step.wan_name);

    auto rules = read_masquerade(maps->view());
    if (!rules)
        return rules.error();
    for (const Masquerade &m : *rules)
        if (m.to_source_is_wan) {
            ++step.following;
            step.in_use = m.to_source;
        }
    if (!step.following || !step.address)
        return step;

    for (Masquerade &m : *rules) {
        if (!m.to_source_is_wan || m.to_source == step.address)
            continue;
        if (m.to_source && std::find(step.replaced.begin(), step.replaced.end(), *m.to_source) == step.replaced.end())
            step.replaced.push_back(*m.to_source);
        m.to_source = step.address;
    }
    step.in_use = step.address;
    if (step.replaced.empty())
        return step;

    // New flows take the new address from the swap on, so the flush after it leaves none on
    // the old one behind.
    RuleTables tables;
    auto masq = build_masq_table(*rules);
    if (!masq)
        return masq.error();
    tables.masq = std::move(*masq);
    if (auto r = publish(maps->view(), tables, *cfg); !r)
        return r.error();
    if (auto r = write_masq_records(maps->view(), *rules); !r)
        return r.error();
    for (uint32_t old : step.replaced) {
        auto n = flush_connections(maps->flush_prog(), old);
        if (!n)
            return with_context("end the connections of " + format_ipv4(old), n.error());
        step.flows_ended += *n;
    }
    return step;
}

std::string describe_wan_step(const WanStep &step, bool first)
{
    std::string rules = std::to_string(step.following) + " masquerade rule" + (step.following == 1 ? "" : "s");
    if (!step.following)
        return first ? "following " + step.wan_name +
                           ": no masquerade rule takes the WAN address (all have a to_source); watching anyway"
                     : step.wan_name + ": no masquerade rule takes the WAN address";
    if (!step.address)
        return step.wan_name + ": no IPv4 address; masquerade keeps " +
               (step.in_use ? format_ipv4(*step.in_use) : std::string("the last one")) +
               " until one appears (" + rules + ")";
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
    if (!first)
        return step.wan_name + ": address " + format_ipv4(*step.address) + " back; " + rules + " unchanged";
    return "following " + step.wan_name + ": address " + format_ipv4(*step.address) + ", " + rules;
}

Result<AddressWatch> AddressWatch::open()
{
    int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0)
        return system_error(std::string("open an rtnetlink socket: ") + std::strerror(errno), errno);
    UniqueFd netlink(fd);
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = RTMGRP_IPV4_IFADDR;
    if (::bind(netlink.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof(addr)) != 0)
        return system_error(std::string("subscribe to address notices: ") + std::strerror(errno), errno);

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (::sigprocmask(SIG_BLOCK, &stop, nullptr) != 0)
        return system_error(std::string("block SIGTERM and SIGINT: ") + std::strerror(errno), errno);
    fd = ::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return system_error(std::string("open a signalfd: ") + std::strerror(errno), errno);
    return AddressWatch(std::move(netlink), UniqueFd(fd));
}

Result<bool> AddressWatch::drain(unsigned ifindex)
{
    bool relevant = false;
    alignas(nlmsghdr) char buf[16384];
    for (;;) {
        sockaddr_nl from{};
        socklen_t from_len = sizeof(from);
        ssize_t n = ::recvfrom(netlink_.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr *>(&from), &from_len);
        if (n < 0) {
            if (errno == EAGAIN)
                return relevant;
            if (errno == EINTR)
                continue;
            // The kernel dropped notices: one of them may have been ours.
            if (errno == ENOBUFS) {
                relevant = true;
                continue;
            }
            return system_error(std::string("read address notices: ") + std::strerror(errno), errno);
        }
        if (from.nl_pid != 0) // only the kernel speaks for the interfaces
            continue;
        size_t left = static_cast<size_t>(n);
        const char *p = buf;
        while (left >= sizeof(nlmsghdr)) {
            nlmsghdr hdr;
            std::memcpy(&hdr, p, sizeof(hdr));
            if (hdr.nlmsg_len < sizeof(nlmsghdr) || hdr.nlmsg_len > left)
                break;
            if ((hdr.nlmsg_type == RTM_NEWADDR || hdr.nlmsg_type == RTM_DELADDR) &&
                hdr.nlmsg_len >= NLMSG_LENGTH(sizeof(ifaddrmsg))) {
                ifaddrmsg ifa;
                std::memcpy(&ifa, p + NLMSG_HDRLEN, sizeof(ifa));
                if (ifa.ifa_family == AF_INET && ifa.ifa_index == ifindex)
                    relevant = true;
            }
            size_t step = NLMSG_ALIGN(hdr.nlmsg_len);
            if (step >= left)
                break;
            p += step;
            left -= step;
        }
    }
}

Result<AddressWatch::Event> AddressWatch::wait(unsigned ifindex)
{
    for (;;) {
        pollfd fds[2] = {{netlink_.get(), POLLIN, 0}, {signals_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return system_error(std::string("wait for address notices: ") + std::strerror(errno), errno);
        }
        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info;
            if (::read(signals_.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info)))
                return Event::stop;
        }
        if (fds[0].revents & (POLLIN | POLLERR)) {
            auto relevant = drain(ifindex);
            if (!relevant)
                return relevant.error();
            if (*relevant)
                return Event::address_changed;
        }
    }
}

Result<void> follow_wan(AddressWatch &watch, const std::string &pin_dir, const LogLine &log)
{
    auto step = follow_wan_once(pin_dir);
    if (!step)
        return step.error();
    log(describe_wan_step(*step, true));
    bool had_address = step->address.has_value();
    unsigned ifindex = step->wan_ifindex; // a reload keeps the interfaces, so this stays right
    for (;;) {
        auto event = watch.wait(ifindex);
        if (!event)
            return event.error();
        if (*event == AddressWatch::Event::stop) {
            log("stopping; xnat stays loaded (xnat-load --unload removes it)");
            return {};
        }
        auto next = follow_wan_once(pin_dir);
        if (!next) {
            log("error: " + next.error().message + " (retried at the next address change)");
            continue;
        }
        bool has_address = next->address.has_value();
        if (!next->replaced.empty() || has_address != had_address)
            log(describe_wan_step(*next, false));
        had_address = has_address;
    }
}

} // namespace xnat
