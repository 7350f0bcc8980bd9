#pragma once
// Qt-free checks of the packed expert kernels and the fused MoE operator against their
// references, shared by tst_moe_kernels, tst_fused_moe and the standalone bench/moe_kernel_check
// (which runs on machines without Qt, e.g. the AMX host).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cpu/moe/fused_moe.h"
#include "cpu/moe/moe_kernels.h"
#include "cpu/quants.h"
#include "model/moe_block.h"

namespace moe_test {

using namespace moe;

// mean|a - b| / mean|b|
inline double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += std::fabs(double(a[i]) - double(b[i]));
        den += std::fabs(double(b[i]));
    }
    return den > 0 ? num / den : num;
}

inline std::vector<float> random_vec(std::mt19937& rng, size_t n, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& f : v) f = d(rng);
    return v;
}

inline WeightMatrix f32_matrix(const std::vector<float>& w, int64_t rows, int64_t cols) {
    WeightMatrix m;
    m.dtype = DType::F32;
    m.rows = rows;
    m.cols = cols;
    m.data = w.data();
    return m;
}

struct KernelErrors {
    double vs_scalar = 0;   // variant vs the scalar kernel on the same packed weights
    double vs_dequant = 0;  // vs fp32 x times the dequantized packed weights
    double vs_source = 0;   // vs fp32 x times the original fp32 weights
};

// Packs a random [rows, cols] matrix (plain, or as gate_up when gate_up) and compares y = x Wᵀ
// for T tokens under variant `v`.
inline KernelErrors check_kernel(KernelVariant v, const PackOptions& opt, int64_t rows,
                                 int64_t cols, int64_t T, bool gate_up, uint32_t seed) {
    std::mt19937 rng(seed);
    const int64_t n_src = gate_up ? 2 : 1;
    std::vector<std::vector<float>> src;
    for (int64_t s = 0; s < n_src; ++s) src.push_back(random_vec(rng, size_t(rows * cols), 0.05f));
    const std::vector<float> x = random_vec(rng, size_t(T * cols));
    // Q4K repacks GGUF Q4_K rows: quantize the sources to Q4_K, and compare against what they
    // hold (the repack adds no error of its own).
    std::vector<std::vector<uint8_t>> q4k(static_cast<size_t>(n_src));
    auto source = [&](int64_t s) {
        if (opt.format != PackedFormat::Q4K) return f32_matrix(src[size_t(s)], rows, cols);
        const size_t rb = ggml_row_size(GgmlType::Q4_K, cols);
        q4k[size_t(s)].resize(rb * size_t(rows));
        for (int64_t r = 0; r < rows; ++r) {
            float* row = src[size_t(s)].data() + r * cols;
            quantize_row(GgmlType::Q4_K, row, q4k[size_t(s)].data() + size_t(r) * rb, cols);
            dequantize_row(GgmlType::Q4_K, q4k[size_t(s)].data() + size_t(r) * rb, row, cols);
        }
        WeightMatrix w;
        w.ggml = true;
        w.ggml_type = GgmlType::Q4_K;
        w.rows = rows;
        w.cols = cols;
        w.data = q4k[size_t(s)].data();
        return w;
    };
    const PackedMatrix m =
        gate_up ? pack_gate_up(source(0), source(1), opt) : pack_matrix(source(0), opt);
    const int64_t ldy = m.blocks * kRowBlock;
    std::vector<float> y(size_t(T * ldy), 0.0f), ys(size_t(T * ldy), 0.0f);
    packed_gemm(v, m, x.data(), T, y.data(), ldy);
    packed_gemm(KernelVariant::Scalar, m, x.data(), T, ys.data(), ldy);
    // Logical outputs [T, n_src * rows] from the block-ordered y.
    std::vector<float> out, outs, ref_dq, ref_src;
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t s = 0; s < n_src; ++s) {
        for (int64_t r = 0; r < rows; ++r) {
            m.dequantize_row(s * rows + r, row.data());
            const int64_t b = gate_up ? 2 * (r / kRowBlock) + s : r / kRowBlock;
            const int64_t col = b * kRowBlock + r % kRowBlock;
            for (int64_t t = 0; t < T; ++t) {
                double dq = 0, sr = 0;
                for (int64_t c = 0; c < cols; ++c) {
                    dq += double(x[size_t(t * cols + c)]) * row[size_t(c)];
                    sr += double(x[size_t(t * cols + c)]) * src[size_t(s)][size_t(r * cols + c)];
                }
                out.push_back(y[size_t(t * ldy + col)]);
                outs.push_back(ys[size_t(t * ldy + col)]);
                ref_dq.push_back(float(dq));
                ref_src.push_back(float(sr));
            }
        }
    }
    return {rel_err(out, outs), rel_err(out, ref_dq), rel_err(out, ref_src)};
}

