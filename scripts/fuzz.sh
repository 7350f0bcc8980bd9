#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/) with clang, AddressSanitizer, UndefinedBehaviorSanitizer and
# libFuzzer, and runs each for a bounded time from a seed corpus made of the test data and
# fuzz/seeds. Prints the executions per target (also written to $B/fuzz-summary.md); exits
# non-zero when a target finds a crash, a sanitizer report, an exception other than moe::Error,
# a timeout or runaway memory (the input is saved under $B/findings/).
#   scripts/fuzz.sh [TARGET...]       (default: every target)
# Environment:
#   MOE_FUZZ_SECONDS    seconds per target (default 30)
#   MOE_FUZZ_SEED       libFuzzer's random seed (default 1: CI explores the same inputs each
#                       run, so a red CI is a change's doing; 0 = a new seed each run)
#   MOE_FUZZ_BUILD_DIR  build directory (default build-fuzz)
#   MOE_JOBS            parallel build jobs (default nproc)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
B=${MOE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
SECONDS_PER_TARGET=${MOE_FUZZ_SECONDS:-30}
SEED=${MOE_FUZZ_SEED:-1}
JOBS=${MOE_JOBS:-$(nproc)}
ALL=(gguf safetensors tokenizer jinja dataset adapter openai_request)
TARGETS=("$@")
[[ $# -gt 0 ]] || TARGETS=("${ALL[@]}")

command -v clang++ > /dev/null || { echo "fuzz: clang++ is missing: run scripts/install-deps.sh" >&2; exit 1; }
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CC=clang CXX=clang++ cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMOE_WITH_QT=OFF -DMOE_WITH_CUDA=OFF -DMOE_WITH_NUMA=OFF -DMOE_BUILD_TESTS=OFF \
    -DMOE_BUILD_FUZZERS=ON "-DCMAKE_CXX_FLAGS=$SAN -fsanitize=fuzzer-no-link" \
    "-DCMAKE_EXE_LINKER_FLAGS=$SAN" > /dev/null
cmake --build "$B" -j "$JOBS" --target make_seeds $(printf 'fuzz_%s ' "${TARGETS[@]}")

# Seed corpora: files of the same kind from the test data, plus fuzz/seeds and make_seeds.
C=$B/corpus
rm -rf "$C"
mkdir -p "$C"/{gguf,safetensors,tokenizer,jinja,dataset,adapter,openai_request} "$B/findings" "$B/tokenizers"
"$B/fuzz/make_seeds" "$C"
cp "$C"/safetensors/*.safetensors "$C/adapter/" 2> /dev/null || true
for d in tests/data/hf-tiny/*/lora; do
    name=$(basename "$(dirname "$d")")
    cp "$d/adapter_model.safetensors" "$C/safetensors/$name.safetensors"
    # A PEFT folder as one input: the config, a separator line, the weights.
    { cat "$d/adapter_config.json"; printf '\n--\n'; cat "$d/adapter_model.safetensors"; } > "$C/adapter/$name"
done
cp "$C"/gguf/*.gguf "$C/adapter/"
cp fuzz/seeds/tokenizer/* "$C/tokenizer/"
cp fuzz/seeds/dataset/* "$C/dataset/"
cp fuzz/seeds/openai_request/* "$C/openai_request/"
tar -xJf tests/data/tokenizers.tar.xz -C "$B/tokenizers"
for t in tests/data/chat-templates/templates/*; do cp "$t" "$C/jinja/"; done
export MOE_FUZZ_MODEL_DIR=$B/tokenizers/qwen3

# Input size bounds per target: headers and small files (libFuzzer mutates within them).
declare -A MAX_LEN=([gguf]=16384 [safetensors]=16384 [tokenizer]=16384 [jinja]=16384
    [dataset]=4096 [adapter]=65536 [openai_request]=4096)
status=0
summary="| target | seconds | executions | exec/s | corpus | result |\n|---|---|---|---|---|---|\n"
for t in "${TARGETS[@]}"; do
    log=$B/fuzz_$t.log
    echo "== fuzz_$t (${SECONDS_PER_TARGET}s)"
    result=ok
    "$B/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -seed="$SEED" -timeout=20 -rss_limit_mb=4096 \
        -max_len="${MAX_LEN[$t]}" -print_final_stats=1 -artifact_prefix="$B/findings/$t-" \
        "$C/$t" > "$log" 2>&1 || { result=FOUND; status=1; tail -n 40 "$log"; }
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -n 1)
    rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -n 1)
    files=$(ls "$C/$t" | wc -l)
    summary+="| fuzz_$t | $SECONDS_PER_TARGET | ${execs:-?} | ${rate:-?} | $files | $result |\n"
done
printf "%b" "$summary" | tee "$B/fuzz-summary.md"
exit $status
