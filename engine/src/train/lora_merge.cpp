#include "train/lora_merge.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "formats/safetensors.h"

namespace moe::train {

namespace fs = std::filesystem;

namespace {

// W [out, in] in `dtype` + s·B·A, back in `dtype` (rounded as the loaders round: bf16 to
// nearest even).
std::vector<uint8_t> merged_weight(const TensorView& t, const LoraPair& p, float s) {
    const int64_t out = t.shape[0], in = t.shape[1];
    std::vector<float> w(static_cast<size_t>(out * in));
    convert_to_f32(t.dtype, t.data, w.data(), w.size());
    parallel_for(out, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            float* row = w.data() + r * in;
            for (int64_t j = 0; j < p.rank; ++j) {
                const float bj = s * p.b[size_t(r * p.rank + j)];
                if (bj == 0.0f) continue;
                const float* a = p.a.data() + j * in;
                for (int64_t c = 0; c < in; ++c) row[c] += bj * a[c];
            }
        }
    });
    std::vector<uint8_t> bytes(w.size() * dtype_size(t.dtype));
    switch (t.dtype) {
        case DType::F32:
            std::memcpy(bytes.data(), w.data(), bytes.size());
            break;
        case DType::BF16: {
            auto* o = reinterpret_cast<uint16_t*>(bytes.data());
            for (size_t i = 0; i < w.size(); ++i) o[i] = f32_to_bf16(w[i]);
            break;
        }
        case DType::F16: {
            auto* o = reinterpret_cast<uint16_t*>(bytes.data());
            for (size_t i = 0; i < w.size(); ++i) o[i] = f32_to_f16(w[i]);
            break;
        }
        default:
            throw Error(t.describe() + ": merging an adapter needs F32, BF16 or F16 weights");
    }
    return bytes;
}

}  // namespace

MergeReport merge_lora_into_folder(const std::string& hf_dir, const LoraAdapter& adapter,
                                   float scale, const std::string& out_dir,
                                   const std::function<void(size_t, size_t)>& progress) {
    if (!fs::is_directory(hf_dir))
        throw Error(hf_dir +
                    ": merging needs a Hugging Face safetensors folder (a GGUF base "
                    "takes the adapter as a llama.cpp LoRA GGUF instead)");
    require(adapter.fused_raw.empty(),
            adapter.origin +
                ": fused expert pairs must be resolved against the model first "
                "(resolve_fused_experts)");
    const WeightStore ws = WeightStore::open_folder(hf_dir);
    if (fs::weakly_canonical(hf_dir) == fs::weakly_canonical(out_dir.empty() ? "." : out_dir))
        throw Error(out_dir + ": the merged model must go to another folder than its base");
    // Every adapter layer has its weight, of its shape.
    for (const auto& [module, p] : adapter.layers) {
        const std::string name = module + ".weight";
        if (!ws.has(name))
            throw Error(adapter.origin + ": adapter layer '" + module + "' has no weight '" + name +
                        "' in " + hf_dir);
        ws.get(name, {p.out, p.in});
    }
    fs::create_directories(out_dir);
    std::vector<TensorToWrite> decl;
    const std::vector<std::string> names = ws.names();
    for (const std::string& n : names) {
        const TensorView& t = ws.get(n);
        if (t.ggml) throw Error(t.describe() + ": merging into GGUF tensors is not supported");
        decl.push_back({n, t.dtype, t.shape, nullptr});
    }
    MergeReport report;
    const std::string tmp = (fs::path(out_dir) / "model.safetensors.tmp").string();
    {
        SafetensorsStreamWriter w(
            tmp, decl, {{"format", "pt"}, {"moestudio", "merged with " + adapter.origin}});
        for (const std::string& n : names) {
            const TensorView& t = ws.get(n);
            const std::string module =
                n.size() > 7 && n.ends_with(".weight") ? n.substr(0, n.size() - 7) : std::string();
            const auto it = adapter.layers.find(module);
            if (it == adapter.layers.end()) {
                w.write_next(t.data);
                ++report.copied;
                if (progress) progress(report.copied + report.merged, names.size());
                continue;
            }
            const LoraPair& p = it->second;
            const float denom = adapter.use_rslora ? std::sqrt(float(p.rank)) : float(p.rank);
            const float s = p.alpha_is_scale ? scale : scale * p.alpha / denom;
            const std::vector<uint8_t> bytes = merged_weight(t, p, s);
            w.write_next(bytes.data());
            ++report.merged;
            if (progress) progress(report.copied + report.merged, names.size());
        }
        w.finish();
    }
    fs::rename(tmp, fs::path(out_dir) / "model.safetensors");
    // The rest of the checkpoint: config, tokenizer, generation config, templates.
    for (const auto& e : fs::directory_iterator(hf_dir)) {
        const std::string f = e.path().filename().string();
        if (!e.is_regular_file() || f.ends_with(".safetensors") ||
            f == "model.safetensors.index.json")
            continue;
        fs::copy_file(e.path(), fs::path(out_dir) / f, fs::copy_options::overwrite_existing);
    }
    return report;
}

}  // namespace moe::train
