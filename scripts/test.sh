#!/usr/bin/env bash
# Builds MoE Studio and runs every test suite (the project's CI command).
#   ./scripts/test.sh
# Environment:
#   MOE_PRESET     configure preset (default: ci -> warnings are errors, CUDA off)
#   MOE_BUILD_DIR  build directory (default: the preset's, build-ci for ci)
#   MOE_JOBS       parallel build jobs (default: nproc)
#   MOE_SKIP_DEPS  set to 1 to skip scripts/install-deps.sh
#   CTEST_PARALLEL_LEVEL  parallel tests (ctest's own variable; default serial)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PRESET=${MOE_PRESET:-ci}
JOBS=${MOE_JOBS:-$(nproc)}

if [[ "${MOE_SKIP_DEPS:-0}" != 1 ]]; then
    "$ROOT/scripts/install-deps.sh"
fi

configure_args=(--preset "$PRESET")
if [[ -n "${MOE_BUILD_DIR:-}" ]]; then
    BUILD_DIR=$MOE_BUILD_DIR
    configure_args+=(-B "$BUILD_DIR")
else
    case "$PRESET" in
        default) BUILD_DIR=$ROOT/build ;;
        ci) BUILD_DIR=$ROOT/build-ci ;;
        cpu-only) BUILD_DIR=$ROOT/build-cpu ;;
        debug) BUILD_DIR=$ROOT/build-debug ;;
        *) BUILD_DIR=$ROOT/build-$PRESET; configure_args+=(-B "$BUILD_DIR") ;;
    esac
fi

echo "== configure ($PRESET -> $BUILD_DIR)"
cmake "${configure_args[@]}"

echo "== build (-j$JOBS)"
cmake --build "$BUILD_DIR" -j "$JOBS"

echo "== test"
# --no-tests=error: a run that finds no tests (e.g. Qt missing) is a failure, not a green.
ctest --test-dir "$BUILD_DIR" --output-on-failure --no-tests=error
