#include "kernel/attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <cerrno>
#include <string>

#include "kernel/kernel_error.h"
#include "xnat/maps.h"

namespace xnat {
namespace {

bpf_tc_hook clsact_hook(unsigned ifindex, TcPoint point)
{
    bpf_tc_hook hook{};
    hook.sz = sizeof(hook);
    hook.ifindex = static_cast<int>(ifindex);
    hook.attach_point = point == TcPoint::ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
    return hook;
}

bpf_tc_opts xnat_filter(int prog_fd)
{
    bpf_tc_opts opts{};
    opts.sz = sizeof(opts);
    opts.handle = XNAT_TC_HANDLE;
    opts.priority = XNAT_TC_PRIORITY;
    opts.prog_fd = prog_fd;
    return opts;
}

} // namespace

Result<UniqueFd> xdp_link_create(int prog_fd, unsigned ifindex)
{
    LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
    int fd = bpf_link_create(prog_fd, static_cast<int>(ifindex), BPF_XDP, &opts);
    if (fd < 0) {
        int err = errno;
        std::string hint;
        if (err == EBUSY || err == EEXIST)
            hint = "another XDP program is attached to this interface; detach it or use --mode tc";
        else if (err == EOPNOTSUPP || err == EINVAL)
            hint = "the driver has no native XDP; use --mode tc";
        return kernel_error("attach XDP", err, hint);
    }
    return UniqueFd(fd);
}

Result<void> xdp_link_update(int link_fd, int prog_fd)
{
    if (bpf_link_update(link_fd, prog_fd, nullptr) != 0)
        return kernel_error("replace XDP program", errno);
    return {};
}

Result<UniqueFd> open_pinned(const std::string &path)
{
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0)
        return kernel_error("open " + path, errno);
    return UniqueFd(fd);
}

Result<void> pin_fd(int fd, const std::string &path)
{
    if (bpf_obj_pin(fd, path.c_str()) != 0)
        return kernel_error("pin " + path, errno);
    return {};
}

void link_detach(int link_fd)
{
    bpf_link_detach(link_fd);
}

Result<bool> tc_attach(unsigned ifindex, TcPoint point, int prog_fd)
{
    bpf_tc_hook hook = clsact_hook(ifindex, point);
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST)
        return kernel_error("create clsact qdisc", err);
    bool created = err == 0;
    bpf_tc_opts opts = xnat_filter(prog_fd);
    opts.flags = BPF_TC_F_REPLACE;
    err = bpf_tc_attach(&hook, &opts);
    if (err) {
        if (created)
            tc_destroy_clsact(ifindex);
        return kernel_error(point == TcPoint::ingress ? "attach tc ingress filter" : "attach tc egress filter", err);
    }
    return created;
}

void tc_detach(unsigned ifindex, TcPoint point)
{
    bpf_tc_hook hook = clsact_hook(ifindex, point);
    bpf_tc_opts opts = xnat_filter(0);
    bpf_tc_detach(&hook, &opts);
}

void tc_destroy_clsact(unsigned ifindex)
{
    // Destroying both points of a clsact hook removes the whole qdisc.
    bpf_tc_hook hook = clsact_hook(ifindex, TcPoint::ingress);
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook);
}

} // namespace xnat