// Q4K: only the int8 activations differ from the weights' own values (bar as for GGUF rows
// against unquantized activations in tst_quants).
inline double format_bar(PackedFormat f) {
    return f == PackedFormat::BF16   ? 0.02
           : f == PackedFormat::INT8 ? 0.05
           : f == PackedFormat::Q4K  ? 0.02
                                     : 0.2;
}

// Allowed difference from the scalar kernel: float summation order only, except that the
// AVX-512/AMX BF16 kernels also round the activations to bf16 (~2e-3 relative).
inline double scalar_bar(KernelVariant v, PackedFormat f) {
    const bool bf16_acts =
        f == PackedFormat::BF16 && (v == KernelVariant::Avx512 || v == KernelVariant::Amx);
    return bf16_acts ? 5e-3 : 1e-4;
}

// Random routing: k distinct experts per token, softmax-like positive weights.
inline Routing random_routing(std::mt19937& rng, int64_t T, int64_t k, int64_t E) {
    Routing r;
    r.tokens = T;
    r.k = k;
    std::uniform_real_distribution<float> u(0.05f, 1.0f);
    for (int64_t t = 0; t < T; ++t) {
        std::vector<int32_t> all(static_cast<size_t>(E));
        for (int64_t e = 0; e < E; ++e) all[size_t(e)] = int32_t(e);
        std::shuffle(all.begin(), all.end(), rng);
        for (int64_t j = 0; j < k; ++j) {
            r.ids.push_back(all[size_t(j)]);
            r.weights.push_back(u(rng));
        }
    }
    return r;
}

struct FusedCase {
    int64_t experts = 8, hidden = 80, inter = 56, T = 1, k = 2;
    PackOptions opt;
    bool gguf = false;  // experts stored as a GGUF type, used in place
    GgmlType gguf_type = GgmlType::Q8_0;
    std::optional<GgmlType> gguf_down_type;  // default: gguf_type
    // With gguf and opt.format Q4K, the Q4_K matrices are repacked (make_bank_expert).
    bool biases = false;
    bool clamped_swiglu = false;
    bool mask = false;  // skip every third expert
    // NUMA parts of every expert (virtual nodes, ordinary memory); with parts > 1, `pools`
    // must have that many nodes.
    int parts = 1;
    NumaPools* pools = nullptr;
};

