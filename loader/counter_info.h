// The name and meaning of each counter, in counters.h order: the text, JSON and Prometheus
// outputs all name counters from this one table.
#pragma once

#include <xnat/counters.h>

namespace xnat {

struct CounterInfo {
    const char *name;
    const char *help;
};

#define XNAT_COUNTER_INFO_(id, name, help) {name, help},
inline constexpr CounterInfo kCounterInfo[XNAT_CNT_COUNT] = {XNAT_COUNTER_LIST(XNAT_COUNTER_INFO_)};
#undef XNAT_COUNTER_INFO_

} // namespace xnat
