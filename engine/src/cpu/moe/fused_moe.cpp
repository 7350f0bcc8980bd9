// The fused MoE operator (fused_moe.h).
#include "cpu/moe/fused_moe.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/moe/gguf_gemm.h"
#include "cpu/moe/gguf_row_dot.h"
#include "cpu/quants.h"

namespace moe {

void GluActivation::apply(const float* gate, const float* up, float* h, int64_t n) const {
    if (kind == Kind::SiluGlu) {
        for (int64_t i = 0; i < n; ++i) h[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
        return;
    }
    for (int64_t i = 0; i < n; ++i) {
        const float g = std::min(gate[i], limit);
        const float u = std::clamp(up[i], -limit, limit);
        h[i] = (u + 1.0f) * (g / (1.0f + std::exp(-alpha * g)));
    }
}

namespace {

GgufMatrix gguf_matrix(const WeightMatrix& w) {
    return {w.ggml_type, w.data, w.rows, w.cols, w.row_bytes()};
}

bool gguf_usable(const WeightMatrix& w) {
    return w.ggml && has_quant_kernels(w.ggml_type) &&
           w.cols % ggml_block_size(vec_dot_type(w.ggml_type)) == 0;
}

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// One active expert's working set for a call.
struct Work {
    int64_t e = 0, n = 0;
    std::vector<int64_t> tokens;  // token indices, in token order
    std::vector<float> xg;        // gathered x [n, hidden]
    PackedActs ax, ah;            // packed experts: prepared x and h
    std::vector<uint8_t> qx, qh;  // GGUF experts: x / h quantized to vec_dot_type
    size_t qx_row = 0, qh_row = 0;
    std::vector<float> gu;  // gate/up in block order [n, 2 * pairs * 16]
    std::vector<float> h;   // [n, pairs * 16] (padding columns stay 0)
    std::vector<float> y;   // [n, down_blocks * 16]
};

struct Item {
    int64_t w, b0, b1;  // Work index, block range (gate/up: pairs; down: row blocks)
};

// Splits every expert's `units(e)` blocks into items, fine enough for all threads to get
// several items even when only one or two experts are active.
template <typename Units>
std::vector<Item> make_items(const std::vector<Work>& work, Units units) {
    int64_t total = 0;
    for (const Work& w : work) total += units(w);
    const int64_t target = int64_t(parallel_threads()) * 8;
    const int64_t per = std::clamp<int64_t>(total / std::max<int64_t>(target, 1), 1, 16);
    std::vector<Item> items;
    for (size_t i = 0; i < work.size(); ++i) {
        const int64_t u = units(work[i]);
        for (int64_t b = 0; b < u; b += per) items.push_back({int64_t(i), b, std::min(u, b + per)});
    }
    return items;
}

void quantize_rows(const GgufMatrix& m, const float* x, int64_t n, int64_t ldx,
                   std::vector<uint8_t>& q, size_t& row) {
    const GgmlType at = vec_dot_type(m.type);
    row = ggml_row_size(at, m.cols);
    q.resize(row * size_t(n));
    for (int64_t i = 0; i < n; ++i)
        quantize_activation(at, x + i * ldx, q.data() + i * row, m.cols);
}

void gguf_rows(const GgufMatrix& m, int64_t r0, int64_t r1, const std::vector<uint8_t>& q,
               size_t qrow, int64_t n, float* y, int64_t ldy) {
    if (r0 >= r1) return;
    const auto* base = static_cast<const uint8_t*>(m.data) + size_t(r0) * m.row_bytes;
    if (n >= kGgufGemmMinTokens) {
        // Several tokens: the tiled GEMM unpacks each weight block once per tile of tokens.
        const GgufGemm gemm = gguf_gemm(m.type);
        if (gemm.gemm) {
            gemm.gemm(base, m.row_bytes, r1 - r0, q.data(), qrow, n, m.cols, y, ldy);
            return;
        }
    }
    const GgufRowDot& dot = gguf_row_dot(m.type);
    for (int64_t i = 0; i < n; ++i)
        dot.dot_rows(base, m.row_bytes, r1 - r0, q.data() + size_t(i) * qrow, m.cols, y + i * ldy);
}

void run_chunk(const ExpertBank& bank, const float* x, int64_t T, const int32_t* ids,
               const float* weights, int64_t k, const uint8_t* skip, float* out, KernelVariant v) {
    const int64_t H = bank.hidden, I = bank.inter, E = int64_t(bank.experts.size());
    const int64_t pairs = ceil_div(I, kRowBlock), dblocks = ceil_div(H, kRowBlock);
    // Slot (t, j) -> (work index, row within the expert), or -1 when the expert is skipped.
    std::vector<int64_t> where(size_t(E), -1);
    std::vector<int64_t> slot_work(size_t(T * k), -1), slot_row(size_t(T * k), 0);
    std::vector<Work> work;
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < k; ++j) {
            const int64_t e = ids[t * k + j];
            require(e >= 0 && e < E, "fused_moe: expert id " + std::to_string(e) + " out of range");
            if (skip && skip[e]) continue;
            if (where[size_t(e)] < 0) {
                where[size_t(e)] = int64_t(work.size());
                work.push_back(Work{});
                work.back().e = e;
            }
            Work& w = work[size_t(where[size_t(e)])];
            slot_work[size_t(t * k + j)] = where[size_t(e)];
            slot_row[size_t(t * k + j)] = int64_t(w.tokens.size());
            w.tokens.push_back(t);  // a token routed twice to one expert gets two rows
        }
    }

    // 1. gather and prepare activations
    parallel_for(int64_t(work.size()), 1, [&](int64_t w0, int64_t w1) {
        for (int64_t wi = w0; wi < w1; ++wi) {
            Work& w = work[size_t(wi)];
            const BankExpert& ex = bank.experts[size_t(w.e)];
            w.n = int64_t(w.tokens.size());
            w.xg.resize(size_t(w.n * H));
            for (int64_t i = 0; i < w.n; ++i)
                std::copy(x + w.tokens[size_t(i)] * H, x + (w.tokens[size_t(i)] + 1) * H,
                          w.xg.begin() + i * H);
            if (ex.gguf)
                quantize_rows(ex.gate, w.xg.data(), w.n, H, w.qx, w.qx_row);
            else
                prepare_acts(ex.gate_up, w.xg.data(), w.n, H, w.ax);
            w.gu.assign(size_t(w.n * 2 * pairs * kRowBlock), 0.0f);
            w.h.assign(size_t(w.n * pairs * kRowBlock), 0.0f);
            w.y.assign(size_t(w.n * dblocks * kRowBlock), 0.0f);
        }
    });

    // 2. gate + up + activation
    const int64_t ldgu = 2 * pairs * kRowBlock, ldh = pairs * kRowBlock;
    const auto gu_items = make_items(work, [&](const Work&) { return pairs; });
    parallel_for(int64_t(gu_items.size()), 1, [&](int64_t i0, int64_t i1) {
        std::vector<float> g(kRowBlock), u(kRowBlock), gtmp, utmp;
        for (int64_t it = i0; it < i1; ++it) {
            const Item& item = gu_items[size_t(it)];
            Work& w = work[size_t(item.w)];
            const BankExpert& ex = bank.experts[size_t(w.e)];
            if (ex.gguf) {
                // One row-dot call over the item's whole row range (the SIMD kernels prepare
                // the activation once per call), then scattered into the gate/up block layout.
                const int64_t R0 = item.b0 * kRowBlock, R1 = std::min(I, item.b1 * kRowBlock);
                const int64_t nr = R1 - R0;
                gtmp.resize(size_t(w.n * nr));
                utmp.resize(size_t(w.n * nr));
                gguf_rows(ex.gate, R0, R1, w.qx, w.qx_row, w.n, gtmp.data(), nr);
                gguf_rows(ex.up, R0, R1, w.qx, w.qx_row, w.n, utmp.data(), nr);
                for (int64_t i = 0; i < w.n; ++i) {
                    for (int64_t r = R0; r < R1; ++r) {
                        const int64_t blk = r / kRowBlock, j = r % kRowBlock;
                        float* dst = w.gu.data() + i * ldgu + 2 * blk * kRowBlock;
                        dst[j] = gtmp[size_t(i * nr + (r - R0))];
                        dst[kRowBlock + j] = utmp[size_t(i * nr + (r - R0))];
                    }
                }
            } else {
                packed_matmul(v, ex.gate_up, w.ax, 2 * item.b0, 2 * item.b1, w.gu.data(), ldgu);
            }
            for (int64_t i = 0; i < w.n; ++i) {
                for (int64_t p = item.b0; p < item.b1; ++p) {
                    const int64_t r0 = p * kRowBlock, nr = std::min(I - r0, kRowBlock);
                    const float* src = w.gu.data() + i * ldgu + 2 * r0;
                    for (int64_t j = 0; j < nr; ++j) {
                        g[size_t(j)] =
                            src[j] + (ex.gate_bias.empty() ? 0.0f : ex.gate_bias[size_t(r0 + j)]);
                        u[size_t(j)] = src[kRowBlock + j] +
                                       (ex.up_bias.empty() ? 0.0f : ex.up_bias[size_t(r0 + j)]);
                    }
                    bank.act.apply(g.data(), u.data(), w.h.data() + i * ldh + r0, nr);
                }
            }
        }
    });

    // 3. prepare h for down
    parallel_for(int64_t(work.size()), 1, [&](int64_t w0, int64_t w1) {
        for (int64_t wi = w0; wi < w1; ++wi) {
            Work& w = work[size_t(wi)];
            const BankExpert& ex = bank.experts[size_t(w.e)];
            if (ex.gguf)
                quantize_rows(ex.gguf_down, w.h.data(), w.n, ldh, w.qh, w.qh_row);
            else
                prepare_acts(ex.down, w.h.data(), w.n, ldh, w.ah);
        }
    });

    // 4. down
    const int64_t ldy = dblocks * kRowBlock;
    const auto d_items = make_items(work, [&](const Work&) { return dblocks; });
    parallel_for(int64_t(d_items.size()), 1, [&](int64_t i0, int64_t i1) {
        for (int64_t it = i0; it < i1; ++it) {
            const Item& item = d_items[size_t(it)];
            Work& w = work[size_t(item.w)];
            const BankExpert& ex = bank.experts[size_t(w.e)];
            if (ex.gguf) {
                const int64_t r0 = item.b0 * kRowBlock, r1 = std::min(H, item.b1 * kRowBlock);
                gguf_rows(ex.gguf_down, r0, r1, w.qh, w.qh_row, w.n, w.y.data() + r0, ldy);
            } else {
                packed_matmul(v, ex.down, w.ah, item.b0, item.b1, w.y.data(), ldy);
            }
        }
    });

    // 5. weighted sum in routing order
    parallel_for(T, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            float* o = out + t * H;
            std::fill(o, o + H, 0.0f);
            for (int64_t j = 0; j < k; ++j) {
                const int64_t wi = slot_work[size_t(t * k + j)];
                if (wi < 0) continue;
                const Work& w = work[size_t(wi)];
                const BankExpert& ex = bank.experts[size_t(w.e)];
                const float* yr = w.y.data() + slot_row[size_t(t * k + j)] * ldy;
                const float wt = weights[t * k + j];
                if (ex.down_bias.empty()) {
                    for (int64_t d = 0; d < H; ++d) o[d] += wt * yr[d];
                } else {
                    for (int64_t d = 0; d < H; ++d) o[d] += wt * (yr[d] + ex.down_bias[size_t(d)]);
                }
            }
        }
    });
}

}  // namespace

