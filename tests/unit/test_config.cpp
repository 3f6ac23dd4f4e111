#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/nat_config.h"

using namespace xnat;
using Catch::Matchers::StartsWith;

namespace {

const char *const kContract = R"({"port_forwards":[
    {"proto":"tcp","from":"203.0.113.1:22012","to":"10.0.0.12:22"},
    {"proto":"udp","from":"203.0.113.1:6000-6009","to":"10.0.0.20:6000"},
    {"proto":"tcp","on":"lan","from":"10.0.0.12:22","to":"198.51.100.7:22012"}]})";

Endpoint ep(const char *text)
{
    auto e = parse_endpoint(text);
    REQUIRE(e.ok());
    return *e;
}

// Parses a config that must be refused as invalid input and returns the error.
Error rejected(std::string_view json)
{
    INFO("config: " << json);
    auto r = parse_config(json);
    REQUIRE(r.ok() == false);
    CHECK(r.error().kind == ErrorKind::invalid_input);
    return r.error();
}

Config accepted(std::string_view json)
{
    INFO("config: " << json);
    auto r = parse_config(json);
    if (!r.ok())
        FAIL("refused: " << r.error().message);
    return *r;
}

// A config whose port_forwards are the given JSON objects.
std::string forwards(std::string_view list)
{
    return R"({"port_forwards":[)" + std::string(list) + "]}";
}

std::string tcp_forward(std::string_view from, std::string_view to, std::string_view on = "wan")
{
    return R"({"proto":"tcp","on":")" + std::string(on) + R"(","from":")" + std::string(from) +
           R"(","to":")" + std::string(to) + R"("})";
}

} // namespace

TEST_CASE("the contract config parses into the expected rules", "[config]")
{
    Config cfg = accepted(kContract);
    REQUIRE(cfg.port_forwards.size() == 3);

    const PortForward &ssh = cfg.port_forwards[0];
    CHECK(ssh.proto == Proto::tcp);
    CHECK(ssh.side == Side::wan);
    CHECK(ssh.from.addr == 0xcb007101u);
    CHECK(ssh.from.prefix_len == 32);
    CHECK(ssh.from.port_lo == 22012);
    CHECK(ssh.from.port_hi == 22012);
    CHECK(ssh.to.addr == 0x0a00000cu);
    CHECK(ssh.to.prefix_len == 32);
    CHECK(ssh.to.port_lo == 22);
    CHECK(ssh.to.port_hi == 22);

    const PortForward &game = cfg.port_forwards[1];
    CHECK(game.proto == Proto::udp);
    CHECK(game.side == Side::wan);
    CHECK(game.from.addr == 0xcb007101u);
    CHECK(game.from.prefix_len == 32);
    CHECK(game.from.port_lo == 6000);
    CHECK(game.from.port_hi == 6009);
    // A single target port is the base of a range the size of `from`.
    CHECK(game.to.addr == 0x0a000014u);
    CHECK(game.to.prefix_len == 32);
    CHECK(game.to.port_lo == 6000);
    CHECK(game.to.port_hi == 6009);
    CHECK(format_endpoint(game.to) == "10.0.0.20:6000-6009");

    const PortForward &out = cfg.port_forwards[2];
    CHECK(out.proto == Proto::tcp);
    CHECK(out.side == Side::lan);
    CHECK(out.from == ep("10.0.0.12:22"));
    CHECK(out.to == ep("198.51.100.7:22012"));

    CHECK(describe(ssh) == "tcp 203.0.113.1:22012 -> 10.0.0.12:22 on wan");
    CHECK(describe(game) == "udp 203.0.113.1:6000-6009 -> 10.0.0.20:6000-6009 on wan");
    CHECK(describe(out) == "tcp 10.0.0.12:22 -> 198.51.100.7:22012 on lan");
    CHECK(port_forward_to_json(game) == nlohmann::json{{"proto", "udp"},
                                                       {"on", "wan"},
                                                       {"from", "203.0.113.1:6000-6009"},
                                                       {"to", "10.0.0.20:6000-6009"}});
}

