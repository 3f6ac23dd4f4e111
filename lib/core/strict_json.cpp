#include "core/strict_json.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

namespace xnat {
namespace {

std::string strip_exception_prefix(const std::string &what)
{
    // "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at line 1, ..."
    size_t close = what.find("] ");
    return close == std::string::npos ? what : what.substr(close + 2);
}

// A first pass over the text that only checks: nesting depth, duplicate keys, and the syntax
// itself. It runs in linear time and bounded memory; nlohmann's callback parser, which did
// this before, rescans a whole array at the end of each object in it, so 16 MiB of "{}," took
// hours. The DOM is built only from text this pass has accepted.
class StrictChecker : public nlohmann::json::json_sax_t {
  public:
    std::string violation;

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t &) override { return true; }
    bool string(string_t &) override { return true; }
    bool binary(binary_t &) override { return true; }
    bool start_object(std::size_t) override
    {
        if (!open())
            return false;
        keys_.emplace_back();
        return true;
    }
    bool key(string_t &k) override
    {
        if (!keys_.back().insert(k).second)
            return refuse("duplicate key \"" + k + "\"");
        return true;
    }
    bool end_object() override
    {
        keys_.pop_back();
        --depth_;
        return true;
    }
    bool start_array(std::size_t) override { return open(); }
    bool end_array() override
    {
        --depth_;
        return true;
    }
    bool parse_error(std::size_t, const std::string &, const nlohmann::json::exception &e) override
    {
        return refuse(strip_exception_prefix(e.what()));
    }

  private:
    bool open()
    {
        if (++depth_ > kMaxJsonDepth)
            return refuse("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        return true;
    }
    bool refuse(std::string why)
    {
        violation = std::move(why);
        return false;
    }

    int depth_ = 0;
    std::vector<std::set<std::string>> keys_;
};

} // namespace

Result<nlohmann::json> parse_strict_json(std::string_view text)
{
    if (text.size() > kMaxJsonBytes)
        return invalid_input("larger than " + std::to_string(kMaxJsonBytes >> 20) + " MiB");
    StrictChecker checker;
    if (!nlohmann::json::sax_parse(text.begin(), text.end(), &checker))
        return invalid_input(checker.violation.empty() ? "invalid JSON" : checker.violation);
    try {
        return nlohmann::json::parse(text.begin(), text.end());
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
