#include "train/peft_layout.h"

namespace moe::train {

std::map<std::string, std::vector<float>> peft_layout(const LoraAdapter& adapter,
                                                      const LoraGrads& grads) {
    std::map<std::string, std::vector<float>> out;
    const auto find = [&](const std::string& module) -> const LoraGrad* {
        const auto it = grads.find(module);
        return it == grads.end() ? nullptr : &it->second;
    };
    std::map<std::string, bool> fused_member;
    for (const FusedExpertLora& f : adapter.fused) {
        const int64_t E = f.experts_count, r = f.rank;
        std::vector<float> a(static_cast<size_t>(E * r * f.in), 0.0f);
        std::vector<float> b(static_cast<size_t>(f.out * r * E), 0.0f);
        for (int64_t e = 0; e < E; ++e) {
            const std::string stem = f.experts + "." + std::to_string(e) + ".";
            // (module, first output row of the fused parameter)
            std::vector<std::pair<std::string, int64_t>> parts;
            if (f.param == "down_proj") {
                parts = {{stem + "down_proj", 0}};
            } else {
                parts = {{stem + "gate_proj", 0}, {stem + "up_proj", f.out / 2}};
            }
            for (const auto& [module, row0] : parts) {
                fused_member[module] = true;
                const LoraGrad* g = find(module);
                if (!g) continue;
                for (size_t i = 0; i < g->a.size(); ++i) a[size_t(e * r * f.in) + i] += g->a[i];
                const int64_t rows = int64_t(g->b.size()) / r;
                for (int64_t o = 0; o < rows; ++o)
                    for (int64_t ri = 0; ri < r; ++ri)
                        b[size_t((row0 + o) * r * E + ri * E + e)] = g->b[size_t(o * r + ri)];
            }
        }
        out[f.peft_module + ".lora_A"] = std::move(a);
        out[f.peft_module + ".lora_B"] = std::move(b);
    }
    for (const auto& [module, p] : adapter.layers) {
        if (fused_member.count(module)) continue;
        const LoraGrad* g = find(module);
        out[module + ".lora_A"] =
            g ? g->a : std::vector<float>(static_cast<size_t>(p.rank * p.in), 0.0f);
        out[module + ".lora_B"] =
            g ? g->b : std::vector<float>(static_cast<size_t>(p.out * p.rank), 0.0f);
    }
    return out;
}

}  // namespace moe::train