TEST_CASE("timeouts and limits default when absent", "[config]")
{
    for (const char *text : {"{}", R"({"port_forwards":[]})", kContract,
                             R"({"timeouts":{},"limits":{}})"}) {
        INFO(text);
        Config cfg = accepted(text);
        CHECK(cfg.timeouts.tcp_established == 7440);
        CHECK(cfg.timeouts.tcp_transitory == 240);
        CHECK(cfg.timeouts.tcp_close == 10);
        CHECK(cfg.timeouts.udp == 300);
        CHECK(cfg.timeouts.icmp == 60);
        CHECK(cfg.timeouts.tcp_syn_sent == 120);
        CHECK(cfg.timeouts.tcp_syn_recv == 60);
        CHECK(cfg.timeouts.udp_unreplied == 30);
        CHECK(cfg.limits.connections == 262144);
        CHECK(cfg.limits.host_connections == 0);
        CHECK(cfg.limits.host_ports == 0);
        CHECK(cfg.icmp_refusals.lan);
        CHECK_FALSE(cfg.icmp_refusals.wan);
        CHECK(cfg.icmp_refusals.per_second == 100);
    }
    CHECK(accepted("{}").port_forwards.empty());
}

TEST_CASE("timeouts and limits take the configured values", "[config]")
{
    Config all = accepted(R"({"timeouts":{"tcp_established":3600,"tcp_transitory":120,
        "tcp_close":5,"udp":180,"icmp":30},"limits":{"connections":1000}})");
    CHECK(all.timeouts.tcp_established == 3600);
    CHECK(all.timeouts.tcp_transitory == 120);
    CHECK(all.timeouts.tcp_close == 5);
    CHECK(all.timeouts.udp == 180);
    CHECK(all.timeouts.icmp == 30);
    CHECK(all.limits.connections == 1000);

    Config half_open = accepted(R"({"timeouts":{"tcp_syn_sent":240,"tcp_syn_recv":240,"udp_unreplied":120},
        "limits":{"host_connections":2000,"host_ports":500},
        "icmp_refusals":{"lan":false,"wan":true,"per_second":10}})");
    CHECK(half_open.timeouts.tcp_syn_sent == 240);
    CHECK(half_open.timeouts.tcp_syn_recv == 240);
    CHECK(half_open.timeouts.udp_unreplied == 120);
    CHECK(half_open.limits.host_connections == 2000);
    CHECK(half_open.limits.host_ports == 500);
    CHECK_FALSE(half_open.icmp_refusals.lan);
    CHECK(half_open.icmp_refusals.wan);
    CHECK(half_open.icmp_refusals.per_second == 10);
    xnat_timeouts k = to_kernel(half_open.timeouts);
    CHECK(k.tcp_syn_sent_s == 240);
    CHECK(k.tcp_syn_recv_s == 240);
    CHECK(k.udp_unreplied_s == 120);

    CHECK(rejected(R"({"limits":{"host_ports":196609}})").message ==
          "limits.host_ports: 196609 out of range (0-196608)");
    CHECK(rejected(R"({"limits":{"host_connections":-1}})").message ==
          "limits.host_connections: expected a whole number of at least 0, got a negative number");
    CHECK(rejected(R"({"icmp_refusals":{"wan":1}})").message ==
          "icmp_refusals.wan: expected true or false, got a number");
    CHECK(rejected(R"({"icmp_refusals":{"per_second":0}})").message ==
          "icmp_refusals.per_second: 0 out of range (1-1000000)");
    CHECK(rejected(R"({"icmp_refusals":{"rate":5}})").message ==
          "icmp_refusals: unknown key \"rate\" (expected lan, per_second, wan)");
    CHECK(rejected(R"({"icmp_refusals":true})").message == "icmp_refusals: expected an object, got a boolean");
    CHECK(rejected(R"({"timeouts":{"tcp_syn_recv":0}})").message ==
          "timeouts.tcp_syn_recv: 0 out of range (1-2592000)");

    // Fields left out keep their defaults.
    Config some = accepted(R"({"timeouts":{"udp":45}})");
    CHECK(some.timeouts.udp == 45);
    CHECK(some.timeouts.tcp_established == 7440);
    CHECK(some.timeouts.icmp == 60);

    Config bounds = accepted(R"({"timeouts":{"udp":1,"icmp":2592000},
        "limits":{"connections":16}})");
    CHECK(bounds.timeouts.udp == 1);
    CHECK(bounds.timeouts.icmp == 2592000);
    CHECK(bounds.limits.connections == 16);
    CHECK(accepted(R"({"limits":{"connections":16777216}})").limits.connections == 16777216);
}

