// Forwards on the WAN address ("from": "wan:PORT"): parsing, errors, expansion and records.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/forward_table.h"
#include "core/nat_config.h"
#include "core/wan_forwards.h"

using namespace xnat;

namespace {

constexpr uint32_t kWan = 0xc6336401u; // 198.51.100.1

std::string config_with(std::string_view from, std::string_view to, std::string_view extra = "")
{
    return R"({"port_forwards":[{"proto":"tcp","from":")" + std::string(from) + R"(","to":")" + std::string(to) +
           R"(")" + std::string(extra) + "}]}";
}

std::string refusal(const std::string &json)
{
    INFO("config: " << json);
    auto r = parse_config(json);
    if (r.ok())
        return "<accepted>";
    CHECK(r.error().kind == ErrorKind::invalid_input);
    return r.error().message;
}

Config accepted(const std::string &json)
{
    INFO("config: " << json);
    auto r = parse_config(json);
    if (!r.ok())
        FAIL("refused: " << r.error().message);
    return *r;
}

} // namespace

TEST_CASE("wan:PORT parses into a forward on the WAN address, unresolved", "[config][wan]")
{
    Config cfg = accepted(config_with("wan:8080", "10.0.0.5:80"));
    REQUIRE(cfg.port_forwards.size() == 1);
    const PortForward &f = cfg.port_forwards[0];
    CHECK(f.from_wan);
    CHECK(f.from.addr == 0);
    CHECK(f.parked());
    CHECK(f.from.port_lo == 8080);
    CHECK(f.from.port_hi == 8080);
    CHECK(f.side == Side::wan);
    CHECK(format_forward_from(f) == "wan:8080");
    CHECK(describe(f) == "tcp wan:8080 -> 10.0.0.5:80 on wan");
    // The stored form keeps wan:, so a listing saved as a config follows the WAN again.
    CHECK(port_forward_to_json(f)["from"] == "wan:8080");
}

TEST_CASE("wan: takes port ranges, offset ranges and a range onto a prefix", "[config][wan]")
{
    Config cfg = accepted(config_with("wan:6000-6009", "10.0.0.20:7000"));
    CHECK(cfg.port_forwards[0].from.port_lo == 6000);
    CHECK(cfg.port_forwards[0].from.port_hi == 6009);
    CHECK(cfg.port_forwards[0].to.port_lo == 7000);
    CHECK(cfg.port_forwards[0].to.port_hi == 7009);
    CHECK(format_forward_from(cfg.port_forwards[0]) == "wan:6000-6009");
    Config map = accepted(config_with("wan:22000-22255", "10.0.0.0/24:22"));
    CHECK(map.port_forwards[0].to.prefix_len == 24);
}

TEST_CASE("a bad wan: form gets one error naming its field", "[config][wan]")
{
    CHECK(refusal(config_with("wan:70000", "10.0.0.5:80")) ==
          "port_forwards[0].from: port 70000 out of range (1-65535)");
    CHECK(refusal(config_with("wan:0", "10.0.0.5:80")) == "port_forwards[0].from: port 0 is not a valid port (1-65535)");
    CHECK(refusal(config_with("wan:", "10.0.0.5:80")) == "port_forwards[0].from: expected wan:PORT[-PORT], got \"wan:\"");
    CHECK(refusal(config_with("wan:http", "10.0.0.5:80")) == "port_forwards[0].from: bad port \"http\"");
    CHECK(refusal(config_with("wan:90-80", "10.0.0.5:80")) == "port_forwards[0].from: port range 90-80 is reversed");
    CHECK(refusal(config_with("wan:1.2.3.4:80", "10.0.0.5:80")) == "port_forwards[0].from: bad port \"1.2.3.4:80\"");
    CHECK(refusal(config_with("wan:8000-8009", "10.0.0.5:80-81")) ==
          "port_forwards[0].from names 10 address:port pairs but port_forwards[0].to names 2; they must match one to one");
    CHECK(refusal(config_with("203.0.113.1:80", "wan:80")) ==
          "port_forwards[0].to: wan: is for port_forwards[0].from only; give the address of the host the traffic goes to");
    CHECK(refusal(config_with("wan:80", "10.0.0.5:80", R"(,"on":"lan")")) ==
          "port_forwards[0].on: a forward from wan:PORT applies on \"wan\" (LAN hosts reach it through hairpin), not "
          "on \"lan\"");
    // Case matters, as for every other keyword of the config.
    CHECK(refusal(config_with("WAN:80", "10.0.0.5:80")) == "port_forwards[0].from: bad IPv4 address \"WAN\"");
}

TEST_CASE("two wan: forwards on one port overlap whatever the address", "[config][wan]")
{
    std::string two = R"({"port_forwards":[{"proto":"tcp","from":"wan:8000-8009","to":"10.0.0.5:80"},
                                           {"proto":"tcp","from":"wan:8009","to":"10.0.0.6:80"}]})";
    CHECK(refusal(two) == "port_forwards[1]: overlaps port_forwards[0] at tcp wan:8009 on wan");
    // Another protocol, or an explicit address, does not clash before the WAN address is known.
    accepted(R"({"port_forwards":[{"proto":"tcp","from":"wan:8080","to":"10.0.0.5:80"},
                                  {"proto":"udp","from":"wan:8080","to":"10.0.0.5:80"},
                                  {"proto":"tcp","from":"203.0.113.1:8080","to":"10.0.0.6:80"}]})");
}

