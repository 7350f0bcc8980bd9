#include "api/finetune_estimate.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include "api/system_status.h"
#include "core/error.h"
#include "core/memory_info.h"
#include "hybrid/cost_model.h"
#include "model/attention.h"
#include "model/feed_forward.h"
#include "model/moe_block.h"
#include "store/training_runs.h"

namespace moe {

namespace {

// Bytes per adapter parameter (see the header): fp32 values, two fp32 moments, and four fp32
// gradient-sized buffers (this sequence's, the accumulation, the PEFT-layout gradients and
// values).
constexpr uint64_t kValueBytes = 4, kMomentBytes = 8, kGradientBytes = 16;
constexpr uint64_t kBytesPerParam = kValueBytes + kMomentBytes + kGradientBytes;

// The target groups the wizard offers, with the names the trainer matches (NewAdapterOptions).
struct Group {
    const char* name;
    std::vector<std::string> names;
};
const std::vector<Group>& groups() {
    static const std::vector<Group> g = {
        {"attention",
         {"q_proj", "k_proj", "v_proj", "o_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa",
          "kv_b_proj"}},
        {"mlp", {"gate_proj", "up_proj", "down_proj"}},
        {"experts", {"experts"}},
        {"router", {"router"}},
    };
    return g;
}

std::string last_component(const std::string& name) {
    const size_t dot = name.rfind('.');
    return dot == std::string::npos ? name : name.substr(dot + 1);
}

int64_t io_of(const FinetuneShapes& s, const std::string& target) {
    if (target == "experts") return s.experts_io;
    if (target == "router") return s.router_io;
    const auto it = s.linear_io.find(target);
    return it == s.linear_io.end() ? 0 : it->second;
}

// fp32 values the MLP tape keeps per token: input, gate, up, activation.
int64_t mlp_tape(int64_t hidden, int64_t inter) {
    return hidden + 3 * inter;
}

std::string seconds_text(double s) {
    char buf[64];
    if (s < 1)
        std::snprintf(buf, sizeof buf, "%.0f ms", s * 1e3);
    else if (s < 120)
        std::snprintf(buf, sizeof buf, "%.1f s", s);
    else if (s < 7200)
        std::snprintf(buf, sizeof buf, "%.0f min", s / 60);
    else
        std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
    return buf;
}

}  // namespace

FinetuneShapes measure_finetune_shapes(DecoderModel& model, uint64_t weight_bytes) {
    FinetuneShapes s;
    const ModelInfo& info = model.info();
    s.architecture = info.architecture;
    s.hidden = model.hidden;
    s.vocab = model.vocab;
    s.params_total = info.params_total;
    s.params_active = info.params_active;
    s.weight_bytes = weight_bytes;
    const int64_t H = model.hidden;
    // Routed experts and routers are counted apart (the "experts" and "router" targets).
    std::set<const Linear*> apart;
    for (DecoderLayer& L : model.layers) {
        FinetuneShapes::Layer layer;
        layer.tape_values = 2 * H;  // the residual stream before the attention and the FFN
        if (const auto* a = dynamic_cast<const GqaAttention*>(L.attention.get())) {
            const int64_t q = a->q_proj.out_features(), kv = a->k_proj.out_features();
            // x; q0, qn, q, attn; k0, kn, k; v0, v (block_grads.h's GqaTape).
            layer.tape_values += H + 4 * q + 5 * kv;
            layer.heads = a->cfg.heads;
            layer.attention_width = q + a->o_proj.in_features();
        } else if (const auto* m = dynamic_cast<const MlaAttention*>(L.attention.get())) {
            const MlaAttentionConfig& c = m->cfg;
            const int64_t qk = c.qk_nope_dim + c.qk_rope_dim, heads = c.heads;
            // x; qa, qan; kva; c; q, k; v; attn (MlaTape).
            layer.tape_values += H + 2 * c.q_lora_rank + (c.kv_lora_rank + c.qk_rope_dim) +
                                 c.kv_lora_rank + 2 * heads * qk + 2 * heads * c.v_head_dim;
            layer.heads = heads;
            layer.attention_width = heads * (qk + c.v_head_dim);
        }
        if (auto* moe = dynamic_cast<MoeBlock*>(L.ffn.get())) {
            apart.insert(&moe->router.gate);
            const int64_t E = int64_t(moe->experts.size()), k = moe->router.cfg.top_k;
            const int64_t inter = E > 0 ? moe->experts[0].gate.out_features() : 0;
            for (Expert& e : moe->experts)
                for (const Linear* l : {&e.gate, &e.up, &e.down}) apart.insert(l);
            if (E > 0) {
                s.experts_io += E * ((H + 2 * inter) + (inter + H));
                s.router_io += H + E;
            }
            // x, router logits; per routed slot the expert's tape and its output row; the
            // shared expert's tape, its output and gate (MoeTape).
            layer.tape_values += H + E + k * (mlp_tape(H, inter) + H);
            if (moe->shared)
                layer.tape_values += mlp_tape(H, moe->shared->gate.out_features()) + H + 1;
        } else if (const auto* mlp = dynamic_cast<const GatedMlp*>(L.ffn.get())) {
            layer.tape_values += mlp_tape(H, mlp->gate.out_features());
        }
        s.layers.push_back(layer);
    }
    model.visit_linears([&](Linear& l) {
        if (&l == &model.lm_head || apart.count(&l)) return;
        s.linear_io[last_component(l.name)] += l.in_features() + l.out_features();
    });
    return s;
}

FinetuneShapes load_finetune_shapes(const std::string& model_path) {
    LoadOptions lo;
    lo.expert_format = "reference";  // as the trainer loads it: the weights stay mapped
    std::unique_ptr<Model> model = load_model(model_path, lo);
    auto* d = dynamic_cast<DecoderModel*>(model.get());
    if (!d) throw Error(model_path + ": this model type cannot be trained");
    return measure_finetune_shapes(*d, d->store.total_bytes());
}

FinetuneEstimate estimate_finetune(const FinetuneShapes& s, const FinetuneSpec& spec,
                                   const EstimateInputs& in) {
    FinetuneEstimate e;
    e.weight_bytes = s.weight_bytes;
    e.ram_available = in.ram_available;
    e.vram_total = in.vram_total;
    const std::set<std::string> chosen(spec.targets.begin(), spec.targets.end());
    for (const Group& g : groups()) {
        TargetCost t;
        t.group = g.name;
        for (const std::string& n : g.names) {
            const int64_t io = io_of(s, n);
            if (io == 0) continue;
            t.targets.push_back(n);
            t.params += spec.rank * io;
            t.selected |= chosen.count(n) != 0;
        }
        if (t.targets.empty()) continue;
        t.bytes = uint64_t(t.params) * kBytesPerParam;
        e.targets.push_back(t);
    }
    for (const std::string& n : chosen) e.adapter_params += spec.rank * io_of(s, n);
    const auto params = uint64_t(e.adapter_params);
    e.adapter_bytes = params * kValueBytes;
    e.optimizer_bytes = params * kMomentBytes;
    e.gradient_bytes = params * kGradientBytes;

    // Activations of the longest sequence: the cut-off.
    const int64_t T = spec.cutoff, H = s.hidden;
    e.sequence_tokens = T;
    uint64_t tapes = 0, largest = 0;
    for (const FinetuneShapes::Layer& l : s.layers) {
        const uint64_t one = uint64_t(l.tape_values + l.heads * T) * uint64_t(T) * 4;
        tapes += one;
        largest = std::max(largest, one);
    }
    if (spec.gradient_checkpointing)  // each layer's input, and one layer's tape at a time
        tapes = uint64_t(s.layers.size()) * uint64_t(H * T) * 4 + largest;
    // The last stream and its norm, the logits and their gradient, three backward buffers.
    const uint64_t head = uint64_t(T) * uint64_t(2 * s.vocab + 5 * H) * 4;
    e.activation_bytes = tapes + head;
    e.working_bytes = e.adapter_bytes + e.optimizer_bytes + e.gradient_bytes + e.activation_bytes;
    e.ram_bytes = e.working_bytes + e.weight_bytes;

    // Time. A step is grad_accum sequences.
    const double seq = in.tokens_per_sequence > 0 ? in.tokens_per_sequence : double(T);
    e.tokens_per_step = seq * double(spec.grad_accum);
    if (spec.steps > 0)
        e.steps = spec.steps;
    else if (in.sequences > 0)
        e.steps = std::max<int64_t>(1, in.sequences * spec.epochs / spec.grad_accum);
    // Frozen weights: 2 FLOPs per active parameter forward, 2 more for the input gradients,
    // 2 more when checkpointing runs the forward again; the attention products (causal: half
    // of T per token) three times as often as the forward's.
    const double passes = spec.gradient_checkpointing ? 3.0 : 2.0;
    const double dense = double(s.params_active - s.vocab * H);  // embeddings are looked up
    double attention = 0;
    for (const FinetuneShapes::Layer& l : s.layers) attention += double(l.attention_width) * seq;
    e.flops_per_step = e.tokens_per_step * (2.0 * passes * dense + 3.0 * attention);
    if (in.measured_tokens_per_s > 0) {
        e.step_seconds = e.tokens_per_step / in.measured_tokens_per_s;
        char buf[160];
        std::snprintf(buf, sizeof buf, "measured: %.0f tokens/s in %s of this model",
                      in.measured_tokens_per_s, in.measured_from.c_str());
        e.time_basis = buf;
    } else {
        e.step_seconds = e.flops_per_step / in.assumed_flops_per_s;
        char buf[200];
        std::snprintf(buf, sizeof buf,
                      "assumed %.0f GFLOP/s for the CPU's fp32 products (no run of this model "
                      "measured yet)",
                      in.assumed_flops_per_s / 1e9);
        e.time_basis = buf;
        if (in.weight_bytes_per_s > 0) {
            // Every pass reads the weights its tokens touch: all of them once a sequence
            // routes to every expert, the active ones per token before that.
            const double share =
                s.params_total > 0 ? double(s.params_active) / double(s.params_total) : 1.0;
            const double touched = double(s.weight_bytes) * std::min(1.0, share * seq);
            const double read_s =
                touched * passes * double(spec.grad_accum) / in.weight_bytes_per_s;
            if (read_s > e.step_seconds) e.step_seconds = read_s;
            std::snprintf(buf, sizeof buf, "; weights read at the calibrated %.1f GB/s",
                          in.weight_bytes_per_s / 1e9);
            e.time_basis += buf;
        }
    }
    e.total_seconds = e.step_seconds * double(e.steps);

    // The verdict.
    e.fits_working = in.ram_available == 0 || e.working_bytes <= in.ram_available;
    e.fits = in.ram_available == 0 || e.ram_bytes <= in.ram_available;
    const std::string need = format_gib(e.ram_bytes) + " of RAM (" + format_gib(e.weight_bytes) +
                             " mapped weights + " + format_gib(e.working_bytes) + " working)";
    if (in.ram_available == 0)
        e.verdict = "needs " + need + "; this machine's available memory is unknown";
    else if (e.fits)
        e.verdict = "fits this machine: needs " + need + " of the " + format_gib(in.ram_available) +
                    " available";
    else if (e.fits_working)
        e.verdict = "fits only from disk: needs " + need + ", " + format_gib(in.ram_available) +
                    " available, so the weights are read from disk on every step (slow)";
    else
        e.verdict = "does not fit: needs " + need + ", " + format_gib(in.ram_available) +
                    " available; lower the cut-off, turn on gradient checkpointing or drop "
                    "targets";
    e.verdict += in.vram_total > 0 ? "; no VRAM (training runs on the CPU; " +
                                         format_gib(in.vram_total) + " of GPU memory left unused)"
                                   : "; no VRAM (training runs on the CPU)";
    return e;
}

nlohmann::json FinetuneEstimate::to_json() const {
    nlohmann::json t = nlohmann::json::array();
    for (const TargetCost& c : targets)
        t.push_back({{"group", c.group},
                     {"targets", c.targets},
                     {"params", c.params},
                     {"bytes", c.bytes},
                     {"selected", c.selected}});
    return {{"weight_bytes", weight_bytes},
            {"adapter_params", adapter_params},
            {"adapter_bytes", adapter_bytes},
            {"optimizer_bytes", optimizer_bytes},
            {"gradient_bytes", gradient_bytes},
            {"activation_bytes", activation_bytes},
            {"working_bytes", working_bytes},
            {"ram_bytes", ram_bytes},
            {"vram_bytes", vram_bytes},
            {"targets", t},
            {"sequence_tokens", sequence_tokens},
            {"steps", steps},
            {"tokens_per_step", tokens_per_step},
            {"flops_per_step", flops_per_step},
            {"step_seconds", step_seconds},
            {"total_seconds", total_seconds},
            {"time_basis", time_basis},
            {"ram_available", ram_available},
            {"vram_total", vram_total},
            {"fits", fits},
            {"verdict", verdict}};
}

std::string FinetuneEstimate::summary() const {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%lld adapter parameters", (long long)adapter_params);
    std::string s = verdict + "\n";
    s += "RAM: " + format_gib(weight_bytes) + " base weights (memory-mapped), " + buf + ": " +
         format_gib(adapter_bytes) + " values + " + format_gib(optimizer_bytes) +
         " AdamW moments + " + format_gib(gradient_bytes) + " gradients, " +
         format_gib(activation_bytes) + " activations for " + std::to_string(sequence_tokens) +
         " tokens\n";
    s += "VRAM: none (the trainer runs on the CPU)\n";
    s += "Time: " + seconds_text(step_seconds) + " per step";
    if (steps > 0)
        s += ", " + seconds_text(total_seconds) + " for " + std::to_string(steps) + " steps";
    s += " (" + time_basis + ")";
    return s;
}

EstimateInputs machine_estimate_inputs(const FinetuneSpec& spec, const std::string& store_path) {
    EstimateInputs in;
    const SystemStatus st = system_status(true);
    in.ram_available = st.available_bytes ? st.available_bytes : available_memory_bytes();
    for (const GpuStatus& g : st.gpus) in.vram_total += g.total_bytes;
    if (store_path.empty()) return in;
    const std::filesystem::path rates =
        std::filesystem::path(store_path).parent_path() / "machine_rates.json";
    try {
        if (std::filesystem::exists(rates))
            in.weight_bytes_per_s = MachineRates::load(rates.string()).cpu_dense_bytes_per_s;
    } catch (const std::exception&) {
        // A damaged rates file is as good as none: the estimate says it assumed a rate.
    }
    if (!std::filesystem::exists(store_path)) return in;
    try {
        TrainingRunStore store(store_path);
        for (const TrainingRun& r : store.runs()) {  // newest first
            if (r.model != spec.model) continue;
            std::vector<double> rates_seen;
            for (const TrainingMetricsRow& m : store.metrics(r.id))
                if (m.tokens_per_s > 0) rates_seen.push_back(m.tokens_per_s);
            if (rates_seen.empty()) continue;
            // The median: the first steps are slower (pages of the weights still coming in).
            std::nth_element(rates_seen.begin(), rates_seen.begin() + rates_seen.size() / 2,
                             rates_seen.end());
            in.measured_tokens_per_s = rates_seen[rates_seen.size() / 2];
            in.measured_from = "run " + std::to_string(r.id);
            break;
        }
    } catch (const std::exception&) {
        // No history to measure from: the estimate assumes a rate and says so.
    }
    return in;
}

}  // namespace moe