TEST_CASE("mss_clamp takes pmtu or a number, and is off by default", "[config]")
{
    CHECK(accepted("{}").mss_clamp == 0);
    CHECK(accepted(R"({"mss_clamp":"pmtu"})").mss_clamp == XNAT_MSS_CLAMP_PMTU);
    CHECK(accepted(R"({"mss_clamp":1452})").mss_clamp == 1452);
    CHECK(accepted(R"({"mss_clamp":88})").mss_clamp == 88);
    CHECK(accepted(R"({"mss_clamp":65495})").mss_clamp == 65495);
    CHECK(rejected(R"({"mss_clamp":"auto"})").message == "mss_clamp: expected \"pmtu\" or a number, got \"auto\"");
    CHECK(rejected(R"({"mss_clamp":true})").message == "mss_clamp: expected \"pmtu\" or a number, got a boolean");
    CHECK(rejected(R"({"mss_clamp":87})").message == "mss_clamp: 87 out of range (88-65495)");
    CHECK(rejected(R"({"mss_clamp":65496})").message == "mss_clamp: 65496 out of range (88-65495)");
    CHECK(rejected(R"({"mss_clamp":1400.5})").message.rfind("mss_clamp: expected", 0) == 0);
}

TEST_CASE("malformed JSON is refused with its position", "[config]")
{
    CHECK_THAT(rejected(R"({"port_forwards":[})").message, StartsWith("parse error at line 1"));
    CHECK_THAT(rejected("{").message, StartsWith("parse error at line 1"));
    CHECK_THAT(rejected("").message, StartsWith("parse error at line 1"));
    CHECK_THAT(rejected("{} {}").message, StartsWith("parse error at line 1"));
    CHECK_THAT(rejected("{\"port_forwards\": [],}").message, StartsWith("parse error at line 1"));
    CHECK_THAT(rejected("{\n  \"port_forwards\": [\n    ,\n  ]\n}").message,
               StartsWith("parse error at line 3, column 5"));
    // No exception-type prefix leaks into the message.
    CHECK(rejected("{").message.find("json.exception") == std::string::npos);
}

TEST_CASE("invalid UTF-8 inside a string is refused", "[config]")
{
    std::string bad_byte = forwards("{\"proto\":\"tcp\",\"from\":\"203.0.113.1:22\xff\","
                                    "\"to\":\"10.0.0.1:22\"}");
    CHECK_THAT(rejected(bad_byte).message, StartsWith("parse error at line 1"));
    // An overlong encoding of '/'.
    std::string overlong = "{\"x\xc0\xaf\":1}";
    CHECK_THAT(rejected(overlong).message, StartsWith("parse error at line 1"));
    // A truncated multi-byte sequence at the end of a string.
    std::string truncated = "{\"limits\":{\"connections\":\"\xe2\x82\"}}";
    CHECK_THAT(rejected(truncated).message, StartsWith("parse error at line 1"));
}

TEST_CASE("the top level must be an object", "[config]")
{
    CHECK(rejected("[]").message == "expected a JSON object at the top, got an array");
    CHECK(rejected(R"("port_forwards")").message == "expected a JSON object at the top, got a string");
    CHECK(rejected("42").message == "expected a JSON object at the top, got a number");
    CHECK(rejected("true").message == "expected a JSON object at the top, got a boolean");
    CHECK(rejected("null").message == "expected a JSON object at the top, got null");
}

