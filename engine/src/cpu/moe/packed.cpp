// Packing of expert weights into the kernel layouts (moe_kernels.h), activation preparation,
// and the packed_matmul entry point that routes to a variant's kernel table.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/numa.h"
#include "core/parallel.h"
#include "cpu/moe/kernels_impl.h"
#include "cpu/quants_blocks.h"

namespace moe {

using namespace kern;
using quants::QK_K;

void AlignedBytes::allocate(size_t n, int os_node) {
    const size_t rounded = (n + 63) / 64 * 64;
    if (os_node >= 0) {
        auto* q = static_cast<uint8_t*>(numa_alloc_on_node(rounded ? rounded : 64, os_node));
        p = decltype(p)(q, [rounded](uint8_t* x) { numa_free(x, rounded ? rounded : 64); });
        size = n;
        return;
    }
    auto* q = static_cast<uint8_t*>(std::aligned_alloc(64, rounded ? rounded : 64));
    if (!q) throw Error("out of memory packing expert weights (" + std::to_string(n) + " bytes)");
    std::memset(q, 0, rounded);
    p = decltype(p)(q, [](uint8_t* x) { std::free(x); });
    size = n;
}

const char* packed_format_name(PackedFormat f) {
    switch (f) {
        case PackedFormat::BF16:
            return "bf16";
        case PackedFormat::INT8:
            return "int8";
        case PackedFormat::INT4:
            return "int4";
        case PackedFormat::Q4K:
            return "q4k";
    }
    return "?";
}

namespace {

int64_t round_up(int64_t v, int64_t m) {
    return (v + m - 1) / m * m;
}

float fp16_round(float v, bool on) {
    return on ? f16_to_f32(f32_to_f16(v)) : v;
}

// Fills block `b` of `m` from 16 source rows (row index < 0 = padding row of zeros).
// Source columns [c0, c0 + m.cols) are packed.
// Q4K: copies the bits of 16 GGUF Q4_K rows (columns [c0, c0 + m.cols), c0 a multiple of 256)
// into the INT4 nibble layout and the per-row scale tables.
void pack_block_q4k(PackedMatrix& m, int64_t b, const WeightMatrix& src, int64_t row0, int64_t c0) {
    using quants::BlockQ4K;
    uint8_t* dst = m.data.data() + size_t(b) * m.block_bytes;
    const int64_t ng = m.groups(), nsb = m.kp / QK_K;
    for (int64_t j = 0; j < kRowBlock; ++j) {
        const int64_t r = row0 + j;
        if (r >= src.rows) continue;  // padding rows stay zero (scales 0: contribute nothing)
        const auto* blocks =
            reinterpret_cast<const BlockQ4K*>(static_cast<const uint8_t*>(src.data) +
                                              size_t(r) * src.row_bytes()) +
            c0 / QK_K;
        for (int64_t sb = 0; sb < m.cols / QK_K; ++sb) {
            const BlockQ4K& x = blocks[sb];
            m.kd[size_t((b * nsb + sb) * kRowBlock + j)] = f16_to_f32(x.d);
            m.kdmin[size_t((b * nsb + sb) * kRowBlock + j)] = f16_to_f32(x.dmin);
            for (int sub = 0; sub < QK_K / 32; ++sub) {
                uint8_t sc = 0, mn = 0;
                quants::get_scale_min_k4(sub, x.scales, &sc, &mn);
                const size_t g = size_t((b * ng + sb * 8 + sub) * kRowBlock + j);
                m.ksc[g] = sc;
                m.kmin[g] = mn;
            }
            // ggml: byte l of 32-byte chunk c holds element 64c + l (low) and 64c + 32 + l
            // (high). Unpack the 256 values, then write whole bytes of the INT4 lane layout:
            // byte i of octet o holds k = 8o + i (low nibble) and 8o + 4 + i (high nibble).
            uint8_t q[QK_K];
            for (int c = 0; c < 4; ++c) {
                for (int l = 0; l < 32; ++l) {
                    q[64 * c + l] = x.qs[32 * c + l] & 15;
                    q[64 * c + 32 + l] = x.qs[32 * c + l] >> 4;
                }
            }
            uint8_t* out = dst + (sb * QK_K / 8) * 64 + j * 4;
            for (int o = 0; o < QK_K / 8; ++o) {
                for (int i = 0; i < 4; ++i)
                    out[o * 64 + i] = uint8_t(q[8 * o + i] | (q[8 * o + 4 + i] << 4));
            }
        }
    }
}

void pack_block(PackedMatrix& m, int64_t b, const WeightMatrix& src, int64_t row0, int64_t c0,
                const PackOptions& opt, std::vector<float>& buf) {
    if (m.format == PackedFormat::Q4K) return pack_block_q4k(m, b, src, row0, c0);
    uint8_t* dst = m.data.data() + size_t(b) * m.block_bytes;
    buf.assign(size_t(m.kp), 0.0f);
    const int64_t ng = m.groups();
    // bf16 stored (Hugging Face or GGUF) into bf16 packing: the bits are copied, no round trip.
    const bool bf16_copy = m.format == PackedFormat::BF16 && !src.block_scale &&
                           (src.ggml ? src.ggml_type == GgmlType::BF16 : src.dtype == DType::BF16);
    if (bf16_copy) {
        auto* d = reinterpret_cast<uint16_t*>(dst);
        for (int64_t j = 0; j < kRowBlock && row0 + j < src.rows; ++j) {
            const auto* row =
                reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(src.data) +
                                                  size_t(row0 + j) * src.row_bytes()) +
                c0;
            for (int64_t k = 0; k < m.cols; ++k) d[bf16_index(k, j)] = row[k];
        }
        return;  // padding rows and columns stay zero (allocate() zero-fills)
    }
    for (int64_t j = 0; j < kRowBlock; ++j) {
        const int64_t r = row0 + j;
        std::fill(buf.begin(), buf.end(), 0.0f);
        if (r < src.rows) src.row_to_f32(r, buf.data(), c0, c0 + m.cols);
        const float* v = buf.data();
        switch (m.format) {
            case PackedFormat::BF16: {
                auto* d = reinterpret_cast<uint16_t*>(dst);
                for (int64_t k = 0; k < m.kp; ++k) d[bf16_index(k, j)] = f32_to_bf16(v[k]);
                break;
            }
            case PackedFormat::INT8: {
                float amax = 0.0f;
                for (int64_t k = 0; k < m.cols; ++k) amax = std::max(amax, std::fabs(v[k]));
                const float s = fp16_round(amax / 127.0f, opt.fp16_scales);
                const float inv = s > 0.0f ? 1.0f / s : 0.0f;
                int32_t sum = 0;
                auto* d = reinterpret_cast<int8_t*>(dst);
                for (int64_t k = 0; k < m.kp; ++k) {
                    const auto q = int32_t(std::clamp(std::nearbyint(v[k] * inv), -127.0f, 127.0f));
                    d[int8_index(k, j)] = int8_t(q);
                    sum += q;
                }
                m.scale[size_t(b * kRowBlock + j)] = s;
                m.rowsum[size_t(b * kRowBlock + j)] = sum;
                break;
            }
            case PackedFormat::INT4: {
                for (int64_t g = 0; g < ng; ++g) {
                    const float* gv = v + g * m.group;
                    float d = 0.0f, mn = 0.0f;
                    if (opt.int4_min) {
                        float lo = gv[0], hi = gv[0];
                        for (int64_t i = 1; i < m.group; ++i) {
                            lo = std::min(lo, gv[i]);
                            hi = std::max(hi, gv[i]);
                        }
                        d = fp16_round((hi - lo) / 15.0f, opt.fp16_scales);
                        mn = fp16_round(lo, opt.fp16_scales);
                    } else {
                        // Q4_0-style: the value of largest magnitude maps to q = 0 (-8), so
                        // the grid uses all 16 levels on that side.
                        float vmax = 0.0f;
                        for (int64_t i = 0; i < m.group; ++i)
                            if (std::fabs(gv[i]) > std::fabs(vmax)) vmax = gv[i];
                        d = fp16_round(vmax / -8.0f, opt.fp16_scales);
                        mn = -8.0f * d;
                    }
                    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
                    for (int64_t i = 0; i < m.group; ++i) {
                        const int64_t k = g * m.group + i;
                        const float q = std::clamp(std::nearbyint((gv[i] - mn) * inv), 0.0f, 15.0f);
                        uint8_t& byte = dst[int4_byte(k, j)];
                        byte = int4_high(k) ? uint8_t((byte & 0x0F) | (uint8_t(q) << 4))
                                            : uint8_t((byte & 0xF0) | uint8_t(q));
                    }
                    const size_t s = size_t((b * ng + g) * kRowBlock + j);
                    m.gscale[s] = d;
                    m.gmin[s] = mn;
                }
                break;
            }
            case PackedFormat::Q4K:
                break;  // pack_block_q4k
        }
    }
}

PackedMatrix make_layout(int64_t rows, int64_t cols, int64_t blocks, const PackOptions& opt,
                         int os_node) {
    require(rows > 0 && cols > 0, "pack: empty matrix");
    PackedMatrix m;
    m.format = opt.format;
    m.rows = rows;
    m.cols = cols;
    m.blocks = blocks;
    m.f32_acts = opt.format == PackedFormat::BF16 && opt.f32_acts;
    int64_t align = 64;  // AMX: 32 bf16 or 64 int8 per tile step
    if (opt.format == PackedFormat::Q4K) {
        require(cols % QK_K == 0,
                "pack: Q4_K rows need a multiple of 256 columns, got " + std::to_string(cols));
        m.group = 32;
        align = QK_K;
    }
    if (opt.format == PackedFormat::INT4) {
        require(opt.group == 32 || opt.group == 64 || opt.group == 128,
                "pack: INT4 group must be 32, 64 or 128, got " + std::to_string(opt.group));
        m.group = opt.group;
        align = std::max<int64_t>(align, opt.group);
    }
    m.kp = round_up(cols, align);
    switch (opt.format) {
        case PackedFormat::BF16:
            m.block_bytes = size_t(m.kp * kRowBlock * 2);
            break;
        case PackedFormat::INT8:
            m.block_bytes = size_t(m.kp * kRowBlock);
            m.scale.assign(size_t(blocks * kRowBlock), 0.0f);
            m.rowsum.assign(size_t(blocks * kRowBlock), 0);
            break;
        case PackedFormat::INT4:
            m.block_bytes = size_t(m.kp * kRowBlock / 2);
            m.gscale.assign(size_t(blocks * m.groups() * kRowBlock), 0.0f);
            m.gmin.assign(size_t(blocks * m.groups() * kRowBlock), 0.0f);
            break;
        case PackedFormat::Q4K:
            m.block_bytes = size_t(m.kp * kRowBlock / 2);
            m.ksc.assign(size_t(blocks * m.groups() * kRowBlock), 0);
            m.kmin.assign(size_t(blocks * m.groups() * kRowBlock), 0);
            m.kd.assign(size_t(blocks * (m.kp / QK_K) * kRowBlock), 0.0f);
            m.kdmin.assign(size_t(blocks * (m.kp / QK_K) * kRowBlock), 0.0f);
            break;
    }
    m.data.allocate(m.block_bytes * size_t(blocks), os_node);
    return m;
}

}  // namespace

