#include "cpu/gemm.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/worker_pool.h"
#include "cpu/float_rows.h"
#include "cpu/moe/gguf_gemm.h"
#include "cpu/moe/gguf_row_dot.h"
#include "cpu/quants.h"

namespace moe {

size_t WeightMatrix::row_bytes() const {
    return ggml ? ggml_row_size(ggml_type, cols) : size_t(cols) * dtype_size(dtype);
}

WeightMatrix WeightMatrix::row_slice(int64_t begin, int64_t count) const {
    WeightMatrix s = *this;
    s.rows = count;
    s.data = static_cast<const uint8_t*>(data) + size_t(begin) * row_bytes();
    s.scale_row0 = scale_row0 + begin;
    return s;
}

void WeightMatrix::row_to_f32(int64_t r, float* out, int64_t c0, int64_t c1) const {
    if (ggml) {
        const auto* row = static_cast<const uint8_t*>(data) + size_t(r) * row_bytes();
        if (c0 == 0 && c1 == cols) {
            dequantize_row(ggml_type, row, out, cols);
            return;
        }
        std::vector<float> full(static_cast<size_t>(cols));  // blocks span the whole row
        dequantize_row(ggml_type, row, full.data(), cols);
        std::copy(full.begin() + c0, full.begin() + c1, out);
        return;
    }
    const size_t esize = dtype_size(dtype);
    const auto* row = static_cast<const uint8_t*>(data) + size_t(r * cols + c0) * esize;
    convert_to_f32(dtype, row, out, size_t(c1 - c0));
    if (dtype == DType::F8_E4M3 && block_scale) {
        const float* srow = block_scale + ((scale_row0 + r) / block) * scale_cols;
        for (int64_t c = c0; c < c1; ++c) out[c - c0] *= srow[c / block];
    }
}

float dot_f32(const float* a, const float* b, int64_t n) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
    return acc;
}

namespace {

// llama.cpp's matmul for block formats: each activation row is quantized once to the
// weight type's vec_dot_type; then, per chunk of output rows, the tiled GGUF GEMM for several
// tokens (each weight block unpacked once per tile of tokens) or the registered row-dot kernels
// (SIMD when registered) for one. Both agree with the scalar vec_dot bit for bit.
void gemm_xwt_ggml(const float* x, int64_t T, const WeightMatrix& w, float* y) {
    const GgmlType act = vec_dot_type(w.ggml_type);
    const size_t act_bytes = ggml_row_size(act, w.cols);
    std::vector<uint8_t> qx(act_bytes * size_t(T));
    parallel_for(T, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            quantize_activation(act, x + t * w.cols, qx.data() + size_t(t) * act_bytes, w.cols);
        }
    });
    const size_t rb = w.row_bytes();
    const GgufGemm gemm =
        T >= kGgufGemmMinTokens ? gguf_gemm(w.ggml_type) : GgufGemm{nullptr, "none"};
    const GgufRowDot& dot = gguf_row_dot(w.ggml_type);
    parallel_for(w.rows, 32, [&](int64_t r0, int64_t r1) {
        const auto* rows = static_cast<const uint8_t*>(w.data) + size_t(r0) * rb;
        if (gemm.gemm) {
            gemm.gemm(rows, rb, r1 - r0, qx.data(), act_bytes, T, w.cols, y + r0, w.rows);
            return;
        }
        std::vector<float> out(size_t(r1 - r0));
        for (int64_t t = 0; t < T; ++t) {
            dot.dot_rows(rows, rb, r1 - r0, qx.data() + size_t(t) * act_bytes, w.cols, out.data());
            std::copy(out.begin(), out.end(), y + t * w.rows + r0);
        }
    });
}

}  // namespace

void gemm_xwt(const float* x, int64_t T, const WeightMatrix& w, float* y) {
    if (w.ggml) {
        gemm_xwt_ggml(x, T, w, y);
        return;
    }
    const int64_t K = w.cols;
    if (w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16) {
        // Float weights straight from the mapping: SIMD row dots (float_rows.h), per chunk of
        // rows for every token, so the chunk stays in cache while the tokens go by.
        const size_t rb = w.row_bytes();
        parallel_for(w.rows, 32, [&](int64_t r0, int64_t r1) {
            const auto* rows = static_cast<const uint8_t*>(w.data) + size_t(r0) * rb;
            float_rows_gemm(w.dtype, rows, rb, r1 - r0, x, K, T, K, y + r0, w.rows);
        });
        return;
    }
    constexpr int64_t kRowBlock = 8;
    const int64_t blocks = (w.rows + kRowBlock - 1) / kRowBlock;
    parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
        std::vector<float> wf(size_t(kRowBlock * K));
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t r0 = b * kRowBlock;
            const int64_t nr = std::min(kRowBlock, w.rows - r0);
            for (int64_t i = 0; i < nr; ++i) w.row_to_f32(r0 + i, &wf[size_t(i * K)]);
            for (int64_t t = 0; t < T; ++t) {
                const float* xt = x + t * K;
                float* yt = y + t * w.rows + r0;
                for (int64_t i = 0; i < nr; ++i) yt[i] = dot_f32(xt, &wf[size_t(i * K)], K);
            }
        }
    });
}