TEST_CASE("values of the wrong type are refused with their path", "[config]")
{
    CHECK(rejected(forwards(R"({"proto":6,"from":"203.0.113.1:22","to":"10.0.0.1:22"})")).message ==
          "port_forwards[0].proto: expected a string, got a number");
    CHECK(rejected(R"({"port_forwards":{"proto":"tcp"}})").message ==
          "port_forwards: expected an array, got an object");
    CHECK(rejected(R"({"port_forwards":"tcp"})").message ==
          "port_forwards: expected an array, got a string");
    CHECK(rejected(forwards(R"({"proto":"tcp","to":"10.0.0.1:22"})")).message ==
          "port_forwards[0]: missing \"from\"");
    CHECK(rejected(forwards(R"({"from":"203.0.113.1:22","to":"10.0.0.1:22"})")).message ==
          "port_forwards[0]: missing \"proto\"");
    CHECK(rejected(forwards(R"({"proto":"tcp","from":"203.0.113.1:22"})")).message ==
          "port_forwards[0]: missing \"to\"");
    CHECK(rejected(forwards(R"({"proto":"tcp","from":["203.0.113.1:22"],"to":"10.0.0.1:22"})"))
              .message == "port_forwards[0].from: expected a string, got an array");
    CHECK(rejected(forwards(R"({"proto":"tcp","from":"203.0.113.1:22","to":null})")).message ==
          "port_forwards[0].to: expected a string, got null");
    CHECK(rejected(forwards(R"({"proto":"tcp","on":true,"from":"203.0.113.1:22","to":"10.0.0.1:22"})"))
              .message == "port_forwards[0].on: expected a string, got a boolean");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:22", "10.0.0.1:22") + R"(,"ssh")")).message ==
          "port_forwards[1]: expected an object, got a string");
    CHECK(rejected(R"({"timeouts":[300]})").message == "timeouts: expected an object, got an array");
    CHECK(rejected(R"({"limits":1000})").message == "limits: expected an object, got a number");
}

TEST_CASE("unknown keys are refused wherever they appear", "[config]")
{
    CHECK(rejected(R"({"port_forward":[]})").message ==
          "unknown key \"port_forward\" (expected icmp_refusals, limits, masquerade, mss_clamp, port_forwards, port_mapping, timeouts)");
    CHECK(rejected(forwards(R"({"proto":"tcp","from":"203.0.113.1:22","to":"10.0.0.1:22","side":"lan"})"))
              .message == "port_forwards[0]: unknown key \"side\" (expected from, on, proto, to)");
    CHECK(rejected(R"({"timeouts":{"tcp":60}})").message ==
          "timeouts: unknown key \"tcp\" (expected icmp, tcp_close, tcp_established, tcp_syn_recv, tcp_syn_sent, tcp_transitory, udp, udp_unreplied)");
    CHECK(rejected(R"({"limits":{"max_connections":1000}})").message ==
          "limits: unknown key \"max_connections\" (expected connections, host_connections, host_ports)");
}

TEST_CASE("bad protocols, sides and addresses name the field", "[config]")
{
    CHECK(rejected(forwards(tcp_forward("203.0.113.256:22", "10.0.0.1:22"))).message ==
          "port_forwards[0].from: bad IPv4 address \"203.0.113.256\"");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:22", "10.0.0.01:22"))).message ==
          "port_forwards[0].to: bad IPv4 address \"10.0.0.01\"");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1", "10.0.0.1:22"))).message ==
          "port_forwards[0].from: expected ADDRESS[/PREFIX]:PORT[-PORT], got \"203.0.113.1\"");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:22", "10.0.0.1:22", "dmz"))).message ==
          "port_forwards[0].on: must be \"wan\" or \"lan\", got \"dmz\"");
    CHECK(rejected(forwards(R"({"proto":"sctp","from":"203.0.113.1:22","to":"10.0.0.1:22"})")).message ==
          "port_forwards[0].proto: protocol must be \"tcp\" or \"udp\", got \"sctp\"");
    CHECK(rejected(forwards(tcp_forward("10.0.0.1/24:22", "198.51.100.7:22000-22255", "lan"))).message ==
          "port_forwards[0].from: 10.0.0.1/24 has host bits set (network is 10.0.0.0/24)");
}

