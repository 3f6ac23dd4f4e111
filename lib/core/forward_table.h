// Expansion of forward rules into the exact-match entries the datapath looks up.
#pragma once

#include <string>
#include <vector>

#include "core/nat_config.h"
#include "core/result.h"
#include "xnat/rules.h"

namespace xnat {

struct FwdEntry {
    xnat_fwd_key key;
    xnat_fwd_target target;
};

struct LabelledForward {
    PortForward fwd;
    std::string label; // how errors name it: "port_forwards[2]" or "rule 7"
    uint16_t rule_id = 0;
};

// One entry per (address, port) of each rule's `from`, mapped to the element at the same
// offset of its `to`. Refuses two rules claiming the same destination on the same side.
Result<std::vector<FwdEntry>> expand_forwards(const std::vector<LabelledForward> &rules);

// The forms stored in the rules map and read back from it.
xnat_fwd_rule to_rule_record(const PortForward &fwd);
PortForward from_rule_record(const xnat_fwd_rule &rec);

} // namespace xnat
