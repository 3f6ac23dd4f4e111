#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/format.h"
#include "core/masquerade.h"
#include "core/nat_config.h"
#include "core/net.h"

using namespace xnat;

namespace {

constexpr uint32_t kWan = 0xcb007101u;      // 203.0.113.1
constexpr uint32_t kWan2 = 0xcb007102u;     // 203.0.113.2
constexpr uint16_t kLocalLo = 32768;        // Linux's default net.ipv4.ip_local_port_range
constexpr uint16_t kLocalHi = 60999;

const char *const kFull = R"({"masquerade":[{"source":"10.0.1.0/24",
    "not_destination":["10.0.0.0/8","192.168.0.0/16"],"to_source":"203.0.113.1",
    "ports":"1024-65535","filtering":"endpoint_independent"}]})";

// The message of a call that must fail with invalid input; "<accepted>" makes an unexpected
// success visible.
template <typename T> std::string error_of(const Result<T> &r)
{
    if (r.ok())
        return "<accepted>";
    CHECK(r.error().kind == ErrorKind::invalid_input);
    return r.error().message;
}

// The error of a config that must be refused as invalid input.
std::string rejected(std::string_view json)
{
    INFO("config: " << json);
    return error_of(parse_config(json));
}

Config accepted(std::string_view json)
{
    INFO("config: " << json);
    auto r = parse_config(json);
    if (!r.ok())
        FAIL("refused: " << r.error().message);
    return *r;
}

// A config whose masquerade list holds the given JSON objects.
std::string masq(std::string_view rules)
{
    return R"({"masquerade":[)" + std::string(rules) + "]}";
}

// A config with one rule: source 10.0.1.0/24 plus the given extra members.
std::string one_rule(std::string_view extra)
{
    return masq(R"({"source":"10.0.1.0/24",)" + std::string(extra) + "}");
}

Prefix prefix(const char *text)
{
    auto p = parse_prefix(text);
    REQUIRE(p.ok());
    return *p;
}

// Two rules with exclusions: the first endpoint-independent, the second the default filtering.
std::vector<Masquerade> two_rules()
{
    Masquerade a;
    a.source = prefix("10.0.1.0/24");
    a.not_destination = {prefix("10.0.0.0/8"), prefix("192.168.0.0/16")};
    a.to_source = kWan;
    a.port_lo = 1024;
    a.port_hi = 65535;
    a.filtering = Filtering::endpoint_independent;

    Masquerade b;
    b.source = prefix("10.0.2.0/23");
    b.not_destination = {prefix("172.16.0.0/12")};
    b.to_source = kWan2;
    b.port_lo = 5000;
    b.port_hi = 6000;
    b.filtering = Filtering::address_port_dependent;
    return {a, b};
}

// A config with n masquerade rules of distinct sources 10.A.B.0/24.
std::string many_rules(size_t n)
{
    std::string list;
    for (size_t i = 0; i < n; ++i)
        list += std::string(i ? "," : "") + R"({"source":"10.)" + std::to_string(i / 256) + "." +
                std::to_string(i % 256) + R"(.0/24"})";
    return masq(list);
}

} // namespace

// ---- parse_prefix and Prefix --------------------------------------------------------------

TEST_CASE("parse_prefix reads an address block", "[masquerade][net]")
{
    Prefix ten = prefix("10.0.0.0/8");
    CHECK(ten.addr == 0x0a000000u);
    CHECK(ten.len == 8);
    CHECK(ten == Prefix{0x0a000000u, 8});
    CHECK(format_prefix(ten) == "10.0.0.0/8");

    // A bare address is a /32.
    Prefix host = prefix("203.0.113.1");
    CHECK(host.addr == kWan);
    CHECK(host.len == 32);
    CHECK(host == prefix("203.0.113.1/32"));
    CHECK(format_prefix(host) == "203.0.113.1/32");

    Prefix all = prefix("0.0.0.0/0");
    CHECK(all.addr == 0u);
    CHECK(all.len == 0);

    Prefix lan = prefix("192.168.0.0/16");
    CHECK(lan.addr == 0xc0a80000u);
    CHECK(lan.len == 16);
    CHECK(prefix("10.0.2.0/23") == Prefix{0x0a000200u, 23});
}

