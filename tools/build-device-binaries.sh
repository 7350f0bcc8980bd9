#!/usr/bin/env bash
# Builds the self-contained binaries the GPU machine runs (it has no Qt and no network) into
# .devbin/ (ignored by git; carried with `run --carry .devbin`): moestudio-cli and the Qt-free
# checkers, with libstdc++/libgcc and the CUDA runtime linked statically. Engine only, no Qt,
# no libnuma; CUDA for sm_90 when a toolkit is present.
#   tools/build-device-binaries.sh            then on the device: tools/gpu-check.sh,
#                                             tools/device_bench.sh, tools/device_train_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-static-cuda
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOE_WITH_QT=OFF -DMOE_WITH_NUMA=OFF \
    -DMOE_BUILD_TESTS=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
    "-DCMAKE_EXE_LINKER_FLAGS=-static-libstdc++ -static-libgcc" > /dev/null
cmake --build "$B" -j"$(nproc)" --target moestudio-cli
mkdir -p .devbin
cp "$B/app/cli/moestudio-cli" .devbin/
cp "$(ldconfig -p | awk '/libpcre2-8.so.0 /{print $NF; exit}')" .devbin/ 2>/dev/null || true
cp "$(ldconfig -p | awk '/libsqlite3.so.0 /{print $NF; exit}')" .devbin/ 2>/dev/null || true
# The CLI's HTTP server (serve) links Debian's cpp-httplib and, through it, OpenSSL and brotli.
for lib in libcpp-httplib.so.0.11 libssl.so.3 libcrypto.so.3 libbrotlidec.so.1 \
    libbrotlienc.so.1 libbrotlicommon.so.1; do
    cp "$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')" .devbin/ 2>/dev/null || true
done
LIBS=("$B/engine/libmoe_engine.a" -L.devbin -l:libsqlite3.so.0 -lpthread -static-libstdc++
      -static-libgcc)
CUDA_LIBS=()
if [ -n "$(find "$B/engine" -name 'basic_kernels.cu.o' -print -quit)" ]; then  # CUDA was built
    # cuBLAS has no static library in the toolkit here: linked dynamically, found on the GPU
    # machine through the toolkit's lib64 (rpath).
    CUDA_LIBS=(-DMOE_HAVE_CUDA=1 -I/usr/local/cuda/include -L/usr/local/cuda/lib64 -lcublas
               -lcudart_static -ldl -lrt -Wl,-rpath,/usr/local/cuda/lib64)
fi
g++ -O2 -std=c++20 -Iengine/src -Itests/engine bench/moe_kernel_check.cpp "${LIBS[@]}" \
    "${CUDA_LIBS[@]}" -o .devbin/moe-kernel-check
g++ -O2 -std=c++20 -Iengine/src bench/row_kernel_rate.cpp "${LIBS[@]}" "${CUDA_LIBS[@]}" \
    -o .devbin/row-kernel-rate
g++ -O2 -std=c++20 -Iengine/src -Itests/support bench/lora_check.cpp tests/support/golden.cpp \
    "${LIBS[@]}" "${CUDA_LIBS[@]}" \
    -L.devbin -l:libpcre2-8.so.0 -Wl,-rpath,'$ORIGIN' -o .devbin/lora-check
if [ ${#CUDA_LIBS[@]} -gt 0 ]; then
    g++ -O2 -std=c++20 -Iengine/src -Itests -Itests/support bench/cuda_kernel_check.cpp \
        tests/support/random_blocks.cpp "${LIBS[@]}" "${CUDA_LIBS[@]}" \
        -L.devbin -l:libpcre2-8.so.0 -Wl,-rpath,'$ORIGIN' -o .devbin/cuda-kernel-check
    g++ -O2 -std=c++20 -Iengine/src -Itests -Itests/support bench/hybrid_check.cpp \
        tests/support/golden.cpp "${LIBS[@]}" "${CUDA_LIBS[@]}" \
        -L.devbin -l:libpcre2-8.so.0 -Wl,-rpath,'$ORIGIN' -o .devbin/hybrid-check
fi
ls -la .devbin
