// Connection tracking: TCP state, timeouts under a controlled clock, expiry by timer, and the
// guarantee that both halves of a flow live and die together. What one packet decides is a table
// of cases (table_case.h); state machines and clocks stay sequences, since their steps depend on
// each other.
#include <arpa/inet.h>

#include <catch2/catch.hpp>


#include "bpf_harness.h"
#include "expect.h"
#include "scenario.h"
#include "table_case.h"
#include "xnat/counters.h"

using namespace xnat;
using namespace xnat::test;

namespace {


uint8_t state(const BpfFixture &fx)
{
    auto conns = fx.conns();
    REQUIRE(conns.size() == 1);
    return conns[0].original.state;
}

void open_connection(BpfFixture &fx, Hook hook)
{
    fx.run(hook, Side::wan, build(client_tcp(kSyn)));
    fx.run(hook, Side::lan, build(server_tcp(kSyn | kAck)));
    fx.run(hook, Side::wan, build(client_tcp(kAck)));
    REQUIRE(state(fx) == XNAT_TCP_ESTABLISHED);
}

// The client's packet as `server` receives it, once a new rule sends the forward there.
PacketSpec with_server(const char *server, PacketSpec s)
{
    s.daddr = ip(server);
    s.dport = kSshPort;
    return s;
}

std::vector<PortForward> rules()
{
    return {fwd("tcp", "203.0.113.1:22012", "10.0.0.12:22"),
            fwd("tcp", "203.0.113.1:22013", "10.0.0.12:22"),
            fwd("udp", "203.0.113.1:6000-6009", "10.0.0.20:6000")};
}

PacketSpec server_rst(uint8_t flags, uint32_t seq)
{
    PacketSpec s = server_tcp(flags);
    s.seq = seq;
    return s;
}

// An RST far outside the server's window: open_connection leaves its next sequence number at 1001.
PacketSpec spoofed_rst()
{
    return server_rst(kRst, 1001 + (1u << 20));
}

void fill_with_assured_flows(Target &t)
{
    for (uint16_t port = 1000; port < 1016; ++port) {
        REQUIRE(t.send(Side::wan, client_tcp(kSyn, port)).verdict == pass_verdict(t.hook));
        t.send(Side::lan, server_tcp(kSyn | kAck, port));
        t.send(Side::wan, client_tcp(kAck, port));
    }
    CHECK(t.fx.ct_entries() == 32);
}

std::vector<TableCase> cases()
{
    auto opened = [](Target &t) { open_connection(t.fx, t.hook); };
    TableCase full_refused = {
        "a table full of assured flows refuses a new flow with a counter, never a lone half", Side::wan,
        client_tcp(kSyn, 2000), std::nullopt, Verdict::drop, XNAT_CNT_DROP_CT_FULL, {}, 0, 0,
        fill_with_assured_flows,
        [](Target &t) {
            CHECK(t.fx.counter(XNAT_CNT_CT_EARLY_DROP) == 0);
            CHECK(t.fx.ct_entries() == 32);
            auto conns = t.fx.conns();
            CHECK(conns.size() == 16);
            for (const auto &c : conns)
                CHECK_FALSE(c.reply_missing);
        }};
    full_refused.max_connections = 16;
    TableCase full_existing = {"existing flows keep working at capacity", Side::wan, client_tcp(kAck, 1005),
                               to_ssh_server(client_tcp(kAck, 1005)), Verdict::pass, XNAT_CNT_PASS_FIB, {}, 0,
                               0, fill_with_assured_flows};
    full_existing.max_connections = 16;
    return {
        // The SYN ends the TIME_WAIT flow (counted as expired) and makes a new one in its place.
        {"a new SYN on a closed tuple starts over with the current rules", Side::wan, client_tcp(kSyn),
         with_server("10.0.0.13", client_tcp(kSyn)), Verdict::pass, XNAT_CNT_PASS_FIB,
         {XNAT_CNT_NEW_FLOW, XNAT_CNT_CT_EXPIRED, XNAT_CNT_FLOW_ENDED}, 0, 0,
         [](Target &t) {
             open_connection(t.fx, t.hook);
             t.send(Side::wan, client_tcp(kFin | kAck));
             t.send(Side::lan, server_tcp(kFin | kAck));
             REQUIRE(state(t.fx) == XNAT_TCP_TIME_WAIT);
             t.fx.install({fwd("tcp", "203.0.113.1:22012", "10.0.0.13:22")});
         },
         [](Target &t) {
             CHECK(state(t.fx) == XNAT_TCP_SYN_SENT);
             CHECK(t.fx.ct_entries() == 2);
             CHECK(t.fx.counter(XNAT_CNT_NEW_FLOW) == 2);
         }},
        // The same client port to two forwards of the same server port: both flows would need the
        // reply tuple 10.0.0.12:22 -> 198.51.100.2:40000.
        {"a reply tuple already in use refuses the new flow and leaves no half", Side::wan,
         client_tcp(kSyn, kClientPort, 22013), std::nullopt, Verdict::drop, XNAT_CNT_DROP_CT_COLLISION, {}, 0, 0,
         [](Target &t) { t.send(Side::wan, client_tcp(kSyn, kClientPort, 22012)); },
         [](Target &t) {
             CHECK(t.fx.ct_entries() == 2);
             auto conns = t.fx.conns();
             REQUIRE(conns.size() == 1);
             CHECK(conns[0].original_key.dport == htons(22012));
         }},
        full_refused,
        full_existing,
        {"an RST outside its sender's window is dropped and does not close the flow", Side::lan, spoofed_rst(),
         std::nullopt, Verdict::drop, XNAT_CNT_DROP_TCP_RST_WINDOW, {}, 0, 0, opened,
         [](Target &t) { CHECK(state(t.fx) == XNAT_TCP_ESTABLISHED); }},
        {"an RST in its sender's window, after a spoofed one, closes the flow", Side::lan, server_rst(kRst, 1001),
         from_ssh_forward(server_rst(kRst, 1001)), Verdict::pass, XNAT_CNT_PASS_FIB, {}, 0, 0,
         [](Target &t) {
             open_connection(t.fx, t.hook);
             t.send(Side::lan, spoofed_rst());
         },
         [](Target &t) { CHECK(state(t.fx) == XNAT_TCP_CLOSE); }},
        // The server's port is closed: its refusal is its first packet.
        {"an RST from a side that has sent nothing yet is believed", Side::lan, server_rst(kRst | kAck, 0),
         from_ssh_forward(server_rst(kRst | kAck, 0)), Verdict::pass, XNAT_CNT_PASS_FIB, {}, 0, 0,
         [](Target &t) { t.send(Side::wan, client_tcp(kSyn)); },
         [](Target &t) { CHECK(state(t.fx) == XNAT_TCP_CLOSE); }},
    };
}

} // namespace

