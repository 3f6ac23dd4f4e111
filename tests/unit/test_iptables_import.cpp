#include <catch2/catch.hpp>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/nat_config.h"
#include "import/iptables_import.h"

using namespace xnat;

namespace {

std::string fixture(const std::string &name)
{
    std::ifstream in(std::string(XNAT_IPTABLES_FIXTURES) + "/" + name);
    REQUIRE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

ImportReport imported(std::string_view text, const ImportOptions &opts = {})
{
    INFO("input:\n" << text);
    auto r = import_iptables(text, opts);
    if (!r.ok())
        FAIL("refused: " << r.error().message);
    // Whatever it writes must be a config xnat-load accepts.
    auto cfg = parse_config(r->config_json);
    if (!cfg.ok())
        FAIL("config refused: " << cfg.error().message << "\n" << r->config_json);
    return *r;
}

std::string refused(std::string_view text, const ImportOptions &opts = {})
{
    INFO("input:\n" << text);
    auto r = import_iptables(text, opts);
    if (r.ok())
        return "<accepted>";
    CHECK(r.error().kind == ErrorKind::invalid_input);
    return r.error().message;
}

// The report's lines as "LINE OUTCOME: MESSAGE".
std::vector<std::string> report_lines(const ImportReport &r, bool skip_no_effect = true)
{
    std::vector<std::string> out;
    for (const ImportLine &l : r.lines)
        if (!skip_no_effect || l.outcome != LineOutcome::no_effect)
            out.push_back(std::to_string(l.line) + " " + std::string(outcome_name(l.outcome)) + ": " + l.message);
    return out;
}

// A *nat table holding the given rule lines (from line 2 on).
std::string nat(std::string_view rules)
{
    return "*nat\n" + std::string(rules) + "COMMIT\n";
}

// The config of a single translated rule line, which must not be reported as unsupported.
std::string one(std::string_view rule, const ImportOptions &opts = {})
{
    auto r = imported(nat(std::string(rule) + "\n"), opts);
    INFO(report_lines(r).front());
    CHECK(r.count(LineOutcome::unsupported) == 0);
    return r.config_json;
}

// The reason a single rule line is not translated.
std::string why_not(std::string_view rule, const ImportOptions &opts = {})
{
    auto r = imported(nat(std::string(rule) + "\n"), opts);
    REQUIRE(r.lines.size() == 1);
    CHECK(r.lines[0].line == 2);
    if (r.lines[0].outcome != LineOutcome::unsupported)
        return "<" + std::string(outcome_name(r.lines[0].outcome)) + "> " + r.lines[0].message;
    CHECK(r.config_json == "{}\n");
    return r.lines[0].message;
}

std::string forward_json(std::string_view rule)
{
    return "{\n  \"port_forwards\": [\n    " + std::string(rule) + "\n  ]\n}\n";
}

std::string masq_json(std::string_view rule)
{
    return "{\n  \"masquerade\": [\n    " + std::string(rule) + "\n  ]\n}\n";
}

} // namespace

// ---- the fixtures: exact config and report ----------------------------------------------

TEST_CASE("iptables import: the seed's gateway A", "[import]")
{
    auto r = imported(fixture("seed-gateway-a.rules"));
    CHECK(r.config_json == forward_json(
                               R"({ "proto": "tcp", "on": "wan", "from": "203.0.113.1:22012", "to": "10.0.0.12:22" })"));
    CHECK(report_lines(r) ==
          std::vector<std::string>{"8 translated: port_forwards[0]: tcp 203.0.113.1:22012 -> 10.0.0.12:22 on wan "
                                   "(no -i: on wan, as 203.0.113.1 is not a private address)"});
    CHECK(r.count(LineOutcome::no_effect) == 4); // the four ACCEPT policies
    CHECK(r.wan.empty());
}

TEST_CASE("iptables import: the seed's gateway B", "[import]")
{
    auto r = imported(fixture("seed-gateway-b.rules"));
    CHECK(r.config_json == "{\n"
                           "  \"port_forwards\": [\n"
                           "    { \"proto\": \"tcp\", \"on\": \"lan\", \"from\": \"10.0.0.12:22\", \"to\": \"203.0.113.1:22012\" }\n"
                           "  ],\n"
                           "  \"masquerade\": [\n"
                           "    { \"source\": \"0.0.0.0/0\", \"not_destination\": [\"10.0.0.0/8\"], \"to_source\": \"198.51.100.1\" }\n"
                           "  ]\n"
                           "}\n");
    CHECK(report_lines(r) ==
          std::vector<std::string>{
              "9 translated: port_forwards[0]: tcp 10.0.0.12:22 -> 203.0.113.1:22012 on lan "
              "(no -i: on lan, as 10.0.0.12 is a private address)",
              "10 translated: masquerade[0]: masquerade 0.0.0.0/0 !10.0.0.0/8 -> 198.51.100.1:1024-65535 filtering "
              "address_port_dependent (no -s: every source on the LAN)"});
    CHECK(r.wan == "eth0");
}

TEST_CASE("iptables import: port forwards with ranges, offsets and comments", "[import]")
{
    auto r = imported(fixture("port-forward.rules"));
    CHECK(r.config_json ==
          "{\n"
          "  \"port_forwards\": [\n"
          "    { \"proto\": \"tcp\", \"on\": \"wan\", \"from\": \"203.0.113.1:22012\", \"to\": \"10.0.0.12:22\" },\n"
          "    { \"proto\": \"udp\", \"on\": \"wan\", \"from\": \"203.0.113.1:6000-6009\", \"to\": \"10.0.0.12:6000-6009\" },\n"
          "    { \"proto\": \"tcp\", \"on\": \"wan\", \"from\": \"203.0.113.1:8000-8009\", \"to\": \"10.0.0.12:9000-9009\" },\n"
          "    { \"proto\": \"tcp\", \"on\": \"wan\", \"from\": \"203.0.113.1:443\", \"to\": \"10.0.0.12:443\" }\n"
          "  ]\n"
          "}\n");
    CHECK(r.count(LineOutcome::translated) == 4);
    CHECK(r.count(LineOutcome::unsupported) == 0);
    CHECK(r.wan == "eth0"); // from the first -i, for want of a SNAT rule naming it
    CHECK(r.lines[4].message.find("-i eth0 taken as the WAN interface") != std::string::npos);
}

TEST_CASE("iptables import: masquerade and SNAT", "[import]")
{
    auto r = imported(fixture("masquerade.rules"));
    CHECK(r.config_json == "{\n"
                           "  \"masquerade\": [\n"
                           "    { \"source\": \"10.0.0.0/24\", \"not_destination\": [\"10.0.0.0/8\"] },\n"
                           "    { \"source\": \"10.0.3.0/24\", \"to_source\": \"203.0.113.9\" }\n"
                           "  ]\n"
                           "}\n");
    CHECK(r.count(LineOutcome::translated) == 2);
    CHECK(r.count(LineOutcome::unsupported) == 0);
    CHECK(r.wan == "eth0");
}

TEST_CASE("iptables import: every unsupported rule is reported with its line and reason", "[import]")
{
    auto r = imported(fixture("unsupported.rules"));
    CHECK(r.config_json == "{\n"
                           "  \"port_forwards\": [\n"
                           "    { \"proto\": \"tcp\", \"on\": \"wan\", \"from\": \"203.0.113.1:80\", \"to\": \"10.0.0.12:8080\" }\n"
                           "  ],\n"
                           "  \"masquerade\": [\n"
                           "    { \"source\": \"10.0.6.0/24\" }\n"
                           "  ]\n"
                           "}\n");
    const std::string bypass = "xnat does no filtering, and the packets it redirects bypass netfilter";
    CHECK(report_lines(r) ==
          std::vector<std::string>{
              "4 unsupported: policy DROP of filter FORWARD: " + bypass,
              "6 unsupported: table filter: xnat does NAT only, and the packets it redirects bypass netfilter",
              "7 unsupported: table filter: xnat does NAT only, and the packets it redirects bypass netfilter",
              "15 unsupported: -m addrtype: xnat has no such match; --dst-type LOCAL: not supported by xnat",
              "16 translated: port_forwards[0]: tcp 203.0.113.1:80 -> 10.0.0.12:8080 on wan (no -i: on wan, as "
              "203.0.113.1 is not a private address)",
              "17 unsupported: --dport 8000:8009 to the single port 8080: iptables sends every port to one; xnat maps "
              "ranges one to one (--to-destination ADDR:LO-HI/BASE keeps the offset)",
              "18 unsupported: -s: xnat forwards match the destination only",
              "20 unsupported: ! --dport 22: xnat cannot negate a port",
              "21 unsupported: --to-destination 10.0.0.16-10.0.0.17: an address range is chosen from per connection; "
              "xnat forwards to one address",
              "22 unsupported: -j REDIRECT: not supported by xnat (DNAT, SNAT and MASQUERADE are)",
              "23 unsupported: -m mark: xnat has no such match; --mark 0x1: not supported by xnat",
              "24 unsupported: chain OUTPUT: xnat translates forwarded traffic, not the gateway's own",
              "25 unsupported: --random-fully: xnat keeps a source port when it is free and has no random port choice",
              "26 unsupported: -o eth1: xnat masquerades only out of the WAN interface, taken to be eth0 (line 25)",
              "27 unsupported: -d: xnat masquerade matches destinations only by exclusion (! -d)",
              "28 unsupported: -p icmp: xnat masquerades TCP, UDP and ICMP together; only -p tcp and -p udp rules "
              "translate",
              "29 unsupported: --to-source 203.0.113.10-203.0.113.12: an address range; xnat masquerades to one address",
              "30 translated: masquerade[0]: masquerade 10.0.6.0/24 -> WAN address:1024-65535 filtering "
              "address_port_dependent (to the WAN address read at load time)",
              "33 unsupported: user chain DOCKER: xnat has no chains; write its rules into PREROUTING or POSTROUTING"});
    // The rest changes nothing, and says why.
    std::vector<std::string> quiet;
    for (const ImportLine &l : r.lines)
        if (l.outcome == LineOutcome::no_effect)
            quiet.push_back(std::to_string(l.line) + ": " + l.message);
    CHECK(quiet == std::vector<std::string>{
                       "3: policy ACCEPT of filter INPUT", "5: policy ACCEPT of filter OUTPUT",
                       "10: policy ACCEPT of nat PREROUTING", "11: policy ACCEPT of nat INPUT",
                       "12: policy ACCEPT of nat OUTPUT", "13: policy ACCEPT of nat POSTROUTING",
                       "14: user chain DOCKER declared (its rules are reported on their own lines)",
                       "19: never reached: line 16 forwards tcp 203.0.113.1:80 -> 10.0.0.12:8080 on wan first",
                       "31: never reached: line 30 masquerades all of 10.0.6.0/24 first",
                       "32: -j ACCEPT with no NAT rule after it in POSTROUTING"});
    // Every line that is not blank, a comment, *table or COMMIT has its entry.
    CHECK(r.lines.size() == 29);
}

// ---- single rules ---------------------------------------------------------------------------

TEST_CASE("iptables import: ! -d becomes not_destination", "[import]")
{
    CHECK(one("-A POSTROUTING -s 10.0.1.0/24 ! -d 10.0.0.0/8 -o eth0 -j MASQUERADE") ==
          masq_json(R"({ "source": "10.0.1.0/24", "not_destination": ["10.0.0.0/8"] })"));
    CHECK(why_not("-A PREROUTING ! -d 203.0.113.1/32 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.12") ==
          "! -d on a DNAT: xnat forwards match one destination");
    CHECK(why_not("-A POSTROUTING ! -s 10.0.1.0/24 -o eth0 -j MASQUERADE") ==
          "! -s: xnat masquerade matches source prefixes, not their complement");
}

TEST_CASE("iptables import: port ranges", "[import]")
{
    // No port in --to-destination: DNAT keeps the port, so a range maps onto itself.
    CHECK(one("-A PREROUTING -d 203.0.113.1/32 -p udp -m udp --dport 6000:6009 -j DNAT --to-destination 10.0.0.20") ==
          forward_json(R"({ "proto": "udp", "on": "wan", "from": "203.0.113.1:6000-6009", "to": "10.0.0.20:6000-6009" })"));
    // /BASE: port d goes to LO + (d - BASE).
    CHECK(one("-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 8002:8005 -j DNAT --to-destination 10.0.0.20:9000-9009/8000") ==
          forward_json(R"({ "proto": "tcp", "on": "wan", "from": "203.0.113.1:8002-8005", "to": "10.0.0.20:9002-9005" })"));
    // Ports inside the target range are kept.
    CHECK(one("-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 7000:7001 -j DNAT --to-destination 10.0.0.20:7000-7010") ==
          forward_json(R"({ "proto": "tcp", "on": "wan", "from": "203.0.113.1:7000-7001", "to": "10.0.0.20:7000-7001" })"));
    // Open-ended ranges as iptables writes them.
    CHECK(one("-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 65530: -j DNAT --to-destination 10.0.0.20") ==
          forward_json(R"({ "proto": "tcp", "on": "wan", "from": "203.0.113.1:65530-65535", "to": "10.0.0.20:65530-65535" })"));

    CHECK(why_not("-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 7000:7009 -j DNAT --to-destination 10.0.0.20:8000-8009") ==
          "--to-destination 10.0.0.20:8000-8009: netfilter picks a port of the range per connection; xnat maps ports "
          "one to one");
    CHECK(why_not("-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 8000:8019 -j DNAT --to-destination 10.0.0.20:9000-9009/8000") ==
          "--to-destination 10.0.0.20:9000-9009/8000: ports 8000-8019 wrap around the target range; xnat maps ranges "
          "one to one");
    CHECK(why_not("-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 22 -j DNAT --to-destination :2222") ==
          "--to-destination :2222: keeps the address, a redirect to the gateway itself; xnat forwards to other hosts");
    CHECK(why_not("-A PREROUTING -d 203.0.113.1/32 -p tcp -j DNAT --to-destination 10.0.0.20") ==
          "DNAT without --dport: xnat forwards need a port or port range");
    CHECK(why_not("-A PREROUTING -d 203.0.113.0/24 -p tcp --dport 22 -j DNAT --to-destination 10.0.0.20") ==
          "-d 203.0.113.0/24: DNAT sends every address of the prefix to one target; xnat forwards map one to one");
    CHECK(why_not("-A PREROUTING -d 203.0.113.1/32 -j DNAT --to-destination 10.0.0.20") ==
          "DNAT without -p tcp or -p udp: xnat forwards TCP and UDP ports only");
    CHECK(why_not("-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 22 -j DNAT --to-destination 127.0.0.1:22") ==
          "--to-destination: address 127.0.0.1 is loopback and cannot be forwarded");
}

TEST_CASE("iptables import: SNAT --to-source ports and MASQUERADE --to-ports", "[import]")
{
    // iptables 1.8.9 refuses ports without -p tcp|udp ("Need TCP, UDP, SCTP or DCCP with port
    // specification"), so a masquerade with ports is a tcp rule and a udp rule. This is
    // iptables-save's output of exactly that, made in a network namespace.
    auto r = imported("*nat\n"
                      ":PREROUTING ACCEPT [0:0]\n"
                      ":INPUT ACCEPT [0:0]\n"
                      ":OUTPUT ACCEPT [0:0]\n"
                      ":POSTROUTING ACCEPT [0:0]\n"
                      "-A POSTROUTING -s 10.0.1.0/24 -o eth0 -p tcp -j MASQUERADE --to-ports 20000-29999\n"
                      "-A POSTROUTING -s 10.0.1.0/24 -o eth0 -p udp -j MASQUERADE --to-ports 20000-29999\n"
                      "-A POSTROUTING -s 10.0.2.0/24 -o eth0 -p udp -j SNAT --to-source 203.0.113.7:30000-39999\n"
                      "-A POSTROUTING -s 10.0.2.0/24 -o eth0 -p tcp -j SNAT --to-source 203.0.113.7:30000-39999\n"
                      "-A POSTROUTING -s 10.0.3.0/24 -o eth0 -p tcp -j SNAT --to-source 203.0.113.8:40000-49999\n"
                      "COMMIT\n");
    CHECK(r.config_json == "{\n"
                           "  \"masquerade\": [\n"
                           "    { \"source\": \"10.0.1.0/24\", \"ports\": \"20000-29999\" },\n"
                           "    { \"source\": \"10.0.2.0/24\", \"to_source\": \"203.0.113.7\", \"ports\": \"30000-39999\" },\n"
                           "    { \"source\": \"10.0.3.0/24\", \"to_source\": \"203.0.113.8\", \"ports\": \"40000-49999\" }\n"
                           "  ]\n"
                           "}\n");
    CHECK(report_lines(r) ==
          std::vector<std::string>{
              "6 translated: masquerade[0]: masquerade 10.0.1.0/24 -> WAN address:20000-29999 filtering "
              "address_port_dependent (with line 7's -p udp; wider: xnat also masquerades ICMP from 10.0.1.0/24, "
              "which iptables leaves untranslated; to the WAN address read at load time)",
              "7 translated: masquerade[0]: merged with line 6's -p tcp (xnat masquerades TCP and UDP in one rule)",
              "8 translated: masquerade[1]: masquerade 10.0.2.0/24 -> 203.0.113.7:30000-39999 filtering "
              "address_port_dependent (with line 9's -p tcp; wider: xnat also masquerades ICMP from 10.0.2.0/24, "
              "which iptables leaves untranslated)",
              "9 translated: masquerade[1]: merged with line 8's -p udp (xnat masquerades TCP and UDP in one rule)",
              "10 translated: masquerade[2]: masquerade 10.0.3.0/24 -> 203.0.113.8:40000-49999 filtering "
              "address_port_dependent (wider: -p tcp only, but xnat also masquerades UDP and ICMP from 10.0.3.0/24, "
              "which iptables leaves untranslated)"});

    // Halves that differ, or with a rule between them, are not one rule.
    auto apart = imported(nat("-A POSTROUTING -s 10.0.1.0/24 -o eth0 -p tcp -j MASQUERADE --to-ports 20000-29999\n"
                              "-A POSTROUTING -s 10.0.1.0/24 -o eth0 -p udp -j MASQUERADE --to-ports 20000-29998\n"));
    CHECK(apart.lines[0].outcome == LineOutcome::translated);
    CHECK(apart.lines[1].outcome == LineOutcome::unsupported);
    CHECK(apart.lines[1].message ==
          "line 2 already masquerades 10.0.1.0/24; xnat takes one rule per source prefix");
    // After the pair, ICMP still reaches a rule for every protocol; TCP no longer does.
    auto after = imported(nat("-A POSTROUTING -s 10.0.1.0/24 -o eth0 -p tcp -j MASQUERADE --to-ports 20000-29999\n"
                              "-A POSTROUTING -s 10.0.1.0/24 -o eth0 -p udp -j MASQUERADE --to-ports 20000-29999\n"
                              "-A POSTROUTING -s 10.0.1.0/24 -o eth0 -j MASQUERADE\n"
                              "-A POSTROUTING -s 10.0.1.0/24 -o eth0 -p tcp -j MASQUERADE\n"));
    CHECK(report_lines(after, false).at(2) ==
          "4 unsupported: line 2 already masquerades 10.0.1.0/24; xnat takes one rule per source prefix");
    CHECK(report_lines(after, false).at(3) ==
          "5 no effect: never reached: line 2 masquerades all of 10.0.1.0/24 (tcp, udp) first");
    CHECK(why_not("-A POSTROUTING -s 10.0.1.0/24 -o eth0 -p icmp -j MASQUERADE") ==
          "-p icmp: xnat masquerades TCP, UDP and ICMP together; only -p tcp and -p udp rules translate");
}

TEST_CASE("iptables import: DNAT with --to-ports is not translated", "[import]")
{
    // iptables refuses it ("unknown option"); taking it silently would drop the port.
    CHECK(why_not("-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80 "
                  "--to-ports 99") ==
          "--to-ports with -j DNAT: iptables refuses it (the port goes in --to-destination ADDR:PORT)");
}

TEST_CASE("iptables import: a DNAT an earlier rule covers has no effect", "[import]")
{
    auto r = imported(nat("-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 8000:8009 -j DNAT --to-destination 10.0.0.12\n"
                          "-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 8003 -j DNAT --to-destination 10.0.0.13\n"
                          "-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 8000:8009 -j DNAT --to-destination 10.0.0.12\n"
                          "-A PREROUTING -d 203.0.113.1/32 -p udp --dport 8003 -j DNAT --to-destination 10.0.0.13\n"
                          "-A PREROUTING -d 203.0.113.1/32 -p tcp --dport 8009:8010 -j DNAT --to-destination 10.0.0.13\n"));
    CHECK(report_lines(r, false) ==
          std::vector<std::string>{
              "2 translated: port_forwards[0]: tcp 203.0.113.1:8000-8009 -> 10.0.0.12:8000-8009 on wan (no -i: on "
              "wan, as 203.0.113.1 is not a private address)",
              "3 no effect: never reached: line 2 forwards tcp 203.0.113.1:8000-8009 -> 10.0.0.12:8000-8009 on wan "
              "first",
              "4 no effect: never reached: line 2 forwards tcp 203.0.113.1:8000-8009 -> 10.0.0.12:8000-8009 on wan "
              "first",
              "5 translated: port_forwards[1]: udp 203.0.113.1:8003 -> 10.0.0.13:8003 on wan (no -i: on wan, as "
              "203.0.113.1 is not a private address)",
              "6 unsupported: overlaps line 2 at tcp 203.0.113.1:8009 on wan (the first match wins in iptables; xnat "
              "refuses overlaps)"});
    CHECK(r.count(LineOutcome::unsupported) == 1);
}

TEST_CASE("iptables import: DNAT on -i WAN without -d becomes a forward from wan:PORT", "[import]")
{
    // The most common port forward there is: it names the interface, not its address.
    const std::string rule = "-A PREROUTING -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80";
    auto r = imported(nat(rule + "\n"));
    CHECK(r.config_json ==
          forward_json(R"({ "proto": "tcp", "on": "wan", "from": "wan:8080", "to": "10.0.0.5:80" })"));
    CHECK(report_lines(r) ==
          std::vector<std::string>{"2 translated: port_forwards[0]: tcp wan:8080 -> 10.0.0.5:80 on wan (no -d: the WAN "
                                   "interface's address, whatever it is; -i eth0 taken as the WAN interface)"});
    CHECK(r.count(LineOutcome::unsupported) == 0);
    CHECK(r.wan == "eth0");

    // The WAN learnt from the masquerade rule, a port range kept as a range.
    auto learnt = imported(nat("-A PREROUTING -i eth0 -p udp --dport 6000:6009 -j DNAT --to-destination 10.0.0.20\n"
                               "-A POSTROUTING -s 10.0.0.0/24 -o eth0 -j MASQUERADE\n"));
    CHECK(learnt.count(LineOutcome::unsupported) == 0);
    CHECK(report_lines(learnt)[0] == "2 translated: port_forwards[0]: udp wan:6000-6009 -> 10.0.0.20:6000-6009 on wan "
                                     "(no -d: the WAN interface's address, whatever it is)");
    auto cfg = parse_config(learnt.config_json);
    REQUIRE(cfg.ok());
    CHECK(cfg->port_forwards[0].from_wan);

    // Two of them on one port: the second never sees a packet in iptables either.
    auto twice = imported(nat(rule + "\n" + "-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.6\n"));
    CHECK(report_lines(twice, false)[1] ==
          "3 no effect: never reached: line 2 forwards tcp wan:8080 -> 10.0.0.5:80 on wan first");
}

TEST_CASE("iptables import: --wan-address pins DNAT without -d to one address", "[import]")
{
    const std::string rule = "-A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2";
    ImportOptions opts{"", "", 0xcb007101u}; // 203.0.113.1
    auto r = imported(nat(rule + "\n"), opts);
    CHECK(r.config_json ==
          forward_json(R"({ "proto": "tcp", "on": "wan", "from": "203.0.113.1:80", "to": "10.0.0.2:80" })"));
    CHECK(report_lines(r) ==
          std::vector<std::string>{"2 translated: port_forwards[0]: tcp 203.0.113.1:80 -> 10.0.0.2:80 on wan (no -d: the "
                                   "WAN address 203.0.113.1 from --wan-address; -i eth0 taken as the WAN interface)"});
    CHECK(r.wan == "eth0");
}

TEST_CASE("iptables import: DNAT without -d elsewhere than the WAN stays unsupported", "[import]")
{
    // On the LAN (or without -i) a DNAT without -d catches every destination; xnat matches one.
    for (std::optional<uint32_t> address : {std::optional<uint32_t>{}, std::optional<uint32_t>{0xcb007101u}}) {
        ImportOptions named{"eth0", "eth1", address};
        CHECK(why_not("-A PREROUTING -i eth1 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2", named) ==
              "DNAT without -d on the LAN interface eth1: iptables forwards the port for every destination; xnat "
              "forwards match one address");
        CHECK(why_not("-A PREROUTING -i eth2 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2", named) ==
              "-i eth2 is neither the WAN (eth0) nor the LAN (eth1) interface");
        CHECK(why_not("-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2", named) ==
              "DNAT without -d or -i: iptables forwards the port on every destination from every interface; xnat "
              "forwards need the destination address, or -i naming the WAN interface");
        CHECK(why_not("-A PREROUTING ! -i eth0 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2", named) ==
              "DNAT without -d or -i: iptables forwards the port on every destination from every interface; xnat "
              "forwards need the destination address, or -i naming the WAN interface");
    }
    // The WAN known from --wan, another -i is taken as the LAN, where it cannot be translated.
    CHECK(why_not("-A PREROUTING -i eth3 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2",
                  ImportOptions{"eth0", "", std::nullopt}) ==
          "DNAT without -d on the LAN interface eth3: iptables forwards the port for every destination; xnat "
          "forwards match one address");
}

TEST_CASE("iptables import: command lines with -w and -I", "[import]")
{
    auto r = imported("iptables -w -t nat -I PREROUTING -d 203.0.113.1 -p tcp --dport 22 -j DNAT --to-destination 10.0.0.12\n"
                      "iptables --wait 5 -W 100000 -t nat -I POSTROUTING 2 -s 10.0.0.0/24 -o eth0 -j MASQUERADE\n"
                      "iptables-legacy -t nat -A POSTROUTING -s 10.0.9.0/24 -o eth0 -j MASQUERADE -w\n"
                      "iptables --wait=3 -t nat -A POSTROUTING -s 10.0.8.0/24 -o eth0 -j MASQUERADE\n");
    CHECK(r.count(LineOutcome::translated) == 4);
    CHECK(r.count(LineOutcome::unsupported) == 0);
    CHECK(r.lines[0].message.find("(-I PREROUTING 1: iptables inserts at position 1, xnat-import takes the lines in "
                                  "input order; check the order where rules overlap)") != std::string::npos);
    CHECK(r.lines[1].message.find("(-I POSTROUTING 2: iptables inserts at position 2") != std::string::npos);
    CHECK(r.lines[2].message.find("-I ") == std::string::npos);
    // The save form has neither.
    CHECK(refused("*nat\n-I PREROUTING -j ACCEPT\nCOMMIT\n").rfind("line 2: expected a rule", 0) == 0);
    CHECK(why_not("-A PREROUTING -w -j ACCEPT") == "-w: not supported by xnat");
}

TEST_CASE("iptables import: rule order that xnat's most-specific-prefix rule would change", "[import]")
{
    auto r = imported(nat("-A POSTROUTING -s 10.0.0.0/16 ! -d 192.168.0.0/16 -o eth0 -j MASQUERADE\n"
                          "-A POSTROUTING -s 10.0.1.0/24 -o eth0 -j MASQUERADE\n"
                          "-A POSTROUTING -s 10.2.1.0/24 ! -d 172.16.0.0/12 -o eth0 -j MASQUERADE\n"
                          "-A POSTROUTING -s 10.2.0.0/16 -o eth0 -j MASQUERADE\n"));
    CHECK(report_lines(r) ==
          std::vector<std::string>{
              "2 translated: masquerade[0]: masquerade 10.0.0.0/16 !192.168.0.0/16 -> WAN address:1024-65535 "
              "filtering address_port_dependent (to the WAN address read at load time)",
              "3 unsupported: line 2 comes first for 10.0.0.0/16 in iptables, but xnat would prefer this more "
              "specific prefix",
              "4 translated: masquerade[1]: masquerade 10.2.1.0/24 !172.16.0.0/12 -> WAN address:1024-65535 "
              "filtering address_port_dependent (to the WAN address read at load time)",
              "5 unsupported: iptables masquerades traffic from 10.2.1.0/24 to 172.16.0.0/12 by this rule after line 4 "
              "exempts it; xnat applies only the most specific source's rule"});
}

TEST_CASE("iptables import: interfaces give the side, and conflicts are reported", "[import]")
{
    std::string rules = nat("-A PREROUTING -d 203.0.113.1/32 -i ppp0 -p tcp --dport 22 -j DNAT --to-destination 10.0.0.12\n"
                            "-A PREROUTING -d 10.9.0.1/32 -i br-lan -p tcp --dport 22 -j DNAT --to-destination 198.51.100.7\n"
                            "-A PREROUTING -d 203.0.113.1/32 -i wg0 -p tcp --dport 23 -j DNAT --to-destination 10.0.0.12\n"
                            "-A POSTROUTING -s 10.0.0.0/24 -o ppp0 -j MASQUERADE\n");
    auto r = imported(rules);
    CHECK(r.wan == "ppp0");   // the MASQUERADE's -o
    CHECK(r.lan == "br-lan"); // the other -i
    CHECK(r.config_json ==
          "{\n"
          "  \"port_forwards\": [\n"
          "    { \"proto\": \"tcp\", \"on\": \"wan\", \"from\": \"203.0.113.1:22\", \"to\": \"10.0.0.12:22\" },\n"
          "    { \"proto\": \"tcp\", \"on\": \"lan\", \"from\": \"10.9.0.1:22\", \"to\": \"198.51.100.7:22\" }\n"
          "  ],\n"
          "  \"masquerade\": [\n"
          "    { \"source\": \"10.0.0.0/24\" }\n"
          "  ]\n"
          "}\n");
    CHECK(r.lines[1].message == "port_forwards[1]: tcp 10.9.0.1:22 -> 198.51.100.7:22 on lan (-i br-lan taken as the LAN interface)");
    CHECK(r.lines[2].outcome == LineOutcome::unsupported);
    CHECK(r.lines[2].message == "-i wg0 is neither the WAN (ppp0) nor the LAN (br-lan) interface");

    // --wan and --lan decide instead: a DNAT from the LAN on a public address is a LAN-side rule.
    auto given = imported(nat("-A PREROUTING -d 198.51.100.9/32 -i eth1 -p udp --dport 53 -j DNAT --to-destination 192.0.2.53\n"
                              "-A POSTROUTING -s 10.0.0.0/24 -o eth1 -j MASQUERADE\n"),
                          ImportOptions{"eth0", "eth1", {}});
    CHECK(given.config_json.find(R"("on": "lan", "from": "198.51.100.9:53")") != std::string::npos);
    CHECK(given.lines[1].message == "-o eth1 is the LAN interface; xnat masquerades only out of the WAN interface");
    CHECK(why_not("-A POSTROUTING -s 10.0.0.0/24 -o eth2 -j MASQUERADE", ImportOptions{"eth0", "", {}}) ==
          "-o eth2: xnat masquerades only out of the WAN interface, taken to be eth0 (--wan)");
    CHECK(refused(nat(""), ImportOptions{"eth0", "eth0", {}}) == "--wan and --lan both name eth0");
    CHECK(why_not("-A POSTROUTING -s 10.0.0.0/24 -o eth1 -j MASQUERADE", ImportOptions{"", "eth1", {}}) ==
          "-o eth1 is the LAN interface; xnat masquerades only out of the WAN interface");
}

TEST_CASE("iptables import: ACCEPT and RETURN before NAT rules are exemptions xnat lacks", "[import]")
{
    auto r = imported(nat("-A POSTROUTING -s 10.0.0.0/24 -d 10.0.0.0/8 -j RETURN\n"
                          "-A POSTROUTING -s 10.0.0.0/24 -o eth0 -j MASQUERADE\n"
                          "-A POSTROUTING -j ACCEPT\n"));
    CHECK(report_lines(r, false) ==
          std::vector<std::string>{
              "2 unsupported: -j RETURN exempts packets from the NAT rule on line 3; xnat has no exemptions (for "
              "destinations, use ! -d on the SNAT/MASQUERADE rule)",
              "3 translated: masquerade[0]: masquerade 10.0.0.0/24 -> WAN address:1024-65535 filtering "
              "address_port_dependent (to the WAN address read at load time)",
              "4 no effect: -j ACCEPT with no NAT rule after it in POSTROUTING"});
}

TEST_CASE("iptables import: the seed's command lines, options in any order", "[import]")
{
    auto r = imported("iptables -t nat -A PREROUTING -d 10.0.0.12 -p tcp --dport 22 -j DNAT --to-destination 203.0.113.1:22012\n"
                      "iptables -t nat ! -d 10.0.0.0/8 -o eth0 -A POSTROUTING -j SNAT --to-source 198.51.100.1\n"
                      "iptables -A FORWARD -j ACCEPT\n");
    CHECK(r.config_json == imported(fixture("seed-gateway-b.rules")).config_json);
    CHECK(report_lines(r).back() ==
          "3 unsupported: table filter: xnat does NAT only, and the packets it redirects bypass netfilter");
}

TEST_CASE("iptables import: counters, quotes and an empty input", "[import]")
{
    CHECK(one("[12:3456] -A PREROUTING -d 203.0.113.1/32 -p tcp -m tcp --dport 22 -m comment --comment \"say \\\"hi\\\" -j X\" "
              "-j DNAT --to-destination 10.0.0.12") ==
          forward_json(R"({ "proto": "tcp", "on": "wan", "from": "203.0.113.1:22", "to": "10.0.0.12:22" })"));
    auto empty = imported("# nothing\n\n");
    CHECK(empty.config_json == "{}\n");
    CHECK(empty.lines.empty());
}

TEST_CASE("iptables import: malformed input is refused with its line", "[import]")
{
    CHECK(refused("-A PREROUTING -j ACCEPT\n") == "line 1: rule before any *table line");
    CHECK(refused("*nat\n-I PREROUTING -j ACCEPT\nCOMMIT\n") ==
          "line 2: expected a rule (-A CHAIN ...), a chain (:CHAIN POLICY), *TABLE or COMMIT, got \"-I\"");
    CHECK(refused("*nat\n-A PREROUTING -d\nCOMMIT\n") == "line 2: -d: missing value");
    CHECK(refused("*nat\n-A PREROUTING -d 203.0.113.300 -j ACCEPT\nCOMMIT\n").rfind("line 2: -d: ", 0) == 0);
    CHECK(refused("*nat\n-A PREROUTING -p tcp --dport 70000 -j ACCEPT\nCOMMIT\n") ==
          "line 2: --dport: port 70000 out of range (0-65535)");
    CHECK(refused("*nat\n-A PREROUTING -m comment --comment \"open -j ACCEPT\nCOMMIT\n") ==
          "line 2: unterminated double quote");
    CHECK(refused("*nat\n-p tcp -j ACCEPT\nCOMMIT\n").rfind("line 2: expected a rule", 0) == 0);
    CHECK(refused("*nat\n[0:0] -p tcp -j ACCEPT\nCOMMIT\n") == "line 2: no -A CHAIN");
    CHECK(refused("*nat\n-A PREROUTING -d 203.0.113.1 -j DNAT --to-destination 10.0.0.1:x\nCOMMIT\n") ==
          "line 2: --to-destination: expected a port number, got \"x\"");
    CHECK(refused("*nat\n-A PREROUTING ! ! -d 203.0.113.1 -j ACCEPT\nCOMMIT\n") == "line 2: \"!\" twice in a row");
    CHECK(refused("*nat\n-A PREROUTING stray -j ACCEPT\nCOMMIT\n") == "line 2: unexpected \"stray\"");
    CHECK(refused("*nat\n:PREROUTING ACCEPT [0:0]\n") == "table nat has no COMMIT at the end of the input");
    CHECK(refused(":PREROUTING ACCEPT [0:0]\n") == "line 1: chain :PREROUTING ACCEPT [0:0] before any *table");
    CHECK(refused("COMMIT\n") == "line 1: COMMIT outside a table");
    CHECK(refused("ip route add default via 10.0.0.1\n").rfind("line 1: expected a rule", 0) == 0);
}

TEST_CASE("iptables import: TCPMSS on SYNs becomes mss_clamp", "[import]")
{
    const std::string pmtu_rule = "-A FORWARD -o ppp0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu";
    auto r = imported("*mangle\n" + pmtu_rule + "\nCOMMIT\n" +
                      nat("-A POSTROUTING -s 10.0.0.0/24 -o ppp0 -j MASQUERADE\n"));
    CHECK(r.config_json == "{\n"
                           "  \"masquerade\": [\n"
                           "    { \"source\": \"10.0.0.0/24\" }\n"
                           "  ],\n"
                           "  \"mss_clamp\": \"pmtu\"\n"
                           "}\n");
    auto lines = report_lines(r);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "2 translated: \"mss_clamp\": \"pmtu\" (wider: xnat clamps the SYNs it translates in both "
                      "directions, whatever the interface)");

