#!/bin/bash
# Configures and builds into build/ (or $XNAT_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${XNAT_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DBUILD_TESTING=ON ${XNAT_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
