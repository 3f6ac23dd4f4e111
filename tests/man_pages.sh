#!/bin/bash
# Each installed program has a man page beside its main (section 8: loader/xnat-load.8,
# xnat-map/xnat-map.8 ...) that renders without a warning and
# documents every option and subcommand its --help lists, and every option of each
# subcommand's --help. A page that falls behind its program fails here.
#   man_pages.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
PROGRAMS=(xnat-load xnat-map xnat-import xnat-exporter xnat-portmapd)
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
command -v man >/dev/null || fail "man is not installed (scripts/install-deps.sh installs man-db)"
# The C locale exists everywhere: a locale the environment names but the machine lacks makes man
# complain on stderr, which would read as a warning about the page.
export LC_ALL=C
unset LANGUAGE

# The long options a --help text names (CLI11 prints them as --name), and its subcommands (the
# first word of each line under "Subcommands:").
options_of() { grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u; }
subcommands_of() { sed -n '/^Subcommands:/,/^$/p' | sed -n 's/^  \([a-z][a-z0-9-]*\) .*/\1/p'; }

checked=0
for prog in "${PROGRAMS[@]}"; do
	page=$SOURCE/$prog/$prog.8
	[ "$prog" = xnat-load ] && page=$SOURCE/loader/$prog.8
	[ -f "$page" ] || fail "no man page for $prog: $page"
	# ASCII output, so that \- is a plain hyphen whatever the locale; --warnings passes -ww.
	err=$(MANWIDTH=100 man --warnings -E ascii -l "$page" 2>&1 >/dev/null) || fail "man -l $page failed: $err"
	[ -z "$err" ] || fail "$prog.8 renders with warnings: $err"
	text=$(MANWIDTH=100 man -E ascii -l "$page" 2>/dev/null | col -b)
	grep -q "^NAME" <<<"$text" && grep -q "^SYNOPSIS" <<<"$text" && grep -q "^OPTIONS" <<<"$text" ||
		fail "$prog.8 lacks NAME, SYNOPSIS or OPTIONS"
	help=$("$BUILD/$prog" --help)
	missing=()
	for opt in $(options_of <<<"$help"); do
		grep -qF -- "$opt" <<<"$text" || missing+=("$opt")
		checked=$((checked + 1))
	done
	for sub in $(subcommands_of <<<"$help"); do
		grep -qw -- "$sub" <<<"$text" || missing+=("subcommand $sub")
		checked=$((checked + 1))
		for opt in $("$BUILD/$prog" "$sub" --help | options_of); do
			grep -qF -- "$opt" <<<"$text" || missing+=("$sub $opt")
			checked=$((checked + 1))
		done
	done
	[ ${#missing[@]} -eq 0 ] || fail "$prog.8 does not document: ${missing[*]}"
	echo "  $prog.8: renders cleanly, documents all of --help"
done
echo "PASS man pages ($checked options and subcommands checked in ${#PROGRAMS[@]} pages)"