    auto fixed = imported("*mangle\n-A POSTROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400\nCOMMIT\n");
    CHECK(fixed.config_json == "{\n  \"mss_clamp\": 1400\n}\n");
    CHECK(parse_config(fixed.config_json)->mss_clamp == 1400);
}

TEST_CASE("iptables import: TCPMSS forms xnat cannot reproduce are reported", "[import]")
{
    auto reason = [](const std::string &rule) {
        auto r = imported("*mangle\n" + rule + "\nCOMMIT\n");
        REQUIRE(r.lines.size() == 1);
        CHECK(r.lines[0].outcome == LineOutcome::unsupported);
        CHECK(r.config_json == "{}\n");
        return r.lines[0].message;
    };
    CHECK(reason("-A FORWARD -p tcp -j TCPMSS --clamp-mss-to-pmtu") ==
          "-j TCPMSS on every TCP segment: xnat clamps SYNs only (--tcp-flags SYN,RST SYN)");
    CHECK(reason("-A INPUT -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu") ==
          "-j TCPMSS in mangle INPUT: xnat clamps forwarded SYNs, as TCPMSS in mangle FORWARD or POSTROUTING does");
    CHECK(reason("-A FORWARD -s 10.0.0.0/24 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400") ==
          "-s or -d with -j TCPMSS: xnat clamps every SYN it translates");
    CHECK(reason("-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 40") ==
          "--set-mss 40: xnat clamps to 88-65495");
    CHECK(reason("-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1400:1536 -j TCPMSS --set-mss 1360") ==
          "-m tcpmss: xnat has no such match; --mss 1400:1536: not supported by xnat");

    auto twice = imported("*mangle\n"
                          "-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu\n"
                          "-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400\n"
                          "COMMIT\n");
    CHECK(twice.config_json == "{\n  \"mss_clamp\": \"pmtu\"\n}\n");
    CHECK(report_lines(twice).back() == "3 unsupported: a second -j TCPMSS: line 2 already sets the clamp");
}