namespace {

// gemm_xw row by row (GGUF rows decode only whole): W's rows (the sum's dimension) in fixed
// slices, each row decoded once and x[t, k] * row added into the slice's partial y; the
// partials are added up at the end, in slice order. Tokens go in chunks so that the partials
// stay small (slices x chunk x N floats). Nothing of W is kept decoded beyond four rows per
// worker.
void gemm_xw_rows(const float* x, int64_t T, const WeightMatrix& w, float* y) {
    const int64_t N = w.cols, K = w.rows;
    WorkerPool& pool = default_worker_pool();
    // A fixed split of W's rows into slices, each with its partial sums, added in slice order:
    // the result does not depend on which worker ran which slice, nor on the thread count
    // (training must give the same losses run after run).
    const int64_t slices = std::clamp<int64_t>((K + 63) / 64, 1, 16);
    const int64_t per = (K / slices + 3) / 4 * 4;  // multiples of 4 rows (the inner blocking)
    constexpr int64_t kTokenChunk = 128;
    const int64_t chunk = std::min(T, kTokenChunk);
    std::vector<float> partial(static_cast<size_t>(slices) * size_t(chunk * N));
    std::vector<std::vector<float>> rows(static_cast<size_t>(pool.size()));
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t tn = std::min(chunk, T - t0);
        std::fill(partial.begin(), partial.end(), 0.0f);
        pool.parallel_for(
            slices,
            [&](int64_t s0, int64_t s1, int worker) {
                // Four rows at a time: four multiply-adds per load and store of the partial.
                std::vector<float>& row = rows[size_t(worker)];
                row.assign(size_t(4 * N), 0.0f);
                const float* r0 = row.data();
                const float* r1 = r0 + N;
                const float* r2 = r1 + N;
                const float* r3 = r2 + N;
                for (int64_t sl = s0; sl < s1; ++sl) {
                    float* part = partial.data() + size_t(sl) * size_t(chunk * N);
                    const int64_t k0 = std::min(K, sl * per),
                                  k1 = sl + 1 == slices ? K : std::min(K, (sl + 1) * per);
                    for (int64_t k = k0; k < k1; k += 4) {
                        const int64_t m = std::min<int64_t>(4, k1 - k);
                        for (int64_t i = 0; i < m; ++i) w.row_to_f32(k + i, row.data() + i * N);
                        for (int64_t t = 0; t < tn; ++t) {
                            const float* xt = x + (t0 + t) * K + k;
                            const float x0 = xt[0], x1 = m > 1 ? xt[1] : 0.0f,
                                        x2 = m > 2 ? xt[2] : 0.0f, x3 = m > 3 ? xt[3] : 0.0f;
                            if (x0 == 0.0f && x1 == 0.0f && x2 == 0.0f && x3 == 0.0f) continue;
                            float* pt = part + t * N;
#pragma omp simd
                            for (int64_t c = 0; c < N; ++c)
                                pt[c] += x0 * r0[c] + x1 * r1[c] + x2 * r2[c] + x3 * r3[c];
                        }
                    }
                }
            },
            1);
        pool.parallel_for(
            tn * N,
            [&](int64_t i0, int64_t i1, int) {
                for (int64_t i = i0; i < i1; ++i) {
                    float sum = 0.0f;
                    for (int64_t sl = 0; sl < slices; ++sl)
                        sum += partial[size_t(sl) * size_t(chunk * N) + size_t(i)];
                    y[t0 * N + i] = sum;
                }
            },
            1024);
    }
}

}  // namespace

void gemm_xw(const float* x, int64_t T, const WeightMatrix& w, float* y) {
    // Few tokens (the training backward of one expert's share of a batch): converting W's
    // rows whole once each beats converting it column block by column block.
    if (w.ggml || T <= 32) {
        gemm_xw_rows(x, T, w, y);
        return;
    }
    const int64_t N = w.cols, K = w.rows;
    // Each task owns a range of output columns, so writes never overlap.
    constexpr int64_t kColBlock = 64;
    const int64_t blocks = (N + kColBlock - 1) / kColBlock;
    // Four rows of W per pass over the y block: four multiply-adds per load and store of y.
    constexpr int64_t kRows = 4;
    parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
        std::vector<float> part(static_cast<size_t>(kRows * kColBlock), 0.0f);
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t c0 = b * kColBlock, c1 = std::min(N, c0 + kColBlock), n = c1 - c0;
            for (int64_t t = 0; t < T; ++t) std::fill(y + t * N + c0, y + t * N + c1, 0.0f);
            for (int64_t k = 0; k < K; k += kRows) {
                const int64_t m = std::min(kRows, K - k);
                for (int64_t i = 0; i < m; ++i)
                    w.row_to_f32(k + i, part.data() + i * kColBlock, c0, c1);
                const float* p0 = part.data();
                const float* p1 = p0 + kColBlock;
                const float* p2 = p1 + kColBlock;
                const float* p3 = p2 + kColBlock;
                for (int64_t t = 0; t < T; ++t) {
                    const float* xt = x + t * K + k;
                    // Rows past K weigh zero (their stale part rows add nothing).
                    const float x0 = xt[0], x1 = m > 1 ? xt[1] : 0.0f, x2 = m > 2 ? xt[2] : 0.0f,
                                x3 = m > 3 ? xt[3] : 0.0f;
                    float* yt = y + t * N + c0;
#pragma omp simd
                    for (int64_t c = 0; c < n; ++c)
                        yt[c] += x0 * p0[c] + x1 * p1[c] + x2 * p2[c] + x3 * p3[c];
                }
            }
        }
    });
}

}  // namespace moe
