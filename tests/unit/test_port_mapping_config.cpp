// The config's port_mapping section: what xnat-portmapd may hand out, and the ports it must
// leave to static forwards and masquerade.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "core/format.h"
#include "core/forward_table.h"
#include "core/mapped_forwards.h"
#include "core/nat_config.h"

using namespace xnat;

namespace {

std::string refusal(const std::string &json)
{
    INFO("config: " << json);
    auto r = parse_config(json);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::invalid_input);
    return r.error().message;
}

} // namespace

TEST_CASE("port_mapping: parsed with its defaults, and written back the same")
{
    auto cfg = parse_config(R"({"port_mapping": {"ports": "30000-30999"}})");
    REQUIRE(cfg);
    REQUIRE(cfg->port_mapping);
    const PortMappingConfig &p = *cfg->port_mapping;
    CHECK(p.port_lo == 30000);
    CHECK(p.port_hi == 30999);
    CHECK(p.per_host == 16);
    CHECK(p.min_lifetime == 120);
    CHECK(p.max_lifetime == 86400);
    CHECK(p.clients.empty());

    auto full = parse_config(R"({"port_mapping": {"ports": "40000", "per_host": 2, "min_lifetime": 60,
        "max_lifetime": 3600, "clients": ["10.0.0.0/24", "10.1.0.7"]}})");
    REQUIRE(full);
    const PortMappingConfig &f = *full->port_mapping;
    CHECK((f.port_lo == 40000 && f.port_hi == 40000 && f.per_host == 2));
    CHECK((f.min_lifetime == 60 && f.max_lifetime == 3600));
    REQUIRE(f.clients.size() == 2);
    CHECK(f.clients[1].len == 32);
    auto back = parse_port_mapping(port_mapping_to_json(f));
    REQUIRE(back);
    CHECK(*back == f);

    CHECK_FALSE(parse_config("{}")->port_mapping);
}

TEST_CASE("port_mapping: bad fields are refused by their JSON path")
{
    CHECK(refusal(R"({"port_mapping": []})") == "port_mapping: expected an object, got an array");
    CHECK(refusal(R"({"port_mapping": {}})").rfind("port_mapping", 0) == 0);
    CHECK(refusal(R"({"port_mapping": {"ports": "0-10"}})") == "port_mapping.ports: port 0 is not a valid port (1-65535)");
    CHECK(refusal(R"({"port_mapping": {"ports": "30000-70000"}})").rfind("port_mapping.ports: ", 0) == 0);
    CHECK(refusal(R"({"port_mapping": {"ports": "30000", "per_host": 0}})").rfind("port_mapping.per_host: ", 0) == 0);
    CHECK(refusal(R"({"port_mapping": {"ports": "30000", "min_lifetime": 600, "max_lifetime": 60}})") ==
          "port_mapping.min_lifetime: 600 is above max_lifetime 60");
    CHECK(refusal(R"({"port_mapping": {"ports": "30000", "clients": ["10.0.0.0/33"]}})")
              .rfind("port_mapping.clients[0]: ", 0) == 0);
    CHECK(refusal(R"({"port_mapping": {"ports": "30000", "hosts": 1}})").find("hosts") != std::string::npos);
}

TEST_CASE("port_mapping: a range shared with a static forward or with masquerade is refused")
{
    CHECK(refusal(R"({"port_forwards": [{"proto": "tcp", "from": "wan:30500", "to": "10.0.0.12:22"}],
                      "port_mapping": {"ports": "30000-30999"}})") ==
          "port_mapping.ports: 30000-30999 overlaps port_forwards[0] (tcp wan:30500 -> 10.0.0.12:22 on wan): a static "
          "forward's ports are never handed out");
    CHECK(refusal(R"({"masquerade": [{"source": "10.0.0.0/24"}], "port_mapping": {"ports": "30000-30999"}})") ==
          "port_mapping.ports: 30000-30999 overlaps masquerade[0].ports 1024-65535: give each its own range "
          "(masquerade's default is 1024-65535)");
    // A LAN-side forward's ports are the LAN's, and disjoint ranges are fine.
    CHECK(parse_config(R"({"port_forwards": [{"proto": "tcp", "on": "lan", "from": "10.0.0.12:30500",
                           "to": "198.51.100.7:22"}],
                           "masquerade": [{"source": "10.0.0.0/24", "ports": "1024-29999"}],
                           "port_mapping": {"ports": "30000-30999"}})"));
}

