#include "skeleton.h"

#include <bpf/bpf.h>

#include <cerrno>

#include "kernel_error.h"

namespace xnat {

Result<void> arm_sweeper(const Skeleton &skel)
{
    // An XDP program run once by hand: timers can be started from XDP, and the sweeper's
    // callbacks then belong to this load's programs.
    unsigned char frame[64] = {};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .repeat = 1);
    if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.XNAT_PROG_SWEEP_ARM), &opts) != 0)
        return kernel_error("start the expiry sweeper", errno);
    if (opts.retval != 0)
        return system_error("start the expiry sweeper: the kernel refused its timer or workqueue");
    return {};
}

} // namespace xnat
