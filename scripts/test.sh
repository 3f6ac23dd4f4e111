#!/bin/bash
# Installs dependencies, builds, and runs every test: unit (Catch2), BPF packet tests
# (BPF_PROG_TEST_RUN on the real object) and end-to-end tests in network namespaces.
# Needs root: BPF and namespaces do.   usage: sudo scripts/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "test.sh: the BPF and end-to-end tests need root; run: sudo $0" >&2
	exit 1
fi
scripts/install-deps.sh
# Every test layer must build here: a missing fuzzer toolchain fails instead of skipping.
XNAT_CMAKE_ARGS="-DXNAT_REQUIRE_FUZZ=ON ${XNAT_CMAKE_ARGS:-}" scripts/build.sh
cd "${XNAT_BUILD_DIR:-build}"
ctest --output-on-failure "$@"
