// The one place where errno values from libbpf and the kernel become messages, with hints
// for the causes an operator meets in practice.
#pragma once

#include <string>

#include "core/result.h"

namespace xnat {

// `err` may be negative (libbpf style) or positive (errno).
Error kernel_error(const std::string &what, int err, const std::string &hint = "");

// libbpf's own log lines are captured rather than printed: they are verbose and meant for
// developers. XNAT_DEBUG=1 in the environment prints them as they come.
void capture_libbpf_log();
// The last warning libbpf logged, for error messages ("" if none).
std::string last_libbpf_warning();

} // namespace xnat