TEST_CASE("a port out of range is reported with its exact path", "[config]")
{
    std::string text = forwards(tcp_forward("203.0.113.1:22", "10.0.0.1:22") + "," +
                                tcp_forward("203.0.113.1:70000", "10.0.0.1:22"));
    CHECK(rejected(text).message == "port_forwards[1].from: port 70000 out of range (1-65535)");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:22", "10.0.0.1:0"))).message ==
          "port_forwards[0].to: port 0 is not a valid port (1-65535)");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:30-20", "10.0.0.1:20"))).message ==
          "port_forwards[0].from: port range 30-20 is reversed");
}

TEST_CASE("from and to must name the same number of pairs", "[config]")
{
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:6000-6009", "10.0.0.20:7000-7001"))).message ==
          "port_forwards[0].from names 10 address:port pairs but port_forwards[0].to names 2; "
          "they must match one to one");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:22", "10.0.0.20:22-23"))).message ==
          "port_forwards[0].from names 1 address:port pairs but port_forwards[0].to names 2; "
          "they must match one to one");
    // A range on `to` of the right size is taken as given.
    Config cfg = accepted(forwards(tcp_forward("203.0.113.1:6000-6009", "10.0.0.20:7000-7009")));
    CHECK(cfg.port_forwards[0].to == ep("10.0.0.20:7000-7009"));
}

TEST_CASE("an endpoint cannot have both a prefix and a port range", "[config]")
{
    CHECK(rejected(forwards(tcp_forward("10.0.0.0/24:22-23", "198.51.100.7:1000-1511", "lan"))).message ==
          "port_forwards[0].from: give an address prefix or a port range, not both");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:1000-1511", "10.0.0.0/24:22-23"))).message ==
          "port_forwards[0].to: give an address prefix or a port range, not both");
}

TEST_CASE("subnet maps between a port range and a prefix", "[config]")
{
    Config in = accepted(forwards(tcp_forward("203.0.113.1:22000-22255", "10.0.0.0/24:22")));
    REQUIRE(in.port_forwards.size() == 1);
    CHECK(in.port_forwards[0].from == ep("203.0.113.1:22000-22255"));
    CHECK(in.port_forwards[0].to == ep("10.0.0.0/24:22"));

    Config out = accepted(forwards(tcp_forward("10.0.0.0/24:22", "203.0.113.1:22000-22255", "lan")));
    REQUIRE(out.port_forwards.size() == 1);
    CHECK(out.port_forwards[0].side == Side::lan);
    CHECK(out.port_forwards[0].from == ep("10.0.0.0/24:22"));
    CHECK(out.port_forwards[0].to == ep("203.0.113.1:22000-22255"));

    CHECK(rejected(forwards(tcp_forward("203.0.113.1:22000-22255", "10.0.0.0/25:22"))).message ==
          "port_forwards[0].from names 256 address:port pairs but port_forwards[0].to names 128; "
          "they must match one to one");
    // A single target port is widened only for a port range, never for a prefix.
    CHECK(rejected(forwards(tcp_forward("10.0.0.0/24:22", "203.0.113.1:22000", "lan"))).message ==
          "port_forwards[0].from names 256 address:port pairs but port_forwards[0].to names 1; "
          "they must match one to one");
}