// Fused operator vs run_experts_reference over the same (dequantized / GGUF) weights.
inline double check_fused(KernelVariant v, const FusedCase& c, uint32_t seed) {
    std::mt19937 rng(seed);
    const int64_t H = c.hidden, I = c.inter;
    ExpertBank bank;
    bank.hidden = H;
    bank.inter = I;
    ExpertActivation ref_act;
    if (c.clamped_swiglu) {
        bank.act.kind = GluActivation::Kind::ClampedSwiGlu;
        ref_act.kind = ExpertActivation::Kind::ClampedSwiGlu;
    }
    std::vector<Expert> ref(size_t(c.experts));
    auto keep = std::make_shared<std::vector<std::vector<uint8_t>>>();
    auto make_ref = [&](std::vector<float> w, int64_t rows, int64_t cols, GgmlType type) {
        Linear l;
        if (c.gguf) {
            const size_t rb = ggml_row_size(type, cols);
            keep->emplace_back(rb * size_t(rows));
            for (int64_t r = 0; r < rows; ++r)
                quantize_row(type, w.data() + r * cols, keep->back().data() + r * rb, cols);
            l.w.ggml = true;
            l.w.ggml_type = type;
            l.w.rows = rows;
            l.w.cols = cols;
            l.w.data = keep->back().data();
            return l;
        }
        auto store = std::make_shared<std::vector<float>>(std::move(w));
        return make_linear(DType::F32, rows, cols, store, store->data());
    };
    for (int64_t e = 0; e < c.experts; ++e) {
        ExpertSource src;
        Expert& r = ref[size_t(e)];
        r.gate = make_ref(random_vec(rng, size_t(I * H), 0.1f), I, H, c.gguf_type);
        r.up = make_ref(random_vec(rng, size_t(I * H), 0.1f), I, H, c.gguf_type);
        r.down = make_ref(random_vec(rng, size_t(H * I), 0.1f), H, I,
                          c.gguf_down_type.value_or(c.gguf_type));
        if (c.biases) {
            r.gate.bias = random_vec(rng, size_t(I), 0.1f);
            r.up.bias = random_vec(rng, size_t(I), 0.1f);
            r.down.bias = random_vec(rng, size_t(H), 0.1f);
        }
        src.gate = r.gate.w;
        src.up = r.up.w;
        src.down = r.down.w;
        src.gate_bias = r.gate.bias;
        src.up_bias = r.up.bias;
        src.down_bias = r.down.bias;
        bank.experts.push_back(
            make_bank_expert(src, c.opt, c.gguf, std::vector<int>(size_t(c.parts), -1)));
        if (!c.gguf) {
            // The reference multiplies by exactly the weights the kernels hold: each part's
            // gate/up rows and down columns, dequantized into the whole matrices.
            const BankExpert& be = bank.experts.back();
            auto g = std::make_shared<std::vector<float>>(size_t(I * H));
            auto u = std::make_shared<std::vector<float>>(size_t(I * H));
            auto d = std::make_shared<std::vector<float>>(size_t(H * I));
            std::vector<float> row(size_t(std::max(H, I)));
            for (const ExpertPart& part : be.parts) {
                const int64_t n = part.i1 - part.i0;
                for (int64_t i = 0; i < n; ++i) {
                    part.gate_up.dequantize_row(i, g->data() + (part.i0 + i) * H);
                    part.gate_up.dequantize_row(n + i, u->data() + (part.i0 + i) * H);
                }
                for (int64_t r = 0; n > 0 && r < H; ++r) {
                    part.down.dequantize_row(r, row.data());
                    std::copy(row.begin(), row.begin() + n, d->begin() + r * I + part.i0);
                }
            }
            r.gate.w.data = g->data();
            r.gate.owner = g;
            r.up.w.data = u->data();
            r.up.owner = u;
            r.down.w.data = d->data();
            r.down.owner = d;
        }
    }
    const std::vector<float> x = random_vec(rng, size_t(c.T * H));
    const Routing routing = random_routing(rng, c.T, c.k, c.experts);
    std::vector<uint8_t> skip(size_t(c.experts), 0);
    std::vector<bool> skip_ref(size_t(c.experts), false);
    if (c.mask) {
        for (int64_t e = 0; e < c.experts; e += 3) skip[size_t(e)] = 1, skip_ref[size_t(e)] = true;
    }
    std::vector<float> out(size_t(c.T * H), 123.0f), want(size_t(c.T * H));
    fused_moe(bank, x.data(), c.T, routing.ids.data(), routing.weights.data(), c.k, skip.data(),
              out.data(), v, c.pools);
    run_experts_reference(ref, ref_act, x.data(), c.T, H, routing, &skip_ref, want.data());
    return rel_err(out, want);
}

}  // namespace moe_test
