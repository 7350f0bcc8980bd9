#include "hybrid/calibration.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <optional>
#include <random>

#include "core/cpu_info.h"
#include "core/error.h"
#include "core/parallel.h"
#include "cuda/gpu.h"
#include "hybrid/hybrid_model.h"
#include "hybrid/placement_planner.h"
#include "model/decoder_model.h"
#include "model/moe_block.h"

namespace moe {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

void say(const CalibrationOptions& o, const std::string& what) {
    if (o.progress) o.progress(what);
}

struct MoeLayerRef {
    size_t index;
    const MoeBlock* block;
};

std::vector<MoeLayerRef> moe_layers(const DecoderModel& model) {
    std::vector<MoeLayerRef> out;
    for (size_t i = 0; i < model.layers.size(); ++i) {
        const auto* m = dynamic_cast<const MoeBlock*>(model.layers[i].ffn.get());
        if (m && !m->experts.empty()) out.push_back({i, m});
    }
    return out;
}

// `n` distinct experts of `E` for each of `T` tokens, equal weights.
Routing random_routing(int64_t T, int64_t n, int64_t E, std::mt19937& rng) {
    Routing r{T, n, {}, {}};
    std::vector<int32_t> all(static_cast<size_t>(E));
    std::iota(all.begin(), all.end(), 0);
    for (int64_t t = 0; t < T; ++t) {
        std::shuffle(all.begin(), all.end(), rng);
        r.ids.insert(r.ids.end(), all.begin(), all.begin() + n);
        r.weights.insert(r.weights.end(), size_t(n), 1.0f / float(n));
    }
    return r;
}

// Mean seconds per decode step of `model` (one warm-up step first).
double decode_step_seconds(Model& model, int steps) {
    KvCache cache = model.new_cache();
    std::vector<float> logits;
    const int64_t vocab = model.info().vocab_size;
    std::vector<int32_t> prompt(8);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((7 + 13 * i) % size_t(vocab));
    model.forward(prompt, cache, logits, false);
    int32_t next = 1 % int32_t(vocab);
    model.forward(std::vector<int32_t>{next}, cache, logits, false);  // warm-up (graph recording)
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) {
        next = int32_t((next * 31 + 17) % vocab);
        model.forward(std::vector<int32_t>{next}, cache, logits, false);
    }
    return since(t0) / double(std::max(steps, 1));
}

double mean_expert_bytes(const CostShape& shape, size_t layer) {
    const auto& b = shape.cpu_expert_bytes[layer];
    if (b.empty()) return 0;
    return double(std::accumulate(b.begin(), b.end(), uint64_t(0))) / double(b.size());
}

}  // namespace

