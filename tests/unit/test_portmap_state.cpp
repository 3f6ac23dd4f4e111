// xnat-portmapd's saved mappings: written, read back the same, and refused whole when broken.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "portmap/portmap_metrics.h"
#include "portmap/state_file.h"

using namespace xnat;
using namespace xnat::portmap;

namespace {

const std::vector<Mapping> kMappings = {
    {Protocol::tcp, 0x0a00000c, 8080, 30005, 123456, Via::natpmp},
    {Protocol::udp, 0x0a00000c, 8080, 30005, 123999, Via::pcp,
     Nonce{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xfe, 0xff}},
    {Protocol::udp, 0x0a00000d, 5000, 30006, 7, Via::pcp},
};

std::string error_of(const std::string &text)
{
    auto r = parse_state(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::invalid_input);
    return r.error().message;
}

std::string one(const std::string &fields)
{
    return R"({"version": 1, "mappings": [{)" + fields + "}]}";
}

const std::string kGood =
    R"("proto": "tcp", "host": "10.0.0.12", "internal_port": 22, "external_port": 30001, )"
    R"("expires": 99, "via": "pcp")";

} // namespace

TEST_CASE("portmap state: written and read back the same")
{
    State state{kMappings, {{"granted", 3}, {"refused_quota", 1}}};
    std::string text = state_to_json(state);
    CHECK(text.find(R"("host": "10.0.0.12")") != std::string::npos);
    CHECK(text.find(R"("via": "pcp")") != std::string::npos);
    CHECK(text.find(R"("nonce": "00010203040506070809feff")") != std::string::npos);
    auto back = parse_state(text);
    REQUIRE(back);
    CHECK(*back == state);
    auto empty = parse_state(state_to_json({}));
    REQUIRE(empty);
    CHECK(empty->mappings.empty());
    CHECK(empty->requests.empty());
}

TEST_CASE("portmap state: a broken file is refused with its JSON path")
{
    REQUIRE(parse_state(one(kGood)));
    CHECK(error_of("[]") == "expected an object, got an array");
    CHECK(error_of(R"({"version": 2, "mappings": []})").rfind("version: ", 0) == 0);
    CHECK(error_of(R"({"mappings": []})") == "version: missing");
    CHECK(error_of(R"({"version": 1, "mappings": [], "extra": 1})").find("extra") != std::string::npos);
    CHECK(error_of(one(R"("proto": "sctp")" + kGood.substr(kGood.find(','))))
              .rfind("mappings[0].proto: expected \"tcp\" or \"udp\"", 0) == 0);
    std::string bad_host = kGood;
    bad_host.replace(bad_host.find("10.0.0.12"), 9, "10.0.0.300");
    CHECK(error_of(one(bad_host)).rfind("mappings[0].host: ", 0) == 0);
    std::string port0 = kGood;
    port0.replace(port0.find("30001"), 5, "0");
    CHECK(error_of(one(port0)).rfind("mappings[0].external_port: ", 0) == 0);
    std::string no_expiry = kGood.substr(0, kGood.find(R"("expires")")) + R"("via": "pcp")";
    CHECK(error_of(one(no_expiry)) == "mappings[0]: missing \"expires\"");
    std::string bad_via = kGood;
    bad_via.replace(bad_via.find(R"("pcp")"), 5, R"("upnp")");
    CHECK(error_of(one(bad_via)) == "mappings[0].via: expected \"natpmp\" or \"pcp\"");
    CHECK(error_of(one(kGood + R"(, "note": "x")")).find("note") != std::string::npos);
    CHECK(error_of(one(kGood + R"(, "nonce": "00")")) == "mappings[0].nonce: expected 24 hexadecimal digits");
    CHECK(error_of(one(kGood + R"(, "nonce": "00010203040506070809FEFF")")) ==
          "mappings[0].nonce: expected 24 hexadecimal digits");
    CHECK(parse_state(one(kGood + R"(, "nonce": "00010203040506070809feff")")));
    CHECK(error_of(R"({"version": 1, "mappings": [], "requests": []})") ==
          "requests: expected an object, got an array");
    CHECK(error_of(R"({"version": 1, "mappings": [], "requests": {"granted": -1}})") ==
          "requests.granted: expected a count, got a negative number");
}

TEST_CASE("portmap state: a mapping twice, or an external port twice, is refused")
{
    std::vector<Mapping> twice = {kMappings[0], kMappings[0]};
    twice[1].external_port = 30009;
    CHECK(error_of(state_to_json({twice, {}})) == "mappings[1]: a second mapping of 10.0.0.12:8080");
    std::vector<Mapping> port_twice = {kMappings[0], kMappings[0]};
    port_twice[1].internal_port = 9090;
    CHECK(error_of(state_to_json({port_twice, {}})) == "mappings[1].external_port: 30005 is mapped twice");
}

TEST_CASE("portmap metrics: mappings by protocol and transport, requests by outcome, zeros included")
{
    State state{kMappings, {{"granted", 3}, {"quota", 2}, {"rate_limited", 7}}};
    std::string text = render_portmap_metrics(state);
    CHECK(text.find("# TYPE xnat_portmap_mappings gauge\n") != std::string::npos);
    CHECK(text.find("xnat_portmap_mappings{via=\"natpmp\",proto=\"tcp\"} 1\n") != std::string::npos);
    CHECK(text.find("xnat_portmap_mappings{via=\"pcp\",proto=\"udp\"} 2\n") != std::string::npos);
    CHECK(text.find("xnat_portmap_mappings{via=\"natpmp\",proto=\"udp\"} 0\n") != std::string::npos);
    CHECK(text.find("# TYPE xnat_portmap_requests_total counter\n") != std::string::npos);
    CHECK(text.find("xnat_portmap_requests_total{outcome=\"granted\"} 3\n") != std::string::npos);
    CHECK(text.find("xnat_portmap_requests_total{outcome=\"quota\"} 2\n") != std::string::npos);
    CHECK(text.find("xnat_portmap_requests_total{outcome=\"rate_limited\"} 7\n") != std::string::npos);
    CHECK(text.find("xnat_portmap_requests_total{outcome=\"malformed\"} 0\n") != std::string::npos);
    CHECK(text.find("xnat_portmap_requests_total{outcome=\"not_served\"} 0\n") != std::string::npos);
}

TEST_CASE("portmap state: the default file follows the pin dir, however it is written")
{
    CHECK(default_state_path("/sys/fs/bpf/xnat") == "/run/xnat/portmapd.json");
    CHECK(default_state_path("/sys/fs/bpf/xnat/") == "/run/xnat/portmapd.json");
    CHECK(default_state_path("/sys/fs/bpf/gw2") == "/run/xnat/portmapd-sys-fs-bpf-gw2.json");
    CHECK(default_state_path("/sys/fs/bpf/gw2//") == "/run/xnat/portmapd-sys-fs-bpf-gw2.json");
}
