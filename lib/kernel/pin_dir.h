// The pin directory: where an instance's maps and links live on a bpffs, and its lock.
#pragma once

#include <string>

#include "core/result.h"
#include "kernel/unique_fd.h"

namespace xnat {

inline constexpr const char *kDefaultPinDir = "/sys/fs/bpf/xnat";

class PinDir {
  public:
    // Opens an existing instance's directory, locked; fails if there is none.
    static Result<PinDir> open_existing(const std::string &path);
    // Opens or creates the directory (mode 0700) on a bpffs, mounting one at /sys/fs/bpf when
    // the default location has none, and locks it.
    static Result<PinDir> open_or_create(const std::string &path);

    const std::string &path() const { return path_; }
    std::string file(const std::string &name) const { return path_ + "/" + name; }
    bool has(const std::string &name) const;
    // Removes a pin (and with it the reference the pin holds).
    Result<void> unpin(const std::string &name) const;
    // Removes the directory if empty; the lock goes with this object.
    void remove_if_empty() const;

  private:
    PinDir(std::string path, UniqueFd lock) : path_(std::move(path)), lock_(std::move(lock)) {}
    static Result<PinDir> lock(const std::string &path);

    std::string path_;
    UniqueFd lock_; // flock'ed: one xnat-load or xnat-map change at a time per instance
};

// Whether an instance is pinned at path (its config map exists).
bool instance_exists(const std::string &path);
// Succeeds if an instance is pinned at path; otherwise says why not (missing, or no access).
Result<void> require_instance(const std::string &path);
// How many entries the directory holds (0 if it does not exist).
size_t leftover_pins(const std::string &path);

} // namespace xnat
