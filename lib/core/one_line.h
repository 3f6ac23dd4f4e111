// Errors echo what the user gave (a config string, an argument). A hostile or broken input
// must not turn one error line into many lines or megabytes on a terminal.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace xnat {

inline constexpr size_t kMaxMessageBytes = 512;

// Control characters become \n, \t, \r or \xHH; past `max` bytes the text is cut (never inside
// a UTF-8 sequence) and the cut is said.
inline std::string one_line(std::string_view text, size_t max = kMaxMessageBytes)
{
    size_t keep = text.size();
    if (keep > max) {
        keep = max;
        while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xc0) == 0x80)
            --keep;
    }
    std::string out;
    out.reserve(keep + 32);
    for (size_t i = 0; i < keep; ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\r')
            out += "\\r";
        else if (c < 0x20 || c == 0x7f) {
            char buf[5];
            std::snprintf(buf, sizeof(buf), "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    if (keep < text.size())
        out += "... (" + std::to_string(text.size() - keep) + " more bytes)";
    return out;
}

} // namespace xnat
