// Reading typed fields out of JSON objects with errors that name the JSON path.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace xnat {

// "a string", "an array", "a negative number"...: what a value is, for error messages.
std::string json_type(const nlohmann::json &j);
// Refuses keys outside `allowed`, naming the first one found.
Result<void> check_keys(const nlohmann::json &obj, const std::string &path, std::set<std::string> allowed);
Result<std::string> get_string(const nlohmann::json &obj, const std::string &key, const std::string &path);
Result<uint32_t> get_uint(const nlohmann::json &value, const std::string &path, uint32_t lo, uint32_t hi);

} // namespace xnat