TEST_CASE("parse_prefix refuses host bits, bad lengths and bad addresses", "[masquerade][net]")
{
    CHECK(error_of(parse_prefix("10.0.0.1/8")) == "10.0.0.1/8 has host bits set (network is 10.0.0.0/8)");
    CHECK(error_of(parse_prefix("10.0.1.1/24")) ==
          "10.0.1.1/24 has host bits set (network is 10.0.1.0/24)");
    CHECK(error_of(parse_prefix("192.168.1.0/16")) ==
          "192.168.1.0/16 has host bits set (network is 192.168.0.0/16)");
    CHECK(error_of(parse_prefix("1.0.0.0/0")) == "1.0.0.0/0 has host bits set (network is 0.0.0.0/0)");
    CHECK(error_of(parse_prefix("10.0.3.0/23")) ==
          "10.0.3.0/23 has host bits set (network is 10.0.2.0/23)");

    CHECK(error_of(parse_prefix("10.0.0.0/33")) == "bad prefix length \"33\" (0-32)");
    CHECK(error_of(parse_prefix("10.0.0.0/")) == "bad prefix length \"\" (0-32)");
    CHECK(error_of(parse_prefix("10.0.0.0/x")) == "bad prefix length \"x\" (0-32)");
    CHECK(error_of(parse_prefix("10.0.0.0/-1")) == "bad prefix length \"-1\" (0-32)");
    CHECK(error_of(parse_prefix("10.0.0.0/8 ")) == "bad prefix length \"8 \" (0-32)");
    CHECK(error_of(parse_prefix("10.0.0.0/8/8")) == "bad prefix length \"8/8\" (0-32)");
    CHECK(error_of(parse_prefix("10.0.0.0/99999999999")) == "bad prefix length \"99999999999\" (0-32)");

    CHECK(error_of(parse_prefix("10.0.0/8")) == "bad IPv4 address \"10.0.0\"");
    CHECK(error_of(parse_prefix("/8")) == "bad IPv4 address \"\"");
    CHECK(error_of(parse_prefix("")) == "bad IPv4 address \"\"");
}

TEST_CASE("Prefix::contains matches the network bits only", "[masquerade][net]")
{
    Prefix ten = prefix("10.0.0.0/8");
    CHECK(ten.contains(0x0a000000u));
    CHECK(ten.contains(0x0a000001u));
    CHECK(ten.contains(0x0affffffu));
    CHECK_FALSE(ten.contains(0x0b000000u));
    CHECK_FALSE(ten.contains(0x09ffffffu));
    CHECK_FALSE(ten.contains(kWan));

    Prefix host = prefix("203.0.113.1");
    CHECK(host.contains(kWan));
    CHECK_FALSE(host.contains(kWan2));
    CHECK_FALSE(host.contains(0xcb007100u));

    Prefix all = prefix("0.0.0.0/0");
    CHECK(all.contains(0u));
    CHECK(all.contains(kWan));
    CHECK(all.contains(0xffffffffu));

    Prefix upper = prefix("128.0.0.0/1");
    CHECK(upper.contains(0x80000000u));
    CHECK(upper.contains(0xffffffffu));
    CHECK_FALSE(upper.contains(0x7fffffffu));

    Prefix pair = prefix("10.0.0.2/31");
    CHECK(pair.contains(0x0a000002u));
    CHECK(pair.contains(0x0a000003u));
    CHECK_FALSE(pair.contains(0x0a000001u));
    CHECK_FALSE(pair.contains(0x0a000004u));
}

// ---- parse_config: masquerade accepted ----------------------------------------------------

TEST_CASE("a full masquerade rule parses into its fields", "[masquerade][config]")
{
    Config cfg = accepted(kFull);
    CHECK(cfg.port_forwards.empty());
    REQUIRE(cfg.masquerade.size() == 1);
    const Masquerade &m = cfg.masquerade[0];
    CHECK(m.source.addr == 0x0a000100u);
    CHECK(m.source.len == 24);
    REQUIRE(m.not_destination.size() == 2);
    CHECK(m.not_destination[0] == Prefix{0x0a000000u, 8});
    CHECK(m.not_destination[1] == Prefix{0xc0a80000u, 16});
    REQUIRE(m.to_source.has_value());
    CHECK(*m.to_source == kWan);
    CHECK(m.port_lo == 1024);
    CHECK(m.port_hi == 65535);
    CHECK(m.filtering == Filtering::endpoint_independent);

    Masquerade expected = two_rules()[0];
    CHECK(m == expected);
}

TEST_CASE("masquerade fields left out take their defaults", "[masquerade][config]")
{
    Config cfg = accepted(masq(R"({"source":"10.0.1.0/24"})"));
    REQUIRE(cfg.masquerade.size() == 1);
    const Masquerade &m = cfg.masquerade[0];
    CHECK(m.source == Prefix{0x0a000100u, 24});
    CHECK(m.not_destination.empty());
    CHECK_FALSE(m.to_source.has_value());
    CHECK(m.port_lo == 1024);
    CHECK(m.port_hi == 65535);
    CHECK(m.filtering == Filtering::address_port_dependent);

    // The defaults are those of a default-constructed rule.
    Masquerade d;
    d.source = Prefix{0x0a000100u, 24};
    CHECK(m == d);

    // An empty list and the explicit default filtering are the same as leaving them out.
    Config explicit_defaults = accepted(one_rule(
        R"("not_destination":[],"ports":"1024-65535","filtering":"address_port_dependent")"));
    REQUIRE(explicit_defaults.masquerade.size() == 1);
    CHECK(explicit_defaults.masquerade[0] == d);

    // A bare address source is a /32.
    Config host = accepted(masq(R"({"source":"10.0.1.7"})"));
    REQUIRE(host.masquerade.size() == 1);
    CHECK(host.masquerade[0].source == Prefix{0x0a000107u, 32});

    CHECK(accepted(R"({"masquerade":[]})").masquerade.empty());
    CHECK(accepted("{}").masquerade.empty());
}

