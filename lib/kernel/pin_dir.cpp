#include "kernel/pin_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernel/kernel_error.h"
#include "xnat/abi.h"
#include "xnat/maps.h"

namespace xnat {
namespace {

bool on_bpffs(const std::string &path)
{
    struct statfs st {};
    return ::statfs(path.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

bool exists(const std::string &path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

std::string parent_of(const std::string &path)
{
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

ino_t mount_ns_ino(const char *proc_path)
{
    struct stat st {};
    return ::stat(proc_path, &st) == 0 ? st.st_ino : 0;
}

// A bpffs mounted by a process inside a private mount namespace (as `ip netns exec` creates)
// disappears with it, and so would every pin and XDP link on it. PID 1's namespace is the
// reference; where it cannot be read (containers), the parent's is: `ip netns exec` unshares
// and then executes us in place, so our parent is still outside.
bool in_private_mount_ns()
{
    ino_t self = mount_ns_ino("/proc/self/ns/mnt");
    if (!self)
        return false;
    for (std::string other : {std::string("/proc/1/ns/mnt"), "/proc/" + std::to_string(::getppid()) + "/ns/mnt"}) {
        ino_t ino = mount_ns_ino(other.c_str());
        if (ino && ino != self)
            return true;
    }
    return false;
}

Result<void> ensure_bpffs_parent(const std::string &path)
{
    std::string parent = parent_of(path);
    if (on_bpffs(parent))
        return {};
    if (parent != parent_of(kDefaultPinDir))
        return invalid_input("--pin-dir " + path + ": " + parent +
                             " is not on a bpffs (mount one: mount -t bpf bpf " + parent + ")");
    if (in_private_mount_ns())
        return invalid_input(parent + " has no bpffs in this mount namespace (ip netns exec remounts "
                             "/sys), and one mounted here would vanish with this command, taking "
                             "xnat with it; pass --pin-dir on a bpffs that outlives it");
    if (!exists(parent) && ::mkdir(parent.c_str(), 0700) != 0)
        return kernel_error("mkdir " + parent, errno);
    if (::mount("bpf", parent.c_str(), "bpf", 0, "mode=0700") != 0)
        return kernel_error("mount bpffs on " + parent, errno);
    return {};
}

} // namespace

Result<PinDir> PinDir::lock(const std::string &path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid())
        return kernel_error("open " + path, errno);
    if (::flock(fd.get(), LOCK_EX) != 0)
        return kernel_error("lock " + path, errno);
    return PinDir(path, std::move(fd));
}

Result<PinDir> PinDir::open_existing(const std::string &path)
{
    if (auto r = require_instance(path); !r)
        return r.error();
    return lock(path);
}

Result<PinDir> PinDir::open_or_create(const std::string &path)
{
    if (path.empty() || path[0] != '/')
        return invalid_input("--pin-dir must be an absolute path, got \"" + path + "\"");
    if (!exists(path)) {
        if (auto r = ensure_bpffs_parent(path); !r)
            return r.error();
        if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
            return kernel_error("mkdir " + path, errno);
    } else if (!on_bpffs(path)) {
        return invalid_input("--pin-dir " + path + " is not on a bpffs");
    }
    // Whoever made the directory, what it holds is root's alone (the pins are 0600).
    if (::chmod(path.c_str(), 0700) != 0)
        return kernel_error("chmod " + path, errno);
    return lock(path);
}

bool PinDir::has(const std::string &name) const
{
    return exists(file(name));
}

Result<void> PinDir::unpin(const std::string &name) const
{
    if (::unlink(file(name).c_str()) != 0 && errno != ENOENT)
        return kernel_error("unpin " + file(name), errno);
    return {};
}

void PinDir::remove_if_empty() const
{
    ::rmdir(path_.c_str());
}

bool instance_exists(const std::string &path)
{
    return exists(path + "/" XNAT_STR(XNAT_MAP_CONFIG));
}

Result<void> require_instance(const std::string &path)
{
    struct stat st {};
    if (::stat((path + "/" XNAT_STR(XNAT_MAP_CONFIG)).c_str(), &st) == 0)
        return {};
    if (errno == EACCES || errno == EPERM)
        return kernel_error("open " + path, errno);
    if (size_t n = leftover_pins(path))
        return system_error(path + " holds " + std::to_string(n) + " pins of an xnat instance but not its " +
                                XNAT_STR(XNAT_MAP_CONFIG) + ", so xnat can neither use nor unload it: remove "
                                "them with rm -r " + path + " and any tc filter of pref " +
                                std::to_string(XNAT_TC_PRIORITY) + " on the interfaces it ran on",
                            ENOENT);
    return system_error("no xnat instance at " + path + " (start one with xnat-load)", ENOENT);
}

size_t leftover_pins(const std::string &path)
{
    size_t n = 0;
    if (DIR *d = ::opendir(path.c_str())) {
        while (const dirent *ent = ::readdir(d))
            if (std::strcmp(ent->d_name, ".") != 0 && std::strcmp(ent->d_name, "..") != 0)
                ++n;
        ::closedir(d);
    }
    return n;
}

} // namespace xnat
