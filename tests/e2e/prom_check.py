#!/usr/bin/python3
"""Checks a scrape of xnat's metrics with the Prometheus client library's own parser, so the
test does not depend on grep patterns agreeing with the format. Fails (exit 1, reason on
stderr) on a parse error, a family without HELP or TYPE, a family that appears twice, or a
series (name and label set) that appears twice; and when an xnat_snat_port_pool_size series
has no xnat_snat_ports_in_use series with the same labels to divide by.

    prom_check.py SCRAPE_FILE      prints "N families, M series" when all is well

Run with Debian's /usr/bin/python3: python3-prometheus-client is a Debian package."""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    problems = []
    families = set()
    series = {}
    try:
        parsed = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and others on malformed lines
        print(f"parse error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    for fam in parsed:
        if fam.name in families:
            problems.append(f"family {fam.name} appears twice")
        families.add(fam.name)
        if fam.type not in ("counter", "gauge"):
            problems.append(f"family {fam.name} has type {fam.type} (no or a wrong TYPE line)")
        if not fam.documentation:
            problems.append(f"family {fam.name} has no HELP")
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in series:
                problems.append(f"series {s.name}{s.labels} appears twice")
            series[key] = s.value
    for (name, labels), _ in series.items():
        if name == "xnat_snat_port_pool_size" and ("xnat_snat_ports_in_use", labels) not in series:
            problems.append(f"xnat_snat_port_pool_size{dict(labels)} has no xnat_snat_ports_in_use to join")
    if not parsed:
        problems.append("no metric families")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(families)} families, {len(series)} series")
    return 0


if __name__ == "__main__":
    sys.exit(main())
