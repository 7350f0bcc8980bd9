// The placement cost model (hybrid/cost_model.h) and its calibration (hybrid/calibration.h):
// predictions equal the model's formulas worked by hand on a synthetic model, react to the
// placement, the workload's skew and deferral the way the formulas say, memory is counted per
// device; rates files round-trip and malformed ones are refused with the field named; the CPU
// calibration measures finite positive rates on a real (tiny) model.
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "error_text.h"
#include "hybrid/calibration.h"
#include "hybrid/cost_model.h"
#include "hybrid/strategy_report.h"
#include "model/decoder_model.h"
#include "model/model.h"
#include "test_paths.h"

namespace {

using namespace moe;

// Two MoE layers of 4 experts, top-2; GPU (bf16) expert 1000 bytes, CPU (its format) 300.
CostShape synthetic() {
    CostShape s;
    s.footprint.identity = {"qwen3_moe", 2, 4, "f"};
    s.footprint.head_bytes = 4000;
    s.footprint.kv_bytes_per_token = 64;
    for (int l = 0; l < 2; ++l) {
        ModelFootprint::Layer L;
        L.attention = 2000;
        L.dense = 100;
        L.experts.assign(4, 1000);
        s.footprint.layers.push_back(L);
        s.cpu_expert_bytes.push_back(std::vector<uint64_t>(4, 300));
        s.cpu_dense_bytes.push_back(1050);
    }
    s.cpu_head_bytes = 2000;
    s.top_k = 2;
    return s;
}

Placement placement(const std::vector<std::vector<int>>& gpu_experts, bool gpu = true) {
    Placement p;
    p.model = {"qwen3_moe", 2, 4, "f"};
    p.head = p.embeddings = gpu ? Device::Gpu : Device::Cpu;
    for (const auto& ids : gpu_experts) {
        LayerPlacement l;
        l.attention = l.dense = gpu ? Device::Gpu : Device::Cpu;
        l.experts.assign(4, Device::Cpu);
        for (int e : ids) l.experts[size_t(e)] = Device::Gpu;
        p.layers.push_back(l);
    }
    return p;
}

MachineRates rates() {
    MachineRates r;
    r.cpu_expert_bytes_per_s = 300.0 * 1e6;  // one CPU expert: 1 us
    r.cpu_call_s = 0.5e-6;
    r.cpu_dense_bytes_per_s = 1050.0 * 1e6;  // a layer's dense part on the CPU: 1 us
    r.cpu_assignment_s = 2e-6;
    r.gpu_layer_s = 3e-6;
    r.gpu_expert_bytes_per_s = 1000.0 * 1e7;  // one GPU expert: 0.1 us
    r.gpu_token_s = 10e-6;
    r.gpu_flops = 1e12;
    r.h2d_bytes_per_s = 1e9;
    return r;
}

using moetest::error_of;

}  // namespace

class TestCostModel : public QObject {
    Q_OBJECT

  private slots:
    void decodeMatchesTheFormulas() {
        const CostShape s = synthetic();
        const MachineRates r = rates();
        // Every expert on the CPU, uniform use (p = 0.5 each): per layer GPU 3 us, CPU experts
        // 2 x 1 us + the call 0.5 us; per token 10 us: 2 x (3 + 2.5) + 10 = 21 us.
        const SpeedPrediction all_cpu = predict_speed(s, placement({{}, {}}), nullptr, r);
        QVERIFY(std::abs(1.0 / all_cpu.decode_tok_s - 21e-6) < 1e-12);
        QCOMPARE(all_cpu.gpu_hit_rate, 0.0);
        // Every expert on the GPU: per layer 3 + 2 x 0.1 us, no CPU part: 2 x 3.2 + 10 = 16.4 us.
        const SpeedPrediction all_gpu =
            predict_speed(s, placement({{0, 1, 2, 3}, {0, 1, 2, 3}}), nullptr, r);
        QVERIFY(std::abs(1.0 / all_gpu.decode_tok_s - 16.4e-6) < 1e-12);
        QCOMPARE(all_gpu.gpu_hit_rate, 1.0);
        // Half on the GPU: per layer GPU 3 + 0.1, CPU 1 + 0.5: 2 x 4.6 + 10 = 19.2 us.
        const SpeedPrediction half = predict_speed(s, placement({{0, 1}, {2, 3}}), nullptr, r);
        QVERIFY(std::abs(1.0 / half.decode_tok_s - 19.2e-6) < 1e-12);
        QVERIFY(std::abs(half.gpu_hit_rate - 0.5) < 1e-12);
        // CPU only: per layer dense 1 us + experts 2.5 us, the head 2000 B at 1050 MB/s.
        const SpeedPrediction cpu = predict_speed(s, placement({{}, {}}, false), nullptr, r);
        QVERIFY(std::abs(1.0 / cpu.decode_tok_s - (2 * 3.5e-6 + 2000.0 / 1050e6)) < 1e-12);
        QCOMPARE(cpu.vram_bytes, uint64_t(0));
    }