TEST_CASE("conntrack: packet in, frame out, counter and connection table, per case")
{
    run_cases(cases(), GENERATE(Hook::xdp, Hook::tc), rules());
}

TEST_CASE("conntrack: TCP handshake and teardown move through conntrack's states")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    INFO(hook_name(hook));
    BpfFixture fx;
    fx.install(rules());

    fx.run(hook, Side::wan, build(client_tcp(kSyn)));
    CHECK(state(fx) == XNAT_TCP_SYN_SENT);
    fx.run(hook, Side::wan, build(client_tcp(kSyn))); // retransmitted SYN
    CHECK(state(fx) == XNAT_TCP_SYN_SENT);
    fx.run(hook, Side::lan, build(server_tcp(kSyn | kAck)));
    CHECK(state(fx) == XNAT_TCP_SYN_RECV);
    fx.run(hook, Side::wan, build(client_tcp(kAck)));
    CHECK(state(fx) == XNAT_TCP_ESTABLISHED);
    fx.run(hook, Side::lan, build(server_tcp(kAck | kPsh)));
    CHECK(state(fx) == XNAT_TCP_ESTABLISHED);

    SECTION("client closes first")
    {
        fx.run(hook, Side::wan, build(client_tcp(kFin | kAck)));
        CHECK(state(fx) == XNAT_TCP_FIN_WAIT);
        fx.run(hook, Side::lan, build(server_tcp(kFin | kAck)));
        CHECK(state(fx) == XNAT_TCP_TIME_WAIT);
    }
    SECTION("server closes first")
    {
        fx.run(hook, Side::lan, build(server_tcp(kFin | kAck)));
        CHECK(state(fx) == XNAT_TCP_CLOSE_WAIT);
        fx.run(hook, Side::wan, build(client_tcp(kFin | kAck)));
        CHECK(state(fx) == XNAT_TCP_TIME_WAIT);
    }
    SECTION("reset")
    {
        fx.run(hook, Side::lan, build(server_tcp(kRst)));
        CHECK(state(fx) == XNAT_TCP_CLOSE);
    }
    CHECK(fx.counter(XNAT_CNT_NEW_FLOW) == 1);
    CHECK(fx.ct_entries() == 2);
}

