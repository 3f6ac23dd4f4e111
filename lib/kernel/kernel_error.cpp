#include "kernel/kernel_error.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace xnat {
namespace {

std::string g_last_warning;

int on_libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args)
{
    static const bool verbose = std::getenv("XNAT_DEBUG") != nullptr;
    char line[512];
    va_list copy;
    va_copy(copy, args);
    std::vsnprintf(line, sizeof(line), fmt, copy);
    va_end(copy);
    if (level == LIBBPF_WARN) {
        g_last_warning = line;
        while (!g_last_warning.empty() && g_last_warning.back() == '\n')
            g_last_warning.pop_back();
    }
    if (verbose)
        std::fputs(line, stderr);
    return 0;
}

std::string default_hint(int err)
{
    switch (err) {
    case EPERM:
    case EACCES:
        return "run as root: xnat needs CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN";
    case ENOMEM:
        return "out of memory or locked-memory limit";
    default:
        return "";
    }
}

} // namespace

Error kernel_error(const std::string &what, int err, const std::string &hint)
{
    if (err < 0)
        err = -err;
    std::string msg = what + ": " + std::strerror(err);
    std::string h = hint.empty() ? default_hint(err) : hint;
    if (!h.empty())
        msg += " (" + h + ")";
    return system_error(msg, err);
}

void capture_libbpf_log()
{
    libbpf_set_print(on_libbpf_log);
}

std::string last_libbpf_warning()
{
    return g_last_warning;
}

} // namespace xnat