TEST_CASE("duplicate and overlapping rules name both rules", "[config]")
{
    std::string ssh = tcp_forward("203.0.113.1:22012", "10.0.0.12:22");
    CHECK(rejected(forwards(ssh + "," + ssh)).message ==
          "port_forwards[1]: overlaps port_forwards[0] at tcp 203.0.113.1:22012 on wan");
    CHECK(rejected(forwards(ssh + "," + tcp_forward("203.0.113.1:22012", "10.0.0.13:22"))).message ==
          "port_forwards[1]: overlaps port_forwards[0] at tcp 203.0.113.1:22012 on wan");
    CHECK(rejected(forwards(R"({"proto":"udp","from":"203.0.113.1:6000-6009","to":"10.0.0.20:6000"},
                               {"proto":"tcp","from":"203.0.113.1:6005","to":"10.0.0.21:6005"},
                               {"proto":"udp","from":"203.0.113.1:6005-6014","to":"10.0.0.21:6005"})"))
              .message == "port_forwards[2]: overlaps port_forwards[0] at udp 203.0.113.1:6005 on wan");
    CHECK(rejected(forwards(tcp_forward("10.0.0.0/24:22", "203.0.113.1:22000-22255", "lan") + "," +
                            tcp_forward("10.0.0.77:22", "198.51.100.7:22", "lan")))
              .message == "port_forwards[1]: overlaps port_forwards[0] at tcp 10.0.0.77:22 on lan");

    // Same destination on different sides or protocols is not an overlap.
    Config sides = accepted(forwards(ssh + "," + tcp_forward("203.0.113.1:22012", "10.0.0.12:22", "lan")));
    REQUIRE(sides.port_forwards.size() == 2);
    CHECK(sides.port_forwards[0].side == Side::wan);
    CHECK(sides.port_forwards[1].side == Side::lan);
    Config protos = accepted(forwards(
        ssh + R"(,{"proto":"udp","from":"203.0.113.1:22012","to":"10.0.0.12:22"})"));
    CHECK(protos.port_forwards.size() == 2);
    // Different targets may share a `to`: only `from` has to be unique.
    Config shared = accepted(forwards(ssh + "," + tcp_forward("203.0.113.1:22013", "10.0.0.12:22")));
    CHECK(shared.port_forwards.size() == 2);
}

TEST_CASE("duplicate JSON keys are refused", "[config]")
{
    CHECK(rejected(R"({"limits":{},"limits":{"connections":100}})").message == "duplicate key \"limits\"");
    CHECK(rejected(forwards(R"({"proto":"tcp","proto":"udp","from":"203.0.113.1:22","to":"10.0.0.1:22"})"))
              .message == "duplicate key \"proto\"");
    CHECK(rejected(R"({"timeouts":{"udp":30,"icmp":5,"udp":60}})").message == "duplicate key \"udp\"");
}

TEST_CASE("nesting deeper than 32 levels is refused", "[config]")
{
    auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
    // 32 levels pass the JSON check and fail only on shape.
    CHECK(rejected(nested(32)).message == "expected a JSON object at the top, got an array");
    CHECK(rejected(nested(33)).message == "nested deeper than 32 levels");
    CHECK(rejected(nested(1000)).message == "nested deeper than 32 levels");

    std::string deep_in_config = R"({"port_forwards":)" + nested(40) + "}";
    CHECK(rejected(deep_in_config).message == "nested deeper than 32 levels");
    std::string objects;
    for (int i = 0; i < 33; ++i)
        objects += R"({"a":)";
    objects += "1" + std::string(33, '}');
    CHECK(rejected(objects).message == "nested deeper than 32 levels");
}

TEST_CASE("timeouts must be whole numbers of seconds within range", "[config]")
{
    CHECK(rejected(R"({"timeouts":{"udp":-1}})").message ==
          "timeouts.udp: expected a whole number of at least 1, got a negative number");
    CHECK(rejected(R"({"timeouts":{"tcp_established":7440.5}})").message ==
          "timeouts.tcp_established: expected a whole number of at least 1, got a fractional number");
    CHECK(rejected(R"({"timeouts":{"tcp_close":0}})").message ==
          "timeouts.tcp_close: 0 out of range (1-2592000)");
    CHECK(rejected(R"({"timeouts":{"icmp":2592001}})").message ==
          "timeouts.icmp: 2592001 out of range (1-2592000)");
    CHECK(rejected(R"({"timeouts":{"tcp_transitory":18446744073709551615}})").message ==
          "timeouts.tcp_transitory: 18446744073709551615 out of range (1-2592000)");
    CHECK(rejected(R"({"timeouts":{"udp":"300"}})").message ==
          "timeouts.udp: expected a whole number of at least 1, got a string");
    CHECK(rejected(R"({"timeouts":{"udp":null}})").message ==
          "timeouts.udp: expected a whole number of at least 1, got null");
}

TEST_CASE("limits.connections must be within range", "[config]")
{
    CHECK(rejected(R"({"limits":{"connections":15}})").message ==
          "limits.connections: 15 out of range (16-16777216)");
    CHECK(rejected(R"({"limits":{"connections":16777217}})").message ==
          "limits.connections: 16777217 out of range (16-16777216)");
    CHECK(rejected(R"({"limits":{"connections":0}})").message ==
          "limits.connections: 0 out of range (16-16777216)");
    CHECK(rejected(R"({"limits":{"connections":-5}})").message ==
          "limits.connections: expected a whole number of at least 16, got a negative number");
    CHECK(rejected(R"({"limits":{"connections":1e6}})").message ==
          "limits.connections: expected a whole number of at least 16, got a fractional number");
}

TEST_CASE("special addresses cannot be forwarded", "[config]")
{
    CHECK(rejected(forwards(tcp_forward("127.0.0.1:22", "10.0.0.1:22"))).message ==
          "port_forwards[0].from: address 127.0.0.1 is loopback and cannot be forwarded");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:22", "127.0.0.53:53"))).message ==
          "port_forwards[0].to: address 127.0.0.53 is loopback and cannot be forwarded");
    CHECK(rejected(forwards(tcp_forward("224.0.0.1:22", "10.0.0.1:22"))).message ==
          "port_forwards[0].from: address 224.0.0.1 is multicast and cannot be forwarded");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:22", "239.255.255.250:1900"))).message ==
          "port_forwards[0].to: address 239.255.255.250 is multicast and cannot be forwarded");
    CHECK(rejected(forwards(tcp_forward("0.0.0.0:22", "10.0.0.1:22"))).message ==
          "port_forwards[0].from: address 0.0.0.0 is in 0.0.0.0/8 (\"this network\") and cannot be "
          "forwarded");
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:22", "255.255.255.255:22"))).message ==
          "port_forwards[0].to: address 255.255.255.255 is reserved or broadcast and cannot be "
          "forwarded");
    // A prefix is refused when it reaches into a special range, not only when it starts there.
    CHECK(rejected(forwards(tcp_forward("126.0.0.0/7:22", "10.0.0.0/7:22", "lan"))).message ==
          "port_forwards[0].from: address 127.255.255.255 is loopback and cannot be forwarded");
    CHECK(rejected(forwards(tcp_forward("10.0.0.0/24:22", "0.0.0.0/24:22", "lan"))).message ==
          "port_forwards[0].to: address 0.0.0.0 is in 0.0.0.0/8 (\"this network\") and cannot be "
          "forwarded");
}