TEST_CASE("conntrack: an idle established flow expires after tcp_established, both halves")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    open_connection(fx, hook);

    fx.advance_clock_s(7437);
    Bytes ack = build(client_tcp(kAck));
    CHECK(fx.run(hook, Side::wan, ack).verdict == pass_verdict(hook));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 0);
    CHECK(fields(fx.run(hook, Side::wan, ack).out).daddr == ip("10.0.0.12"));

    fx.advance_clock_s(7445);
    RunResult r = fx.run(hook, Side::wan, ack);
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 1);
    // The flow is gone, so this stray ACK is not translated and creates nothing.
    check_untouched(r, ack, hook);
    CHECK(fx.counter(XNAT_CNT_PASS_TCP_NOT_SYN) == 1);
    CHECK(fx.ct_entries() == 0);
}

TEST_CASE("conntrack: half-open, transitory and close timeouts apply to unfinished and reset flows")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    // SYN_SENT lives tcp_syn_sent = 120 s (and up to a tick more), not a second less.
    fx.run(hook, Side::wan, build(client_tcp(kSyn)));
    fx.advance_clock_s(119);
    fx.run(hook, Side::wan, build(client_tcp(kSyn)));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 0);
    fx.advance_clock_s(123);
    fx.run(hook, Side::lan, build(server_tcp(kSyn | kAck)));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 1);
    CHECK(fx.ct_entries() == 0);

    // SYN_RECV: tcp_syn_recv = 60 s.
    fx.run(hook, Side::wan, build(client_tcp(kSyn)));
    fx.run(hook, Side::lan, build(server_tcp(kSyn | kAck)));
    REQUIRE(state(fx) == XNAT_TCP_SYN_RECV);
    fx.advance_clock_s(59);
    fx.run(hook, Side::lan, build(server_tcp(kSyn | kAck)));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 1);
    fx.advance_clock_s(63);
    fx.run(hook, Side::lan, build(server_tcp(kSyn | kAck)));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 2);
    CHECK(fx.ct_entries() == 0);

    // FIN_WAIT: tcp_transitory = 240 s.
    open_connection(fx, hook);
    fx.run(hook, Side::wan, build(client_tcp(kFin | kAck)));
    fx.advance_clock_s(200);
    fx.run(hook, Side::lan, build(server_tcp(kAck)));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 2);
    fx.advance_clock_s(243);
    fx.run(hook, Side::lan, build(server_tcp(kAck)));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 3);
    CHECK(fx.ct_entries() == 0);

    open_connection(fx, hook);
    fx.run(hook, Side::wan, build(client_tcp(kRst)));
    fx.advance_clock_s(13); // CLOSE lives tcp_close = 10 s (and up to a tick more)
    fx.run(hook, Side::lan, build(server_tcp(kAck)));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 4);
    CHECK(fx.ct_entries() == 0);
}

TEST_CASE("conntrack: a UDP flow lives while either direction is active")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    fx.run(hook, Side::wan, build(client_udp()));
    fx.advance_clock_s(20);
    fx.run(hook, Side::lan, build(udp_server_reply())); // replied: udp = 300 s from here on
    fx.advance_clock_s(200);
    fx.run(hook, Side::lan, build(udp_server_reply()));
    fx.advance_clock_s(250); // 470 s since the client spoke, 250 s since the server did
    CHECK(fields(fx.run(hook, Side::wan, build(client_udp())).out).daddr == ip("10.0.0.20"));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 0);
    CHECK(fx.counter(XNAT_CNT_NEW_FLOW) == 1);

    fx.advance_clock_s(303);
    CHECK(fields(fx.run(hook, Side::wan, build(client_udp())).out).daddr == ip("10.0.0.20"));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 1);
    CHECK(fx.counter(XNAT_CNT_NEW_FLOW) == 2);
    CHECK(fx.ct_entries() == 2);
}

