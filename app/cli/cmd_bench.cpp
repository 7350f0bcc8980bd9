// bench moe: one MoE layer of a real model's shape with random weights, run through the fused
// CPU expert operator. Several copies of the layer are rotated so that no call finds its
// experts in cache; the machine's DRAM read bandwidth is measured in the same run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/parallel.h"
#include "cpu/membw.h"
#include "cpu/moe/compute_peak.h"
#include "cpu/moe/fused_moe.h"
#include "cpu/moe/gguf_simd_kernels.h"
#include "cpu/quants.h"

namespace moecli {

namespace {

struct Shape {
    const char* name;
    int64_t hidden, inter, experts, top_k;
};
constexpr Shape kShapes[] = {
    {"qwen3-30b-a3b", 2048, 768, 128, 8},
    {"deepseek-v3", 7168, 2048, 256, 8},
    {"mixtral-8x7b", 4096, 14336, 8, 2},
};

// Random weights for one matrix, kept as f32 for packing or quantizing.
std::vector<float> random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
    std::vector<float> v(static_cast<size_t>(rows * cols));
    moe::parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
        std::mt19937 rng(uint32_t(seed * 1315423911u + uint64_t(r0)));
        std::normal_distribution<float> nd(0.0f, 0.05f);
        for (int64_t i = r0 * cols; i < r1 * cols; ++i) v[size_t(i)] = nd(rng);
    });
    return v;
}

struct BenchLayer {
    moe::ExpertBank bank;
    std::vector<std::vector<uint8_t>> gguf_storage;  // GGUF formats: the quantized rows
};

moe::WeightMatrix f32_matrix(const std::vector<float>& v, int64_t rows, int64_t cols) {
    moe::WeightMatrix w;
    w.dtype = moe::DType::F32;
    w.rows = rows;
    w.cols = cols;
    w.data = v.data();
    return w;
}

BenchLayer make_layer(const Shape& s, int64_t experts, const std::string& format, uint64_t seed) {
    BenchLayer L;
    L.bank.hidden = s.hidden;
    L.bank.inter = s.inter;
    // The random values are shared by the experts (their bytes are separate copies), which
    // keeps set-up time reasonable for layers of several GB.
    const auto g = random_matrix(s.inter, s.hidden, seed),
               u = random_matrix(s.inter, s.hidden, seed + 1),
               d = random_matrix(s.hidden, s.inter, seed + 2);
    moe::GgmlType gt = moe::GgmlType::F32;
    // q4k: GGUF Q4_K repacked for the 16-row kernels (the model path's default for Q4_K experts
    // on AVX-512 CPUs); q4_k: the same bytes used in place.
    const bool gguf = format == "q4_k" || format == "q4k" || format == "q8_0" || format == "q6_k" ||
                      format == "q5_k" || format == "mxfp4" || format == "q4_0";
    moe::PackOptions opt;
    if (gguf) {
        if (format == "q4k") opt.format = moe::PackedFormat::Q4K;
        moe::parse_ggml_type(std::string(format == "q4_k" || format == "q4k" ? "Q4_K"
                                         : format == "q8_0"                  ? "Q8_0"
                                         : format == "q6_k"                  ? "Q6_K"
                                         : format == "q5_k"                  ? "Q5_K"
                                         : format == "mxfp4"                 ? "MXFP4"
                                                                             : "Q4_0"),
                             gt);
    } else if (format == "bf16" || format == "bf16-exact") {
        opt.format = moe::PackedFormat::BF16;
        opt.f32_acts = format == "bf16-exact";
    } else if (format == "int8") {
        opt.format = moe::PackedFormat::INT8;
    } else if (format == "int4") {
        opt.format = moe::PackedFormat::INT4;
    } else {
        throw moe::Error(
            "unknown --format '" + format +
            "' (bf16, bf16-exact, int8, int4, q4k, q4_k, q5_k, q6_k, q8_0, q4_0, mxfp4)");
    }
    auto quantized = [&](const std::vector<float>& v, int64_t rows, int64_t cols) {
        std::vector<uint8_t> bytes(moe::ggml_row_size(gt, cols) * size_t(rows));
        const size_t rb = moe::ggml_row_size(gt, cols);
        moe::parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r)
                moe::quantize_row(gt, &v[size_t(r * cols)], &bytes[size_t(r) * rb], cols);
        });
        return bytes;
    };
    for (int64_t e = 0; e < experts; ++e) {
        moe::ExpertSource src;
        if (gguf) {
            for (auto* p : {&g, &u, &d}) {
                const int64_t rows = p == &d ? s.hidden : s.inter,
                              cols = p == &d ? s.inter : s.hidden;
                L.gguf_storage.push_back(quantized(*p, rows, cols));
                moe::WeightMatrix w;
                w.ggml = true;
                w.ggml_type = gt;
                w.rows = rows;
                w.cols = cols;
                w.data = L.gguf_storage.back().data();
                (p == &g ? src.gate : p == &u ? src.up : src.down) = w;
            }
        } else {
            src.gate = f32_matrix(g, s.inter, s.hidden);
            src.up = f32_matrix(u, s.inter, s.hidden);
            src.down = f32_matrix(d, s.hidden, s.inter);
        }
        L.bank.experts.push_back(moe::make_bank_expert(src, opt, gguf));
    }
    return L;
}

