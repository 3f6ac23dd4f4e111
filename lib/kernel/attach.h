// Attaching programs to interfaces: XDP through bpf_links (pinned), tc through clsact filters
// at fixed handle and priority (libbpf 1.1 has no tc links).
#pragma once

#include "core/result.h"
#include "kernel/unique_fd.h"

namespace xnat {

// Native-mode XDP link; fails rather than falling back to generic XDP.
Result<UniqueFd> xdp_link_create(int prog_fd, unsigned ifindex);
// Swaps the program behind a link atomically.
Result<void> xdp_link_update(int link_fd, int prog_fd);
Result<UniqueFd> open_pinned(const std::string &path);
Result<void> pin_fd(int fd, const std::string &path);
// Detaches a link explicitly, whoever else holds it.
void link_detach(int link_fd);

enum class TcPoint { ingress, egress };

// Attaches or atomically replaces xnat's filter at one point of the clsact hook; reports
// whether it had to create the clsact qdisc.
Result<bool> tc_attach(unsigned ifindex, TcPoint point, int prog_fd);
// Removes xnat's filter from one point. A device or filter that is gone already is not an error.
void tc_detach(unsigned ifindex, TcPoint point);
// Removes the clsact qdisc (with every filter on it): only for a qdisc xnat created.
void tc_destroy_clsact(unsigned ifindex);

} // namespace xnat