TEST_CASE("conntrack: an unreplied UDP flow times out sooner; timeouts are configurable")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    // udp_unreplied = 30 s by default.
    fx.run(hook, Side::wan, build(client_udp()));
    fx.advance_clock_s(27); // less a tick (1.07 s) of clock granularity
    fx.run(hook, Side::wan, build(client_udp()));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 0);
    fx.advance_clock_s(33);
    fx.run(hook, Side::wan, build(client_udp()));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 1);

    Timeouts t;
    t.udp_unreplied = 8;
    t.udp = 40;
    fx.set_timeouts(t);
    fx.advance_clock_s(11); // the flow just made is unreplied: 8 s
    fx.run(hook, Side::wan, build(client_udp()));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 2);
    fx.run(hook, Side::lan, build(udp_server_reply()));
    fx.advance_clock_s(37); // replied: 40 s
    fx.run(hook, Side::wan, build(client_udp()));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 2);
    fx.advance_clock_s(43);
    fx.run(hook, Side::wan, build(client_udp()));
    CHECK(fx.counter(XNAT_CNT_CT_EXPIRED) == 3);
}

TEST_CASE("conntrack: expiry needs no daemon: the sweeper removes idle flows, both halves")
{
    BpfFixture fx;
    Timeouts t;
    t.tcp_syn_sent = 1;
    fx.set_timeouts(t);
    fx.set_sweep_interval_ms(100);
    fx.install(rules());
    open_connection(fx, Hook::xdp); // established: 7440 s, stays
    fx.run(Hook::xdp, Side::wan, build(client_tcp(kSyn, 40001)));
    fx.run(Hook::xdp, Side::wan, build(client_tcp(kSyn, 40002)));
    REQUIRE(fx.ct_entries() == 6);
    // Nothing touches the table from here: only the sweeper can end the two SYN_SENT flows.
    CHECK(fx.await_ct_entries(2) == 2);
    auto conns = fx.conns();
    REQUIRE(conns.size() == 1);
    CHECK(conns[0].original.state == XNAT_TCP_ESTABLISHED);
    xnat_sweep_stats s = fx.sweep_stats();
    CHECK(s.sweeps >= 1);
    CHECK(s.expired == 2);
}

TEST_CASE("conntrack: the sweeper also ends flows under a controlled clock and frees their mappings")
{
    NetGateway gw(Hook::tc, {}, {masq("10.0.0.0/24", kWanAddr)});
    gw.fx.set_sweep_interval_ms(100);
    PacketSpec udp;
    udp.proto = kUdp;
    udp.saddr = ip("10.0.0.5");
    udp.daddr = ip("203.0.113.50");
    udp.sport = 20000;
    udp.dport = 53;
    gw.from_lan(build(udp));
    REQUIRE(gw.fx.snat_mappings() == 1);
    gw.fx.advance_clock_s(303);
    CHECK(gw.fx.await_ct_entries(0) == 0);
    CHECK(gw.fx.snat_mappings() == 0);
}

TEST_CASE("conntrack: flows made minus flows ended is what the table holds")
{
    Hook hook = GENERATE(Hook::xdp, Hook::tc);
    BpfFixture fx;
    fx.install(rules());
    for (uint16_t port = 1000; port < 1010; ++port)
        fx.run(hook, Side::wan, build(client_tcp(kSyn, port)));
    fx.advance_clock_s(243); // SYN_SENT flows expire...
    fx.run(hook, Side::wan, build(client_tcp(kAck, 1000))); // ...one on lookup
    CHECK(fx.counter(XNAT_CNT_FLOW_ENDED) == 1);
    fx.flush(); // the rest by flush
    CHECK(fx.counter(XNAT_CNT_NEW_FLOW) == 10);
    CHECK(fx.counter(XNAT_CNT_FLOW_ENDED) == 10);
    CHECK(fx.ct_entries() == 0);
}