    void deferralOverlapsTheDeferredShare() {
        const CostShape s = synthetic();
        MachineRates r = rates();
        CostOptions o;
        o.deferred_experts = 1;
        // Layer 0 defers half of its 2.5 us CPU part behind the next layer's 3 us GPU part:
        // max(3, 1.25) + 1.25; the last layer cannot defer: 3 + 2.5. Plus 10 us per token.
        const SpeedPrediction d = predict_speed(s, placement({{}, {}}), nullptr, r, o);
        QVERIFY(std::abs(1.0 / d.decode_tok_s - (4.25e-6 + 5.5e-6 + 10e-6)) < 1e-12);
        // A CPU part longer than the GPU part: the deferred share beyond it is not hidden.
        r.cpu_expert_bytes_per_s /= 10;  // 10 us per expert: 20.5 us per layer
        const SpeedPrediction slow = predict_speed(s, placement({{}, {}}), nullptr, r, o);
        QVERIFY(std::abs(1.0 / slow.decode_tok_s - (20.5e-6 + 23.5e-6 + 10e-6)) < 1e-12);
    }

    void skewedWorkloadFavoursFrequency() {
        const CostShape s = synthetic();
        const MachineRates r = rates();
        ExpertUsage skewed;
        skewed.counts = {{90, 90, 10, 10}, {90, 90, 10, 10}};
        // Two GPU experts per layer: the used ones against the rarely used ones.
        const auto hot = predict_speed(s, placement({{0, 1}, {0, 1}}), &skewed, r);
        const auto cold = predict_speed(s, placement({{2, 3}, {2, 3}}), &skewed, r);
        QVERIFY(hot.decode_tok_s > cold.decode_tok_s);
        QVERIFY(std::abs(hot.gpu_hit_rate - 0.9) < 1e-12);
        QVERIFY(std::abs(cold.gpu_hit_rate - 0.1) < 1e-12);
        // Without skew the choice of experts does not matter.
        ExpertUsage flat;
        flat.counts = {{50, 50, 50, 50}, {50, 50, 50, 50}};
        const auto a = predict_speed(s, placement({{0, 1}, {0, 1}}), &flat, r);
        const auto b = predict_speed(s, placement({{2, 3}, {2, 3}}), &flat, r);
        QVERIFY(std::abs(a.decode_tok_s - b.decode_tok_s) < 1e-9 * a.decode_tok_s);
        // Decode counts, when present, are what decode is predicted from.
        ExpertUsage decode_only = flat;
        decode_only.decode = skewed.counts;
        const auto dec = predict_speed(s, placement({{0, 1}, {0, 1}}), &decode_only, r);
        QCOMPARE(dec.decode_tok_s, hot.decode_tok_s);
    }

    void memoryPerDevice() {
        const CostShape s = synthetic();
        CostOptions o;
        o.context = 100;
        o.reserve = 7;
        const auto p = predict_speed(s, placement({{0}, {}}), nullptr, rates(), o);
        // GPU: head 4000 + embeddings 0 + 2 x (2000 + 100) + one expert 1000; KV 64 x 100.
        QCOMPARE(p.vram_bytes, uint64_t(4000 + 4200 + 1000 + 6400 + 7));
        // CPU: the seven CPU experts in their format.
        QCOMPARE(p.ram_bytes, uint64_t(7 * 300));
    }

    void prefillChoosesTheFasterSide() {
        const CostShape s = synthetic();
        MachineRates r = rates();
        CostOptions o;
        o.prompt_tokens = 100;
        const auto streamed = predict_speed(s, placement({{}, {}}), nullptr, r, o);
        r.h2d_bytes_per_s = 1;  // streaming hopeless: the CPU pair rate decides
        const auto on_cpu = predict_speed(s, placement({{}, {}}), nullptr, r, o);
        QVERIFY(streamed.prefill_tok_s > on_cpu.prefill_tok_s);
        // On the CPU: 100 tokens x 2 experts x 2 us per layer, plus the GEMMs.
        const double gemm = 100.0 * 2100.0 / 1e12;
        QVERIFY(std::abs(100.0 / on_cpu.prefill_tok_s - 2 * (400e-6 + gemm)) < 1e-12);
    }

    void refusesWhatItCannotPredict() {
        const CostShape s = synthetic();
        MachineRates cpu_only = rates();
        cpu_only.gpu_layer_s = 0;
        QVERIFY(error_of([&] {
                    predict_speed(s, placement({{}, {}}), nullptr, cpu_only);
                }).contains("no GPU figures"));
        Placement short_one = placement({{}, {}});
        short_one.layers.pop_back();
        QVERIFY(
            error_of([&] { predict_speed(s, short_one, nullptr, rates()); }).contains("1 layers"));
    }

