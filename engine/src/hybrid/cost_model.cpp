#include "hybrid/cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "model/decoder_model.h"
#include "model/moe_block.h"

namespace moe {

namespace {

uint64_t stored_bytes(const WeightMatrix& w) {
    return w.data ? uint64_t(w.rows) * uint64_t(w.row_bytes()) : 0;
}

uint64_t stored_bytes(const Linear& l) {
    return stored_bytes(l.w) + l.bias.size() * sizeof(float);
}

// p[e] = the share of tokens routed to expert e (they sum to k), from the workload's counts
// (decode counts when there are any: decode speed is what they predict) or uniform.
std::vector<double> routing_shares(const ExpertUsage* usage, size_t layer, size_t experts,
                                   int64_t k) {
    std::vector<double> p(experts, experts ? double(k) / double(experts) : 0.0);
    if (!usage) return p;
    for (const auto* counts : {&usage->decode, &usage->counts}) {
        if (layer >= counts->size() || (*counts)[layer].size() != experts) continue;
        double total = 0;
        for (uint64_t c : (*counts)[layer]) total += double(c);
        if (total <= 0) continue;
        for (size_t e = 0; e < experts; ++e) p[e] = double(k) * double((*counts)[layer][e]) / total;
        return p;
    }
    return p;
}

std::string gib(uint64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f GiB", double(b) / double(1ull << 30));
    return buf;
}

}  // namespace

CostShape measure_cost_shape(DecoderModel& model) {
    CostShape s;
    s.footprint = measure_footprint(model);
    s.top_k = model.info().experts_per_token;
    s.cpu_head_bytes = stored_bytes(model.lm_head);
    for (DecoderLayer& layer : model.layers) {
        uint64_t dense = 0;
        layer.attention->visit_linears([&](Linear& x) { dense += stored_bytes(x); });
        std::vector<uint64_t> experts;
        if (auto* moe = dynamic_cast<MoeBlock*>(layer.ffn.get()); moe && !moe->experts.empty()) {
            for (size_t e = 0; e < moe->experts.size(); ++e) {
                if (moe->bank && e < moe->bank->experts.size()) {
                    experts.push_back(moe->bank->experts[e].bytes());  // the operator's format
                } else {
                    const Expert& x = moe->experts[e];
                    experts.push_back(stored_bytes(x.gate) + stored_bytes(x.up) +
                                      stored_bytes(x.down));
                }
            }
            dense += stored_bytes(moe->router.gate);
            if (moe->shared)
                moe->shared->visit_linears([&](Linear& x) { dense += stored_bytes(x); });
            if (moe->has_shared_gate) dense += stored_bytes(moe->shared_gate);
        } else {
            layer.ffn->visit_linears([&](Linear& x) { dense += stored_bytes(x); });
        }
        s.cpu_dense_bytes.push_back(dense);
        s.cpu_expert_bytes.push_back(std::move(experts));
    }
    return s;
}

nlohmann::json MachineRates::to_json() const {
    return {{"version", 1},
            {"machine", machine},
            {"expert_format", expert_format},
            {"threads", threads},
            {"cpu_expert_bytes_per_s", cpu_expert_bytes_per_s},
            {"cpu_call_s", cpu_call_s},
            {"cpu_dense_bytes_per_s", cpu_dense_bytes_per_s},
            {"cpu_assignment_s", cpu_assignment_s},
            {"gpu_layer_s", gpu_layer_s},
            {"gpu_expert_bytes_per_s", gpu_expert_bytes_per_s},
            {"gpu_token_s", gpu_token_s},
            {"gpu_flops", gpu_flops},
            {"gpu_attention_s_per_t2", gpu_attention_s_per_t2},
            {"h2d_bytes_per_s", h2d_bytes_per_s},
            {"stream_bytes_per_s", stream_bytes_per_s}};
}

MachineRates MachineRates::from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object() || j.value("version", 0) != 1)
        throw Error(where + ": not a machine rates file (version 1 expected)");
    MachineRates r;
    const auto num = [&](const char* key, double& into, bool required) {
        if (!j.contains(key)) {
            if (required) throw Error(where + ": missing \"" + key + "\"");
            return;
        }
        if (!j[key].is_number() || j[key].get<double>() < 0 || !std::isfinite(j[key].get<double>()))
            throw Error(where + ": \"" + key + "\" must be a number >= 0");
        into = j[key].get<double>();
    };
    r.machine = j.value("machine", "");
    r.expert_format = j.value("expert_format", "");
    r.threads = j.value("threads", 0);
    num("cpu_expert_bytes_per_s", r.cpu_expert_bytes_per_s, true);
    num("cpu_call_s", r.cpu_call_s, true);
    num("cpu_dense_bytes_per_s", r.cpu_dense_bytes_per_s, false);
    num("cpu_assignment_s", r.cpu_assignment_s, false);
    num("gpu_layer_s", r.gpu_layer_s, false);
    num("gpu_expert_bytes_per_s", r.gpu_expert_bytes_per_s, false);
    num("gpu_token_s", r.gpu_token_s, false);
    num("gpu_flops", r.gpu_flops, false);
    num("gpu_attention_s_per_t2", r.gpu_attention_s_per_t2, false);
    num("h2d_bytes_per_s", r.h2d_bytes_per_s, false);
    num("stream_bytes_per_s", r.stream_bytes_per_s, false);
    if (r.cpu_expert_bytes_per_s <= 0) throw Error(where + ": cpu_expert_bytes_per_s must be > 0");
    return r;
}

