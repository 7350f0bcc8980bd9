// Placement (hybrid/placement.h) and the automatic planner (hybrid/placement_planner.h): JSON
// round trips, every malformed field named in the error, files written atomically, placements
// refused for another model, and the planner's budget arithmetic on synthetic and real models.
#include <QTemporaryDir>
#include <QtTest>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "error_text.h"
#include "hybrid/expert_cache_sim.h"
#include "hybrid/placement.h"
#include "hybrid/placement_export.h"
#include "hybrid/placement_planner.h"
#include "model/decoder_model.h"
#include "model/expert_usage.h"
#include "model/model.h"
#include "model/routing_trace.h"
#include "test_paths.h"

namespace {

using namespace moe;
using Json = nlohmann::json;

ModelIdentity identity(int64_t layers, int64_t experts) {
    return {"qwen3_moe", layers, experts, "0123456789abcdef"};
}

using moetest::error_of;

// 4 MoE layers of 8 experts (attention 10, dense 5, expert 3 bytes each) + 1 dense layer.
ModelFootprint synthetic() {
    ModelFootprint f;
    f.identity = identity(5, 8);
    f.embedding_bytes = 100;
    f.head_bytes = 20;
    for (int i = 0; i < 5; ++i) {
        ModelFootprint::Layer l;
        l.attention = 10;
        l.dense = 5;
        if (i > 0) l.experts.assign(8, 3);
        f.layers.push_back(l);
    }
    f.kv_bytes_per_token = 1;
    return f;
}

PlanOptions budget(uint64_t b, CpuExperts c = CpuExperts::Auto) {
    PlanOptions o;
    o.gpu_budget = b;
    o.cpu_experts = c;
    o.context = 10;  // KV: 10 bytes
    o.reserve = 5;   // fixed: 15 bytes
    return o;
}

}  // namespace

class TestPlacement : public QObject {
    Q_OBJECT

  private slots:
    void jsonRoundTrip() {
        std::mt19937 rng(std::random_device{}());
        Placement p = Placement::all_cpu(identity(6, 16), {true, true, false, true, true, true});
        p.head = Device::Gpu;
        for (auto& l : p.layers) {
            l.attention = rng() % 2 ? Device::Gpu : Device::Cpu;
            for (auto& e : l.experts) e = rng() % 3 == 0 ? Device::Gpu : Device::Cpu;
        }
        const Placement q = Placement::from_json(p.to_json(), "test");
        QCOMPARE(q.to_json().dump(), p.to_json().dump());
        QCOMPARE(q.gpu_expert_count(), p.gpu_expert_count());
        QVERIFY(q.layers[2].experts.empty());  // the dense layer has no experts
        const auto mask = q.gpu_mask(1);
        for (size_t e = 0; e < mask.size(); ++e)
            QCOMPARE(mask[e] != 0, q.layers[1].experts[e] == Device::Gpu);
    }

    void malformedFieldsAreNamed_data() {
        QTest::addColumn<QString>("path");  // JSON pointer to replace
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("expect");
        QTest::newRow("version") << "/version"
                                 << "2"
                                 << "placement version 2";
        QTest::newRow("device") << "/layers/1/attention"
                                << "\"tpu\""
                                << "layers[1].attention";
        QTest::newRow("expert range") << "/layers/0/gpu_experts"
                                      << "[3, 99]"
                                      << "99 is not an expert";
        QTest::newRow("duplicate") << "/layers/0/gpu_experts"
                                   << "[3, 3]"
                                   << "lists 3 twice";
        QTest::newRow("layers") << "/layers"
                                << "[]"
                                << "must list 2 layers";
        QTest::newRow("head") << "/head"
                              << "1"
                              << "head must be";
        QTest::newRow("model") << "/model/layers"
                               << "\"x\""
                               << "model.layers";
    }
    void malformedFieldsAreNamed() {
        QFETCH(QString, path);
        QFETCH(QString, value);
        QFETCH(QString, expect);
        Json j = Placement::all_cpu(identity(2, 4), {true, true}).to_json();
        j[Json::json_pointer(path.toStdString())] = Json::parse(value.toStdString());
        const QString err = error_of([&] { Placement::from_json(j, "my.json"); });
        QVERIFY2(err.startsWith("my.json: ") && err.contains(expect), qPrintable(err));
    }

