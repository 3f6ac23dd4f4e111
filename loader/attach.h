// Attaching programs to interfaces: XDP through bpf_links (pinned), tc through clsact filters
// at fixed handle and priority (libbpf 1.1 has no tc links).
#pragma once

#include "result.h"
#include "unique_fd.h"

namespace xnat {

// Native-mode XDP link; fails rather than falling back to generic XDP.
Result<UniqueFd> xdp_link_create(int prog_fd, unsigned ifindex);
// Swaps the program behind a link atomically.
Result<void> xdp_link_update(int link_fd, int prog_fd);
Result<UniqueFd> open_pinned(const std::string &path);
Result<void> pin_fd(int fd, const std::string &path);
// Detaches a link explicitly, whoever else holds it.
void link_detach(int link_fd);

// Attaches or atomically replaces xnat's ingress filter; reports whether it had to create
// the clsact qdisc.
Result<bool> tc_attach_ingress(unsigned ifindex, int prog_fd);
// Removes xnat's filter; removes the clsact qdisc too when xnat created it. A device that is
// gone already is not an error.
Result<void> tc_detach_ingress(unsigned ifindex, bool destroy_clsact);

} // namespace xnat