void MachineRates::save(const std::string& path) const {
    write_file_atomically(path, to_json().dump(2) + "\n");
}

MachineRates MachineRates::load(const std::string& path) {
    return from_json(read_json_file(path, "machine rates file"), path);
}

std::string SpeedPrediction::summary() const {
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "decode %.1f tok/s (CPU experts %.2f ms + GPU %.2f ms per token), prefill %.0f "
                  "tok/s, VRAM %s, RAM %s, %.0f %% of expert use on the GPU",
                  decode_tok_s, 1e3 * decode_cpu_s, 1e3 * decode_gpu_s, prefill_tok_s,
                  gib(vram_bytes).c_str(), gib(ram_bytes).c_str(), 100.0 * gpu_hit_rate);
    return buf;
}

nlohmann::json SpeedPrediction::to_json() const {
    return {{"decode_tok_s", decode_tok_s}, {"prefill_tok_s", prefill_tok_s},
            {"decode_cpu_s", decode_cpu_s}, {"decode_gpu_s", decode_gpu_s},
            {"vram_bytes", vram_bytes},     {"ram_bytes", ram_bytes},
            {"gpu_hit_rate", gpu_hit_rate}, {"notes", notes}};
}

SpeedPrediction predict_speed(const CostShape& shape, const Placement& placement,
                              const ExpertUsage* usage, const MachineRates& rates,
                              const CostOptions& options) {
    const ModelFootprint& f = shape.footprint;
    require(placement.layers.size() == f.layers.size() &&
                shape.cpu_expert_bytes.size() == f.layers.size(),
            "cost model: the placement has " + std::to_string(placement.layers.size()) +
                " layers, the model " + std::to_string(f.layers.size()));
    require(rates.cpu_expert_bytes_per_s > 0, "cost model: no CPU expert rate measured");
    const bool gpu = placement.uses_gpu();
    if (gpu && !rates.has_gpu())
        throw Error(
            "cost model: this placement uses the GPU, but the machine rates have no GPU figures "
            "(run `moestudio-cli placement calibrate` with a GPU budget on a machine with a GPU)");
    const int64_t k = std::max<int64_t>(shape.top_k, 1);
    const int64_t d = std::clamp<int64_t>(options.deferred_experts, 0, k - 1);
    const int64_t T = std::max<int64_t>(options.prompt_tokens, 1);
    const double dense_rate = rates.cpu_dense_bytes_per_s > 0 ? rates.cpu_dense_bytes_per_s
                                                              : rates.cpu_expert_bytes_per_s;
    // FLOPs per second of the CPU experts in prefill, from the time per (token, expert) pair.
    double assign_flops = 0, assign_count = 0;
    SpeedPrediction out;
    double decode_s = 0, prefill_s = 0, gpu_share = 0, routed = 0;
    uint64_t ram = 0;
    for (size_t l = 0; l < f.layers.size(); ++l) {
        const auto& fl = f.layers[l];
        const auto& pl = placement.layers[l];
        const auto& cpu_bytes = shape.cpu_expert_bytes[l];
        const size_t E = fl.experts.size();
        const std::vector<double> p = routing_shares(usage, l, E, k);
        double cpu_b = 0, cpu_p = 0, gpu_b = 0, gpu_p = 0;
        double pre_gpu_flops = 0, pre_cpu_assign = 0, pre_stream_bytes = 0, pre_stream_flops = 0;
        int64_t gpu_experts = 0;
        for (size_t e = 0; e < E; ++e) {
            const bool on_gpu = e < pl.experts.size() && pl.experts[e] == Device::Gpu;
            const double flops = double(fl.experts[e]);  // bf16 bytes = 2 FLOPs per weight
            if (on_gpu) {
                ++gpu_experts;
                gpu_b += p[e] * double(fl.experts[e]);
                gpu_p += p[e];
                pre_gpu_flops += double(T) * p[e] * flops;
            } else {
                cpu_b += p[e] * double(cpu_bytes[e]);
                cpu_p += p[e];
                ram += cpu_bytes[e];
                pre_cpu_assign += double(T) * p[e];
                pre_stream_bytes +=
                    (1.0 - std::pow(1.0 - std::min(p[e], 1.0), double(T))) * double(cpu_bytes[e]);
                pre_stream_flops += double(T) * p[e] * flops;
            }
            assign_flops += flops;
            assign_count += 1;
        }
        gpu_share += gpu_p;
        routed += E ? double(k) : 0.0;
        const double cpu_s = cpu_b / rates.cpu_expert_bytes_per_s +
                             (cpu_p > 0 ? rates.cpu_call_s * std::min(1.0, cpu_p) : 0.0);
        const bool dense_on_gpu = pl.attention == Device::Gpu;
        if (!dense_on_gpu) ram += shape.cpu_dense_bytes[l];
        if (gpu && dense_on_gpu) {
            const double gpu_s =
                rates.gpu_layer_s +
                (rates.gpu_expert_bytes_per_s > 0 ? gpu_b / rates.gpu_expert_bytes_per_s : 0.0);
            double layer = gpu_s;
            if (cpu_p > 0) {
                const double later = d > 0 && l + 1 < f.layers.size() ? cpu_s * double(d) / k : 0;
                layer = std::max(gpu_s, later) + (cpu_s - later);
            }
            decode_s += layer;
            out.decode_cpu_s += cpu_s;
            out.decode_gpu_s += gpu_s;
            // Prefill: GEMMs and attention on the GPU, the CPU experts where they are faster.
            double pre =
                double(T) * double(fl.attention + fl.dense) / std::max(rates.gpu_flops, 1.0) +
                rates.gpu_attention_s_per_t2 * double(T) * double(T) +
                pre_gpu_flops / std::max(rates.gpu_flops, 1.0);
            if (pre_cpu_assign > 0) {
                const double on_cpu = pre_cpu_assign * rates.cpu_assignment_s;
                const double stream_rate =
                    rates.stream_bytes_per_s > 0 ? rates.stream_bytes_per_s : rates.h2d_bytes_per_s;
                const bool can_stream = gpu_experts == 0 && stream_rate > 0;
                const double streamed = can_stream
                                            ? pre_stream_bytes / stream_rate +
                                                  pre_stream_flops / std::max(rates.gpu_flops, 1.0)
                                            : on_cpu;
                pre += rates.cpu_assignment_s > 0 ? std::min(on_cpu, streamed) : streamed;
            }
            prefill_s += pre;
        } else {
            // CPU only: the attention and dense weights read at the DRAM rate.
            const double dense_s = double(shape.cpu_dense_bytes[l]) / dense_rate;
            decode_s += dense_s + cpu_s;
            out.decode_cpu_s += dense_s + cpu_s;
            prefill_s += pre_cpu_assign * rates.cpu_assignment_s;
        }
    }
    // Prefill of the dense parts on the CPU: at the FLOP rate the experts' assignments show.
    const double cpu_flops = rates.cpu_assignment_s > 0 && assign_count > 0
                                 ? assign_flops / assign_count / rates.cpu_assignment_s
                                 : 0.0;
    if (!gpu) {
        uint64_t dense_flops = 0;
        for (const auto& fl : f.layers) dense_flops += fl.attention + fl.dense;
        if (cpu_flops > 0) prefill_s += double(T) * double(dense_flops) / cpu_flops;
        decode_s += double(shape.cpu_head_bytes) / dense_rate;
        ram += shape.cpu_head_bytes;
    } else {
        decode_s += rates.gpu_token_s;
        if (placement.head != Device::Gpu) decode_s += double(shape.cpu_head_bytes) / dense_rate;
        out.vram_bytes = gpu_weight_bytes(f, placement) +
                         f.kv_bytes_per_token * uint64_t(std::max<int64_t>(options.context, 0)) +
                         options.reserve;
    }
    out.ram_bytes = ram;
    out.decode_tok_s = decode_s > 0 ? 1.0 / decode_s : 0.0;
    out.prefill_tok_s = prefill_s > 0 ? double(T) / prefill_s : 0.0;
    out.gpu_hit_rate = routed > 0 ? gpu_share / routed : 0.0;
    if (!gpu && rates.cpu_assignment_s <= 0) {
        out.prefill_tok_s = 0;
        out.notes.push_back("no prefill rate measured: prefill not predicted");
    }
    if (usage == nullptr)
        out.notes.push_back("no workload telemetry: every expert taken as equally likely");
    return out;
}

}  // namespace moe