void require_q4k_source(const WeightMatrix& w, const PackOptions& opt) {
    if (opt.format != PackedFormat::Q4K) return;
    require(w.ggml && w.ggml_type == GgmlType::Q4_K,
            "pack: the q4k layout repacks GGUF Q4_K weights only (got another storage type)");
}

PackedMatrix pack_matrix(const WeightMatrix& w, const PackOptions& opt, int64_t c0, int64_t c1,
                         int os_node) {
    if (c1 < 0) c1 = w.cols;
    require(0 <= c0 && c0 < c1 && c1 <= w.cols, "pack: column range out of bounds");
    require_q4k_source(w, opt);
    require(opt.format != PackedFormat::Q4K || c0 % QK_K == 0,
            "pack: Q4_K column slices must start at a multiple of 256");
    const int64_t blocks = (w.rows + kRowBlock - 1) / kRowBlock;
    PackedMatrix m = make_layout(w.rows, c1 - c0, blocks, opt, os_node);
    parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
        std::vector<float> buf;
        for (int64_t b = b0; b < b1; ++b) pack_block(m, b, w, b * kRowBlock, c0, opt, buf);
    });
    return m;
}

PackedMatrix pack_gate_up(const WeightMatrix& gate, const WeightMatrix& up, const PackOptions& opt,
                          int os_node) {
    require(gate.rows == up.rows && gate.cols == up.cols,
            "pack_gate_up: gate and up shapes differ");
    require_q4k_source(gate, opt);
    require_q4k_source(up, opt);
    const int64_t half = (gate.rows + kRowBlock - 1) / kRowBlock;
    PackedMatrix m = make_layout(gate.rows, gate.cols, 2 * half, opt, os_node);
    m.gate_up = true;
    parallel_for(2 * half, 1, [&](int64_t b0, int64_t b1) {
        std::vector<float> buf;
        for (int64_t b = b0; b < b1; ++b)
            pack_block(m, b, (b & 1) ? up : gate, (b >> 1) * kRowBlock, 0, opt, buf);
    });
    return m;
}