    void strategyReportSaysWhetherTheChoiceMatters() {
        const CostShape s = synthetic();
        PlanOptions o;
        o.gpu_budget = 8200 + 4000;  // the non-expert weights and four experts
        o.context = 0;
        o.reserve = 0;
        ExpertUsage skewed;
        skewed.counts = {{5, 90, 5, 90}, {90, 5, 90, 5}};
        o.usage = &skewed;
        const MachineRates r = rates();
        const StrategyReport rep = compare_strategies(s, o, nullptr, &r);
        QCOMPARE(rep.scores.size(), size_t(5));  // no trace: no dynamic cache rows
        QCOMPARE(rep.scores[0].name, std::string("uniform"));
        QCOMPARE(rep.scores[0].gpu_experts, int64_t(4));
        QCOMPARE(rep.scores[1].name, std::string("frequency"));
        // The four busy experts (180 of 190 uses per layer) against experts 0 and 1 (95).
        QVERIFY(std::abs(rep.scores[1].usage_hit - 180.0 / 190.0) < 1e-12);
        QVERIFY(std::abs(rep.scores[4].usage_hit - 180.0 / 190.0) < 1e-12);  // balanced
        QVERIFY(std::abs(rep.scores[0].usage_hit - 0.5) < 1e-12);
        QVERIFY(rep.scores[1].decode_tok_s > rep.scores[0].decode_tok_s);
        QVERIFY2(rep.verdict.find("skewed") != std::string::npos, rep.verdict.c_str());
        QVERIFY(rep.table().find("frequency") != std::string::npos);
        ExpertUsage flat;
        flat.counts = {{50, 51, 50, 49}, {50, 50, 50, 50}};
        o.usage = &flat;
        const StrategyReport same = compare_strategies(s, o, nullptr, nullptr);
        QVERIFY2(same.verdict.find("close to uniform") != std::string::npos, same.verdict.c_str());
        QCOMPARE(same.scores[0].decode_tok_s, -1.0);  // no rates: no prediction
    }

    void ratesFileRoundTripAndErrors() {
        QTemporaryDir dir;
        const std::string path = dir.filePath("rates.json").toStdString();
        MachineRates r = rates();
        r.machine = "test machine";
        r.threads = 3;
        r.save(path);
        const MachineRates back = MachineRates::load(path);
        QCOMPARE(back.to_json(), r.to_json());
        QVERIFY(!QFile::exists(QString::fromStdString(path + ".tmp")));
        nlohmann::json j = r.to_json();
        j.erase("cpu_call_s");
        QVERIFY(error_of([&] { MachineRates::from_json(j, "f.json"); }).contains("cpu_call_s"));
        j = r.to_json();
        j["gpu_flops"] = -1;
        QVERIFY(error_of([&] { MachineRates::from_json(j, "f.json"); }).contains("gpu_flops"));
        j = r.to_json();
        j["version"] = 2;
        QVERIFY(error_of([&] { MachineRates::from_json(j, "f.json"); }).contains("version 1"));
        QVERIFY(error_of([&] {
                    MachineRates::load(dir.filePath("none.json").toStdString());
                }).contains("none.json"));
    }

    void calibratesTheCpuOnARealModel() {
        const std::string dir = (moetest::data_dir() + "/hf-tiny/qwen3_moe-s1").toStdString();
        auto model = load_model(dir, LoadOptions{});
        auto& dm = dynamic_cast<DecoderModel&>(*model);
        CalibrationOptions o;
        o.decode_steps = 4;
        o.operator_calls = 8;
        o.prompt_tokens = 16;
        QStringList said;
        o.progress = [&](const std::string& s) { said << QString::fromStdString(s); };
        const MachineRates r = calibrate_cpu(dm, o);
        QVERIFY(std::isfinite(r.cpu_expert_bytes_per_s) && r.cpu_expert_bytes_per_s > 0);
        QVERIFY(std::isfinite(r.cpu_dense_bytes_per_s) && r.cpu_dense_bytes_per_s > 0);
        QVERIFY(std::isfinite(r.cpu_assignment_s) && r.cpu_assignment_s > 0);
        QVERIFY(r.cpu_call_s >= 0);
        QVERIFY(!r.has_gpu());
        QCOMPARE(said.size(), 3);
        // The shape the prediction uses matches the model; the prediction is finite.
        const CostShape shape = measure_cost_shape(dm);
        QCOMPARE(shape.cpu_expert_bytes.size(), dm.layers.size());
        QCOMPARE(shape.top_k, model->info().experts_per_token);
        Placement p;
        p.model = shape.footprint.identity;
        for (const auto& l : shape.footprint.layers) {
            LayerPlacement lp;
            lp.experts.assign(l.experts.size(), Device::Cpu);
            p.layers.push_back(lp);
        }
        const auto pred = predict_speed(shape, p, nullptr, r);
        QVERIFY(std::isfinite(pred.decode_tok_s) && pred.decode_tok_s > 0);
        QVERIFY(pred.ram_bytes > 0);
    }
};

QTEST_APPLESS_MAIN(TestCostModel)
#include "tst_cost_model.moc"