    void saveAndLoadFile() {
        QTemporaryDir dir;
        const std::string path = dir.filePath("p.json").toStdString();
        Placement p = Placement::all_cpu(identity(3, 4), {true, false, true});
        p.layers[2].experts[3] = Device::Gpu;
        p.save(path);
        p.save(path);  // replacing an existing file
        QVERIFY(!std::ifstream(path + ".tmp"));
        QCOMPARE(Placement::load(path).to_json().dump(), p.to_json().dump());
        std::ofstream(path) << "{ not json";
        QVERIFY(error_of([&] { Placement::load(path); }).contains("not valid JSON"));
        QVERIFY(error_of([&] { Placement::load(path + ".missing"); }).contains("cannot open"));
    }

    void otherModelIsRefused() {
        const Placement p = Placement::all_cpu(identity(2, 4), {true, true});
        p.require_model(identity(2, 4), "p.json");
        ModelIdentity other = identity(2, 4);
        other.fingerprint = "ffffffffffffffff";
        const QString err = error_of([&] { p.require_model(other, "p.json"); });
        QVERIFY2(err.contains("another model") && err.contains("ffffffffffffffff"),
                 qPrintable(err));
    }

    void planNothingWithoutBudget() {
        const PlanResult r = plan_placement(synthetic(), budget(0));
        QVERIFY(!r.placement.uses_gpu());
        QVERIFY(r.notes.empty());
        const PlanResult small = plan_placement(synthetic(), budget(15));
        QVERIFY(!small.placement.uses_gpu());
        QCOMPARE(small.notes.size(), size_t(1));
        QVERIFY(error_of([] {
                    plan_placement(synthetic(), budget(0, CpuExperts::None));
                }).contains("--cpu-experts none"));
    }

    void planLayersThenHeadThenExperts() {
        // 15 fixed + 5 layers x 15 = 90, head 20 -> 110; experts 4 x 8 x 3 = 96 -> 206.
        PlanResult r = plan_placement(synthetic(), budget(15 + 45));
        for (int i = 0; i < 5; ++i)
            QCOMPARE(r.placement.layers[size_t(i)].attention, i < 3 ? Device::Gpu : Device::Cpu);
        QCOMPARE(r.placement.head, Device::Cpu);
        QCOMPARE(r.placement.gpu_expert_count(), int64_t(0));
        QVERIFY(!r.notes.empty());

        r = plan_placement(synthetic(), budget(110 + 3 * 9));  // 9 experts: 3,2,2,2 per layer
        QCOMPARE(r.placement.head, Device::Gpu);
        QCOMPARE(r.placement.gpu_expert_count(), int64_t(9));
        QCOMPARE(r.placement.gpu_expert_count(1), int64_t(3));
        for (int i = 2; i < 5; ++i) QCOMPARE(r.placement.gpu_expert_count(i), int64_t(2));
        QCOMPARE(r.gpu_bytes, uint64_t(110 + 27));

        r = plan_placement(synthetic(), budget(1000, CpuExperts::All));
        QCOMPARE(r.placement.gpu_expert_count(), int64_t(0));
        r = plan_placement(synthetic(), budget(206, CpuExperts::None));
        QCOMPARE(r.placement.gpu_expert_count(), int64_t(32));
        QCOMPARE(r.gpu_bytes, uint64_t(206));
        const QString err =
            error_of([] { plan_placement(synthetic(), budget(205, CpuExperts::None)); });
        QVERIFY2(err.contains("need") && err.contains("MiB"), qPrintable(err));
    }