TEST_CASE("a widened target range may not pass port 65535", "[config]")
{
    CHECK(rejected(forwards(tcp_forward("203.0.113.1:6000-6009", "10.0.0.20:65530"))).message ==
          "port_forwards[0].to: 10 ports from 65530 would pass 65535");
    Config last = accepted(forwards(tcp_forward("203.0.113.1:6000-6009", "10.0.0.20:65526")));
    CHECK(last.port_forwards[0].to == ep("10.0.0.20:65526-65535"));
}

TEST_CASE("at most XNAT_MAX_RULES rules", "[config]")
{
    auto many = [](unsigned count) {
        std::string list;
        for (unsigned i = 0; i < count; ++i)
            list += (i ? "," : "") + tcp_forward("203.0.113.1:" + std::to_string(10000 + i), "10.0.0.1:22");
        return forwards(list);
    };
    CHECK(accepted(many(XNAT_MAX_RULES)).port_forwards.size() == XNAT_MAX_RULES);
    CHECK(rejected(many(XNAT_MAX_RULES + 1)).message == "port_forwards: 4097 rules, at most 4096");
}

TEST_CASE("make_port_forward names the command-line arguments", "[config]")
{
    const ForwardFieldNames cli{"PROTO", "FROM", "TO", "--on"};
    auto check = [&](const char *proto, const char *from, const char *to, const char *on,
                     const std::string &message) {
        INFO(proto << " " << from << " " << to << " " << on);
        auto r = make_port_forward(proto, from, to, on, cli);
        REQUIRE(r.ok() == false);
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK(r.error().message == message);
    };
    check("tcp", "203.0.113.1:70000", "10.0.0.1:22", "wan", "FROM: port 70000 out of range (1-65535)");
    check("tcp", "203.0.113.1:22", "10.0.0.999:22", "wan", "TO: bad IPv4 address \"10.0.0.999\"");
    check("icmp", "203.0.113.1:22", "10.0.0.1:22", "wan",
          "PROTO: protocol must be \"tcp\" or \"udp\", got \"icmp\"");
    check("tcp", "203.0.113.1:22", "10.0.0.1:22", "both", "--on: must be \"wan\" or \"lan\", got \"both\"");
    check("udp", "203.0.113.1:6000-6009", "10.0.0.20:7000-7001", "wan",
          "FROM names 10 address:port pairs but TO names 2; they must match one to one");
    check("udp", "203.0.113.1:6000-6009", "10.0.0.20:65535", "wan", "TO: 10 ports from 65535 would pass 65535");
    check("tcp", "127.0.0.1:22", "10.0.0.1:22", "wan", "FROM: address 127.0.0.1 is loopback and cannot be forwarded");

    auto ok = make_port_forward("udp", "203.0.113.1:6000-6009", "10.0.0.20:6000", "lan", cli);
    REQUIRE(ok.ok());
    CHECK(ok->proto == Proto::udp);
    CHECK(ok->side == Side::lan);
    CHECK(ok->from == ep("203.0.113.1:6000-6009"));
    CHECK(ok->to == ep("10.0.0.20:6000-6009"));

    // Without names, the JSON keys are used.
    auto plain = make_port_forward("tcp", "203.0.113.1:70000", "10.0.0.1:22", "wan");
    REQUIRE(plain.ok() == false);
    CHECK(plain.error().message == "from: port 70000 out of range (1-65535)");
}

TEST_CASE("load_config_file reads a file and reports a missing one", "[config]")
{
    auto missing = load_config_file("/nonexistent/xnat-unit-test.json");
    REQUIRE(missing.ok() == false);
    CHECK(missing.error().kind == ErrorKind::invalid_input);
    CHECK(missing.error().message == "cannot open /nonexistent/xnat-unit-test.json: No such file or directory");

    auto path = (std::filesystem::temp_directory_path() /
                 ("xnat-unit-" + std::to_string(::getpid()) + ".json"))
                    .string();
    {
        std::ofstream out(path);
        out << kContract;
    }
    auto cfg = load_config_file(path);
    REQUIRE(cfg.ok());
    CHECK(cfg->port_forwards.size() == 3);
    CHECK(cfg->port_forwards[1].to == ep("10.0.0.20:6000-6009"));

    {
        std::ofstream out(path);
        out << R"({"limits":{"connections":1}})";
    }
    auto bad = load_config_file(path);
    std::remove(path.c_str());
    REQUIRE(bad.ok() == false);
    CHECK(bad.error().kind == ErrorKind::invalid_input);
    CHECK(bad.error().message == path + ": limits.connections: 1 out of range (16-16777216)");
}