TEST_CASE("masquerade ports may be a single port", "[masquerade][config]")
{
    Config cfg = accepted(one_rule(R"("ports":"5000")"));
    REQUIRE(cfg.masquerade.size() == 1);
    CHECK(cfg.masquerade[0].port_lo == 5000);
    CHECK(cfg.masquerade[0].port_hi == 5000);

    Config edges = accepted(one_rule(R"("ports":"1-65535")"));
    CHECK(edges.masquerade[0].port_lo == 1);
    CHECK(edges.masquerade[0].port_hi == 65535);

    Config same = accepted(one_rule(R"("ports":"6000-6000")"));
    CHECK(same.masquerade[0].port_lo == 6000);
    CHECK(same.masquerade[0].port_hi == 6000);
}

TEST_CASE("several masquerade rules sit beside port forwards", "[masquerade][config]")
{
    Config cfg = accepted(R"({"port_forwards":[
        {"proto":"tcp","from":"203.0.113.1:22012","to":"10.0.0.12:22"}],
        "masquerade":[{"source":"10.0.1.0/24"},{"source":"10.0.1.0/25","to_source":"203.0.113.2"},
                      {"source":"0.0.0.0/0","filtering":"endpoint_independent"}]})");
    REQUIRE(cfg.port_forwards.size() == 1);
    REQUIRE(cfg.masquerade.size() == 3);
    // Equal addresses with different lengths are different sources.
    CHECK(cfg.masquerade[0].source == Prefix{0x0a000100u, 24});
    CHECK(cfg.masquerade[1].source == Prefix{0x0a000100u, 25});
    REQUIRE(cfg.masquerade[1].to_source.has_value());
    CHECK(*cfg.masquerade[1].to_source == kWan2);
    CHECK(cfg.masquerade[2].source == Prefix{0u, 0});
    CHECK(cfg.masquerade[2].filtering == Filtering::endpoint_independent);
}

// ---- parse_config: masquerade refused -----------------------------------------------------

TEST_CASE("masquerade must be an array of objects", "[masquerade][config]")
{
    CHECK(rejected(R"({"masquerade":{}})") == "masquerade: expected an array, got an object");
    CHECK(rejected(R"({"masquerade":"10.0.1.0/24"})") == "masquerade: expected an array, got a string");
    CHECK(rejected(R"({"masquerade":null})") == "masquerade: expected an array, got null");

    CHECK(rejected(masq(R"("10.0.1.0/24")")) == "masquerade[0]: expected an object, got a string");
    CHECK(rejected(masq(R"({"source":"10.0.1.0/24"},5)")) ==
          "masquerade[1]: expected an object, got a number");
    CHECK(rejected(masq(R"([])")) == "masquerade[0]: expected an object, got an array");
}

TEST_CASE("a masquerade rule needs a source and no unknown keys", "[masquerade][config]")
{
    CHECK(rejected(masq("{}")) == "masquerade[0]: missing \"source\"");
    CHECK(rejected(masq(R"({"to_source":"203.0.113.1"})")) == "masquerade[0]: missing \"source\"");
    CHECK(rejected(masq(R"({"source":"10.0.1.0/24"},{"ports":"5000"})")) ==
          "masquerade[1]: missing \"source\"");
    CHECK(rejected(one_rule(R"("bogus":1)")) ==
          "masquerade[0]: unknown key \"bogus\" (expected filtering, not_destination, ports, "
          "source, to_source)");
    CHECK(rejected(one_rule(R"("destination":"10.0.0.0/8")")) ==
          "masquerade[0]: unknown key \"destination\" (expected filtering, not_destination, ports, "
          "source, to_source)");
    CHECK(rejected(masq(R"({"source":5})")) == "masquerade[0].source: expected a string, got a number");
    CHECK(rejected(masq(R"({"source":null})")) == "masquerade[0].source: expected a string, got null");
}

TEST_CASE("a masquerade source must be a network prefix", "[masquerade][config]")
{
    CHECK(rejected(masq(R"({"source":"10.0.1.1/24"})")) ==
          "masquerade[0].source: 10.0.1.1/24 has host bits set (network is 10.0.1.0/24)");
    CHECK(rejected(masq(R"({"source":"10.0.1.0/33"})")) ==
          "masquerade[0].source: bad prefix length \"33\" (0-32)");
    CHECK(rejected(masq(R"({"source":"10.0.1/24"})")) ==
          "masquerade[0].source: bad IPv4 address \"10.0.1\"");
    CHECK(rejected(masq(R"({"source":"10.0.2.0/24"},{"source":"10.0.3.1/24"})")) ==
          "masquerade[1].source: 10.0.3.1/24 has host bits set (network is 10.0.3.0/24)");
}