TEST_CASE("port_mapping: mapped forwards are marked in the listing and left out of its config form")
{
    PortForward mapped;
    mapped.proto = Proto::tcp;
    mapped.from_wan = true;
    mapped.mapped = true;
    mapped.from = {0x0a000001, 32, 30005, 30005};
    mapped.to = {0x0a00000c, 32, 8080, 8080};
    PortForward fixed = mapped;
    fixed.mapped = false;
    fixed.from.port_lo = fixed.from.port_hi = 31000;
    std::vector<StoredRule> rules = {{0, fixed}, {1, mapped}};
    std::string text = format_rules(rules, {}, {}, {{1, "pcp, expires in 100 s"}});
    CHECK(text.find("1\ttcp wan:30005 (10.0.0.1) -> 10.0.0.12:8080 on wan (mapped: pcp, expires in 100 s)\n") !=
          std::string::npos);
    CHECK(text.find("31000 (10.0.0.1) -> 10.0.0.12:8080 on wan\n") != std::string::npos);
    CHECK(format_rules(rules).find("(mapped: by xnat-portmapd)") != std::string::npos);
    auto json = rules_to_json(rules);
    REQUIRE(json["port_forwards"].size() == 1);
    CHECK(json["port_forwards"][0]["from"] == "wan:31000");
    // The mark survives the rules map's record.
    CHECK(from_rule_record(to_rule_record(mapped)).mapped);
    CHECK_FALSE(from_rule_record(to_rule_record(fixed)).mapped);
}

TEST_CASE("port_mapping: a reload keeps the daemon's forwards, on the new WAN address, unless the config claims the port")
{
    auto config = parse_config(R"({"port_forwards": [
        {"proto": "tcp", "from": "wan:31000", "to": "10.0.0.12:22"},
        {"proto": "udp", "from": "192.0.2.0/24:30500", "to": "10.0.0.0/24:53"}]})");
    REQUIRE(config);
    auto mapped = [](Proto proto, uint16_t ext, uint16_t id) {
        StoredRule r;
        r.id = id;
        r.fwd.proto = proto;
        r.fwd.from_wan = r.fwd.mapped = true;
        r.fwd.from = {0xc6336401, 32, ext, ext}; // on 198.51.100.1 before the reload
        r.fwd.to = {0x0a00000c, 32, 8080, 8080};
        return r;
    };
    std::vector<StoredRule> running = rules_from_config(*config);
    running.push_back(mapped(Proto::tcp, 30005, 7));  // kept
    running.push_back(mapped(Proto::tcp, 31000, 8));  // the config's wan:31000 now claims it
    running.push_back(mapped(Proto::udp, 30500, 9));  // kept: the config's block is not the WAN's address
    running.push_back(mapped(Proto::udp, 31000, 10)); // kept: the config claims TCP 31000 only

    auto kept = keep_mapped_forwards(rules_from_config(*config), running, 0xcb007101); // 203.0.113.1 now
    CHECK(kept.kept == 3);
    CHECK(kept.dropped == 1);
    REQUIRE(kept.rules.size() == 5);
    CHECK_FALSE(kept.rules[1].fwd.mapped);
    for (size_t i = 2; i < kept.rules.size(); ++i) {
        CHECK(kept.rules[i].id == i); // numbered after the config's
        CHECK(kept.rules[i].fwd.mapped);
        CHECK(kept.rules[i].fwd.from.addr == 0xcb007101);
    }
    CHECK(kept.rules[2].fwd.from.port_lo == 30005);

    // On the WAN's address inside the config's block, the block claims it; without an address,
    // any overlapping WAN-side forward does, and the kept ones are parked.
    auto inside = keep_mapped_forwards(rules_from_config(*config), running, 0xc0000207); // 192.0.2.7
    CHECK(inside.dropped == 2);
    auto none = keep_mapped_forwards(rules_from_config(*config), running, std::nullopt);
    CHECK(none.dropped == 2);
    CHECK(none.rules.back().fwd.parked());
}
