// Big-endian reads and writes at fixed offsets, for the port-mapping wire formats. Every read is
// preceded by a length check in its caller, so these only assert what that check guarantees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace xnat::portmap {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline uint16_t get16(ByteView b, size_t at)
{
    return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}

inline uint32_t get32(ByteView b, size_t at)
{
    return uint32_t{b[at]} << 24 | uint32_t{b[at + 1]} << 16 | uint32_t{b[at + 2]} << 8 | b[at + 3];
}

inline void put16(Bytes &b, size_t at, uint16_t v)
{
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}

inline void put32(Bytes &b, size_t at, uint32_t v)
{
    put16(b, at, static_cast<uint16_t>(v >> 16));
    put16(b, at + 2, static_cast<uint16_t>(v));
}

} // namespace xnat::portmap