TEST_CASE("not_destination must be a short array of prefixes", "[masquerade][config]")
{
    CHECK(rejected(one_rule(R"("not_destination":"10.0.0.0/8")")) ==
          "masquerade[0].not_destination: expected an array, got a string");
    CHECK(rejected(one_rule(R"("not_destination":{})")) ==
          "masquerade[0].not_destination: expected an array, got an object");
    CHECK(rejected(one_rule(R"("not_destination":["10.0.0.0/8",8])")) ==
          "masquerade[0].not_destination[1]: expected a string, got a number");
    CHECK(rejected(one_rule(R"("not_destination":[null])")) ==
          "masquerade[0].not_destination[0]: expected a string, got null");
    CHECK(rejected(one_rule(R"("not_destination":["10.0.0.0/8","192.168.1.0/16"])")) ==
          "masquerade[0].not_destination[1]: 192.168.1.0/16 has host bits set (network is 192.168.0.0/16)");
    CHECK(rejected(one_rule(R"("not_destination":["10.0.0.0/8","10.0.0.0/33"])")) ==
          "masquerade[0].not_destination[1]: bad prefix length \"33\" (0-32)");
    CHECK(rejected(one_rule(R"("not_destination":["10.0.0.0/8","example.com"])")) ==
          "masquerade[0].not_destination[1]: bad IPv4 address \"example.com\"");

    // At most 16 (XNAT_MASQ_MAX_EXCLUDES).
    auto excludes = [](size_t n) {
        std::string list;
        for (size_t i = 0; i < n; ++i)
            list += std::string(i ? "," : "") + "\"172.16." + std::to_string(i) + ".0/24\"";
        return one_rule("\"not_destination\":[" + list + "]");
    };
    Config sixteen = accepted(excludes(16));
    REQUIRE(sixteen.masquerade.size() == 1);
    REQUIRE(sixteen.masquerade[0].not_destination.size() == 16);
    CHECK(sixteen.masquerade[0].not_destination[15] == Prefix{0xac100f00u, 24});
    CHECK(rejected(excludes(17)) == "masquerade[0].not_destination: 17 prefixes, at most 16");
    CHECK(rejected(excludes(40)) == "masquerade[0].not_destination: 40 prefixes, at most 16");
}

TEST_CASE("to_source must be a usable address", "[masquerade][config]")
{
    CHECK(rejected(one_rule(R"("to_source":"203.0.113")")) ==
          "masquerade[0].to_source: bad IPv4 address \"203.0.113\"");
    CHECK(rejected(one_rule(R"("to_source":"203.0.113.1/32")")) ==
          "masquerade[0].to_source: bad IPv4 address \"203.0.113.1/32\"");
    CHECK(rejected(one_rule(R"("to_source":"")")) == "masquerade[0].to_source: bad IPv4 address \"\"");
    CHECK(rejected(one_rule(R"("to_source":5)")) ==
          "masquerade[0].to_source: expected a string, got a number");

    CHECK(rejected(one_rule(R"("to_source":"127.0.0.1")")) ==
          "masquerade[0].to_source: address 127.0.0.1 is loopback");
    CHECK(rejected(one_rule(R"("to_source":"224.0.0.1")")) ==
          "masquerade[0].to_source: address 224.0.0.1 is multicast");
    CHECK(rejected(one_rule(R"("to_source":"239.255.255.250")")) ==
          "masquerade[0].to_source: address 239.255.255.250 is multicast");
    CHECK(rejected(one_rule(R"("to_source":"0.0.0.0")")) ==
          "masquerade[0].to_source: address 0.0.0.0 is in 0.0.0.0/8 (\"this network\")");
    CHECK(rejected(one_rule(R"("to_source":"255.255.255.255")")) ==
          "masquerade[0].to_source: address 255.255.255.255 is reserved or broadcast");
}

TEST_CASE("masquerade ports must be a valid range", "[masquerade][config]")
{
    CHECK(rejected(one_rule(R"("ports":"2000-1000")")) ==
          "masquerade[0].ports: port range 2000-1000 is reversed");
    CHECK(rejected(one_rule(R"("ports":"0")")) ==
          "masquerade[0].ports: port 0 is not a valid port (1-65535)");
    CHECK(rejected(one_rule(R"("ports":"0-1000")")) ==
          "masquerade[0].ports: port 0 is not a valid port (1-65535)");
    CHECK(rejected(one_rule(R"("ports":"70000")")) ==
          "masquerade[0].ports: port 70000 out of range (1-65535)");
    CHECK(rejected(one_rule(R"("ports":"1024-70000")")) ==
          "masquerade[0].ports: port 70000 out of range (1-65535)");
    CHECK(rejected(one_rule(R"("ports":"garbage")")) == "masquerade[0].ports: bad port \"garbage\"");
    CHECK(rejected(one_rule(R"("ports":"1024-")")) == "masquerade[0].ports: bad port \"\"");
    CHECK(rejected(one_rule(R"("ports":"")")) ==
          "masquerade[0].ports: expected PORT or PORT-PORT, got \"\"");
    // iptables' "1024:65535" spelling gets the same message, not one about an address.
    CHECK(rejected(one_rule(R"("ports":"1024:65535")")) ==
          "masquerade[0].ports: expected PORT or PORT-PORT, got \"1024:65535\"");
    CHECK(rejected(one_rule(R"("ports":1024)")) == "masquerade[0].ports: expected a string, got a number");
}

