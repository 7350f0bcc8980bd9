#!/usr/bin/env bash
# Builds MoE Studio and runs it: the desktop app when a display is available (and Qt Widgets
# were found), else `moestudio-cli generate` in the terminal.
#   ./scripts/moestudio.sh                       # the built-in demo model
#   ./scripts/moestudio.sh /path/to/hf-model     # a Hugging Face model folder (or a .gguf)
#   ./scripts/moestudio.sh MODEL --greedy --max-new-tokens 128   # extra CLI args (terminal)
# Extra arguments go to `moestudio-cli generate` after the defaults, so they
# can override them (the last occurrence of an option wins). MOE_CLI_ONLY=1: the terminal
# even with a display.
# Environment: MOE_BUILD_DIR (default: build, the `default` preset's),
#              MOE_JOBS (default: nproc), MOE_SKIP_DEPS=1 to skip install-deps.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

BUILD_DIR=$(realpath -m -- "${MOE_BUILD_DIR:-$ROOT/build}")
JOBS=${MOE_JOBS:-$(nproc)}
CLI=$BUILD_DIR/app/cli/moestudio-cli
DEMO_MODEL=$BUILD_DIR/demo-model

MODEL=$DEMO_MODEL
if [[ $# -gt 0 && "$1" != -* ]]; then
    MODEL=$(realpath -m -- "$1")   # relative to where the script was started
    shift
fi
cd "$ROOT"

if [[ "$MODEL" != "$DEMO_MODEL" && ! -e "$MODEL" ]]; then
    echo "moestudio: model '$MODEL' does not exist" >&2
    exit 1
fi

if [[ "${MOE_SKIP_DEPS:-0}" != 1 ]]; then
    "$ROOT/scripts/install-deps.sh"
fi

configure_args=(--preset default)
[[ -n "${MOE_BUILD_DIR:-}" ]] && configure_args+=(-B "$BUILD_DIR")
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    cmake "${configure_args[@]}"
fi

# Build only the CLI (and the desktop app when there is a display to show it on), plus the
# target that writes the demo model when it is asked for.
targets=(moestudio-cli)
GUI=$BUILD_DIR/app/gui/moestudio
want_gui=0
if [[ "${MOE_CLI_ONLY:-0}" != 1 && -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]] &&
   cmake --build "$BUILD_DIR" --target help 2>/dev/null | grep -q "^moestudio:"; then
    want_gui=1
    targets+=(moestudio)
fi
if [[ "$MODEL" == "$DEMO_MODEL" ]]; then
    available=$(cmake --build "$BUILD_DIR" --target help 2>/dev/null || true)
    for t in demo-model demo_model moe_demo_model; do
        if grep -q "^$t:" <<<"$available"; then
            targets+=("$t")
        fi
    done
fi
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}"
if [[ "$MODEL" == "$DEMO_MODEL" && ! -e "$DEMO_MODEL" ]]; then
    echo "moestudio: $DEMO_MODEL was not produced by the demo target; building everything" >&2
    cmake --build "$BUILD_DIR" -j "$JOBS"
    if [[ ! -e "$DEMO_MODEL" ]]; then
        echo "moestudio: the build did not produce $DEMO_MODEL" >&2
        exit 1
    fi
fi

if [[ $want_gui == 1 ]]; then
    if [[ "$MODEL" == "$DEMO_MODEL" ]]; then exec "$GUI"; else exec "$GUI" "$MODEL"; fi
fi
exec "$CLI" generate "$MODEL" --prompt "Once upon a time" --max-new-tokens 64 "$@"
