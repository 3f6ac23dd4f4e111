#include "kernel/skeleton.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "kernel/kernel_error.h"

namespace xnat {

Result<Skeleton> open_skeleton(const std::string &object_path)
{
    if (object_path.empty()) {
        Skeleton skel(xnat_bpf__open());
        if (!skel)
            return kernel_error("open the BPF object", errno, last_libbpf_warning());
        return skel;
    }
    // libbpf reads the ELF image in place until the object is loaded, and a loader process
    // opens one object: the bytes live as long as the process.
    static std::vector<char> image;
    std::ifstream in(object_path, std::ios::binary);
    if (!in)
        return invalid_input("--object: cannot read " + object_path + ": " + std::strerror(errno));
    image.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad() || image.empty())
        return invalid_input("--object: cannot read " + object_path);
    Skeleton skel(static_cast<xnat_bpf *>(std::calloc(1, sizeof(xnat_bpf))));
    if (!skel)
        return system_error("open the BPF object", ENOMEM);
    if (int err = xnat_bpf__create_skeleton(skel.get()))
        return kernel_error("open the BPF object", err);
    skel->skeleton->data = image.data();
    skel->skeleton->data_sz = image.size();
    if (int err = bpf_object__open_skeleton(skel->skeleton, nullptr))
        return invalid_input("--object: " + object_path + " is not an xnat BPF object (" +
                             std::string(std::strerror(-err)) +
                             (last_libbpf_warning().empty() ? "" : ": " + last_libbpf_warning()) + ")");
    return skel;
}

Result<void> size_connection_tables(const Skeleton &skel, uint32_t max_connections, uint32_t max_mappings)
{
    for (auto [map, entries] : {std::pair{skel->maps.XNAT_MAP_CT, 2 * max_connections},
                                std::pair{skel->maps.XNAT_MAP_SNAT, max_mappings},
                                std::pair{skel->maps.XNAT_MAP_EIM, max_mappings},
                                std::pair{skel->maps.XNAT_MAP_EVICT, max_connections},
                                std::pair{skel->maps.XNAT_MAP_HOSTS, max_connections}})
        if (int err = bpf_map__set_max_entries(map, entries))
            return kernel_error("size the connection tables", err);
    return {};
}

Result<void> arm_sweeper(const Skeleton &skel)
{
    // An XDP program run once by hand: timers can be started from XDP, and the sweeper's
    // callbacks then belong to this load's programs.
    unsigned char frame[64] = {};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .repeat = 1);
    if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.XNAT_PROG_SWEEP_ARM), &opts) != 0)
        return kernel_error("start the expiry sweeper", errno);
    if (opts.retval != 0)
        return system_error("start the expiry sweeper: the kernel refused its timer");
    return {};
}

} // namespace xnat
