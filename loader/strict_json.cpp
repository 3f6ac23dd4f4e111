#include "strict_json.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

namespace xnat {
namespace {

// Thrown from inside the parser callback, caught right below: the callback cannot return an
// error of its own.
struct StrictJsonViolation {
    std::string message;
};

std::string strip_exception_prefix(const std::string &what)
{
    // "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at line 1, ..."
    size_t close = what.find("] ");
    return close == std::string::npos ? what : what.substr(close + 2);
}

} // namespace

Result<nlohmann::json> parse_strict_json(std::string_view text)
{
    if (text.size() > kMaxJsonBytes)
        return invalid_input("larger than " + std::to_string(kMaxJsonBytes >> 20) + " MiB");

    std::vector<std::set<std::string>> keys_seen;
    auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json &parsed) {
        using E = nlohmann::json::parse_event_t;
        // depth counts the containers around the event, not the one it opens.
        if ((event == E::object_start || event == E::array_start) && depth >= kMaxJsonDepth)
            throw StrictJsonViolation{"nested deeper than " + std::to_string(kMaxJsonDepth) +
                                      " levels"};
        if (event == E::object_start) {
            keys_seen.emplace_back();
        } else if (event == E::object_end) {
            keys_seen.pop_back();
        } else if (event == E::key) {
            const std::string &key = parsed.get_ref<const std::string &>();
            if (!keys_seen.back().insert(key).second)
                throw StrictJsonViolation{"duplicate key \"" + key + "\""};
        }
        return true;
    };
    try {
        return nlohmann::json::parse(text.begin(), text.end(), callback);
    } catch (const StrictJsonViolation &v) {
        return invalid_input(v.message);
    } catch (const nlohmann::json::exception &e) {
        return invalid_input(strip_exception_prefix(e.what()));
    }
}

Result<std::string> read_text_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return invalid_input("cannot open " + path + ": " + std::strerror(errno));
    in.seekg(0, std::ios::end);
    std::streamoff size = in.tellg();
    if (size > static_cast<std::streamoff>(kMaxJsonBytes))
        return invalid_input(path + ": larger than " + std::to_string(kMaxJsonBytes >> 20) + " MiB");
    in.seekg(0);
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad())
        return invalid_input("cannot read " + path);
    return buf.str();
}

} // namespace xnat
