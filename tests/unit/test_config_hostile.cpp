// Hostile configs: giant, deeply nested, huge arrays, broken encodings, numbers that are not
// ports, duplicate keys. Each is refused with one invalid-input error naming the field or the
// position, quickly and without a crash; the printed form of any error is one short line.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/nat_config.h"
#include "core/one_line.h"
#include "core/strict_json.h"

using namespace xnat;
using Catch::Matchers::StartsWith;

namespace {

std::string refused(std::string_view json)
{
    auto start = std::chrono::steady_clock::now();
    auto r = parse_config(json);
    auto took = std::chrono::steady_clock::now() - start;
    REQUIRE(r.ok() == false);
    CHECK(r.error().kind == ErrorKind::invalid_input);
    // Generous for a loaded machine; a quadratic path takes minutes to hours.
    CHECK(took < std::chrono::seconds(30));
    return r.error().message;
}

std::string repeat(std::string_view item, size_t n, std::string_view sep = ",")
{
    std::string s;
    s.reserve((item.size() + sep.size()) * n);
    for (size_t i = 0; i < n; ++i) {
        if (i)
            s += sep;
        s += item;
    }
    return s;
}

std::string forward_with(std::string_view from, std::string_view to)
{
    return R"({"port_forwards":[{"proto":"tcp","from":")" + std::string(from) + R"(","to":")" +
           std::string(to) + R"("}]})";
}

std::string temp_path(const char *name)
{
    return (std::filesystem::temp_directory_path() /
            ("xnat-unit-" + std::to_string(::getpid()) + "-" + name))
        .string();
}

} // namespace

TEST_CASE("hostile config: a 50 MB file is refused before it is read", "[config][hostile]")
{
    std::string path = temp_path("giant.json");
    {
        std::ofstream out(path);
        out << "{\"port_forwards\":[";
    }
    std::filesystem::resize_file(path, 50u << 20); // sparse: no 50 MB written to disk
    auto r = load_config_file(path);
    std::filesystem::remove(path);
    REQUIRE(r.ok() == false);
    CHECK(r.error().kind == ErrorKind::invalid_input);
    CHECK(r.error().message == path + ": larger than 16 MiB");

    // The same limit on text handed over directly, one byte past it.
    std::string text(kMaxJsonBytes + 1, ' ');
    CHECK(refused(text) == "larger than 16 MiB");
    // Just under it, 16 MiB of whitespace around an empty object is fine.
    text.resize(kMaxJsonBytes - 2);
    text += "{}";
    CHECK(parse_config(text).ok());
}

TEST_CASE("hostile config: 100k levels of nesting stop at level 33", "[config][hostile]")
{
    CHECK(refused(std::string(100000, '[') + std::string(100000, ']')) == "nested deeper than 32 levels");
    CHECK(refused(std::string(100000, '[')) == "nested deeper than 32 levels");
    CHECK(refused(repeat(R"({"a":)", 100000, "")) == "nested deeper than 32 levels");
    CHECK(refused(R"({"port_forwards":[)" + std::string(100000, '[')) == "nested deeper than 32 levels");
}

TEST_CASE("hostile config: huge arrays are refused by count, naming the list", "[config][hostile]")
{
    CHECK(refused(R"({"port_forwards":[)" + repeat("1", 1000000) + "]}") ==
          "port_forwards: 1000000 rules, at most 4096");
    CHECK(refused(R"({"port_forwards":[)" + repeat("[]", 500000) + "]}") ==
          "port_forwards: 500000 rules, at most 4096");
    CHECK(refused(R"({"masquerade":[)" + repeat(R"({"source":"10.0.0.0/8"})", 100000) + "]}") ==
          "masquerade: 100000 rules, at most 256");
    // Objects in an array once cost quadratic time (nlohmann's callback parser rescans the
    // array at each object's end): 2M of them took hours.
    CHECK(refused(R"({"port_forwards":[)" + repeat("{}", 2000000) + "]}") ==
          "port_forwards: 2000000 rules, at most 4096");
    CHECK(refused(R"({"masquerade":[{"source":"10.0.0.0/8","not_destination":[)" +
                  repeat(R"("192.0.2.0/24")", 100000) + "]}]}") ==
          "masquerade[0].not_destination: 100000 prefixes, at most 16");
    // 4096 rules that each name 65535 ports: refused by the forward table's size, not built.
    std::string ranges;
    for (unsigned i = 0; i < 4096; ++i)
        ranges += std::string(i ? "," : "") + R"({"proto":"tcp","from":"203.0.)" + std::to_string(i / 256) +
                  "." + std::to_string(i % 256) + R"(:1-65535","to":"10.0.0.1:1"})";
    CHECK(refused(R"({"port_forwards":[)" + ranges + "]}") ==
          "the rules name 268431360 address:port pairs, more than the forward table holds (262144)");
}

