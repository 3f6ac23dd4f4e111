// libFuzzer target for the config parser, the entry point `xnat-load --check` and a load use
// (parse_config, under load_config_file). Any input must give either a valid config or one
// invalid-input error; never a crash, a sanitizer report, a hang or another kind of error.
// What is accepted must also hold what the datapath relies on.
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/nat_config.h"
#include "core/one_line.h"

namespace {

[[noreturn]] void broken(const char *what, const std::string &detail)
{
    std::fprintf(stderr, "config_fuzz: %s: %s\n", what, xnat::one_line(detail).c_str());
    std::abort();
}

void check_accepted(const xnat::Config &cfg)
{
    if (cfg.port_forwards.size() > XNAT_MAX_RULES)
        broken("too many rules accepted", std::to_string(cfg.port_forwards.size()));
    if (cfg.masquerade.size() > XNAT_MAX_MASQ_RULES)
        broken("too many masquerade rules accepted", std::to_string(cfg.masquerade.size()));
    if (cfg.limits.connections < XNAT_MIN_CONNECTIONS || cfg.limits.connections > XNAT_MAX_CONNECTIONS)
        broken("connections out of range", std::to_string(cfg.limits.connections));
    for (const xnat::PortForward &f : cfg.port_forwards) {
        if (f.from.size() != f.to.size() || f.from.port_lo == 0 || f.to.port_lo == 0 ||
            f.from.port_hi < f.from.port_lo || f.to.port_hi < f.to.port_lo)
            broken("inconsistent forward", xnat::describe(f));
        // What xnat-map list prints must read back as the same rule.
        auto j = xnat::port_forward_to_json(f);
        auto again = xnat::make_port_forward(j["proto"].get<std::string>(), j["from"].get<std::string>(),
                                             j["to"].get<std::string>(), j["on"].get<std::string>());
        if (!again || !(*again == f))
            broken("forward does not round-trip", xnat::describe(f));
    }
    for (const xnat::Masquerade &m : cfg.masquerade)
        if (m.port_lo == 0 || m.port_hi < m.port_lo || m.not_destination.size() > XNAT_MASQ_MAX_EXCLUDES)
            broken("inconsistent masquerade", xnat::describe(m));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string_view text(reinterpret_cast<const char *>(data), size);
    auto cfg = xnat::parse_config(text);
    if (cfg) {
        check_accepted(*cfg);
        return 0;
    }
    const xnat::Error &e = cfg.error();
    if (e.kind != xnat::ErrorKind::invalid_input)
        broken("refused, but not as invalid input", e.message);
    if (e.message.empty())
        broken("refused without a message", "");
    return 0;
}