void PackedMatrix::dequantize_block_row(int64_t b, int64_t j, float* out) const {
    const uint8_t* wb = block(b);
    for (int64_t k = 0; k < cols; ++k) {
        switch (format) {
            case PackedFormat::BF16:
                out[k] = bf16_to_f32(reinterpret_cast<const uint16_t*>(wb)[bf16_index(k, j)]);
                break;
            case PackedFormat::INT8:
                out[k] = float(reinterpret_cast<const int8_t*>(wb)[int8_index(k, j)]) *
                         scale[size_t(b * kRowBlock + j)];
                break;
            case PackedFormat::INT4: {
                const int q = int4_value(wb, k, j);
                const size_t s = size_t((b * groups() + k / group) * kRowBlock + j);
                out[k] = gscale[s] * float(q) + gmin[s];
                break;
            }
            case PackedFormat::Q4K: {
                const int q = int4_value(wb, k, j);
                const size_t g = size_t((b * groups() + k / group) * kRowBlock + j);
                const size_t sb = size_t((b * (kp / QK_K) + k / QK_K) * kRowBlock + j);
                // ggml's dequantize_row_q4_K: d * sc * q - dmin * m
                out[k] = kd[sb] * float(ksc[g]) * float(q) - kdmin[sb] * float(kmin[g]);
                break;
            }
        }
    }
}