TEST_CASE("hostile config: invalid UTF-8 and stray bytes are refused with their position", "[config][hostile]")
{
    // A lone UTF-16 surrogate, a NUL byte in a string, a NUL between tokens, a lone continuation
    // byte, and a 5-byte sequence.
    for (std::string text : {std::string(R"({"limits":{"connections":"\ud800"}})"),
                             std::string("{\"port_forwards\":[{\"proto\":\"tcp\0\"}]}", 34),
                             std::string("{\0}", 3), std::string("{\"\x80\":1}"),
                             std::string("{\"\xf8\x88\x80\x80\x80\":1}")}) {
        INFO(text);
        CHECK_THAT(refused(text), StartsWith("parse error at line 1"));
    }
}

TEST_CASE("hostile config: ports that are not ports name the field", "[config][hostile]")
{
    CHECK(refused(forward_with("203.0.113.1:NaN", "10.0.0.1:22")) == "port_forwards[0].from: bad port \"NaN\"");
    CHECK(refused(forward_with("203.0.113.1:-1", "10.0.0.1:22")) == "port_forwards[0].from: bad port \"-1\"");
    CHECK(refused(forward_with("203.0.113.1:22", "10.0.0.1:22.5")) == "port_forwards[0].to: bad port \"22.5\"");
    CHECK(refused(forward_with("203.0.113.1:22", "10.0.0.1:65536")) ==
          "port_forwards[0].to: port 65536 out of range (1-65535)");
    CHECK(refused(forward_with("203.0.113.1:99999999999999999999", "10.0.0.1:22")) ==
          "port_forwards[0].from: port 99999999999999999999 out of range (1-65535)");
    CHECK(refused(forward_with("203.0.113.1:0x16", "10.0.0.1:22")) == "port_forwards[0].from: bad port \"0x16\"");
    CHECK(refused(forward_with("203.0.113.1:+22", "10.0.0.1:22")) == "port_forwards[0].from: bad port \"+22\"");
    CHECK(refused(forward_with("203.0.113.1: 22", "10.0.0.1:22")) == "port_forwards[0].from: bad port \" 22\"");
    CHECK(refused(forward_with("203.0.113.1:1e3", "10.0.0.1:22")) == "port_forwards[0].from: bad port \"1e3\"");
    CHECK(refused(R"({"masquerade":[{"source":"10.0.0.0/24","ports":"1024-70000"}]})") ==
          "masquerade[0].ports: port 70000 out of range (1-65535)");
    CHECK(refused(R"({"masquerade":[{"source":"10.0.0.0/24","ports":"NaN-2000"}]})") ==
          "masquerade[0].ports: bad port \"NaN\"");
    CHECK(refused(R"({"masquerade":[{"source":"10.0.0.0/24","ports":-1}]})") ==
          "masquerade[0].ports: expected a string, got a negative number");
    CHECK(refused(R"({"timeouts":{"udp":1.5}})") ==
          "timeouts.udp: expected a whole number of at least 1, got a fractional number");
    CHECK(refused(R"({"timeouts":{"udp":-0}})") ==
          "timeouts.udp: expected a whole number of at least 1, got a negative number");
    // JSON has no NaN or Infinity, and a number past a double's range is not one either.
    for (const char *text : {R"({"timeouts":{"udp":NaN}})", R"({"timeouts":{"udp":Infinity}})",
                             R"({"timeouts":{"udp":1e400}})"}) {
        INFO(text);
        CHECK_THAT(refused(text), StartsWith("parse error at line 1") || StartsWith("number overflow"));
    }
}

TEST_CASE("hostile config: duplicate keys anywhere, however spelt", "[config][hostile]")
{
    CHECK(refused(R"({"masquerade":[{"source":"10.0.0.0/24","source":"10.0.1.0/24"}]})") ==
          "duplicate key \"source\"");
    // The same key through a \u escape is the same key.
    CHECK(refused(R"({"limits":{"connections":100,"\u0063onnections":200}})") ==
          "duplicate key \"connections\"");
    CHECK(refused(R"({"a":{"b":{"c":1,"c":2}}})") == "duplicate key \"c\"");
}

TEST_CASE("hostile config: an error is printed as one short line, whatever it echoes", "[config][hostile]")
{
    std::string with_newline = refused(
        R"({"port_forwards":[{"proto":"tcp\nx\u0007","from":"203.0.113.1:1","to":"10.0.0.1:1"}]})");
    CHECK(one_line(with_newline) ==
          "port_forwards[0].proto: protocol must be \"tcp\" or \"udp\", got \"tcp\\nx\\x07\"");

    std::string giant = refused(forward_with("203.0.113.1:1", std::string(1 << 20, '9')));
    CHECK(giant.size() > (1u << 20));
    std::string printed = one_line(giant);
    CHECK_THAT(printed, StartsWith("port_forwards[0].to: "));
    CHECK(printed.size() < kMaxMessageBytes + 40);
    CHECK(printed.find('\n') == std::string::npos);
    CHECK(printed.find("more bytes)") != std::string::npos);
    // A cut never splits a UTF-8 sequence.
    std::string euros = one_line(std::string(kMaxMessageBytes - 1, 'a') + "\xe2\x82\xac\xe2\x82\xac");
    CHECK(euros.substr(0, kMaxMessageBytes - 1) == std::string(kMaxMessageBytes - 1, 'a'));
    CHECK(euros.substr(kMaxMessageBytes - 1, 4) == "... ");
}
