#pragma once
// Qt-free checks of cuda/decoder_kernels.h against plain CPU loops on fresh random inputs and
// odd shapes; shared by tst_cuda_kernels and bench/cuda_kernel_check.cpp. CUDA builds only.
#include "cpu/moe/moe_kernels.h"
#include "cuda/decoder_kernels.h"
#include "cuda/expert_kernels.h"
#include "cuda/packed_dequant.h"
#include "cuda_kernel_checks.h"
#include "random_blocks.h"

namespace moe_cuda_test {

inline std::vector<int32_t> download_ints(const cuda::DeviceBuffer<int32_t>& d) {
    std::vector<int32_t> h(d.size());
    d.download(h.data(), h.size());
    MOE_CUDA(cudaDeviceSynchronize());
    return h;
}

// y [T, rows] = x [T, cols] · Wᵀ summed in double: the reference of the linear kernels.
inline std::vector<float> reference_linear(const std::vector<float>& w, const std::vector<float>& x,
                                           int64_t rows, int64_t cols, int64_t T) {
    std::vector<float> y(static_cast<size_t>(T * rows));
    for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < rows; ++r) {
            double acc = 0;
            for (int64_t c = 0; c < cols; ++c)
                acc += double(x[size_t(t * cols + c)]) * w[size_t(r * cols + c)];
            y[size_t(t * rows + r)] = float(acc);
        }
    return y;
}

// The device view of a packed matrix whose arrays were uploaded into `keep`.
inline cuda::PackedView upload_packed(const PackedMatrix& m,
                                      std::vector<cuda::DeviceBuffer<uint8_t>>& keep) {
    return cuda::packed_view(m, [&](const void* p, size_t n) -> const uint8_t* {
        keep.emplace_back(n);
        keep.back().upload(static_cast<const uint8_t*>(p), n);
        return keep.back().data();
    });
}

// Every packed format, plain and gate/up, unpacked on the GPU against dequantize_row.
inline void check_packed_dequant(std::mt19937& rng, CheckList& out) {
    const int64_t rows = 40, cols = 512;  // 3 row blocks (one partial), 2 Q4_K super-blocks
    const std::vector<uint8_t> gq =
        moetest::random_gguf_rows(rng, GgmlType::Q4_K, cols, rows, size_t(cols / 256 * 144));
    const std::vector<uint8_t> uq =
        moetest::random_gguf_rows(rng, GgmlType::Q4_K, cols, rows, size_t(cols / 256 * 144));
    std::vector<float> gf = random_vec(rng, size_t(rows * cols)),
                       uf = random_vec(rng, size_t(rows * cols));
    for (const PackedFormat f :
         {PackedFormat::BF16, PackedFormat::INT8, PackedFormat::INT4, PackedFormat::Q4K}) {
        WeightMatrix gw, uw;
        for (WeightMatrix* m : {&gw, &uw}) {
            m->rows = rows;
            m->cols = cols;
            if (f == PackedFormat::Q4K) {
                m->ggml = true;
                m->ggml_type = GgmlType::Q4_K;
            }
        }
        gw.data = f == PackedFormat::Q4K ? static_cast<const void*>(gq.data()) : gf.data();
        uw.data = f == PackedFormat::Q4K ? static_cast<const void*>(uq.data()) : uf.data();
        PackOptions opt;
        opt.format = f;
        for (const bool gate_up : {false, true}) {
            const PackedMatrix m = gate_up ? pack_gate_up(gw, uw, opt) : pack_matrix(gw, opt);
            const int64_t R = gate_up ? 2 * rows : rows;
            std::vector<float> want(size_t(R * cols));
            for (int64_t r = 0; r < R; ++r) {
                m.dequantize_row(r, want.data() + r * cols);
                for (int64_t c = 0; c < cols; ++c)
                    want[size_t(r * cols + c)] =
                        bf16_to_f32(f32_to_bf16(want[size_t(r * cols + c)]));
            }
            std::vector<cuda::DeviceBuffer<uint8_t>> keep;
            const cuda::PackedView v = upload_packed(m, keep);
            cuda::DeviceBuffer<uint16_t> dout(want.size());
            cuda::dequantize_packed(v, dout.data(), nullptr);
            std::vector<uint16_t> got16(want.size());
            dout.download(got16.data(), got16.size());
            MOE_CUDA(cudaDeviceSynchronize());
            std::vector<float> got(want.size());
            for (size_t i = 0; i < got.size(); ++i) got[i] = bf16_to_f32(got16[i]);
            // One bf16 step (2^-8) allowed: a value rounded to fp32 differently (e.g. by a fused
            // multiply-add) can land on the other side of a bf16 rounding boundary.
            out.push_back({std::string("dequantize_packed ") + packed_format_name(f) +
                               (gate_up ? " gate_up" : ""),
                           max_rel(got, want), 4e-3});
        }
    }
}