    // With expert telemetry, the most used experts go first, whatever their layer.
    void planHottestExpertsFirst() {
        ExpertUsage u;
        u.counts.assign(5, {});
        for (int i = 1; i < 5; ++i) u.counts[size_t(i)].assign(8, 1);
        u.counts[4][7] = 50;  // hottest
        u.counts[2][3] = 40;
        u.counts[1][0] = 30;
        u.counts[3][5] = 20;
        PlanOptions o = budget(110 + 3 * 3);  // room for 3 experts
        o.usage = &u;
        const PlanResult r = plan_placement(synthetic(), o);
        QCOMPARE(r.placement.gpu_expert_count(), int64_t(3));
        QCOMPARE(r.placement.layers[4].experts[7], Device::Gpu);
        QCOMPARE(r.placement.layers[2].experts[3], Device::Gpu);
        QCOMPARE(r.placement.layers[1].experts[0], Device::Gpu);
        QCOMPARE(r.placement.layers[3].experts[5], Device::Cpu);
        ExpertUsage wrong = u;
        wrong.counts[2].pop_back();
        o.usage = &wrong;
        const QString err = error_of([&] { plan_placement(synthetic(), o); });
        QVERIFY2(err.contains("layer 2"), qPrintable(err));
    }

    // The routers count what they route; the counts survive a JSON round trip.
    void telemetryCountsRoutedExperts() {
        const std::string dir = (moetest::data_dir() + "/hf-tiny/qwen3_moe-s1").toStdString();
        auto model = load_model(dir);
        auto& dm = dynamic_cast<DecoderModel&>(*model);
        QCOMPARE(collect_expert_usage(dm).total(), uint64_t(0));
        KvCache cache = model->new_cache();
        std::vector<float> logits;
        const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7};
        model->forward(prompt, cache, logits, false);
        const ExpertUsage u = collect_expert_usage(dm);
        QCOMPARE(u.counts.size(), dm.layers.size());
        for (size_t i = 0; i < u.counts.size(); ++i) {
            uint64_t n = 0;
            for (uint64_t c : u.counts[i]) n += c;
            const bool moe_layer = !u.counts[i].empty();
            QCOMPARE(n, moe_layer ? uint64_t(prompt.size() * model->info().experts_per_token)
                                  : uint64_t(0));
        }
        QCOMPARE(u.prefill(), u.counts);  // a prompt only: nothing was decoded yet
        // Three decode steps: k more per MoE layer each, counted as decode; the prompt's stay
        // prefill.
        for (int32_t id : {8, 9, 10}) {
            model->forward(std::vector<int32_t>{id}, cache, logits, false);
        }
        const ExpertUsage after = collect_expert_usage(dm);
        const auto prefill = after.prefill();
        for (size_t i = 0; i < after.counts.size(); ++i) {
            if (after.counts[i].empty()) continue;
            uint64_t dec = 0, pre = 0;
            for (uint64_t c : after.decode[i]) dec += c;
            for (uint64_t c : prefill[i]) pre += c;
            QCOMPARE(dec, uint64_t(3 * model->info().experts_per_token));
            QCOMPARE(pre, uint64_t(prompt.size() * model->info().experts_per_token));
        }
        QTemporaryDir tmp;
        const std::string file = tmp.filePath("usage.json").toStdString();
        after.save(file);
        QCOMPARE(ExpertUsage::load(file).counts, after.counts);
        QCOMPARE(ExpertUsage::load(file).decode, after.decode);
        // A version 1 file still reads (decode unknown: zero).
        nlohmann::json old_file = {{"version", 1}, {"model", "x"}};
        old_file["layers"] =
            nlohmann::json::array({nlohmann::json::array({1, 2}), nlohmann::json::array()});
        const ExpertUsage v1 = ExpertUsage::from_json(old_file, "v1");
        QCOMPARE(v1.decode, (std::vector<std::vector<uint64_t>>{{0, 0}, {}}));
        reset_expert_usage(dm);
        QCOMPARE(collect_expert_usage(dm).total(), uint64_t(0));
        QVERIFY(!error_of([] {
                     ExpertUsage::from_json(nlohmann::json{{"version", 3}}, "x");
                 }).isEmpty());
    }

    // Other engines' options: llama.cpp's whole-tensor overrides (a layer's experts to the CPU
    // when fewer than half are on the GPU; attention, dense parts and head as placed) and
    // sglang-kt's per-layer GPU expert count.
    void exportsForOtherEngines() {
        moe::ModelIdentity id{"qwen3_moe", 4, 8, "f"};
        moe::Placement p = moe::Placement::all_cpu(id, {false, true, true, true});
        p.head = moe::Device::Gpu;
        for (auto& l : p.layers) {
            l.attention = moe::Device::Gpu;
            l.dense = moe::Device::Gpu;
        }
        p.layers[0].dense = moe::Device::Cpu;  // a dense layer's MLP
        for (int e = 0; e < 5; ++e) p.layers[1].experts[size_t(e)] = moe::Device::Gpu;  // 5/8
        for (int e = 0; e < 3; ++e) p.layers[2].experts[size_t(e)] = moe::Device::Gpu;  // 3/8
        p.layers[3].attention = moe::Device::Cpu;  // 0/8 experts
        const moe::ExportedPlacement l = moe::export_llama_cpp(p);
        QCOMPARE(QString::fromStdString(l.options),
                 QString(R"(-ngl 999 -ot "blk\.(2|3)\.ffn_.*_exps\.=CPU" -ot "blk\.3\.attn_=CPU" )"
                         R"(-ot "blk\.0\.ffn_(gate|up|down|gate_inp)(_shexp)?\.=CPU")"));
        QCOMPARE(l.gpu_experts, int64_t(8));
        QCOMPARE(l.gpu_experts_kept, int64_t(5));
        QVERIFY(l.note.find("2 of 3 MoE layers") != std::string::npos);
        const moe::ExportedPlacement k = moe::export_sglang_kt(p, true);
        QCOMPARE(k.options,
                 std::string("--kt-num-gpu-experts 3 --kt-expert-placement-strategy frequency"));
        QCOMPARE(moe::export_sglang_kt(p, false).options,
                 std::string("--kt-num-gpu-experts 3 --kt-expert-placement-strategy uniform"));
        // The launch command for scaling out: the same split, KTransformers' method for the
        // checkpoint's type, loopback; GGUF files and other types refused with the reason.
        moe::SglangLaunch launch{"/models/Qwen3 30B/", "", "BF16", 32, 30000};
        QCOMPARE(moe::sglang_kt_launch_command(p, true, launch),
                 std::string("python -m sglang.launch_server \\\n"
                             "  --host 127.0.0.1 --port 30000 \\\n"
                             "  --model '/models/Qwen3 30B/' \\\n"
                             "  --kt-weight-path '/models/Qwen3 30B/' \\\n"
                             "  --kt-method BF16 \\\n"
                             "  --kt-cpuinfer 32 \\\n"
                             "  --kt-num-gpu-experts 3 --kt-expert-placement-strategy frequency "
                             "\\\n"
                             "  --served-model-name 'Qwen3 30B' \\\n"
                             "  --trust-remote-code\n"));
        launch.weight_dtype = "F8_E4M3";
        QVERIFY(moe::sglang_kt_launch_command(p, false, launch).find("--kt-method FP8") !=
                std::string::npos);
        launch.model_path = "/models/q.gguf";
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::sglang_kt_launch_command(p, false, launch));
        launch = {"/models/m", "", "F32", 0, 30000};
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::sglang_kt_launch_command(p, false, launch));
    }

    // The GPU weight bytes of a placement: what the placement editor's budget bar adds up.
    void gpuWeightBytes() {
        const ModelFootprint f = synthetic();
        Placement p = Placement::all_cpu(f.identity, {false, true, true, true, true});
        QCOMPARE(moe::gpu_weight_bytes(f, p), uint64_t(0));
        p.head = Device::Gpu;                  // 20
        p.layers[0].attention = Device::Gpu;   // 10
        p.layers[2].dense = Device::Gpu;       // 5
        p.layers[3].experts[4] = Device::Gpu;  // 3
        QCOMPARE(moe::gpu_weight_bytes(f, p), uint64_t(38));
        p.layers.pop_back();
        QVERIFY(!error_of([&] { moe::gpu_weight_bytes(f, p); }).isEmpty());
    }

    // The planner's strategies on the synthetic model (4 MoE layers of 8 experts of 3 bytes;
    // 12 experts fit): which experts get the GPU in which order.
    void strategiesOrderExperts() {
        ExpertUsage u;
        u.counts.resize(5);
        for (size_t i = 1; i < 5; ++i) {
            u.counts[i].assign(8, 0);
            for (size_t e = 0; e < 8; ++e) u.counts[i][e] = (i == 4 ? 100 : 1) * (8 - e) + e % 2;
        }
        u.counts[4][7] = 1000;  // the hottest expert: the last of the last layer
        const auto gpu_of = [&](moe::ExpertStrategy s, const ExpertUsage* usage) {
            // Everything but the experts, then room for 12 experts.
            const uint64_t base =
                plan_placement(synthetic(), budget(1000, CpuExperts::All)).gpu_bytes;
            PlanOptions o = budget(base + 12 * 3);
            o.strategy = s;
            o.usage = usage;
            const Placement p = plan_placement(synthetic(), o).placement;
            std::vector<int64_t> per_layer;
            for (size_t i = 1; i < 5; ++i) per_layer.push_back(p.gpu_expert_count(int64_t(i)));
            return std::make_pair(per_layer, p);
        };
        using V = std::vector<int64_t>;
        QCOMPARE(gpu_of(moe::ExpertStrategy::Uniform, &u).first, (V{3, 3, 3, 3}));
        QCOMPARE(gpu_of(moe::ExpertStrategy::Uniform, &u).second.layers[4].experts[7],
                 Device::Cpu);  // uniform ignores the telemetry: experts 0..2
        QCOMPARE(gpu_of(moe::ExpertStrategy::LayerBalanced, &u).first, (V{3, 3, 3, 3}));
        QCOMPARE(gpu_of(moe::ExpertStrategy::LayerBalanced, &u).second.layers[4].experts[7],
                 Device::Gpu);  // ... balanced takes each layer's most used
        QCOMPARE(gpu_of(moe::ExpertStrategy::FrontLoading, nullptr).first, (V{8, 4, 0, 0}));
        QCOMPARE(gpu_of(moe::ExpertStrategy::BackLoading, nullptr).first, (V{0, 0, 4, 8}));
        QCOMPARE(gpu_of(moe::ExpertStrategy::Frequency, &u).first,
                 (V{2, 2, 0, 8}));  // ties: layer order
        QVERIFY(!error_of([&] { gpu_of(moe::ExpertStrategy::Frequency, nullptr); }).isEmpty());
        QCOMPARE(moe::parse_expert_strategy("balanced"), moe::ExpertStrategy::LayerBalanced);
        QVERIFY(error_of([] { moe::parse_expert_strategy("random"); }).contains("uniform"));
    }

    // The placement editor's presets: only the experts of the base placement change (its
    // attention, dense parts and head stay, even on the CPU), filled in the strategy's order
    // within a weight budget that counts the base's fixed part; earlier GPU experts are cleared.
    void planExpertsKeepsTheRestOfTheBase() {
        const ModelFootprint f = synthetic();
        Placement base = Placement::all_cpu(f.identity, {false, true, true, true, true});
        base.layers[1].attention = Device::Gpu;   // 10 bytes fixed on the GPU
        base.layers[2].experts[7] = Device::Gpu;  // cleared by the preset
        using V = std::vector<int64_t>;
        const auto per_layer = [](const Placement& p) {
            V v;
            for (int64_t i = 1; i < 5; ++i) v.push_back(p.gpu_expert_count(i));
            return v;
        };
        // 10 fixed + 6 experts of 3 bytes (a 7th would need 1 byte more).
        const Placement front =
            moe::plan_experts(f, base, 10 + 6 * 3 + 2, moe::ExpertStrategy::FrontLoading, nullptr);
        QCOMPARE(per_layer(front), (V{6, 0, 0, 0}));
        QCOMPARE(front.layers[1].attention, Device::Gpu);
        QCOMPARE(front.layers[2].attention, Device::Cpu);
        QCOMPARE(front.head, Device::Cpu);
        QCOMPARE(front.layers[2].experts[7], Device::Cpu);
        QCOMPARE(moe::gpu_weight_bytes(f, front), uint64_t(10 + 6 * 3));
        QCOMPARE(per_layer(
                     moe::plan_experts(f, base, 10 + 8 * 3, moe::ExpertStrategy::Uniform, nullptr)),
                 (V{2, 2, 2, 2}));
        // A budget below the fixed part: no experts at all, nothing else moved.
        const Placement none =
            moe::plan_experts(f, base, 5, moe::ExpertStrategy::BackLoading, nullptr);
        QCOMPARE(none.gpu_expert_count(), int64_t(0));
        QCOMPARE(none.layers[1].attention, Device::Gpu);
        QVERIFY(error_of([&] {
                    moe::plan_experts(f, base, 100, moe::ExpertStrategy::Frequency, nullptr);
                }).contains("telemetry"));
    }

    // A routing trace holds exactly what the routers counted; it survives its file; replayed
    // through placements and caches it gives the hit rates worked out by hand.
    void routingTraceAndCacheSimulation() {
        const std::string dir = (moetest::data_dir() + "/hf-tiny/qwen3_moe-s1").toStdString();
        auto model = load_model(dir);
        auto& dm = dynamic_cast<DecoderModel&>(*model);
        moe::RoutingTrace trace;
        moe::count_expert_coactivation(dm, true);
        moe::start_routing_trace(dm, trace);
        KvCache cache = model->new_cache();
        std::vector<float> logits;
        model->forward(std::vector<int32_t>{1, 2, 3, 4, 5}, cache, logits, false);
        for (int32_t id : {6, 7}) model->forward(std::vector<int32_t>{id}, cache, logits, false);
        moe::stop_routing_trace(dm);
        // The trace holds exactly what the routers counted, expert by expert.
        const ExpertUsage usage = collect_expert_usage(dm);
        const auto traced = trace.counts();
        for (size_t l = 0; l < usage.counts.size(); ++l) {
            if (usage.counts[l].empty()) {
                QVERIFY(traced[l].empty());
            } else {
                QCOMPARE(traced[l], usage.counts[l]);
            }
        }
        // Co-activation: every ordered pair of a token's experts, recounted from the trace.
        QCOMPARE(usage.coactivation.size(), usage.counts.size());
        for (size_t l = 0; l < usage.counts.size(); ++l) {
            const size_t E = usage.counts[l].size();
            std::vector<uint64_t> recount(E * E, 0);
            for (const auto& st : trace.steps) {
                if (size_t(st.layer) != l) continue;
                for (int32_t t = 0; t < st.tokens; ++t)
                    for (int64_t a = 0; a < trace.k; ++a)
                        for (int64_t b = 0; b < trace.k; ++b)
                            if (a != b)
                                ++recount[size_t(st.ids[size_t(t * trace.k + a)]) * E +
                                          size_t(st.ids[size_t(t * trace.k + b)])];
            }
            QCOMPARE(usage.coactivation[l], recount);
        }
        QTemporaryDir jtmp;
        const std::string ufile = jtmp.filePath("usage.json").toStdString();
        usage.save(ufile);
        QCOMPARE(ExpertUsage::load(ufile).coactivation, usage.coactivation);
        moe::count_expert_coactivation(dm, false);
        const size_t steps = trace.steps.size();
        model->forward(std::vector<int32_t>{8}, cache, logits, false);  // no longer recorded
        QCOMPARE(trace.steps.size(), steps);
        QVERIFY(trace.steps.size() >= 3);
        QCOMPARE(trace.steps.front().tokens, 5);
        QCOMPARE(trace.steps.back().tokens, 1);

        QTemporaryDir tmp;
        const std::string file = tmp.filePath("trace.jsonl").toStdString();
        trace.save(file);
        const moe::RoutingTrace back = moe::RoutingTrace::load(file);
        QCOMPARE(back.steps.size(), trace.steps.size());
        QCOMPARE(back.counts(), trace.counts());
        const moe::HitRate lru = moe::simulate_expert_cache(trace, 2, moe::CachePolicy::Lru);
        QCOMPARE(moe::simulate_expert_cache(back, 2, moe::CachePolicy::Lru).hits, lru.hits);

        // By hand: one layer, 4 experts, k = 1, ids 0 1 0 2 0 1.
        moe::RoutingTrace t;
        t.layers = 1;
        t.experts = 4;
        t.k = 1;
        for (int32_t id : {0, 1, 0, 2, 0, 1}) t.steps.push_back({0, 1, {id}});
        QCOMPARE(moe::simulate_expert_cache(t, 0, moe::CachePolicy::Lru).hits, uint64_t(0));
        QCOMPARE(moe::simulate_expert_cache(t, 4, moe::CachePolicy::Lru).hits, uint64_t(3));
        // 2 slots, LRU: 0m 1m 0h 2m(evicts 1) 0h 1m -> 2 hits; LFU: same evictions here.
        QCOMPARE(moe::simulate_expert_cache(t, 2, moe::CachePolicy::Lru).hits, uint64_t(2));
        // 1 slot: only repeats in a row hit (none).
        QCOMPARE(moe::simulate_expert_cache(t, 1, moe::CachePolicy::Lfu).hits, uint64_t(0));
        moe::Placement p = moe::Placement::all_cpu({"x", 1, 4, "f"}, {true});
        QCOMPARE(moe::placement_hit_rate(t, p).hits, uint64_t(0));
        p.layers[0].experts[0] = moe::Device::Gpu;
        const moe::HitRate ph = moe::placement_hit_rate(t, p);
        QCOMPARE(ph.hits, uint64_t(3));
        QCOMPARE(ph.lookups, uint64_t(6));
        QCOMPARE(ph.rate(), 0.5);
    }

    // The footprint of a real checkpoint: expert bytes from its config (bf16 weights).
    void footprintOfFixture() {
        const std::string dir = (moetest::data_dir() + "/hf-tiny/qwen3_moe-s1").toStdString();
        LoadOptions o;
        o.expert_format = "reference";
        auto model = load_model(dir, o);
        auto* dm = dynamic_cast<DecoderModel*>(model.get());
        QVERIFY(dm);
        const ModelFootprint f = measure_footprint(*dm);
        const int64_t H = dm->config.require_int("hidden_size"),
                      I = dm->config.require_int("moe_intermediate_size");
        QCOMPARE(f.identity.layers, int64_t(dm->layers.size()));
        int64_t moe_layers = 0;
        for (const auto& l : f.layers) {
            QVERIFY(l.attention > 0 && l.dense > 0);
            if (l.experts.empty()) continue;
            ++moe_layers;
            QCOMPARE(int64_t(l.experts.size()), model->info().experts);
            QCOMPARE(l.experts.front(), uint64_t(3 * H * I * 2));
        }
        QCOMPARE(moe_layers, model->info().moe_layers);
        QVERIFY(f.kv_bytes_per_token > 0 && f.head_bytes > 0);
    }
};

QTEST_APPLESS_MAIN(TestPlacement)
#include "tst_placement.moc"
