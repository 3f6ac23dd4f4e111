#!/bin/bash
# Builds the Debian package: a release build as a packager makes it (warnings stay warnings,
# no tests), installed under /usr with its configs in /etc, then `cpack -G DEB`.
#   scripts/package.sh [BUILD_DIR]      (default build-deb); prints the .deb's path
# Install it with `sudo apt-get install ./xnat_*.deb`, which pulls in its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-deb}
bash scripts/install-deps.sh
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
	-DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc >"$BUILD.configure.log" 2>&1 ||
	{ cat "$BUILD.configure.log" >&2; exit 1; }
rm -f "$BUILD.configure.log"
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
(cd "$BUILD" && rm -f xnat_*.deb && cpack -G DEB >cpack.log 2>&1) || { cat "$BUILD/cpack.log" >&2; exit 1; }
realpath "$BUILD"/xnat_*.deb