TEST_CASE("make_port_forward takes wan: on the command line", "[config][wan]")
{
    const ForwardFieldNames cli{"PROTO", "FROM", "TO", "--on"};
    auto ok = make_port_forward("tcp", "wan:8080", "10.0.0.5:80", "wan", cli);
    REQUIRE(ok.ok());
    CHECK(ok->from_wan);
    auto bad = make_port_forward("tcp", "wan:99999", "10.0.0.5:80", "wan", cli);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message == "FROM: port 99999 out of range (1-65535)");
    auto parsed = parse_forward_from("wan:22-23");
    REQUIRE(parsed.ok());
    CHECK(parsed->wan);
    CHECK(parsed->ep.port_lo == 22);
    CHECK(parsed->ep.port_hi == 23);
    CHECK_FALSE(parse_forward_from("203.0.113.1:22")->wan);
}

TEST_CASE("resolve_wan_forwards puts wan: forwards on the WAN address, parks or refuses", "[config][wan]")
{
    Config cfg = accepted(R"({"port_forwards":[{"proto":"tcp","from":"203.0.113.1:22","to":"10.0.0.4:22"},
                                               {"proto":"tcp","from":"wan:8080","to":"10.0.0.5:80"}]})");
    auto placed = resolve_wan_forwards(cfg.port_forwards, kWan, "wan0", false);
    REQUIRE(placed.ok());
    CHECK((*placed)[0] == cfg.port_forwards[0]); // explicit addresses are left alone
    CHECK((*placed)[1].from.addr == kWan);
    CHECK_FALSE((*placed)[1].parked());
    CHECK(describe((*placed)[1]) == "tcp wan:8080 (198.51.100.1) -> 10.0.0.5:80 on wan");
    CHECK(port_forward_to_json((*placed)[1])["from"] == "wan:8080");

    auto parked = resolve_wan_forwards(cfg.port_forwards, std::nullopt, "wan0", true);
    REQUIRE(parked.ok());
    CHECK((*parked)[1].parked());

    auto refused = resolve_wan_forwards(cfg.port_forwards, std::nullopt, "wan0", false);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().kind == ErrorKind::invalid_input);
    CHECK(refused.error().message == "port_forwards[1].from: wan:8080 is on the WAN address, and WAN_IF wan0 has no "
                                     "IPv4 address (xnat-load --follow-wan waits for one)");
}

TEST_CASE("a wan: forward expands on its address; a parked one not at all", "[forward_table][wan]")
{
    Config cfg = accepted(config_with("wan:6000-6001", "10.0.0.20:7000"));
    auto none = expand_forwards({{cfg.port_forwards[0], "port_forwards[0]", 3}});
    REQUIRE(none.ok());
    CHECK(none->empty());

    auto placed = resolve_wan_forwards(cfg.port_forwards, kWan, "wan0", false);
    REQUIRE(placed.ok());
    auto entries = expand_forwards({{(*placed)[0], "port_forwards[0]", 3}});
    REQUIRE(entries.ok());
    REQUIRE(entries->size() == 2);
    CHECK((*entries)[1].key.addr == htonl(kWan));
    CHECK((*entries)[1].key.port == htons(6001));
    CHECK((*entries)[1].target.port == htons(7001));
    CHECK((*entries)[1].target.rule_id == 3);

    // On the WAN address, it clashes with an explicit forward there.
    PortForward explicit_fwd = *make_port_forward("tcp", "198.51.100.1:6001", "10.0.0.9:1", "wan");
    auto clash = expand_forwards({{(*placed)[0], "rule 0", 0}, {explicit_fwd, "rule 1", 1}});
    REQUIRE_FALSE(clash.ok());
    CHECK(clash.error().message == "rule 1: overlaps rule 0 at tcp 198.51.100.1:6001 on wan");
}

TEST_CASE("the rules map record keeps the wan: form and the address in use", "[forward_table][wan]")
{
    Config cfg = accepted(config_with("wan:8080", "10.0.0.5:80"));
    auto placed = resolve_wan_forwards(cfg.port_forwards, kWan, "wan0", false);
    REQUIRE(placed.ok());
    xnat_fwd_rule rec = to_rule_record((*placed)[0]);
    CHECK(rec.flags == XNAT_FWD_F_FROM_WAN);
    CHECK(from_rule_record(rec) == (*placed)[0]);
    // Records written before the flag existed had 0 in its place: explicit addresses.
    xnat_fwd_rule plain = to_rule_record(*make_port_forward("tcp", "203.0.113.1:80", "10.0.0.5:80", "wan"));
    CHECK(plain.flags == 0);
    CHECK_FALSE(from_rule_record(plain).from_wan);
}
