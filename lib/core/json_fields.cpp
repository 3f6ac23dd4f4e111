#include "core/json_fields.h"

namespace xnat {

std::string json_type(const nlohmann::json &j)
{
    if (j.is_number_float())
        return "a fractional number";
    if (j.is_number_integer() && !j.is_number_unsigned())
        return "a negative number";
    if (j.is_object())
        return "an object";
    if (j.is_array())
        return "an array";
    if (j.is_null())
        return "null";
    return std::string("a ") + j.type_name();
}

Result<void> check_keys(const nlohmann::json &obj, const std::string &path, std::set<std::string> allowed)
{
    for (const auto &[key, value] : obj.items()) {
        if (!allowed.count(key)) {
            std::string list;
            for (const auto &a : allowed)
                list += (list.empty() ? "" : ", ") + a;
            return invalid_input((path.empty() ? "" : path + ": ") + "unknown key \"" + key +
                                 "\" (expected " + list + ")");
        }
    }
    return {};
}

Result<std::string> get_string(const nlohmann::json &obj, const std::string &key, const std::string &path)
{
    auto it = obj.find(key);
    if (it == obj.end())
        return invalid_input(path + ": missing \"" + key + "\"");
    if (!it->is_string())
        return invalid_input(path + "." + key + ": expected a string, got " + json_type(*it));
    return it->get<std::string>();
}

Result<uint32_t> get_uint(const nlohmann::json &value, const std::string &path, uint32_t lo, uint32_t hi)
{
    if (!value.is_number_unsigned())
        return invalid_input(path + ": expected a whole number of at least " + std::to_string(lo) +
                             ", got " + json_type(value));
    uint64_t n = value.get<uint64_t>();
    if (n < lo || n > hi)
        return invalid_input(path + ": " + std::to_string(n) + " out of range (" +
                             std::to_string(lo) + "-" + std::to_string(hi) + ")");
    return static_cast<uint32_t>(n);
}

} // namespace xnat
