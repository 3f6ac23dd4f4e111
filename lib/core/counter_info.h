// The name, kind and meaning of each counter, in counters.h order: the text, JSON and
// Prometheus outputs and the counter reference in docs/METRICS.md all come from this one table.
#pragma once

#include <xnat/counters.h>

namespace xnat {

enum class CounterKind {
    redirect = XNAT_KIND_REDIRECT,
    pass = XNAT_KIND_PASS,
    drop = XNAT_KIND_DROP,
    event = XNAT_KIND_EVENT,
};

struct CounterInfo {
    const char *name;
    CounterKind kind;
    const char *help;
};

#define XNAT_COUNTER_INFO_(id, kind, name, help) {name, static_cast<CounterKind>(XNAT_KIND_##kind), help},
inline constexpr CounterInfo kCounterInfo[XNAT_CNT_COUNT] = {XNAT_COUNTER_LIST(XNAT_COUNTER_INFO_)};
#undef XNAT_COUNTER_INFO_

// An outcome ends a packet (redirect, pass, drop); an event is counted besides the outcome.
inline constexpr bool is_outcome(CounterKind k)
{
    return k != CounterKind::event;
}

inline constexpr const char *kind_name(CounterKind k)
{
    switch (k) {
    case CounterKind::redirect:
        return "redirect";
    case CounterKind::pass:
        return "pass";
    case CounterKind::drop:
        return "drop";
    case CounterKind::event:
        return "event";
    }
    return "?";
}

} // namespace xnat
