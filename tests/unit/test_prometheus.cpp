#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "core/prometheus.h"
#include "xnat/counters.h"
#include "xnat/maps.h"

using namespace xnat;
using Catch::Matchers::Contains;

namespace {

xnat_ct_key key(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint8_t proto)
{
    xnat_ct_key k{};
    k.saddr = htonl(saddr);
    k.daddr = htonl(daddr);
    k.sport = htons(sport);
    k.dport = htons(dport);
    k.proto = proto;
    return k;
}

Connection conn(uint8_t proto, uint8_t state, uint8_t flags, uint16_t sport)
{
    Connection c;
    c.original_key = key(0xc6336402u, 0xcb007101u, sport, 22012, proto);
    c.original.peer = key(0x0a00000cu, 0xc6336402u, 22, sport, proto);
    c.original.state = state;
    c.original.flags = flags;
    return c;
}

Masquerade masq(const char *source, uint32_t to, uint16_t lo, uint16_t hi)
{
    Masquerade m;
    m.source = *parse_prefix(source);
    m.to_source = to;
    m.port_lo = lo;
    m.port_hi = hi;
    return m;
}

MetricsSnapshot snapshot()
{
    MetricsSnapshot s;
    for (size_t i = 0; i < XNAT_CNT_COUNT; ++i)
        s.counters[i] = 100 + i;
    s.counters[XNAT_CNT_FLOW_ENDED] = s.counters[XNAT_CNT_NEW_FLOW] - 4; // the 4 connections below
    s.connections = std::vector<Connection>{conn(XNAT_PROTO_TCP, XNAT_TCP_ESTABLISHED, XNAT_CT_F_SEEN_REPLY, 40000),
                     conn(XNAT_PROTO_TCP, XNAT_TCP_ESTABLISHED, XNAT_CT_F_SEEN_REPLY, 40001),
                     conn(XNAT_PROTO_TCP, XNAT_TCP_SYN_SENT, 0, 40002),
                     conn(XNAT_PROTO_UDP, 0, XNAT_CT_F_SEEN_REPLY, 5000)};
    s.max_connections = 1024;
    s.tables = {{"xnat_ct", 8, 2048}, {"xnat_snat", 3, 1024}};
    s.snat = {{0xc6336401u, XNAT_PROTO_TCP, 2}, {0xcb007101u, XNAT_PROTO_UDP, 1}};
    StoredRule r;
    r.id = 3;
    r.fwd.proto = Proto::tcp;
    r.fwd.from = *parse_endpoint("203.0.113.1:22012");
    r.fwd.to = *parse_endpoint("10.0.0.12:22");
    s.rules = {r};
    s.masquerade = {masq("10.0.0.0/24", 0xc6336401u, 1024, 65535)};
    s.rule_hits.assign(XNAT_RULE_HIT_SLOTS, 0);
    s.rule_hits[3] = 7;
    s.rule_hits[XNAT_MAX_RULES] = 9;
    s.local_port_lo = 32768;
    s.local_port_hi = 60999;
    s.sweep.sweeps = 42;
    s.sweep.expired = 5;
    s.sweep.last_duration_ns = 1500000;
    return s;
}

} // namespace

TEST_CASE("PrometheusWriter writes HELP, TYPE and samples exactly", "[prometheus]")
{
    PrometheusWriter w;
    w.family("a_total", MetricType::counter, "Line one\nback\\slash");
    w.sample({}, uint64_t{18446744073709551615ull});
    w.sample({{"k", "v\"q\\\n"}, {"z", ""}}, uint64_t{0});
    w.family("g", MetricType::gauge, "A gauge.");
    w.sample({{"x", "1"}}, 0.0015);
    w.sample({}, std::numeric_limits<double>::infinity());
    CHECK(w.text() == "# HELP a_total Line one\\nback\\\\slash\n"
                      "# TYPE a_total counter\n"
                      "a_total 18446744073709551615\n"
                      "a_total{k=\"v\\\"q\\\\\\n\",z=\"\"} 0\n"
                      "# HELP g A gauge.\n"
                      "# TYPE g gauge\n"
                      "g{x=\"1\"} 0.0015\n"
                      "g +Inf\n");
}

// The checks run when names are compiled in (MetricName and LabelName are consteval): these
// static_asserts pin what they accept, and a bad literal such as w.family("bad-name", ...)
// does not build.
static_assert(valid_metric_name("xnat_packets_total"));
static_assert(valid_metric_name("ns:metric"));
static_assert(!valid_metric_name("9lives"));
static_assert(!valid_metric_name("has-dash"));
static_assert(!valid_metric_name(""));
static_assert(valid_label_name("reason"));
static_assert(valid_label_name("a1"));
static_assert(!valid_label_name("__reserved"));
static_assert(!valid_label_name("a:b"));
static_assert(!valid_label_name("bad label"));
static_assert(MetricName("xnat_x").view() == "xnat_x");
static_assert(LabelName("proto").view() == "proto");

