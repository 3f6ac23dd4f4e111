// What xnat needs from the running kernel, found out by asking it (helper, map type and program
// type probes), never by reading its version: distributions backport features, so a version
// number says little. Each feature carries the mainline release that brought it, for messages.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace xnat {

// The oldest mainline kernel xnat runs on (Ubuntu 22.04, OpenWrt 23.05).
inline constexpr const char *kKernelFloor = "5.15";

struct KernelFeature {
    std::string name;    // "bpf_timer"
    std::string since;   // mainline release that brought it, "5.15"
    std::string use;     // what xnat uses it for; every feature is required
    bool present = false;
};

// Probes every kernel feature the BPF object and the loader use. Needs CAP_BPF (root): without
// it every probe would read as missing, so that is an error of its own.
Result<std::vector<KernelFeature>> probe_kernel_features();

// Fails with one message naming every missing feature and the floor.
Result<void> require_kernel_features(const std::vector<KernelFeature> &features);

// The table `xnat-load --features` prints.
std::string format_kernel_features(const std::vector<KernelFeature> &features);

} // namespace xnat
