#include "model/linear.h"

#include "core/error.h"
#include "cpu/quants.h"

namespace moe {

void Linear::forward(const float* x, int64_t T, float* y) const {
    gemm_xwt(x, T, w, y);
    const int64_t n = w.rows, k = w.cols;
    if (!bias.empty()) {
        for (int64_t t = 0; t < T; ++t) {
            float* yt = y + t * n;
            for (int64_t i = 0; i < n; ++i) yt[i] += bias[size_t(i)];
        }
    }
    for (const LoraTerm& l : lora) {
        std::vector<float> h(static_cast<size_t>(l.rank));
        for (int64_t t = 0; t < T; ++t) {
            const float* xt = x + t * k;
            for (int64_t r = 0; r < l.rank; ++r) h[size_t(r)] = dot_f32(xt, &l.a[size_t(r * k)], k);
            float* yt = y + t * n;
            for (int64_t i = 0; i < n; ++i)
                yt[i] += l.scale * dot_f32(&l.b[size_t(i * l.rank)], h.data(), l.rank);
        }
    }
}

void Linear::merge_lora() {
    if (lora.empty()) return;
    const int64_t n = w.rows, k = w.cols;
    auto merged = std::make_shared<std::vector<float>>(size_t(n * k));
    for (int64_t i = 0; i < n; ++i) {
        float* row = merged->data() + i * k;
        w.row_to_f32(i, row);
        for (const LoraTerm& l : lora) {
            for (int64_t r = 0; r < l.rank; ++r) {
                const float coef = l.scale * l.b[size_t(i * l.rank + r)];
                const float* a = &l.a[size_t(r * k)];
                for (int64_t c = 0; c < k; ++c) row[c] += coef * a[c];
            }
        }
    }
    WeightMatrix m;
    m.dtype = DType::F32;
    m.rows = n;
    m.cols = k;
    m.data = merged->data();
    w = m;
    owner = merged;
    lora.clear();
}

namespace {

bool is_float_weight(DType t) {
    return t == DType::F32 || t == DType::BF16 || t == DType::F16 || t == DType::F8_E4M3;
}

}  // namespace

Linear load_linear(const WeightStore& ws, const std::string& name, int64_t out, int64_t in) {
    const TensorView& t = ws.get(name, {out, in});
    Linear l;
    l.name = name.ends_with(".weight") ? name.substr(0, name.size() - 7) : name;
    l.w.rows = out;
    l.w.cols = in;
    l.w.data = t.data;
    if (t.ggml && *t.ggml != GgmlType::F32) {
        // GGUF block formats (and F16/BF16, whose activations llama.cpp also converts).
        require_quant_kernels(*t.ggml, ws.origin() + ": " + t.describe());
        l.w.ggml = true;
        l.w.ggml_type = *t.ggml;
        return l;
    }
    if (!is_float_weight(t.dtype)) {
        throw Error(ws.origin() + ": " + t.describe() +
                    ": unsupported weight type (expected F32, F16, BF16 or F8_E4M3)");
    }
    l.w.dtype = t.dtype;
    if (t.dtype == DType::F8_E4M3) {
        const std::string sname = name + "_scale_inv";
        const TensorView* s = ws.find(sname);
        if (!s) {
            throw Error(ws.origin() + ": " + t.describe() + " is FP8 but its block scales '" +
                        sname + "' are missing");
        }
        if (s->shape.size() != 2 || s->shape[0] <= 0 || s->shape[1] <= 0) {
            throw Error(ws.origin() + ": " + s->describe() + ": expected a 2-D block-scale grid");
        }
        // DeepSeek-V3's fine-grained FP8: 128x128 blocks, the last row/column of blocks may
        // be partial (so the block size cannot be inferred from the grid).
        const int64_t block = 128;
        if ((out + block - 1) / block != s->shape[0] || (in + block - 1) / block != s->shape[1]) {
            throw Error(ws.origin() + ": " + s->describe() + " does not tile " + t.describe() +
                        " in 128x128 blocks (expected " +
                        shape_string({(out + block - 1) / block, (in + block - 1) / block}) + ")");
        }
        auto scales = std::make_shared<std::vector<float>>(static_cast<size_t>(s->numel()));
        convert_to_f32(s->dtype, s->data, scales->data(), scales->size());
        l.w.block_scale = scales->data();
        l.w.block = block;
        l.w.scale_cols = s->shape[1];
        l.owner = scales;
    }
    return l;
}

Linear load_linear(const WeightStore& ws, const std::string& name, int64_t out, int64_t in,
                   const std::string& bias_name, bool bias_required) {
    Linear l = load_linear(ws, name, out, in);
    if (bias_required || ws.has(bias_name)) l.bias = load_vector(ws, bias_name, out);
    return l;
}

std::vector<float> tensor_to_f32(const TensorView& t) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    if (t.ggml && *t.ggml != GgmlType::F32) {
        require_quant_kernels(*t.ggml, t.describe());
        dequantize_row(*t.ggml, t.data, v.data(), t.numel());
    } else {
        convert_to_f32(t.dtype, t.data, v.data(), v.size());
    }
    return v;
}

std::vector<float> load_vector(const WeightStore& ws, const std::string& name, int64_t n) {
    return tensor_to_f32(ws.get(name, {n}));
}

Linear make_linear(DType dtype, int64_t out, int64_t in, std::shared_ptr<const void> storage,
                   const void* data) {
    Linear l;
    l.w.dtype = dtype;
    l.w.rows = out;
    l.w.cols = in;
    l.w.data = data;
    l.owner = std::move(storage);
    return l;
}

}  // namespace moe