void PackedMatrix::dequantize_row(int64_t r, float* out) const {
    if (!gate_up) {
        dequantize_block_row(r / kRowBlock, r % kRowBlock, out);
        return;
    }
    const bool is_up = r >= rows;
    const int64_t rr = is_up ? r - rows : r;
    dequantize_block_row(2 * (rr / kRowBlock) + (is_up ? 1 : 0), rr % kRowBlock, out);
}

size_t PackedMatrix::bytes() const {
    return data.size + (scale.size() + rowsum.size() + gscale.size() + gmin.size()) * 4 +
           ksc.size() + kmin.size() + (kd.size() + kdmin.size()) * 4;
}

void prepare_acts(const PackedMatrix& w, const float* x, int64_t T, int64_t ldx, PackedActs& a) {
    a.format = w.format;
    a.T = T;
    a.tp = round_up(std::max<int64_t>(T, 1), kRowBlock);
    a.kp = w.kp;
    a.group = w.group;
    const int64_t K = w.cols, kp = w.kp;
    if (w.format == PackedFormat::BF16) {
        a.f32.assign(size_t(T * kp), 0.0f);
        for (int64_t t = 0; t < T; ++t)
            std::copy(x + t * ldx, x + t * ldx + K, a.f32.begin() + t * kp);
        if (w.f32_acts) {
            a.bf16.clear();
            return;
        }
        a.bf16.assign(size_t(a.tp * kp), 0);
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t k = 0; k < K; ++k)
                a.bf16[size_t(t * kp + k)] = f32_to_bf16(x[t * ldx + k]);
        }
        return;
    }
    if (w.format == PackedFormat::Q4K) {
        // int8 with one scale per 256 elements (like ggml's Q8_K), plus per-32 sums for the mins.
        const int64_t nsb = kp / QK_K, ng = w.groups();
        a.i8.assign(size_t(a.tp * kp), 0);
        a.scale.assign(size_t(T * nsb), 0.0f);
        a.gsum.assign(size_t(T * ng), 0.0f);
        for (int64_t t = 0; t < T; ++t) {
            const float* xt = x + t * ldx;
            int8_t* q = a.i8.data() + t * kp;
            for (int64_t sb = 0; sb < nsb; ++sb) {
                const int64_t k0 = sb * QK_K, k1 = std::min(K, k0 + QK_K);
                float amax = 0.0f;
                for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(xt[k]));
                const float sc = amax / 127.0f, inv = sc > 0.0f ? 1.0f / sc : 0.0f;
                a.scale[size_t(t * nsb + sb)] = sc;
                for (int64_t k = k0; k < k1; ++k) q[k] = int8_t(std::nearbyint(xt[k] * inv));
            }
            for (int64_t g = 0; g < ng; ++g) {
                int32_t sum = 0;
                for (int64_t i = 0; i < 32; ++i) sum += q[g * 32 + i];
                a.gsum[size_t(t * ng + g)] = float(sum);
            }
        }
        return;
    }
    // Per-token symmetric int8: the rounding error is ~0.4% of max|x| per element, random in
    // sign, so it mostly cancels over a long dot product.
    a.i8.assign(size_t(a.tp * kp), 0);
    a.scale.assign(size_t(T), 0.0f);
    for (int64_t t = 0; t < T; ++t) {
        const float* xt = x + t * ldx;
        float amax = 0.0f;
        for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(xt[k]));
        const float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
        a.scale[size_t(t)] = s;
        int8_t* q = a.i8.data() + t * kp;
        for (int64_t k = 0; k < K; ++k) q[k] = int8_t(std::nearbyint(xt[k] * inv));
    }
    if (w.format == PackedFormat::INT8) {
        a.u8.resize(size_t(T * kp));
        for (size_t i = 0; i < a.u8.size(); ++i) a.u8[i] = uint8_t(int32_t(a.i8[i]) + 128);
        return;
    }
    const int64_t ng = w.groups();
    a.gsum.assign(size_t(T * ng), 0.0f);
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t g = 0; g < ng; ++g) {
            int32_t s = 0;
            for (int64_t i = 0; i < w.group; ++i) s += a.i8[size_t(t * kp + g * w.group + i)];
            a.gsum[size_t(t * ng + g)] = float(s);
        }
    }
}

