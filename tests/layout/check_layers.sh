#!/bin/bash
# The folders are the architecture (lib/README.md), so the rules that make them so are checked:
#   - no two headers share a name, wherever they are;
#   - each layer of lib/ includes only the layers below it: core only itself and include/xnat,
#     import core, kernel core and the BPF skeleton, cli and portmap core; only kernel uses libbpf;
#   - the unit tests include no kernel-layer header;
#   - every source of lib/ is built, so none lies there unused.
# Prints every breach, one line each, and exits 1 if there is one.
#   check_layers.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"
breaches=0
breach() {
	echo "layout: $*" >&2
	breaches=$((breaches + 1))
}

# Headers of the source tree; from a tarball (no git) every one outside build folders.
headers() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard '*.h' '*.hpp'
	else
		find . -path './build*' -prune -o \( -name '*.h' -o -name '*.hpp' \) -printf '%P\n'
	fi
}
all_headers=$(headers)
while read -r count name; do
	[ "$count" -gt 1 ] && breach "$count headers are named $name: $(grep -E "(^|/)${name//./\\.}$" <<<"$all_headers" | tr '\n' ' ')"
done < <(xargs -n1 basename <<<"$all_headers" | sort | uniq -c)

# allowed_quoted LAYER: the prefixes its quoted includes may have.
allowed_quoted() {
	case $1 in
	core) echo "core/ xnat/" ;;
	import) echo "core/ import/ xnat/" ;;
	kernel) echo "core/ kernel/ xnat/ xnat_bpf.skel.h" ;;
	cli) echo "core/ cli/" ;;
	portmap) echo "core/ portmap/" ;;
	esac
}
for layer in core import kernel cli portmap; do
	allowed=$(allowed_quoted "$layer")
	while IFS=: read -r file line include; do
		name=$(sed -E 's/.*"([^"]+)".*/\1/' <<<"$include")
		ok=0
		for prefix in $allowed; do
			[[ $name == "$prefix"* ]] && ok=1
		done
		[ "$ok" = 1 ] || breach "$file:$line: $layer includes \"$name\""
	done < <(grep -nE '^\s*#\s*include\s+"' lib/"$layer"/*.h lib/"$layer"/*.cpp 2>/dev/null || true)
done
for layer in core import cli portmap; do
	while IFS=: read -r file line include; do
		breach "$file:$line: $layer uses libbpf or kernel headers: $include"
	done < <(grep -nE '^\s*#\s*include\s+<(bpf|linux)/' lib/"$layer"/*.h lib/"$layer"/*.cpp 2>/dev/null || true)
done

# The unit tests run without root or a kernel: they test core, import and portmap only.
while IFS=: read -r file line include; do
	breach "$file:$line: a unit test includes the kernel layer: $include"
done < <(grep -nE '^\s*#\s*include\s+"kernel/' tests/unit/*.h tests/unit/*.cpp 2>/dev/null || true)

for src in lib/*/*.cpp; do
	rel=${src#lib/}
	grep -qE "(^|[[:space:]])${rel//./\\.}([[:space:]]|\)|$)" lib/CMakeLists.txt || breach "$src is not built (lib/CMakeLists.txt)"
done

[ "$breaches" = 0 ] || exit 1
echo "layout: $(wc -l <<<"$all_headers") headers, all named apart; lib/ layers include only what they may"