size_t expert_bytes(const moe::BankExpert& e) {
    return e.bytes();
}

int bench_moe(const Args& args) {
    const std::string shape_name = args.get_or("shape", "qwen3-30b-a3b");
    const Shape* shape = nullptr;
    for (const auto& s : kShapes) {
        if (shape_name == s.name) shape = &s;
    }
    if (!shape)
        throw moe::Error("unknown --shape '" + shape_name +
                         "' (qwen3-30b-a3b, deepseek-v3, mixtral-8x7b)");
    const std::string format = args.get_or("format", "bf16");
    const int64_t T = args.get_int("tokens", 1);
    if (T < 1) throw moe::Error("--tokens must be >= 1");
    if (args.has("threads")) moe::set_parallel_threads(int(args.get_int("threads", 0)));
    const int threads = moe::parallel_threads();
    const double budget_gib = args.get_double("memory-gib", 6.0);
    const int64_t layers = args.get_int("layers", 4);
    const int64_t iterations = args.get_int("iterations", T >= 64 ? 7 : 101);
    moe::register_gguf_simd_kernels();

    // As many experts per layer as the memory budget allows (routing picks among them).
    BenchLayer probe = make_layer(*shape, 1, format, 1);
    const size_t per_expert = expert_bytes(probe.bank.experts.front());
    const int64_t fit =
        int64_t(budget_gib * double(1ull << 30) / double(per_expert) / double(layers));
    const int64_t experts = std::clamp<int64_t>(fit, shape->top_k, shape->experts);
    std::vector<BenchLayer> L;
    for (int64_t l = 0; l < layers; ++l)
        L.push_back(make_layer(*shape, experts, format, uint64_t(7 + 3 * l)));

    std::mt19937 rng(1234);
    std::vector<float> x(size_t(T * shape->hidden)), out(x.size());
    for (auto& v : x) v = std::normal_distribution<float>(0.0f, 1.0f)(rng);
    std::vector<int32_t> ids(size_t(T * shape->top_k));
    // Equal routing weights: the operator's cost does not depend on them.
    std::vector<float> w;
    w.assign(ids.size(), 1.0f / float(shape->top_k));
    auto route = [&] {
        std::vector<int32_t> all(static_cast<size_t>(experts));
        std::iota(all.begin(), all.end(), 0);
        for (int64_t t = 0; t < T; ++t) {
            std::shuffle(all.begin(), all.end(), rng);
            std::copy_n(all.begin(), shape->top_k, ids.begin() + t * shape->top_k);
        }
    };
    const moe::KernelVariant variant = moe::default_kernel_variant();
    for (int64_t l = 0; l < layers; ++l) {  // warm-up: page in, first-touch scratch
        route();
        moe::fused_moe(L[size_t(l)].bank, x.data(), T, ids.data(), w.data(), shape->top_k, nullptr,
                       out.data(), variant);
    }
    moe::set_fused_moe_profiling(true);
    moe::reset_fused_moe_profile();
    // The DRAM probe before and after the timed calls; the better of the two is the limit
    // quoted (this VM's bandwidth moves by +-15 % between measurements).
    const moe::MemoryBandwidth dram_before = moe::measure_dram_read(threads);
    double seconds = 0.0;
    double bytes = 0.0;
    std::vector<double> call_seconds;
    for (int64_t it = 0; it < iterations; ++it) {
        route();
        const std::set<int32_t> used(ids.begin(), ids.end());
        bytes += double(used.size()) * double(per_expert);
        const auto t0 = std::chrono::steady_clock::now();
        moe::fused_moe(L[size_t(it % layers)].bank, x.data(), T, ids.data(), w.data(), shape->top_k,
                       nullptr, out.data(), variant);
        const double dt =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        seconds += dt;
        call_seconds.push_back(dt);
    }
    moe::set_fused_moe_profiling(false);
    const moe::FusedMoeProfile prof = moe::fused_moe_profile();
    // The median call: robust to the odd call a noisy neighbour or the kernel interrupts.
    std::sort(call_seconds.begin(), call_seconds.end());
    const double per_call = call_seconds[call_seconds.size() / 2];
    const double mean_call = seconds / double(iterations);
    auto ms = [&](double s) { return s / double(std::max<int64_t>(prof.calls, 1)) * 1e3; };
    const double setup = prof.total - prof.gate_up - prof.down;
    const double gbps = bytes / double(iterations) / per_call / 1e9;
    const double flops =
        2.0 * double(T) * double(shape->top_k) * 3.0 * double(shape->hidden) * double(shape->inter);
    const double tflops = flops / per_call / 1e12;
    moe::MemoryBandwidth dram = moe::measure_dram_read(threads);
    if (dram_before.read_gb_per_s > dram.read_gb_per_s) dram = dram_before;
    // The compute side of the roofline: the peak of the instruction this format's kernels use
    // at this token count (AMX only for bf16/int8 tiles of >= 8 tokens; INT4 and GGUF formats
    // use VNNI), and the bound DRAM sets given the bytes each call must stream.
    moe::KernelVariant peak_variant = variant;
    const bool tiles = (format == "bf16" || format == "int8") && T >= 8;
    if (peak_variant == moe::KernelVariant::Amx && !tiles)
        peak_variant = moe::KernelVariant::Avx512;
    const moe::PeakOp op = format == "bf16-exact" ? moe::PeakOp::F32
                           : format == "bf16"     ? moe::PeakOp::Bf16
                                                  : moe::PeakOp::Int8;
    const moe::ComputePeak peak = moe::measure_compute_peak(peak_variant, op, threads);
    const double bytes_per_call = bytes / double(iterations);
    const double dram_bound_tflops = flops / (bytes_per_call / (dram.read_gb_per_s * 1e9)) / 1e12;
    const double roofline =
        peak.tflops > 0 ? std::min(peak.tflops, dram_bound_tflops) : dram_bound_tflops;
    const nlohmann::json j = {
        {"shape", shape->name},
        {"format", format},
        {"tokens", T},
        {"threads", threads},
        {"kernel_variant", moe::kernel_variant_name(variant)},
        {"experts_in_memory", experts},
        {"layers_rotated", layers},
        {"iterations", iterations},
        {"seconds_per_call", per_call},
        {"seconds_per_call_mean", mean_call},
        {"weight_gb_per_s", gbps},
        {"dram_read_gb_per_s", dram.read_gb_per_s},
        {"ratio_to_dram", gbps / dram.read_gb_per_s},
        {"tflops", tflops},
        {"peak_tflops", peak.tflops},
        {"peak_instruction", peak.instruction},
        {"ratio_to_peak", peak.tflops > 0 ? tflops / peak.tflops : 0.0},
        {"dram_bound_tflops", dram_bound_tflops},
        {"ratio_to_roofline", tflops / roofline},
        {"phase_ms",
         {{"setup", ms(setup)}, {"gate_up", ms(prof.gate_up)}, {"down_and_sum", ms(prof.down)}}},
    };
    if (args.flag("json")) {
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf(
            "%s %s tokens=%lld threads=%d kernels=%s: %.3f ms/call, weights %.1f GB/s "
            "(DRAM read %.1f GB/s, ratio %.2f), %.3f TFLOPS (peak %.2f with %s, DRAM bound %.2f, "
            "%.0f %% of roofline)\n",
            shape->name, format.c_str(), (long long)T, threads, moe::kernel_variant_name(variant),
            per_call * 1e3, gbps, dram.read_gb_per_s, gbps / dram.read_gb_per_s, tflops,
            peak.tflops, peak.instruction.c_str(), dram_bound_tflops, 100.0 * tflops / roofline);
    }
    return 0;
}

}  // namespace

int cmd_bench(const std::vector<std::string>& argv) {
    if (!argv.empty() && argv[0] == "e2e")
        return bench_e2e(std::vector<std::string>(argv.begin() + 1, argv.end()));
    if (argv.empty() || argv[0] != "moe") {
        throw moe::Error(
            "usage: moestudio-cli bench e2e MODEL [--prompt-tokens N --gen-tokens N] | bench moe "
            "--shape qwen3-30b-a3b|deepseek-v3|mixtral-8x7b "
            "--format bf16|bf16-exact|int8|int4|q4k|q4_k|q8_0 --tokens N [--threads N] [--json]");
    }
    const Args args(std::vector<std::string>(argv.begin() + 1, argv.end()), {"json"},
                    {"shape", "format", "tokens", "threads", "memory-gib", "layers", "iterations"});
    return bench_moe(args);
}

}  // namespace moecli