namespace {

const KernelTable& table(KernelVariant v) {
    switch (v) {
        case KernelVariant::Scalar:
            return scalar_kernels();
        case KernelVariant::Avx2:
            return avx2_kernels();
        case KernelVariant::Avx512:
            return avx512_kernels();
        case KernelVariant::Amx:
            return amx_kernels();
    }
    return scalar_kernels();
}

}  // namespace

void packed_matmul(KernelVariant v, const PackedMatrix& w, const PackedActs& a, int64_t b0,
                   int64_t b1, float* y, int64_t ldy) {
    if (a.T == 0 || b0 >= b1) return;
    const KernelTable& t = table(v);
    switch (w.format) {
        case PackedFormat::BF16:
            t.bf16(w, a, b0, b1, y, ldy);
            break;
        case PackedFormat::INT8:
            t.int8(w, a, b0, b1, y, ldy);
            break;
        case PackedFormat::INT4:
            t.int4(w, a, b0, b1, y, ldy);
            break;
        case PackedFormat::Q4K:
            t.q4k(w, a, b0, b1, y, ldy);
            break;
    }
}

void packed_gemm(KernelVariant v, const PackedMatrix& w, const float* x, int64_t T, float* y,
                 int64_t ldy) {
    require_kernel_variant(v);
    PackedActs a;
    prepare_acts(w, x, T, w.cols, a);
    parallel_for(w.blocks, 1,
                 [&](int64_t b0, int64_t b1) { packed_matmul(v, w, a, b0, b1, y, ldy); });
}

}  // namespace moe
