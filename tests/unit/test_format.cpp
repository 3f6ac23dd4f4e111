#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/format.h"
#include "core/nat_config.h"
#include "ct_key.h"

using namespace xnat;
using Catch::Matchers::Contains;

namespace {

using namespace xnat::test;

constexpr uint64_t kSecond = 1000000000ull;
constexpr uint32_t kClient = 0xc6336402u; // 198.51.100.2
constexpr uint32_t kPublic = 0xcb007101u; // 203.0.113.1
constexpr uint32_t kServer = 0x0a00000cu; // 10.0.0.12

// The forwarded SSH flow: 198.51.100.2:40000 -> 203.0.113.1:22012, rewritten to 10.0.0.12:22.
Connection ssh_connection()
{
    Connection c;
    c.original_key = key(kClient, kPublic, 40000, 22012, XNAT_PROTO_TCP);
    c.original.peer = key(kServer, kClient, 22, 40000, XNAT_PROTO_TCP);
    c.original.dir = XNAT_DIR_ORIGINAL;
    c.original.state = XNAT_TCP_ESTABLISHED;
    c.original.flags = XNAT_CT_F_SEEN_REPLY;
    c.original.packets = 12;
    c.original.bytes = 3456;
    c.original.last_seen = 1000; // ticks
    c.reply.peer = c.original_key;
    c.reply.dir = XNAT_DIR_REPLY;
    c.reply.packets = 10;
    c.reply.bytes = 5678;
    c.reply.last_seen = 1000;
    return c;
}

Connection udp_connection(uint8_t flags)
{
    Connection c;
    c.original_key = key(kClient, kPublic, 5000, 6003, XNAT_PROTO_UDP);
    c.original.peer = key(0x0a000014u, kClient, 6003, 5000, XNAT_PROTO_UDP);
    c.original.flags = flags;
    c.original.packets = 1;
    c.original.bytes = 60;
    c.original.last_seen = 50;
    c.reply.peer = c.original_key;
    c.reply.last_seen = 0;
    return c;
}

std::vector<std::string> lines_of(const std::string &text)
{
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

std::vector<std::string> words_of(const std::string &line)
{
    std::vector<std::string> words;
    std::istringstream in(line);
    for (std::string w; in >> w;)
        words.push_back(w);
    return words;
}

#define XNAT_TEST_COUNTER_NAME_(id, kind, name, help) name,
const char *const kCounterNames[] = {XNAT_COUNTER_LIST(XNAT_TEST_COUNTER_NAME_)};
#define XNAT_TEST_COUNTER_HELP_(id, kind, name, help) help,
const char *const kCounterHelp[] = {XNAT_COUNTER_LIST(XNAT_TEST_COUNTER_HELP_)};
#undef XNAT_TEST_COUNTER_NAME_
#undef XNAT_TEST_COUNTER_HELP_
static_assert(std::size(kCounterNames) == XNAT_CNT_COUNT);

} // namespace

TEST_CASE("format_connection prints conntrack's form", "[format]")
{
    Connection c = ssh_connection();
    // 37 ticks idle of 6930 (7440 s rounded up to ticks): 6893 ticks = 7401.3 s, shown as 7402.
    uint64_t now = 1037 * kTick;
    std::string line = format_connection(c, kTimeouts, now);
    CHECK_THAT(line, Contains("tcp ESTABLISHED src=198.51.100.2 dst=203.0.113.1 sport=40000 dport=22012 "
                              "src=10.0.0.12 dst=198.51.100.2 sport=22 dport=40000"));
    CHECK_THAT(line, Contains(" timeout=7402 "));
    CHECK_THAT(line, Contains(" packets=12 bytes=3456 "));
    CHECK_THAT(line, Contains(" reply_packets=10 reply_bytes=5678"));
    CHECK(line ==
          "tcp ESTABLISHED src=198.51.100.2 dst=203.0.113.1 sport=40000 dport=22012 "
          "src=10.0.0.12 dst=198.51.100.2 sport=22 dport=40000 timeout=7402 packets=12 bytes=3456 "
          "reply_packets=10 reply_bytes=5678");

    c.reply_missing = true;
    CHECK(format_connection(c, kTimeouts, now) == line + " [REPLY HALF MISSING]");

    Connection udp = udp_connection(0);
    // 10 ticks idle of 28 (30 s, unreplied): 18 ticks = 19.3 s, shown rounded up.
    CHECK(format_connection(udp, kTimeouts, 60 * kTick) ==
          "udp UNREPLIED src=198.51.100.2 dst=203.0.113.1 sport=5000 dport=6003 "
          "src=10.0.0.20 dst=198.51.100.2 sport=6003 dport=5000 timeout=20 packets=1 bytes=60 "
          "reply_packets=0 reply_bytes=0");
}

namespace {

// Within a tick of `want`: the datapath keeps time in 1.07 s ticks.
void check_left(const Connection &c, uint64_t now_ns, int64_t want)
{
    INFO("now " << now_ns / kSecond << " s, want about " << want);
    int64_t got = static_cast<int64_t>(seconds_left(c, kTimeouts, now_ns));
    CHECK(got >= want - 2);
    CHECK(got <= want + 2);
}

} // namespace

TEST_CASE("seconds_left counts down from the state's timeout", "[format]")
{
    Connection c = ssh_connection();
    uint64_t last = c.original.last_seen * kTick;
    CHECK(seconds_left(c, kTimeouts, last) == 7440); // never shown above the configured timeout
    check_left(c, last + 40 * kSecond, 7400);
    check_left(c, last + 7000 * kSecond, 440);
    CHECK(seconds_left(c, kTimeouts, last + 7443 * kSecond) == 0);
    CHECK(seconds_left(c, kTimeouts, last + 100000 * kSecond) == 0);
    // A stamp newer than the clock (read just before the packet arrived) is not idle time.
    CHECK(seconds_left(c, kTimeouts, last - 5 * kTick) == 7440);
    // Expiry never comes before the timeout.
    CHECK(seconds_left(c, kTimeouts, last + 7439 * kSecond) > 0);

    c.original.state = XNAT_TCP_SYN_SENT;
    check_left(c, last + 40 * kSecond, 80);
    c.original.state = XNAT_TCP_SYN_RECV;
    check_left(c, last + 40 * kSecond, 20);
    c.original.state = XNAT_TCP_TIME_WAIT;
    check_left(c, last + 40 * kSecond, 200);
    c.original.state = XNAT_TCP_CLOSE;
    check_left(c, last + 4 * kSecond, 6);
    CHECK(seconds_left(c, kTimeouts, last + 40 * kSecond) == 0);

    Connection udp = udp_connection(XNAT_CT_F_SEEN_REPLY);
    check_left(udp, udp.original.last_seen * kTick + 40 * kSecond, 260);
}

TEST_CASE("seconds_left uses the newer of the two halves", "[format]")
{
    Connection c = ssh_connection();
    c.original.last_seen = 100;
    c.reply.last_seen = 200;
    check_left(c, 240 * kTick, 7440 - 43);
    c.original.last_seen = 200;
    c.reply.last_seen = 100;
    check_left(c, 240 * kTick, 7440 - 43);
}

TEST_CASE("connection_state names TCP states and UDP reply status", "[format]")
{
    Connection c = ssh_connection();
    const std::vector<std::pair<uint8_t, std::string>> states = {
        {XNAT_TCP_NONE, "NONE"},           {XNAT_TCP_SYN_SENT, "SYN_SENT"},
        {XNAT_TCP_SYN_RECV, "SYN_RECV"},   {XNAT_TCP_ESTABLISHED, "ESTABLISHED"},
        {XNAT_TCP_FIN_WAIT, "FIN_WAIT"},   {XNAT_TCP_CLOSE_WAIT, "CLOSE_WAIT"},
        {XNAT_TCP_TIME_WAIT, "TIME_WAIT"}, {XNAT_TCP_CLOSE, "CLOSE"}};
    for (const auto &[state, name] : states) {
        c.original.state = state;
        CHECK(connection_state(c) == name);
        CHECK(tcp_state_name(state) == name);
    }
    CHECK(tcp_state_name(XNAT_TCP_STATE_COUNT) == "UNKNOWN");

    CHECK(connection_state(udp_connection(0)) == "UNREPLIED");
    CHECK(connection_state(udp_connection(XNAT_CT_F_SEEN_REPLY)) == "REPLIED");
    CHECK(connection_state(udp_connection(XNAT_CT_F_FIN_ORIG)) == "UNREPLIED");
    CHECK(connection_state(udp_connection(XNAT_CT_F_SEEN_REPLY | XNAT_CT_F_FIN_REPLY)) == "REPLIED");
    CHECK_THAT(format_connection(udp_connection(XNAT_CT_F_SEEN_REPLY), kTimeouts, 50 * kTick),
               Contains("udp REPLIED src=198.51.100.2"));
}

TEST_CASE("connection_to_json carries both tuples and counters", "[format]")
{
    Connection c = ssh_connection();
    nlohmann::json j = connection_to_json(c, kTimeouts, 1037 * kTick);
    nlohmann::json expected = {
        {"proto", "tcp"},
        {"state", "ESTABLISHED"},
        {"timeout", 7402},
        {"original",
         {{"src", "198.51.100.2"}, {"dst", "203.0.113.1"}, {"sport", 40000}, {"dport", 22012},
          {"packets", 12}, {"bytes", 3456}}},
        {"reply",
         {{"src", "10.0.0.12"}, {"dst", "198.51.100.2"}, {"sport", 22}, {"dport", 40000},
          {"packets", 10}, {"bytes", 5678}}}};
    CHECK(j == expected);
    CHECK(j.at("original").at("sport").is_number_unsigned());

    nlohmann::json udp = connection_to_json(udp_connection(0), kTimeouts, 50 * kTick);
    CHECK(udp.at("proto") == "udp");
    CHECK(udp.at("state") == "UNREPLIED");
    CHECK(udp.at("timeout") == 30); // unreplied
}

TEST_CASE("append_connection_json writes exactly what nlohmann's dump(2) of the list writes", "[format]")
{
    Connection big = ssh_connection();
    big.original.packets = UINT64_MAX; // the widest numbers
    big.reply.bytes = 18446744073709551615ull;
    big.original_key.proto = 47;       // a protocol without a name of its own
    std::vector<Connection> lists[] = {{}, {ssh_connection()},
                                       {ssh_connection(), udp_connection(0), udp_connection(XNAT_CT_F_SEEN_REPLY), big}};
    for (const auto &conns : lists) {
        nlohmann::json list = nlohmann::json::array();
        std::string out = conns.empty() ? "[]" : "[\n";
        for (size_t i = 0; i < conns.size(); ++i) {
            list.push_back(connection_to_json(conns[i], kTimeouts, 1037 * kTick));
            if (i > 0)
                out += ",\n";
            append_connection_json(out, conns[i], kTimeouts, 1037 * kTick);
        }
        if (!conns.empty())
            out += "\n]";
        CHECK(out == list.dump(2));
    }
}

TEST_CASE("format_stats lists connections and every counter", "[format]")
{
    StatsView s;
    s.connections = 5;
    s.max_connections = 262144;
    for (size_t i = 0; i < XNAT_CNT_COUNT; ++i)
        s.counters[i] = 1000 * (i + 1);

    std::vector<std::string> lines = lines_of(format_stats(s));
    REQUIRE(lines.size() == XNAT_CNT_COUNT + 2); // connections, the counters, the sweeper
    CHECK(words_of(lines[0]) == std::vector<std::string>{"connections", "5", "of", "262144"});
    for (size_t i = 0; i < XNAT_CNT_COUNT; ++i) {
        INFO("counter " << kCounterNames[i]);
        std::vector<std::string> words = words_of(lines[i + 1]);
        REQUIRE(words.size() >= 3);
        CHECK(words[0] == kCounterNames[i]);
        CHECK(words[1] == std::to_string(1000 * (i + 1)));
        CHECK_THAT(lines[i + 1], Contains(kCounterHelp[i]));
    }
    CHECK(words_of(lines[1])[0] == "redirected");
    CHECK(words_of(lines[XNAT_CNT_COUNT])[0] == kCounterNames[XNAT_CNT_COUNT - 1]);
    CHECK(words_of(lines.back())[0] == "sweeps");

    nlohmann::json j = stats_to_json(s);
    CHECK(j.at("connections") == 5);
    CHECK(j.at("max_connections") == 262144);
    REQUIRE(j.at("counters").size() == XNAT_CNT_COUNT);
    for (size_t i = 0; i < XNAT_CNT_COUNT; ++i)
        CHECK(j.at("counters").at(kCounterNames[i]) == 1000 * (i + 1));
}

TEST_CASE("rules_to_json loads back as the same rules", "[format]")
{
    auto cfg = parse_config(R"({"port_forwards":[
        {"proto":"tcp","from":"203.0.113.1:22012","to":"10.0.0.12:22"},
        {"proto":"udp","from":"203.0.113.1:6000-6009","to":"10.0.0.20:6000"},
        {"proto":"tcp","on":"lan","from":"10.0.0.12:22","to":"198.51.100.7:22012"},
        {"proto":"tcp","from":"203.0.113.2:22000-22255","to":"10.0.0.0/24:22"}]})");
    REQUIRE(cfg.ok());
    std::vector<StoredRule> rules;
    for (size_t i = 0; i < cfg->port_forwards.size(); ++i)
        rules.push_back({static_cast<uint16_t>(i + 10), cfg->port_forwards[i]});

    nlohmann::json j = rules_to_json(rules);
    REQUIRE(j.at("port_forwards").size() == 4);
    CHECK(j.at("port_forwards")[1] == nlohmann::json{{"proto", "udp"},
                                                     {"on", "wan"},
                                                     {"from", "203.0.113.1:6000-6009"},
                                                     {"to", "10.0.0.20:6000-6009"}});
    auto again = parse_config(j.dump(2));
    if (!again.ok())
        FAIL(again.error().message);
    CHECK(again->port_forwards == cfg->port_forwards);

    CHECK(rules_to_json({}) == nlohmann::json{{"port_forwards", nlohmann::json::array()}});
    auto empty = parse_config(rules_to_json({}).dump());
    REQUIRE(empty.ok());
    CHECK(empty->port_forwards.empty());

    CHECK(format_rules(rules) == "10\ttcp 203.0.113.1:22012 -> 10.0.0.12:22 on wan\n"
                                 "11\tudp 203.0.113.1:6000-6009 -> 10.0.0.20:6000-6009 on wan\n"
                                 "12\ttcp 10.0.0.12:22 -> 198.51.100.7:22012 on lan\n"
                                 "13\ttcp 203.0.113.2:22000-22255 -> 10.0.0.0/24:22 on wan\n");
}

TEST_CASE("format_hosts lists each host's share against the quota", "[format]")
{
    std::vector<HostUsage> hosts = {{0x0a000005u, 20, 10}, {0x0a000006u, 3, 3}};
    CHECK(format_hosts(hosts, 20, 0) == "host              connections    ports\n"
                                        "10.0.0.5                   20       10\n"
                                        "10.0.0.6                    3        3\n"
                                        "quota                      20     none\n");
    nlohmann::json j = hosts_to_json(hosts, 20, 0);
    CHECK(j.at("hosts").size() == 2);
    CHECK(j.at("hosts")[0] == nlohmann::json{{"host", "10.0.0.5"}, {"connections", 20}, {"ports", 10}});
    CHECK(j.at("quota").at("connections") == 20);
    CHECK(j.at("quota").at("ports").is_null());
    CHECK(format_hosts({}, 0, 0) == "host              connections    ports\n"
                                    "quota                    none     none\n");
}
