#pragma once
// Qt-free checks of cuda/decoder_kernels.h against plain CPU loops on fresh random inputs and
// odd shapes; shared by tst_cuda_kernels and bench/cuda_kernel_check.cpp. CUDA builds only.
#include "cuda/decoder_kernels.h"
#include "cuda_kernel_checks.h"

namespace moe_cuda_test {

inline std::vector<int32_t> download_ints(const cuda::DeviceBuffer<int32_t>& d) {
    std::vector<int32_t> h(d.size());
    d.download(h.data(), h.size());
    MOE_CUDA(cudaDeviceSynchronize());
    return h;
}

inline std::vector<Check> run_decoder_kernel_checks(uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<Check> out;
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
        std::vector<float> want(size_t(T * rows));
        for (int64_t t = 0; t < T; ++t)
            for (int64_t r = 0; r < rows; ++r) {
                double acc = 0;
                for (int64_t c = 0; c < cols; ++c)
                    acc += double(x[size_t(t * cols + c)]) * w[size_t(r * cols + c)];
                want[size_t(t * rows + r)] = float(acc);
            }
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
    return out;
}

}  // namespace moe_cuda_test
