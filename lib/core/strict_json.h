// JSON parsing that refuses what nlohmann accepts silently: duplicate keys, absurd nesting,
// oversized input. Errors name the line and column.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace xnat {

inline constexpr size_t kMaxJsonBytes = 16u << 20;
inline constexpr int kMaxJsonDepth = 32;

Result<nlohmann::json> parse_strict_json(std::string_view text);

// Reads a whole file, refusing anything larger than kMaxJsonBytes.
Result<std::string> read_text_file(const std::string &path);

} // namespace xnat
