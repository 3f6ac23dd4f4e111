#!/bin/bash
# Configures and builds into build/ (or $XNAT_BUILD_DIR): a development build, so warnings are
# errors (XNAT_WERROR; a plain cmake build, as a packager runs it, leaves them warnings).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${XNAT_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DBUILD_TESTING=ON -DXNAT_WERROR=ON ${XNAT_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