MachineRates calibrate_cpu(DecoderModel& model, const CalibrationOptions& o) {
    const std::vector<MoeLayerRef> moe = moe_layers(model);
    require(!moe.empty(), "calibration: this model has no MoE layer to measure");
    const CostShape shape = measure_cost_shape(model);
    MachineRates r;
    r.threads = parallel_threads();
    r.machine = cpu_info().model_name + ", " + std::to_string(r.threads) + " threads";
    const int64_t H = model.hidden, k = std::max<int64_t>(model.info().experts_per_token, 1);
    std::mt19937 rng(20261128);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(H)), out(static_cast<size_t>(H));
    for (float& v : x) v = nd(rng);

    // Decode-sized calls with 1 and with k experts: time = call + bytes / rate.
    say(o, "CPU expert operator, one token");
    double t_n[2] = {0, 0}, b_n[2] = {0, 0};
    const int64_t sizes[2] = {1, k};
    for (int pass = -1; pass < 2; ++pass) {  // pass -1: warm-up
        const int64_t n = sizes[std::max(pass, 0)];
        for (int c = 0; c < o.operator_calls; ++c) {
            const MoeLayerRef& L = moe[size_t(c) % moe.size()];
            const int64_t E = int64_t(L.block->experts.size());
            const Routing route = random_routing(1, std::min(n, E), E, rng);
            const auto t0 = Clock::now();
            L.block->run_experts(x.data(), 1, route, out.data());
            const double s = since(t0);
            if (pass < 0) continue;
            t_n[pass] += s;
            for (const int32_t e : route.ids)
                b_n[pass] += double(shape.cpu_expert_bytes[L.index][size_t(e)]);
        }
    }
    const double calls = double(o.operator_calls);
    const double t1 = t_n[0] / calls, tk = t_n[1] / calls, b1 = b_n[0] / calls, bk = b_n[1] / calls;
    if (tk > t1 && bk > b1) {
        r.cpu_expert_bytes_per_s = (bk - b1) / (tk - t1);
        r.cpu_call_s = std::max(0.0, t1 - b1 / r.cpu_expert_bytes_per_s);
    } else {  // noise swamped the difference: the plain rate of the larger calls
        r.cpu_expert_bytes_per_s = bk / std::max(tk, 1e-9);
        r.cpu_call_s = 0;
    }

    // A prompt-sized batch: the time per (token, expert) pair.
    say(o, "CPU expert operator, a batch of tokens");
    const int64_t T = std::max<int64_t>(o.prompt_tokens, 1);
    std::vector<float> xs(static_cast<size_t>(T * H)), outs(static_cast<size_t>(T * H));
    for (float& v : xs) v = nd(rng);
    double tb = 0;
    const int batches = int(std::min<size_t>(moe.size(), 3));
    for (int i = 0; i < batches; ++i) {
        const MoeLayerRef& L = moe[size_t(i)];
        const int64_t E = int64_t(L.block->experts.size());
        const Routing route = random_routing(T, std::min(k, E), E, rng);
        const auto t0 = Clock::now();
        L.block->run_experts(xs.data(), T, route, outs.data());
        tb += since(t0);
    }
    r.cpu_assignment_s = tb / double(batches) / double(T * k);

    // Whole decode steps on the CPU: what is not experts is the attention and dense weights.
    say(o, "CPU decode steps");
    const double step = decode_step_seconds(model, o.decode_steps);
    double experts_s = 0;
    uint64_t dense_bytes = shape.cpu_head_bytes;
    for (size_t l = 0; l < shape.cpu_dense_bytes.size(); ++l)
        dense_bytes += shape.cpu_dense_bytes[l];
    for (const MoeLayerRef& L : moe)
        experts_s +=
            double(k) * mean_expert_bytes(shape, L.index) / r.cpu_expert_bytes_per_s + r.cpu_call_s;
    const double dense_s = step - experts_s;
    // Less than a tenth of the step left: too little to measure, taken at the expert rate.
    r.cpu_dense_bytes_per_s =
        dense_s > 0.1 * step ? double(dense_bytes) / dense_s : r.cpu_expert_bytes_per_s;
    return r;
}