TEST_CASE("metric and label names are checked", "[prometheus]")
{
    // The same functions at run time, for a name that is not a constant.
    std::string dash = "has-dash";
    CHECK_FALSE(valid_metric_name(dash));
    CHECK(valid_metric_name(dash.substr(0, 3)));
    CHECK_FALSE(valid_label_name(std::string("__x")));
}

TEST_CASE("masquerade_pool_size leaves out the gateway's ephemeral ports", "[prometheus]")
{
    std::vector<Masquerade> rules = {masq("10.0.0.0/24", 1, 1024, 65535)};
    CHECK(masquerade_pool_size(rules, 1, 32768, 60999) == 64512 - 28232);
    CHECK(masquerade_pool_size(rules, 1, 0, 0) == 64512);
    CHECK(masquerade_pool_size(rules, 2, 32768, 60999) == 0);
    // Two rules onto one address: the union of their ranges, counted once.
    rules.push_back(masq("10.0.1.0/24", 1, 2000, 3000));
    rules.push_back(masq("10.0.2.0/24", 2, 2000, 2999));
    CHECK(masquerade_pool_size(rules, 1, 32768, 60999) == 64512 - 28232);
    CHECK(masquerade_pool_size(rules, 2, 32768, 60999) == 1000);
    CHECK(masquerade_pool_size(rules, 2, 2500, 2599) == 900);
}

TEST_CASE("render_prometheus: every family, exactly", "[prometheus]")
{
    std::string text = render_prometheus(snapshot());
    CHECK_THAT(text,
               Contains("# HELP xnat_packets_total Packets by outcome: each packet an xnat program sees "
                        "ends in exactly one (xnat-map stats explains each).\n"
                        "# TYPE xnat_packets_total counter\n"
                        "xnat_packets_total{reason=\"redirected\"} 100\n"
                        "xnat_packets_total{reason=\"redirected_neigh\"} 101\n"));
    CHECK_THAT(text, Contains("xnat_packets_total{reason=\"drop_frag_clash\"} 122\n"
                              "# HELP xnat_events_total "));
    CHECK_THAT(text, Contains("# TYPE xnat_events_total counter\n"
                              "xnat_events_total{event=\"new_flow\"} 123\n"));
    CHECK_THAT(text, Contains("# HELP xnat_connections_tracked Connections in the table: flows created less "
                              "flows ended, from the datapath's counters.\n"
                              "# TYPE xnat_connections_tracked gauge\n"
                              "xnat_connections_tracked 4\n"
                              "# HELP xnat_connections Connections by protocol and state (served with "
                              "--per-state: each scrape reads the whole table).\n"
                              "# TYPE xnat_connections gauge\n"
                              "xnat_connections{proto=\"tcp\",state=\"SYN_SENT\"} 1\n"
                              "xnat_connections{proto=\"tcp\",state=\"SYN_RECV\"} 0\n"
                              "xnat_connections{proto=\"tcp\",state=\"ESTABLISHED\"} 2\n"
                              "xnat_connections{proto=\"tcp\",state=\"FIN_WAIT\"} 0\n"
                              "xnat_connections{proto=\"tcp\",state=\"CLOSE_WAIT\"} 0\n"
                              "xnat_connections{proto=\"tcp\",state=\"TIME_WAIT\"} 0\n"
                              "xnat_connections{proto=\"tcp\",state=\"CLOSE\"} 0\n"
                              "xnat_connections{proto=\"udp\",state=\"UNREPLIED\"} 0\n"
                              "xnat_connections{proto=\"udp\",state=\"REPLIED\"} 1\n"
                              "xnat_connections{proto=\"icmp\",state=\"UNREPLIED\"} 0\n"
                              "xnat_connections{proto=\"icmp\",state=\"REPLIED\"} 0\n"
                              "# HELP xnat_connections_max Size of the connection table in connections "
                              "(limits.connections).\n"
                              "# TYPE xnat_connections_max gauge\n"
                              "xnat_connections_max 1024\n"));
    CHECK_THAT(text, Contains("# TYPE xnat_table_entries gauge\n"
                              "xnat_table_entries{table=\"xnat_ct\"} 8\n"
                              "xnat_table_entries{table=\"xnat_snat\"} 3\n"));
    CHECK_THAT(text, Contains("# TYPE xnat_table_max_entries gauge\n"
                              "xnat_table_max_entries{table=\"xnat_ct\"} 2048\n"
                              "xnat_table_max_entries{table=\"xnat_snat\"} 1024\n"));
    CHECK_THAT(text, Contains("# TYPE xnat_snat_ports_in_use gauge\n"
                              "xnat_snat_ports_in_use{address=\"198.51.100.1\",proto=\"icmp\"} 0\n"
                              "xnat_snat_ports_in_use{address=\"198.51.100.1\",proto=\"tcp\"} 2\n"
                              "xnat_snat_ports_in_use{address=\"198.51.100.1\",proto=\"udp\"} 0\n"
                              "xnat_snat_ports_in_use{address=\"203.0.113.1\",proto=\"udp\"} 1\n"));
    CHECK_THAT(text, Contains("# TYPE xnat_snat_port_pool_size gauge\n"
                              "xnat_snat_port_pool_size{address=\"198.51.100.1\",proto=\"icmp\"} 36280\n"
                              "xnat_snat_port_pool_size{address=\"198.51.100.1\",proto=\"tcp\"} 36280\n"
                              "xnat_snat_port_pool_size{address=\"198.51.100.1\",proto=\"udp\"} 36280\n"
                              "# HELP xnat_forward_rule_flows_total "));
    CHECK_THAT(text, Contains("# TYPE xnat_forward_rule_flows_total counter\n"
                              "xnat_forward_rule_flows_total{rule=\"3\",proto=\"tcp\",on=\"wan\","
                              "from=\"203.0.113.1:22012\",to=\"10.0.0.12:22\"} 7\n"));
    CHECK_THAT(text, Contains("# TYPE xnat_masquerade_rule_flows_total counter\n"
                              "xnat_masquerade_rule_flows_total{rule=\"0\",source=\"10.0.0.0/24\"} 9\n"));
    CHECK_THAT(text, !Contains("to_source"));
    CHECK_THAT(text, Contains("# TYPE xnat_sweeps_total counter\nxnat_sweeps_total 42\n"));
    CHECK_THAT(text, Contains("# TYPE xnat_sweep_expired_total counter\nxnat_sweep_expired_total 5\n"));
    CHECK_THAT(text, Contains("# TYPE xnat_sweep_last_duration_seconds gauge\n"
                              "xnat_sweep_last_duration_seconds 0.0015\n"));
}