BankExpert make_bank_expert(const ExpertSource& src, const PackOptions& opt, bool keep_gguf) {
    require(src.gate.rows == src.up.rows && src.gate.cols == src.up.cols &&
                src.down.rows == src.gate.cols && src.down.cols == src.gate.rows,
            "make_bank_expert: gate/up [inter, hidden] and down [hidden, inter] shapes differ");
    BankExpert ex;
    ex.gate_bias = src.gate_bias;
    ex.up_bias = src.up_bias;
    ex.down_bias = src.down_bias;
    if (keep_gguf && gguf_usable(src.gate) && gguf_usable(src.up) && gguf_usable(src.down)) {
        ex.gguf = true;
        ex.gate = gguf_matrix(src.gate);
        ex.up = gguf_matrix(src.up);
        ex.gguf_down = gguf_matrix(src.down);
        return ex;
    }
    ex.gate_up = pack_gate_up(src.gate, src.up, opt);
    ex.down = pack_matrix(src.down, opt);
    return ex;
}

void fused_moe(const ExpertBank& bank, const float* x, int64_t T, const int32_t* ids,
               const float* weights, int64_t k, const uint8_t* skip, float* out,
               KernelVariant variant) {
    require_kernel_variant(variant);
    require(bank.hidden > 0 && bank.inter > 0, "fused_moe: empty expert bank");
    // Bound the per-call working set (y_e holds T * k rows of hidden floats) by running long
    // prefills in token chunks; 2^25 floats = 128 MiB.
    const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 25) / (k * bank.hidden));
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t n = std::min(chunk, T - t0);
        run_chunk(bank, x + t0 * bank.hidden, n, ids + t0 * k, weights + t0 * k, k, skip,
                  out + t0 * bank.hidden, variant);
    }
}

}  // namespace moe
