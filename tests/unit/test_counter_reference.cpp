// docs/METRICS.md's counter reference must say what include/xnat/counters.h says: every counter,
// in order, with its kind and meaning. On a mismatch the test prints the block to paste.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "core/counter_info.h"

using namespace xnat;

namespace {

const char *const kBegin = "<!-- counter reference: generated from include/xnat/counters.h; "
                           "tests/unit/test_counter_reference.cpp checks it -->";
const char *const kEnd = "<!-- end of counter reference -->";

std::string expected_block()
{
    std::ostringstream out;
    out << "| counter | kind | meaning |\n|---|---|---|\n";
    for (const CounterInfo &c : kCounterInfo)
        out << "| `" << c.name << "` | " << kind_name(c.kind) << " | " << c.help << " |\n";
    return out.str();
}

std::string documented_block()
{
    std::ifstream in(XNAT_METRICS_DOC);
    REQUIRE(in);
    std::string line, block;
    bool inside = false, ended = false;
    while (std::getline(in, line)) {
        if (line == kBegin) {
            inside = true;
        } else if (line == kEnd) {
            ended = inside;
            break;
        } else if (inside) {
            block += line + "\n";
        }
    }
    INFO("docs/METRICS.md must hold the lines\n" << kBegin << "\n...\n" << kEnd);
    REQUIRE(ended);
    return block;
}

} // namespace

TEST_CASE("docs/METRICS.md's counter reference lists every counter with its kind", "[docs]")
{
    std::string want = expected_block();
    INFO("the reference should read:\n" << want);
    CHECK(documented_block() == want);
}

TEST_CASE("the datapath's kind masks agree with the counter table", "[counters]")
{
    int outcomes = 0;
    for (const CounterInfo &c : kCounterInfo) {
        INFO(c.name);
        CHECK(std::string(kind_name(c.kind)) != "?");
        outcomes += is_outcome(c.kind);
    }
    // The masks the datapath takes its verdicts from agree with the table.
    for (int i = 0; i < XNAT_CNT_COUNT; ++i) {
        INFO(kCounterInfo[i].name);
        CounterKind k = kCounterInfo[i].kind;
        CHECK(((XNAT_REDIRECT_MASK >> i) & 1) == (k == CounterKind::redirect));
        CHECK(((XNAT_DROP_MASK >> i) & 1) == (k == CounterKind::drop));
        CHECK(((XNAT_PASS_MASK >> i) & 1) == (k == CounterKind::pass));
        CHECK(((XNAT_EVENT_MASK >> i) & 1) == (k == CounterKind::event));
    }
    CHECK(outcomes > 0);
    CHECK(XNAT_CONTINUE < 0); // no counter's index
}
