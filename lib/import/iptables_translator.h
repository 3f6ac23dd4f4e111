// The translation of parsed iptables rules into xnat's config, line by line. Internal to
// xnat-import's translation (iptables_import.h is its interface).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/forward_table.h"
#include "core/masquerade.h"
#include "import/iptables_import.h"
#include "import/iptables_rule.h"

namespace xnat::iptables {

// What became of one rule line, as its report line says.
struct Translation {
    LineOutcome outcome = LineOutcome::unsupported;
    std::string message; // what it became, or why it was left out
};

inline Translation unsupported(std::string why)
{
    return {LineOutcome::unsupported, std::move(why)};
}

inline Translation no_effect(std::string why)
{
    return {LineOutcome::no_effect, std::move(why)};
}

inline Translation translated(std::string what)
{
    return {LineOutcome::translated, std::move(what)};
}

std::string join(const std::vector<std::string> &parts);

// The translation state: rules accepted so far, and the interface roles. The helpers that
// return Result<T> give, as the error's message, why the rule is left out.
class Translator
{
  public:
    Translator(std::vector<Rule> rules, ImportReport &rep, const ImportOptions &opts);

    // Fills in the report: every rule's line, the interfaces, the config.
    void run();

  private:
    struct MasqSeen {
        Masquerade m;
        size_t line;
        std::set<std::string> protos; // the -p it took (tcp, udp, both); empty: every protocol
    };
    // A masquerade rule's -p: the rule that takes the other protocol with it, and the note
    // saying how much wider xnat's rule is.
    struct MasqProtocols {
        std::optional<size_t> twin;
        std::string note;
    };
    // The interface a DNAT applies on, and how it was told.
    struct DnatSide {
        Side side;
        std::string note;
    };

    std::vector<Rule> rules_;
    ImportReport &rep_;
    std::string wan_, lan_;
    size_t wan_line_ = 0;
    std::vector<LabelledForward> forwards_;
    std::vector<nlohmann::ordered_json> forward_json_;
    std::vector<MasqSeen> masq_;
    std::vector<nlohmann::ordered_json> masq_json_;
    std::set<size_t> merged_; // rules already reported as merged into an earlier one
    std::optional<uint32_t> wan_address_;
    nlohmann::ordered_json mss_json_; // the mss_clamp value, null when no TCPMSS rule was taken
    size_t mss_line_ = 0;

    void learn_wan();
    Translation translate(size_t idx);
    Translation translate_tcpmss(const Rule &r);
    Translation translate_accept(size_t idx) const;

    // iptables_translate_forward.cpp
    Translation translate_dnat(const Rule &r);
    Result<DnatSide> dnat_side(const Rule &r, const Prefix &dst, bool wan_filled);
    Translation add_forward(const Rule &r, const PortForward &fwd, const std::string &note);

    // iptables_translate_masquerade.cpp
    Translation translate_masquerade(size_t idx);
    std::optional<size_t> twin_of(size_t idx) const;
    Result<MasqProtocols> masquerade_protocols(size_t idx) const;
    Result<std::string> masquerade_match(const Rule &r) const;
    std::optional<Translation> masquerade_conflict(const Rule &r, const Masquerade &m) const;
    Translation add_masquerade(size_t idx, const Masquerade &m, const nlohmann::ordered_json &j,
                               const MasqProtocols &protos, const std::string &match_note);
};

} // namespace xnat::iptables