inline std::vector<Check> run_decoder_kernel_checks(uint32_t seed) {
    std::mt19937 rng(seed);
    CheckList out;
    check_packed_dequant(rng, out);
    {  // fp32 weights (F32/F16/FP8 checkpoints)
        const int64_t rows = 37, cols = 132, T = 6;
        const auto w = random_vec(rng, size_t(rows * cols));
        const auto x = random_vec(rng, size_t(T * cols));
        const std::vector<float> want = reference_linear(w, x, rows, cols, T);
        auto dw = upload(w), dx = upload(x);
        cuda::DeviceBuffer<float> dy(want.size());
        cuda::linear_f32_weights(dw.data(), rows, cols, dx.data(), T, dy.data(), nullptr);
        out.push_back({"linear_f32_weights", max_rel(download(dy), want), 1e-5});
    }
    // The fp32-activation linear layer: odd and vector-friendly widths, 1..9 tokens.
    for (auto [rows, cols, T] : {std::tuple<int64_t, int64_t, int64_t>{5, 7, 1},
                                 {33, 96, 3},
                                 {300, 2048, 1},
                                 {129, 1028, 9},
                                 {64, 4096, 5}}) {
        auto w = random_vec(rng, size_t(rows * cols));
        std::vector<uint16_t> wb(w.size());
        for (size_t i = 0; i < w.size(); ++i) {
            wb[i] = f32_to_bf16(w[i]);
            w[i] = bf16_to_f32(wb[i]);
        }
        const auto x = random_vec(rng, size_t(T * cols));
        const std::vector<float> want = reference_linear(w, x, rows, cols, T);
        cuda::DeviceBuffer<uint16_t> dw(wb.size());
        dw.upload(wb.data(), wb.size());
        auto dx = upload(x);
        cuda::DeviceBuffer<float> dy(want.size());
        cuda::linear_f32_acts(dw.data(), rows, cols, dx.data(), T, dy.data(), nullptr);
        // fp32 sums of `cols` products against a double reference
        out.push_back({"linear_f32_acts " + std::to_string(rows) + "x" + std::to_string(cols) +
                           " T=" + std::to_string(T),
                       max_rel(download(dy), want), 1e-4});
    }
    {  // strided RMSNorm over the first `cols` of wider rows (MLA's kv_a_norm)
        const int64_t rows = 4, cols = 100, stride = 164;
        RmsNorm norm;
        norm.weight = random_vec(rng, size_t(cols));
        const auto x = random_vec(rng, size_t(rows * stride), 2.0f);
        std::vector<float> want = x;
        norm.apply(x.data(), rows, want.data(), stride);
        auto d = upload(x), dw = upload(norm.weight);
        cuda::rms_norm_strided(d.data(), dw.data(), rows, cols, stride, norm.eps, d.data(),
                               nullptr);
        out.push_back({"rms_norm_strided", max_rel(download(d), want), 1e-5});
    }
    {  // gather, weighted scatter-add, sigmoid-gated add, bias, clamp
        const int64_t T = 9, cols = 37, n = 4;
        const std::vector<int32_t> idx = {7, 0, 3, 8};
        const std::vector<float> wts = {0.25f, -1.5f, 2.0f, 0.5f};
        const auto src = random_vec(rng, size_t(T * cols));
        const auto base = random_vec(rng, size_t(T * cols));
        const auto gate = random_vec(rng, size_t(T));
        const auto bias = random_vec(rng, size_t(cols));
        std::vector<float> gathered(size_t(n * cols)), scattered = base, gated = base,
                                                       biased = base, clamped = base;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t c = 0; c < cols; ++c) {
                gathered[size_t(i * cols + c)] = src[size_t(idx[size_t(i)] * cols + c)];
                scattered[size_t(idx[size_t(i)] * cols + c)] +=
                    wts[size_t(i)] * src[size_t(i * cols + c)];
            }
        for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < cols; ++c) {
                const size_t i = size_t(t * cols + c);
                gated[i] += 1.0f / (1.0f + std::exp(-gate[size_t(t)])) * src[i];
                biased[i] += bias[size_t(c)];
                clamped[i] = std::clamp(clamped[i], -0.5f, 0.5f);
            }
        cuda::DeviceBuffer<int32_t> didx(idx.size());
        didx.upload(idx.data(), idx.size());
        auto dsrc = upload(src), dw = upload(wts), dgate = upload(gate), dbias = upload(bias);
        cuda::DeviceBuffer<float> dg(gathered.size());
        cuda::gather_rows(dsrc.data(), didx.data(), n, cols, dg.data(), nullptr);
        out.push_back({"gather_rows", max_rel(download(dg), gathered), 0.0});
        auto ds = upload(base);
        cuda::scatter_add_rows(ds.data(), dsrc.data(), didx.data(), dw.data(), n, cols, nullptr);
        out.push_back({"scatter_add_rows", max_rel(download(ds), scattered), 1e-6});
        auto dgt = upload(base);
        cuda::add_sigmoid_gated_rows(dgt.data(), dsrc.data(), dgate.data(), T, cols, nullptr);
        out.push_back({"add_sigmoid_gated_rows", max_rel(download(dgt), gated), 1e-6});
        auto db = upload(base);
        cuda::add_bias_rows(db.data(), dbias.data(), T, cols, nullptr);
        out.push_back({"add_bias_rows", max_rel(download(db), biased), 0.0});
        auto dc = upload(base);
        cuda::clamp_values(dc.data(), T * cols, 0.5f, nullptr);
        out.push_back({"clamp_values", max_rel(download(dc), clamped), 0.0});
    }
    {  // MLA absorption and value up-projection
        const int64_t T = 3, H = 5, nope = 12, rope = 6, R = 40, vd = 9;
        const auto q = random_vec(rng, size_t(T * H * (nope + rope)));
        const auto w_uk = random_vec(rng, size_t(H * nope * R));
        const auto o_lat = random_vec(rng, size_t(T * H * R));
        const auto w_uv = random_vec(rng, size_t(H * vd * R));
        std::vector<float> qcat(size_t(T * H * (R + rope))), o(size_t(T * H * vd));
        for (int64_t t = 0; t < T; ++t)
            for (int64_t h = 0; h < H; ++h) {
                const float* qh = q.data() + (t * H + h) * (nope + rope);
                float* dst = qcat.data() + (t * H + h) * (R + rope);
                for (int64_t r = 0; r < R; ++r) {
                    double acc = 0;
                    for (int64_t n = 0; n < nope; ++n)
                        acc += double(qh[n]) * w_uk[size_t((h * nope + n) * R + r)];
                    dst[r] = float(acc);
                }
                for (int64_t r = 0; r < rope; ++r) dst[R + r] = qh[nope + r];
                for (int64_t d = 0; d < vd; ++d) {
                    double acc = 0;
                    for (int64_t r = 0; r < R; ++r)
                        acc += double(o_lat[size_t((t * H + h) * R + r)]) *
                               w_uv[size_t((h * vd + d) * R + r)];
                    o[size_t((t * H + h) * vd + d)] = float(acc);
                }
            }
        auto dq = upload(q), dk = upload(w_uk), dl = upload(o_lat), dv = upload(w_uv);
        cuda::DeviceBuffer<float> dqc(qcat.size()), dout(o.size());
        cuda::mla_absorb_query(dq.data(), dk.data(), T, H, nope, rope, R, dqc.data(), nullptr);
        cuda::mla_value_up(dl.data(), dv.data(), T, H, R, vd, dout.data(), nullptr);
        out.push_back({"mla_absorb_query", max_rel(download(dqc), qcat), 1e-5});
        out.push_back({"mla_value_up", max_rel(download(dout), o), 1e-5});
    }
    {  // rows written at device-side positions
        const int64_t T = 3, width = 10, cap = 8;
        const std::vector<int32_t> pos = {5, 1, 6};
        const auto rows = random_vec(rng, size_t(T * width));
        auto cache = random_vec(rng, size_t(cap * width));
        auto dc = upload(cache), dr = upload(rows);
        cuda::DeviceBuffer<int32_t> dp(pos.size());
        dp.upload(pos.data(), pos.size());
        for (int64_t t = 0; t < T; ++t)
            std::copy(rows.begin() + t * width, rows.begin() + (t + 1) * width,
                      cache.begin() + pos[size_t(t)] * width);
        cuda::write_rows_at(dc.data(), dr.data(), T, width, dp.data(), nullptr);
        out.push_back({"write_rows_at", max_rel(download(dc), cache), 0.0});
    }
    for (const bool clamped : {false, true}) {  // all of a layer's GPU experts in three launches
        const int64_t E = 5, hidden = 68, inter = 40, T = 3, max_slots = 8;
        std::vector<std::vector<float>> w(size_t(E * 3));
        std::vector<std::vector<uint16_t>> wb(w.size());
        std::vector<cuda::DeviceBuffer<uint16_t>> dw(w.size());
        std::vector<cuda::DeviceBuffer<float>> db;
        std::vector<std::vector<float>> bias;
        for (size_t i = 0; i < w.size(); ++i) {
            w[i] = random_vec(rng, size_t(hidden * inter), 0.2f);
            wb[i].resize(w[i].size());
            for (size_t j = 0; j < w[i].size(); ++j) {
                wb[i][j] = f32_to_bf16(w[i][j]);
                w[i][j] = bf16_to_f32(wb[i][j]);
            }
            dw[i] = cuda::DeviceBuffer<uint16_t>(wb[i].size());
            dw[i].upload(wb[i].data(), wb[i].size());
            bias.push_back(random_vec(rng, size_t(i % 3 == 2 ? hidden : inter)));
            db.push_back(upload(bias.back()));
        }
        std::vector<cuda::GpuExpertWeights> table(static_cast<size_t>(E));
        for (int64_t e = 0; e < E; ++e)
            table[size_t(e)] = {dw[size_t(3 * e)].data(),     dw[size_t(3 * e + 1)].data(),
                                dw[size_t(3 * e + 2)].data(), db[size_t(3 * e)].data(),
                                db[size_t(3 * e + 1)].data(), db[size_t(3 * e + 2)].data()};
        const std::vector<cuda::ExpertSlot> assign = {
            {0, 3, 0.5f}, {0, 1, 0.25f}, {1, 4, 1.0f}, {2, 3, -0.75f}, {2, 0, 0.125f}};
        const int32_t count = int32_t(assign.size());
        const auto x = random_vec(rng, size_t(T * hidden));
        const auto y0 = random_vec(rng, size_t(T * hidden));
        GluActivation act;
        act.kind = clamped ? GluActivation::Kind::ClampedSwiGlu : GluActivation::Kind::SiluGlu;
        std::vector<float> want = y0, g(static_cast<size_t>(inter)), u(static_cast<size_t>(inter)),
                           hrow(static_cast<size_t>(inter));
        for (const auto& sl : assign) {
            const size_t e = size_t(sl.expert);
            const float* xt = x.data() + sl.token * hidden;
            for (int64_t r = 0; r < inter; ++r) {
                double a = 0, b = 0;
                for (int64_t c = 0; c < hidden; ++c) {
                    a += double(w[3 * e][size_t(r * hidden + c)]) * xt[c];
                    b += double(w[3 * e + 1][size_t(r * hidden + c)]) * xt[c];
                }
                g[size_t(r)] = float(a) + bias[3 * e][size_t(r)];
                u[size_t(r)] = float(b) + bias[3 * e + 1][size_t(r)];
            }
            act.apply(g.data(), u.data(), hrow.data(), inter);
            for (int64_t d = 0; d < hidden; ++d) {
                double a = 0;
                for (int64_t r = 0; r < inter; ++r)
                    a += double(w[3 * e + 2][size_t(d * inter + r)]) * hrow[size_t(r)];
                want[size_t(sl.token * hidden + d)] +=
                    sl.weight * (float(a) + bias[3 * e + 2][size_t(d)]);
            }
        }
        cuda::DeviceBuffer<cuda::GpuExpertWeights> dt(table.size());
        dt.upload(table.data(), table.size());
        std::vector<cuda::ExpertSlot> padded = assign;
        padded.resize(size_t(max_slots), cuda::ExpertSlot{0, 999, 0.0f});  // never read
        cuda::DeviceBuffer<cuda::ExpertSlot> ds(padded.size());
        ds.upload(padded.data(), padded.size());
        cuda::DeviceBuffer<int32_t> dn(1);
        dn.upload(&count, 1);
        auto dx = upload(x), dy = upload(y0);
        cuda::DeviceBuffer<float> dh(size_t(max_slots * inter)), dys(size_t(max_slots * hidden));
        const cuda::ExpertActivationParams p{clamped, act.alpha, act.limit};
        cuda::experts_gate_up(dt.data(), ds.data(), dn.data(), max_slots, dx.data(), hidden, inter,
                              p, dh.data(), nullptr);
        cuda::experts_down(dt.data(), ds.data(), dn.data(), max_slots, dh.data(), hidden, inter,
                           dys.data(), nullptr);
        cuda::experts_combine(ds.data(), dn.data(), max_slots, dys.data(), T, hidden, dy.data(),
                              nullptr);
        out.push_back({std::string("gpu experts (assign)") + (clamped ? " clamped" : ""),
                       max_rel(download(dy), want), 1e-4});
    }
    return out;
}

}  // namespace moe_cuda_test