TEST_CASE("filtering must name a known behaviour", "[masquerade][config]")
{
    CHECK(rejected(one_rule(R"("filtering":"full_cone")")) ==
          "masquerade[0].filtering: must be \"address_port_dependent\" or \"endpoint_independent\", "
          "got \"full_cone\"");
    CHECK(rejected(one_rule(R"("filtering":"")")) ==
          "masquerade[0].filtering: must be \"address_port_dependent\" or \"endpoint_independent\", "
          "got \"\"");
    CHECK(rejected(one_rule(R"("filtering":true)")) ==
          "masquerade[0].filtering: expected a string, got a boolean");
}

TEST_CASE("two masquerade rules may not share a source", "[masquerade][config]")
{
    CHECK(rejected(masq(R"({"source":"10.0.1.0/24"},{"source":"10.0.1.0/24"})")) ==
          "masquerade[1].source: 10.0.1.0/24 is already masquerade[0]'s source");
    // Compared as prefixes, whatever else the rules say.
    CHECK(rejected(masq(R"({"source":"10.0.2.0/24"},{"source":"10.0.1.0/24","ports":"5000"},
                           {"source":"10.0.1.0/24","to_source":"203.0.113.2"})")) ==
          "masquerade[2].source: 10.0.1.0/24 is already masquerade[1]'s source");
    CHECK(rejected(masq(R"({"source":"10.0.1.7"},{"source":"10.0.1.7/32"})")) ==
          "masquerade[1].source: 10.0.1.7/32 is already masquerade[0]'s source");
}

TEST_CASE("at most 256 masquerade rules", "[masquerade][config]")
{
    Config most = accepted(many_rules(256));
    REQUIRE(most.masquerade.size() == 256);
    CHECK(most.masquerade[255].source == Prefix{0x0a00ff00u, 24});
    CHECK(rejected(many_rules(257)) == "masquerade: 257 rules, at most 256");
}

// ---- resolve_masquerade -------------------------------------------------------------------

TEST_CASE("resolve_masquerade fills a missing to_source with the WAN address", "[masquerade]")
{
    std::vector<Masquerade> rules = two_rules();
    rules[0].to_source.reset();
    auto r = resolve_masquerade(rules, kWan2, "eth0", kLocalLo, kLocalHi);
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    REQUIRE((*r)[0].to_source.has_value());
    CHECK(*(*r)[0].to_source == kWan2);
    // A given to_source is kept.
    REQUIRE((*r)[1].to_source.has_value());
    CHECK(*(*r)[1].to_source == kWan2);

    // Nothing else changes, but that to_source is known to be the WAN's.
    Masquerade expected = two_rules()[0];
    expected.to_source = kWan2;
    expected.to_source_is_wan = true;
    CHECK((*r)[0] == expected);
    CHECK((*r)[1] == two_rules()[1]);

    // With every to_source given, no WAN address is needed.
    auto given = resolve_masquerade(two_rules(), std::nullopt, "eth0", kLocalLo, kLocalHi);
    REQUIRE(given.ok());
    CHECK(*given == two_rules());

    auto none = resolve_masquerade({}, std::nullopt, "eth0", kLocalLo, kLocalHi);
    REQUIRE(none.ok());
    CHECK(none->empty());
}

TEST_CASE("resolve_masquerade needs a WAN address for a missing to_source", "[masquerade]")
{
    std::vector<Masquerade> rules = two_rules();
    rules[0].to_source.reset();
    CHECK(error_of(resolve_masquerade(rules, std::nullopt, "eth0", kLocalLo, kLocalHi)) ==
          "masquerade[0].to_source: not given, and WAN_IF eth0 has no IPv4 address to default to");

    std::vector<Masquerade> second = two_rules();
    second[1].to_source.reset();
    CHECK(error_of(resolve_masquerade(second, std::nullopt, "wan1", kLocalLo, kLocalHi)) ==
          "masquerade[1].to_source: not given, and WAN_IF wan1 has no IPv4 address to default to");
}

TEST_CASE("resolve_masquerade refuses ports inside the local ephemeral range", "[masquerade]")
{
    auto with_ports = [](uint16_t lo, uint16_t hi) {
        std::vector<Masquerade> rules = two_rules();
        rules[0].port_lo = lo;
        rules[0].port_hi = hi;
        return resolve_masquerade(rules, kWan, "eth0", kLocalLo, kLocalHi);
    };
    CHECK(error_of(with_ports(40000, 50000)) ==
          "masquerade[0].ports: 40000-50000 lie within the gateway's own ephemeral ports "
          "(net.ipv4.ip_local_port_range 32768-60999), which source NAT never hands out");
    CHECK(error_of(with_ports(32768, 60999)) ==
          "masquerade[0].ports: 32768-60999 lie within the gateway's own ephemeral ports "
          "(net.ipv4.ip_local_port_range 32768-60999), which source NAT never hands out");
    CHECK(error_of(with_ports(40000, 40000)) ==
          "masquerade[0].ports: 40000-40000 lie within the gateway's own ephemeral ports "
          "(net.ipv4.ip_local_port_range 32768-60999), which source NAT never hands out");
    CHECK_THAT(error_of(with_ports(40000, 50000)), Catch::Matchers::Contains("net.ipv4.ip_local_port_range"));

    // The second rule is checked too, and the message carries the local range it was given.
    std::vector<Masquerade> rules = two_rules();
    CHECK(error_of(resolve_masquerade(rules, kWan, "eth0", 5000, 6000)) ==
          "masquerade[1].ports: 5000-6000 lie within the gateway's own ephemeral ports "
          "(net.ipv4.ip_local_port_range 5000-6000), which source NAT never hands out");

    // Partly outside leaves ports to hand out, so it is accepted.
    for (auto [lo, hi] : {std::pair<uint16_t, uint16_t>{30000, 40000}, {60000, 65535},
                          {32767, 60999}, {32768, 61000}, {1024, 65535}, {5000, 6000}}) {
        INFO(lo << "-" << hi);
        auto r = with_ports(lo, hi);
        REQUIRE(r.ok());
        CHECK((*r)[0].port_lo == lo);
        CHECK((*r)[0].port_hi == hi);
    }
}

// ---- masq_trie_entries and descriptors ----------------------------------------------------

TEST_CASE("masq_trie_entries lays out source and exclusion keys", "[masquerade]")
{
    std::vector<MasqEntry> entries = masq_trie_entries(two_rules());
    // Each rule's source entry, then its exclusions, in list order.
    REQUIRE(entries.size() == 5);

    auto check_value = [](const xnat_masq_rule &v, uint32_t to_source, uint16_t lo, uint16_t hi,
                          uint16_t id, uint8_t flags) {
        CHECK(v.to_source == htonl(to_source));
        CHECK(v.port_lo == lo);
        CHECK(v.port_hi == hi);
        CHECK(v.rule_id == id);
        CHECK(v.flags == flags);
        CHECK(v.pad == 0);
    };
    auto check_source = [](const xnat_masq_key &k, uint32_t addr, uint32_t len) {
        CHECK(k.kind == XNAT_MASQ_SOURCE);
        CHECK(k.prefixlen == 32u + len);
        CHECK(k.addr == htonl(addr));
        CHECK(k.rule_id == 0);
        CHECK(k.pad == 0);
    };
    auto check_exclude = [](const xnat_masq_key &k, uint32_t addr, uint32_t len, uint16_t id) {
        CHECK(k.kind == XNAT_MASQ_EXCLUDE);
        CHECK(k.prefixlen == 32u + len);
        CHECK(k.addr == htonl(addr));
        CHECK(k.rule_id == htons(id));
        CHECK(k.pad == 0);
    };

    // Rule 0: 10.0.1.0/24 except 10.0.0.0/8 and 192.168.0.0/16, endpoint-independent.
    check_source(entries[0].key, 0x0a000100u, 24);
    CHECK(entries[0].key.prefixlen == 56u);
    check_value(entries[0].value, kWan, 1024, 65535, 0, XNAT_MASQ_F_EIF);
    check_exclude(entries[1].key, 0x0a000000u, 8, 0);
    CHECK(entries[1].key.prefixlen == 40u);
    check_value(entries[1].value, kWan, 1024, 65535, 0, XNAT_MASQ_F_EIF);
    check_exclude(entries[2].key, 0xc0a80000u, 16, 0);
    check_value(entries[2].value, kWan, 1024, 65535, 0, XNAT_MASQ_F_EIF);

    // Rule 1: 10.0.2.0/23 except 172.16.0.0/12, address-and-port-dependent.
    check_source(entries[3].key, 0x0a000200u, 23);
    check_value(entries[3].value, kWan2, 5000, 6000, 1, 0);
    check_exclude(entries[4].key, 0xac100000u, 12, 1);
    CHECK(entries[4].key.prefixlen == 44u);
    check_value(entries[4].value, kWan2, 5000, 6000, 1, 0);

    // The byte layout the datapath reads: the exclusion's rule id is big-endian, the ports are not.
    const auto *key_bytes = reinterpret_cast<const uint8_t *>(&entries[4].key);
    CHECK(key_bytes[4] == XNAT_MASQ_EXCLUDE);
    CHECK(key_bytes[6] == 0);
    CHECK(key_bytes[7] == 1);
    CHECK(key_bytes[8] == 172);
    CHECK(key_bytes[9] == 16);
    const auto *value_bytes = reinterpret_cast<const uint8_t *>(&entries[3].value);
    CHECK(value_bytes[0] == 203);
    CHECK(value_bytes[3] == 2);

    CHECK(masq_trie_entries({}).empty());

    // A /0 source with no exclusions is a single entry of prefixlen 32.
    Masquerade all;
    all.source = Prefix{0u, 0};
    all.to_source = kWan;
    std::vector<MasqEntry> one = masq_trie_entries({all});
    REQUIRE(one.size() == 1);
    check_source(one[0].key, 0u, 0);
    CHECK(one[0].key.prefixlen == 32u);
    check_value(one[0].value, kWan, 1024, 65535, 0, 0);
}

TEST_CASE("a masquerade descriptor round-trips", "[masquerade]")
{
    for (const Masquerade &m : two_rules()) {
        xnat_masq_desc d = to_masq_desc(m, 7);
        CHECK(d.source == htonl(m.source.addr));
        CHECK(d.source_len == m.source.len);
        CHECK(d.n_excludes == m.not_destination.size());
        for (size_t i = 0; i < m.not_destination.size(); ++i) {
            CHECK(d.exclude_addr[i] == htonl(m.not_destination[i].addr));
            CHECK(d.exclude_len[i] == m.not_destination[i].len);
        }
        CHECK(d.rule.to_source == htonl(*m.to_source));
        CHECK(d.rule.port_lo == m.port_lo);
        CHECK(d.rule.port_hi == m.port_hi);
        CHECK(d.rule.rule_id == 7);
        CHECK(d.rule.flags == (m.filtering == Filtering::endpoint_independent ? XNAT_MASQ_F_EIF : 0));
        CHECK(d.to_source_default == 0);
        CHECK(from_masq_desc(d) == m);
    }

    // Sixteen exclusions, the most a descriptor holds.
    Masquerade full = two_rules()[0];
    full.not_destination.clear();
    for (uint32_t i = 0; i < XNAT_MASQ_MAX_EXCLUDES; ++i)
        full.not_destination.push_back(Prefix{0xac100000u | (i << 8), 24});
    xnat_masq_desc d = to_masq_desc(full, 255);
    CHECK(d.n_excludes == 16);
    CHECK(d.exclude_addr[15] == htonl(0xac100f00u));
    CHECK(from_masq_desc(d) == full);
}

// ---- describe, JSON and listings ----------------------------------------------------------

TEST_CASE("describe and masquerade_to_json show a rule", "[masquerade]")
{
    std::vector<Masquerade> rules = two_rules();
    CHECK(describe(rules[0]) == "masquerade 10.0.1.0/24 !10.0.0.0/8 !192.168.0.0/16 -> "
                                "203.0.113.1:1024-65535 filtering endpoint_independent");
    CHECK(describe(rules[1]) == "masquerade 10.0.2.0/23 !172.16.0.0/12 -> 203.0.113.2:5000-6000 "
                                "filtering address_port_dependent");
    Masquerade plain;
    plain.source = prefix("10.0.3.0/24");
    plain.port_lo = plain.port_hi = 5000;
    CHECK(describe(plain) == "masquerade 10.0.3.0/24 -> WAN address:5000-5000 filtering address_port_dependent");

    CHECK(masquerade_to_json(rules[0]) ==
          nlohmann::json{{"source", "10.0.1.0/24"},
                         {"not_destination", {"10.0.0.0/8", "192.168.0.0/16"}},
                         {"to_source", "203.0.113.1"},
                         {"ports", "1024-65535"},
                         {"filtering", "endpoint_independent"}});
    // No to_source key when it is the WAN address; not_destination is always a list.
    CHECK(masquerade_to_json(plain) == nlohmann::json{{"source", "10.0.3.0/24"},
                                                      {"not_destination", nlohmann::json::array()},
                                                      {"ports", "5000-5000"},
                                                      {"filtering", "address_port_dependent"}});
    CHECK(masquerade_to_json(plain).dump() ==
          R"({"filtering":"address_port_dependent","not_destination":[],"ports":"5000-5000","source":"10.0.3.0/24"})");
}

TEST_CASE("format_rules lists masquerade rules after the forwards", "[masquerade][format]")
{
    auto fwd = make_port_forward("tcp", "203.0.113.1:22012", "10.0.0.12:22", "wan");
    REQUIRE(fwd.ok());
    std::vector<StoredRule> stored = {{3, *fwd}};
    std::vector<Masquerade> rules = two_rules();

    CHECK(format_rules(stored, rules) ==
          "3\ttcp 203.0.113.1:22012 -> 10.0.0.12:22 on wan\n"
          "-\tmasquerade 10.0.1.0/24 !10.0.0.0/8 !192.168.0.0/16 -> 203.0.113.1:1024-65535 "
          "filtering endpoint_independent\n"
          "-\tmasquerade 10.0.2.0/23 !172.16.0.0/12 -> 203.0.113.2:5000-6000 "
          "filtering address_port_dependent\n");
    CHECK(format_rules({}, {rules[1]}) == "-\tmasquerade 10.0.2.0/23 !172.16.0.0/12 -> "
                                          "203.0.113.2:5000-6000 filtering address_port_dependent\n");
    CHECK(format_rules(stored) == "3\ttcp 203.0.113.1:22012 -> 10.0.0.12:22 on wan\n");
    CHECK(format_rules({}, {}) == "");
}

TEST_CASE("rules_to_json with masquerade loads back as the same rules", "[masquerade][format]")
{
    auto fwd = make_port_forward("udp", "203.0.113.1:6000-6009", "10.0.0.20:6000", "wan");
    REQUIRE(fwd.ok());
    std::vector<StoredRule> stored = {{0, *fwd}};
    std::vector<Masquerade> rules = two_rules();
    Masquerade plain;
    plain.source = prefix("10.0.3.0/24");
    plain.port_lo = plain.port_hi = 5000;
    rules.push_back(plain);

    nlohmann::json j = rules_to_json(stored, rules);
    REQUIRE(j.contains("masquerade"));
    REQUIRE(j["masquerade"].size() == 3);
    CHECK(j["masquerade"][0] == masquerade_to_json(rules[0]));
    CHECK(j["masquerade"][2] == masquerade_to_json(plain));
    CHECK(j["port_forwards"] == nlohmann::json::array({port_forward_to_json(*fwd)}));
    CHECK(j.size() == 2);

    Config back = accepted(j.dump());
    REQUIRE(back.port_forwards.size() == 1);
    CHECK(back.port_forwards[0] == *fwd);
    CHECK(back.masquerade == rules);
    REQUIRE(back.masquerade.size() == 3);
    CHECK_FALSE(back.masquerade[2].to_source.has_value());

    // Pretty-printed too, and the contract form itself.
    CHECK(accepted(j.dump(2)).masquerade == rules);
    Config full = accepted(kFull);
    CHECK(accepted(rules_to_json({}, full.masquerade).dump()).masquerade == full.masquerade);

    // Without masquerade rules the key is left out.
    nlohmann::json bare = rules_to_json(stored);
    CHECK_FALSE(bare.contains("masquerade"));
    CHECK(accepted(bare.dump()).masquerade.empty());
}

TEST_CASE("a to_source taken from the WAN address is remembered and not written back", "[masquerade]")
{
    Masquerade m;
    m.source = Prefix{0x0a000100u, 24}; // 10.0.1.0/24
    auto resolved = resolve_masquerade({m}, 0xc6336401u, "eth0", 32768, 60999);
    REQUIRE(resolved);
    const Masquerade &r = resolved->at(0);
    CHECK(r.to_source == 0xc6336401u);
    CHECK(r.to_source_is_wan);

    xnat_masq_desc d = to_masq_desc(r, 0);
    CHECK(d.to_source_default == 1);
    CHECK(from_masq_desc(d) == r);
    CHECK(describe(r) == "masquerade 10.0.1.0/24 -> 198.51.100.1 (WAN address):1024-65535 filtering address_port_dependent");
    // Saved as a config, the rule keeps following the WAN address.
    CHECK_FALSE(masquerade_to_json(r).contains("to_source"));

    Masquerade given = m;
    given.to_source = 0xcb007101u;
    auto kept = resolve_masquerade({given}, 0xc6336401u, "eth0", 32768, 60999);
    REQUIRE(kept);
    CHECK_FALSE(kept->at(0).to_source_is_wan);
    CHECK(masquerade_to_json(kept->at(0)).at("to_source") == "203.0.113.1");
}

TEST_CASE("xnat-load --follow-wan parks WAN-following rules while the WAN has no address", "[masquerade]")
{
    Masquerade m;
    m.source = Prefix{0x0a000100u, 24}; // 10.0.1.0/24
    auto parked = resolve_masquerade({m}, std::nullopt, "eth0", 32768, 60999, true);
    REQUIRE(parked);
    const Masquerade &r = parked->at(0);
    CHECK_FALSE(r.to_source.has_value());
    CHECK(r.to_source_is_wan);
    // In the datapath a to_source of 0 translates nothing; read back, it is parked again, not
    // a rule on 0.0.0.0.
    CHECK(masq_trie_entries({r}).at(0).value.to_source == 0);
    xnat_masq_desc d = to_masq_desc(r, 0);
    CHECK(from_masq_desc(d) == r);
    CHECK(describe(r) == "masquerade 10.0.1.0/24 -> WAN address:1024-65535 filtering address_port_dependent");
    // A given to_source is kept as it is.
    Masquerade given = m;
    given.to_source = 0xcb007101u;
    auto kept = resolve_masquerade({given}, std::nullopt, "eth0", 32768, 60999, true);
    REQUIRE(kept);
    CHECK(kept->at(0).to_source == 0xcb007101u);
    CHECK_FALSE(kept->at(0).to_source_is_wan);
}

TEST_CASE("mapping tables are full size only with masquerade", "[masquerade]")
{
    auto plain = parse_config(R"({"limits":{"connections":100000}})");
    REQUIRE(plain);
    CHECK(plain->mapping_capacity() == XNAT_HAIRPIN_ONLY_MAPPINGS + XNAT_SNAT_HEADROOM);
    auto small = parse_config(R"({"limits":{"connections":100}})");
    REQUIRE(small);
    CHECK(small->mapping_capacity() == 100 + XNAT_SNAT_HEADROOM);
    auto masq = parse_config(R"({"masquerade":[{"source":"10.0.0.0/24"}],"limits":{"connections":100000}})");
    REQUIRE(masq);
    CHECK(masq->mapping_capacity() == 100000 + XNAT_SNAT_HEADROOM);
}