TEST_CASE("render_prometheus: well-formed 0.0.4 text, each counter once", "[prometheus]")
{
    std::string text = render_prometheus(snapshot());
    REQUIRE(!text.empty());
    CHECK(text.back() == '\n');
    const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+)");
    const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
    const std::regex sample(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")*\})? [0-9][0-9.e+-]*)");
    std::istringstream in(text);
    std::string line, helped, typed;
    std::set<std::string> families;
    size_t packets = 0, events = 0;
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_match(line, m, help)) {
            CHECK(families.insert(m[1]).second); // a family appears once
            helped = m[1];
        } else if (std::regex_match(line, m, type)) {
            CHECK(m[1] == helped); // TYPE right after its HELP
            typed = m[1];
        } else {
            INFO(line);
            REQUIRE(std::regex_match(line, m, sample));
            CHECK(m[1] == typed); // samples follow their family's TYPE
            packets += m[1] == "xnat_packets_total";
            events += m[1] == "xnat_events_total";
        }
    }
    CHECK(packets + events == XNAT_CNT_COUNT);
}

TEST_CASE("render_prometheus without the per-state read: the count from the counters only", "[prometheus]")
{
    MetricsSnapshot s = snapshot();
    s.connections.reset();
    std::string text = render_prometheus(s);
    CHECK_THAT(text, Contains("# TYPE xnat_connections_tracked gauge\n"
                              "xnat_connections_tracked 4\n"
                              "# HELP xnat_connections_max "));
    CHECK_THAT(text, !Contains("xnat_connections{"));
    CHECK_THAT(text, !Contains("# TYPE xnat_connections gauge"));
}

TEST_CASE("live_connections: new_flow - flow_ended, clamped to [0, max]", "[prometheus]")
{
    CounterValues c{};
    CHECK(live_connections(c, 1024) == 0);
    c[XNAT_CNT_NEW_FLOW] = 1000;
    c[XNAT_CNT_FLOW_ENDED] = 400;
    CHECK(live_connections(c, 1024) == 600);
    CHECK(live_connections(c, 600) == 600);
    // More created than the table holds: a read racing creations, never more than the capacity.
    CHECK(live_connections(c, 599) == 599);
    CHECK(live_connections(c, 0) == 0);
    // More ended than created, as a read can see while flows end: zero, not 2^64 - 1.
    c[XNAT_CNT_FLOW_ENDED] = 1001;
    CHECK(live_connections(c, 1024) == 0);
    c[XNAT_CNT_FLOW_ENDED] = 1000;
    CHECK(live_connections(c, 1024) == 0);
    // Counters that have run for years: the difference, not the sums, is what is bounded.
    c[XNAT_CNT_NEW_FLOW] = UINT64_MAX;
    c[XNAT_CNT_FLOW_ENDED] = UINT64_MAX - 3;
    CHECK(live_connections(c, 1024) == 3);
    // Other counters play no part.
    c[XNAT_CNT_CT_EXPIRED] = 77;
    c[XNAT_CNT_CT_EARLY_DROP] = 5;
    CHECK(live_connections(c, 1024) == 3);
}
static_assert(live_connections(CounterValues{}, 1) == 0);
