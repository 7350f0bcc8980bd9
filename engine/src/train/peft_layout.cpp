#include "train/peft_layout.h"

#include "core/error.h"

namespace moe::train {

namespace {

// The per-layer parts of one fused pair: (module, first output row in the fused B).
std::vector<std::pair<std::string, int64_t>> fused_parts(const FusedExpertLora& f, int64_t e) {
    if (f.param == "down_proj") return {{f.member(e, f.down), 0}};
    return {{f.member(e, f.gate), 0}, {f.member(e, f.up), f.out / 2}};
}

std::map<std::string, bool> fused_members(const LoraAdapter& layout) {
    std::map<std::string, bool> m;
    for (const FusedExpertLora& f : layout.fused)
        for (int64_t e = 0; e < f.experts_count; ++e)
            for (const auto& part : fused_parts(f, e)) m[part.first] = true;
    return m;
}

// Assembles the PEFT tensors from per-layer (a, b) pairs; a fused A sums its parts (gradients)
// or takes the first (values, where the parts are equal).
PeftTensors assemble(const LoraAdapter& layout, const LoraGrads& parts, bool sum_shared_a) {
    PeftTensors out;
    for (const FusedExpertLora& f : layout.fused) {
        const int64_t E = f.experts_count, r = f.rank;
        std::vector<float> a(static_cast<size_t>(E * r * f.in), 0.0f);
        std::vector<float> b(static_cast<size_t>(f.out * r * E), 0.0f);
        for (int64_t e = 0; e < E; ++e) {
            bool first = true;
            for (const auto& [module, row0] : fused_parts(f, e)) {
                const auto it = parts.find(module);
                if (it == parts.end()) continue;
                const LoraGrad& g = it->second;
                if (sum_shared_a || first)
                    for (size_t i = 0; i < g.a.size(); ++i) a[size_t(e * r * f.in) + i] += g.a[i];
                first = false;
                const int64_t rows = int64_t(g.b.size()) / r;
                for (int64_t o = 0; o < rows; ++o)
                    for (int64_t ri = 0; ri < r; ++ri)
                        b[size_t((row0 + o) * r * E + ri * E + e)] = g.b[size_t(o * r + ri)];
            }
        }
        out[f.peft_module + ".lora_A"] = std::move(a);
        out[f.peft_module + ".lora_B"] = std::move(b);
    }
    const auto members = fused_members(layout);
    for (const auto& [module, p] : layout.layers) {
        if (members.count(module)) continue;
        const auto it = parts.find(module);
        out[module + ".lora_A"] =
            it != parts.end() ? it->second.a
                              : std::vector<float>(static_cast<size_t>(p.rank * p.in), 0.0f);
        out[module + ".lora_B"] =
            it != parts.end() ? it->second.b
                              : std::vector<float>(static_cast<size_t>(p.out * p.rank), 0.0f);
    }
    return out;
}

std::map<std::string, Linear*> linears_by_name(DecoderModel& model) {
    std::map<std::string, Linear*> by_name;
    model.visit_linears([&](Linear& l) { by_name[l.name] = &l; });
    return by_name;
}

Linear& adapted(std::map<std::string, Linear*>& by_name, const std::string& module) {
    const auto it = by_name.find(module);
    if (it == by_name.end()) throw Error("adapter layer '" + module + "' is not in the model");
    if (it->second->lora.size() != 1)
        throw Error("adapter layer '" + module + "' carries " +
                    std::to_string(it->second->lora.size()) + " terms (training needs one)");
    return *it->second;
}

}  // namespace

PeftTensors peft_gradients(const LoraAdapter& layout, const LoraGrads& grads) {
    return assemble(layout, grads, true);
}

PeftTensors peft_values(const LoraAdapter& layout, const DecoderModel& model) {
    auto by_name = linears_by_name(const_cast<DecoderModel&>(model));
    LoraGrads parts;
    for (const auto& [module, p] : layout.layers) {
        const LoraTerm& t = adapted(by_name, module).lora.front();
        parts[module] = {t.a, t.b};
    }
    return assemble(layout, parts, false);
}

void set_peft_values(const LoraAdapter& layout, DecoderModel& model, const PeftTensors& values) {
    auto by_name = linears_by_name(model);
    const auto get = [&](const std::string& name) -> const std::vector<float>& {
        const auto it = values.find(name);
        if (it == values.end()) throw Error("adapter tensor '" + name + "' is missing");
        return it->second;
    };
    const auto set = [&](const std::string& module, const float* a, size_t na, const float* b,
                         size_t nb) {
        LoraTerm& t = adapted(by_name, module).lora.front();
        require(t.a.size() == na && t.b.size() == nb, "adapter tensor sizes changed: " + module);
        t.a.assign(a, a + na);
        t.b.assign(b, b + nb);
        ++by_name[module]->lora_version;
    };
    for (const FusedExpertLora& f : layout.fused) {
        const std::vector<float>& A = get(f.peft_module + ".lora_A");
        const std::vector<float>& B = get(f.peft_module + ".lora_B");
        const int64_t E = f.experts_count, r = f.rank;
        for (int64_t e = 0; e < E; ++e) {
            for (const auto& [module, row0] : fused_parts(f, e)) {
                const int64_t rows = f.param == "down_proj" ? f.out : f.out / 2;
                std::vector<float> b(static_cast<size_t>(rows * r));
                for (int64_t o = 0; o < rows; ++o)
                    for (int64_t ri = 0; ri < r; ++ri)
                        b[size_t(o * r + ri)] = B[size_t((row0 + o) * r * E + ri * E + e)];
                set(module, A.data() + e * r * f.in, size_t(r * f.in), b.data(), b.size());
            }
        }
    }
    const auto members = fused_members(layout);
    for (const auto& [module, p] : layout.layers) {
        if (members.count(module)) continue;
        const auto& a = get(module + ".lora_A");
        const auto& b = get(module + ".lora_B");
        set(module, a.data(), a.size(), b.data(), b.size());
    }
}

}  // namespace moe::train