void calibrate_gpu(PlacedModel& placed, uint64_t gpu_budget, MachineRates& r,
                   const CalibrationOptions& o) {
    require(r.cpu_expert_bytes_per_s > 0, "calibration: measure the CPU rates first");
    const Placement original = placed.placement();
    const DecoderModel& dm = placed.decoder();
    const CostShape shape = measure_cost_shape(const_cast<DecoderModel&>(dm));
    // Every expert on the GPU, when they fit the budget: the GPU experts' rate.
    std::optional<Placement> all_gpu;
    try {
        PlanOptions po;
        po.gpu_budget = gpu_budget;
        po.cpu_experts = CpuExperts::None;
        all_gpu = plan_placement(shape.footprint, po).placement;
    } catch (const Error& e) {
        say(o, std::string("every expert on the GPU does not fit (") + e.what() +
                   "): the GPU experts' rate is not measured");
    }
    const std::vector<MoeLayerRef> moe = moe_layers(dm);
    const int64_t k = std::max<int64_t>(dm.info().experts_per_token, 1);
    const double n_moe = double(std::max<size_t>(moe.size(), 1));
    struct Restore {
        PlacedModel& m;
        const Placement& p;
        ~Restore() {
            try {
                m.set_decode_profiling(false);
                m.apply_placement(p);
            } catch (...) {
            }
        }
    } restore{placed, original};

    // Every expert on the CPU: per MoE layer the host waits for the GPU part (GPU wait), the
    // rest of a step (embeddings, head, launching) is per token.
    say(o, "hybrid decode steps, every expert on the CPU");
    Placement cpu = original;
    for (auto& l : cpu.layers) std::fill(l.experts.begin(), l.experts.end(), Device::Cpu);
    placed.apply_placement(cpu);
    placed.set_decode_profiling(true);
    decode_step_seconds(placed, o.decode_steps);
    PlacedModel::DecodeProfile p = placed.decode_profile();
    placed.set_decode_profiling(false);
    require(p.steps > 0, "calibration: no decode step was profiled");
    const double steps = double(p.steps);
    r.gpu_layer_s = (p.gpu_wait_s + p.route_s) / steps / n_moe;
    r.gpu_token_s = std::max(0.0, (p.step_s - p.gpu_wait_s - p.route_s - p.cpu_experts_s) / steps);
    // The operator inside the pipeline: its rate there is what decode gets.
    double bytes = 0;
    for (const MoeLayerRef& L : moe) bytes += double(k) * mean_expert_bytes(shape, L.index);
    const double cpu_s = p.cpu_experts_s / steps - n_moe * r.cpu_call_s;
    if (cpu_s > 0) r.cpu_expert_bytes_per_s = bytes / cpu_s;

    if (all_gpu) {
        say(o, "hybrid decode steps, every expert on the GPU");
        placed.apply_placement(*all_gpu);
        const double step = decode_step_seconds(placed, o.decode_steps);
        double gpu_bytes = 0;
        for (const MoeLayerRef& L : moe) {
            const auto& b = shape.footprint.layers[L.index].experts;
            gpu_bytes += double(k) * double(std::accumulate(b.begin(), b.end(), uint64_t(0))) /
                         double(std::max<size_t>(b.size(), 1));
        }
        // Without CPU experts a layer is its GPU part; the hand-overs it no longer has are
        // within the measurement's noise next to the expert reads.
        const double experts_s = step - r.gpu_token_s - n_moe * r.gpu_layer_s;
        if (experts_s > 0) r.gpu_expert_bytes_per_s = gpu_bytes / experts_s;
    }

    // A prompt batch with every expert on the CPU and streaming allowed: GEMMs and attention.
    say(o, "hybrid prefill");
    placed.apply_placement(cpu);
    KvCache cache = placed.new_cache();
    std::vector<float> logits;
    const int64_t T = std::max<int64_t>(o.prompt_tokens, 16);
    std::vector<int32_t> prompt(static_cast<size_t>(T));
    for (int64_t i = 0; i < T; ++i)
        prompt[size_t(i)] = int32_t((11 + 7 * i) % dm.info().vocab_size);
    placed.forward(prompt, cache, logits, false);  // warm-up
    cache = placed.new_cache();
    const auto t0 = Clock::now();
    placed.forward(prompt, cache, logits, false);
    const double prefill = since(t0);
    // One equation for the rates of a prompt: split by the shares the cost model assumes
    // (experts at the CPU pair rate or streamed, the rest GEMMs); the GEMM rate is what
    // remains after the experts' share.
    uint64_t gemm_flops = 0;
    for (const auto& l : shape.footprint.layers) gemm_flops += l.attention + l.dense;
    double expert_s = 0;
    for (size_t i = 0; i < moe.size(); ++i) expert_s += double(T * k) * r.cpu_assignment_s;
    const double rest = prefill - std::min(expert_s, 0.5 * prefill);
    if (rest > 0) r.gpu_flops = double(T) * double(gemm_flops) / rest;
    for (const GpuInfo& g : list_gpus()) r.machine += ", " + g.name;
}

}  // namespace moe
