// An xnat instance's life: load, reload in place, unload. What xnat-load does.
#pragma once

#include <string>
#include <vector>

#include "core/nat_config.h"
#include "core/result.h"
#include "kernel/interfaces.h"

namespace xnat {

struct LoadOptions {
    std::string pin_dir;
    Mode mode = Mode::auto_select;
    std::string wan;
    std::string lan;
    std::string config_path;
    std::string object_path; // empty: the BPF object built into the loader
    // Masquerade rules and wan: forwards following the WAN address wait for one instead of failing the load
    // (xnat-load --follow-wan, which fills it in as soon as it appears).
    bool park_without_wan_address = false;
};

// Lines for the operator: what was chosen and done.
using Report = std::vector<std::string>;

// Loads xnat, or applies a new config and new programs to the instance already at pin_dir
// while keeping its connections. Everything is validated before the kernel is touched.
Result<Report> load_instance(const LoadOptions &opts);

// Detaches everything the instance at pin_dir attached and removes its pins.
Result<Report> unload_instance(const std::string &pin_dir);

// Refuses politely unless running as root.
Result<void> require_root(const std::string &action);

} // namespace xnat
