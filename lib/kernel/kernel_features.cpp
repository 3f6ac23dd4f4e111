#include "kernel/kernel_features.h"

#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace xnat {
namespace {

enum class ProbeKind { prog_type, map_type, helper };

struct Probe {
    const char *name;
    const char *since;
    const char *use;
    ProbeKind kind;
    int type;   // bpf_prog_type or bpf_map_type
    int helper; // bpf_func_id, for ProbeKind::helper
};

// Every program type, map type and helper bpf/ uses, with the release that brought it. A
// helper is probed in the program type that calls it. Keep in step with bpf/: a helper missing
// here is a load failure with the verifier's words instead of this list's.
constexpr Probe kProbes[] = {
    {"XDP programs", "4.8", "the fast path", ProbeKind::prog_type, BPF_PROG_TYPE_XDP, 0},
    {"tc (cls_bpf) programs", "4.1", "the tc path, and finishing what XDP cannot", ProbeKind::prog_type,
     BPF_PROG_TYPE_SCHED_CLS, 0},
    {"syscall programs", "5.14", "xnat-map flush and --follow-wan end flows in the kernel", ProbeKind::prog_type,
     BPF_PROG_TYPE_SYSCALL, 0},
    {"hash maps", "3.19", "connections, mappings, rules", ProbeKind::map_type, BPF_MAP_TYPE_HASH, 0},
    {"LRU hash maps", "4.10", "endpoint-independent mapping hints", ProbeKind::map_type, BPF_MAP_TYPE_LRU_HASH, 0},
    {"per-CPU arrays", "4.6", "counters", ProbeKind::map_type, BPF_MAP_TYPE_PERCPU_ARRAY, 0},
    {"LPM tries", "4.11", "masquerade source prefixes", ProbeKind::map_type, BPF_MAP_TYPE_LPM_TRIE, 0},
    {"array of maps", "4.12", "rule sets swapped whole", ProbeKind::map_type, BPF_MAP_TYPE_ARRAY_OF_MAPS, 0},
    {"devmap hash", "5.4", "XDP redirect between interfaces", ProbeKind::map_type, BPF_MAP_TYPE_DEVMAP_HASH, 0},
    {"bpf_fib_lookup (XDP)", "4.18", "routing translated packets", ProbeKind::helper, BPF_PROG_TYPE_XDP,
     BPF_FUNC_fib_lookup},
    {"bpf_redirect_map", "4.14", "XDP redirect", ProbeKind::helper, BPF_PROG_TYPE_XDP, BPF_FUNC_redirect_map},
    {"bpf_fib_lookup (tc)", "4.18", "routing translated packets", ProbeKind::helper, BPF_PROG_TYPE_SCHED_CLS,
     BPF_FUNC_fib_lookup},
    {"bpf_redirect_neigh", "5.10", "tc sends to next hops not yet resolved", ProbeKind::helper,
     BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_redirect_neigh},
    {"bpf_check_mtu", "5.12", "GSO packets against the egress MTU", ProbeKind::helper, BPF_PROG_TYPE_SCHED_CLS,
     BPF_FUNC_check_mtu},
    {"bpf_ktime_get_coarse_ns", "5.11", "idle time of flows", ProbeKind::helper, BPF_PROG_TYPE_XDP,
     BPF_FUNC_ktime_get_coarse_ns},
    {"bpf_for_each_map_elem", "5.13", "the expiry sweep and flush", ProbeKind::helper, BPF_PROG_TYPE_XDP,
     BPF_FUNC_for_each_map_elem},
    {"bpf_timer", "5.15", "expiry without a daemon", ProbeKind::helper, BPF_PROG_TYPE_XDP, BPF_FUNC_timer_init},
};

std::string kernel_release()
{
    utsname u{};
    return ::uname(&u) == 0 ? u.release : "unknown";
}

bool probe(const Probe &p)
{
    switch (p.kind) {
    case ProbeKind::prog_type:
        return libbpf_probe_bpf_prog_type(static_cast<bpf_prog_type>(p.type), nullptr) == 1;
    case ProbeKind::map_type:
        return libbpf_probe_bpf_map_type(static_cast<bpf_map_type>(p.type), nullptr) == 1;
    case ProbeKind::helper:
        return libbpf_probe_bpf_helper(static_cast<bpf_prog_type>(p.type), static_cast<bpf_func_id>(p.helper),
                                       nullptr) == 1;
    }
    return false;
}

} // namespace

Result<std::vector<KernelFeature>> probe_kernel_features()
{
    // Probes load small programs; unprivileged, every one fails and all would read as missing.
    if (::geteuid() != 0)
        return system_error("must be run as root to probe the kernel's BPF features (CAP_BPF)", EPERM);
    std::vector<KernelFeature> out;
    for (const Probe &p : kProbes)
        out.push_back({p.name, p.since, p.use, probe(p)});
    return out;
}

Result<void> require_kernel_features(const std::vector<KernelFeature> &features)
{
    std::string missing;
    for (const KernelFeature &f : features)
        if (!f.present)
            missing += (missing.empty() ? "" : ", ") + f.name + " (Linux " + f.since + ")";
    if (missing.empty())
        return {};
    return system_error("this kernel (" + kernel_release() + ") lacks " + missing + ": xnat needs Linux " + kKernelFloor +
                            " or newer, or these features backported; nothing was loaded "
                            "(xnat-load --features lists what this kernel has)",
                        ENOTSUP);
}

std::string format_kernel_features(const std::vector<KernelFeature> &features)
{
    size_t w = 7;
    for (const KernelFeature &f : features)
        w = std::max(w, f.name.size());
    auto pad = [](std::string s, size_t n) { return s.append(n > s.size() ? n - s.size() : 0, ' '); };
    std::string out = "kernel " + kernel_release() + "\n";
    out += pad("feature", w) + "  " + pad("since", 6) + pad("here", 6) + "used for\n";
    size_t missing = 0;
    for (const KernelFeature &f : features) {
        out += pad(f.name, w) + "  " + pad(f.since, 6) + pad(f.present ? "yes" : "NO", 6) + f.use + "\n";
        missing += !f.present;
    }
    out += missing ? "xnat cannot load here: it needs every feature above (Linux " + std::string(kKernelFloor) +
                         " or newer has them all)\n"
                   : "every feature xnat needs is here\n";
    return out;
}

} // namespace xnat
