// Loading: weights stay memory-mapped (no copy), malformed files and unsupported models give
// errors that name the file and the tensor, and FP8/dtype decoding is exact.
#include <QTemporaryDir>
#include <QtTest>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "core/dtype.h"
#include "core/error.h"
#include "error_text.h"
#include "formats/safetensors.h"
#include "model/model.h"

namespace {

long resident_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

void write_json(const std::string& path, const nlohmann::json& j) {
    std::ofstream(path) << j.dump();
}

// A Qwen3-MoE checkpoint of about 200 MB in BF16 whose experts share one random buffer (the
// content does not matter here, only the bytes on disk).
uint64_t write_big_bf16_model(const std::string& dir, int hidden, int experts, int inter) {
    const int vocab = 512, heads = 8, head_dim = hidden / heads;
    write_json(dir + "/config.json", {{"model_type", "qwen3_moe"},
                                      {"hidden_size", hidden},
                                      {"num_hidden_layers", 1},
                                      {"num_attention_heads", heads},
                                      {"num_key_value_heads", heads},
                                      {"head_dim", head_dim},
                                      {"num_experts", experts},
                                      {"num_experts_per_tok", 4},
                                      {"moe_intermediate_size", inter},
                                      {"intermediate_size", inter},
                                      {"vocab_size", vocab},
                                      {"rms_norm_eps", 1e-6},
                                      {"norm_topk_prob", true}});
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    auto random_bf16 = [&](size_t n) {
        std::vector<uint16_t> v(n);
        for (auto& x : v) x = moe::f32_to_bf16(nd(rng));
        return v;
    };
    const auto square = random_bf16(size_t(hidden) * hidden);
    const auto expert = random_bf16(size_t(inter) * hidden);
    const auto emb = random_bf16(size_t(vocab) * hidden);
    const std::vector<uint16_t> ones(size_t(hidden), moe::f32_to_bf16(1.0f));
    std::vector<moe::TensorToWrite> t = {
        {"model.embed_tokens.weight", moe::DType::BF16, {vocab, hidden}, emb.data()},
        {"lm_head.weight", moe::DType::BF16, {vocab, hidden}, emb.data()},
        {"model.norm.weight", moe::DType::BF16, {hidden}, ones.data()},
        {"model.layers.0.input_layernorm.weight", moe::DType::BF16, {hidden}, ones.data()},
        {"model.layers.0.post_attention_layernorm.weight", moe::DType::BF16, {hidden}, ones.data()},
        {"model.layers.0.self_attn.q_norm.weight", moe::DType::BF16, {head_dim}, ones.data()},
        {"model.layers.0.self_attn.k_norm.weight", moe::DType::BF16, {head_dim}, ones.data()},
        {"model.layers.0.mlp.gate.weight", moe::DType::BF16, {experts, hidden}, emb.data()},
    };
    for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
        t.push_back({std::string("model.layers.0.self_attn.") + p + ".weight",
                     moe::DType::BF16,
                     {hidden, hidden},
                     square.data()});
    }
    for (int e = 0; e < experts; ++e) {
        const std::string p = "model.layers.0.mlp.experts." + std::to_string(e) + ".";
        t.push_back({p + "gate_proj.weight", moe::DType::BF16, {inter, hidden}, expert.data()});
        t.push_back({p + "up_proj.weight", moe::DType::BF16, {inter, hidden}, expert.data()});
        t.push_back({p + "down_proj.weight", moe::DType::BF16, {hidden, inter}, expert.data()});
    }
    moe::write_safetensors(dir + "/model.safetensors", t);
    return std::filesystem::file_size(dir + "/model.safetensors");
}

using moetest::error_of;

}  // namespace

class ModelLoading : public QObject {
    Q_OBJECT

  private slots:
    // On the reference path nothing is copied or even read at load: weights are used from the
    // mapping and paged in on first use.
    void bf16WeightsAreNotCopied() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const uint64_t file_bytes = write_big_bf16_model(dir.path().toStdString(), 512, 64, 1024);
        QVERIFY(file_bytes > 150ull << 20);
        const long before = resident_kib();
        moe::LoadOptions o;
        o.expert_format = "reference";
        auto model = moe::load_model(dir.path().toStdString(), o);
        const long after_load = resident_kib();
        moe::KvCache cache = model->new_cache();
        std::vector<float> logits;
        model->forward(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8}, cache, logits, false);
        const long after_forward = resident_kib();
        const long limit_kib = long(file_bytes / 1024) + 64 * 1024;
        qInfo("file %lu KiB; resident growth: load %ld KiB, forward %ld KiB",
              (unsigned long)(file_bytes / 1024), after_load - before, after_forward - before);
        QVERIFY2(after_load - before <= 64 * 1024, "loading touched more than 64 MB");
        QVERIFY2(after_forward - before <= limit_kib, "running copied the weights");
        QCOMPARE(model->info().dtype, std::string("BF16"));
    }

    // The default ("auto") repacks bf16 experts for the fused operator and hands the source
    // pages back: the experts are resident once, in the packed layout, not twice.
    void repackedExpertsAreResidentOnce() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const uint64_t file_bytes = write_big_bf16_model(dir.path().toStdString(), 512, 64, 1024);
        const long before = resident_kib();
        auto model = moe::load_model(dir.path().toStdString());
        moe::KvCache cache = model->new_cache();
        std::vector<float> logits;
        model->forward(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8}, cache, logits, false);
        const long after_forward = resident_kib();
        qInfo("file %lu KiB; resident growth after load + forward: %ld KiB",
              (unsigned long)(file_bytes / 1024), after_forward - before);
        QVERIFY2(after_forward - before <= long(file_bytes / 1024) + 64 * 1024,
                 "the experts are resident twice (source pages not handed back)");
    }

    // Too little memory for the repacked experts: a clear error before anything is copied,
    // naming the need, what is available and the way out; the in-place formats still load.
    void tooLittleMemoryIsNamed() {
        QTemporaryDir dir;
        write_big_bf16_model(dir.path().toStdString(), 512, 64, 1024);
        qputenv("MOE_MEMORY_AVAILABLE", QByteArray::number(64ll << 20));
        const QString err = error_of([&] { moe::load_model(dir.path().toStdString()); });
        moe::LoadOptions o;
        o.expert_format = "reference";
        const QString ok = error_of([&] { moe::load_model(dir.path().toStdString(), o); });
        qunsetenv("MOE_MEMORY_AVAILABLE");
        QVERIFY2(err.contains("needs about") && err.contains("64.0 MiB is available") &&
                     err.contains("--expert-format"),
                 qPrintable(err));
        QVERIFY2(ok.isEmpty(), qPrintable(ok));
    }

    void truncatedFileNamesFileAndTensor() {
        QTemporaryDir dir;
        const std::string path = dir.filePath("w.safetensors").toStdString();
        const std::vector<float> data(100, 1.0f);
        moe::write_safetensors(path, {{"blk.weight", moe::DType::F32, {10, 10}, data.data()}});
        std::filesystem::resize_file(path, std::filesystem::file_size(path) - 40);
        const QString err = error_of([&] { moe::SafetensorsFile::open(path); });
        QVERIFY2(err.contains(QString::fromStdString(path)) && err.contains("blk.weight") &&
                     err.contains("truncated"),
                 qPrintable(err));
    }

    void garbageHeaderIsRejected() {
        QTemporaryDir dir;
        const std::string path = dir.filePath("g.safetensors").toStdString();
        std::ofstream(path, std::ios::binary)
            << std::string("\x10\0\0\0\0\0\0\0{not json!!!!!!}", 24);
        QVERIFY(error_of([&] { moe::SafetensorsFile::open(path); }).contains("not valid JSON"));
        std::ofstream(path, std::ios::binary | std::ios::trunc)
            << std::string("\xff\xff\xff\xff\0\0\0\0", 8);
        QVERIFY(error_of([&] { moe::SafetensorsFile::open(path); }).contains("header length"));
    }

    void missingTensorIsNamed() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        write_json(d + "/config.json", {{"model_type", "llama"},
                                        {"hidden_size", 8},
                                        {"num_hidden_layers", 1},
                                        {"num_attention_heads", 2},
                                        {"intermediate_size", 16},
                                        {"vocab_size", 4}});
        const std::vector<float> emb(32, 0.1f);
        moe::write_safetensors(
            d + "/model.safetensors",
            {{"model.embed_tokens.weight", moe::DType::F32, {4, 8}, emb.data()}});
        const QString err = error_of([&] { moe::load_model(d); });
        QVERIFY2(err.contains("missing tensor 'model.norm.weight'"), qPrintable(err));
    }

    void wrongShapeIsNamed() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        write_json(d + "/config.json", {{"model_type", "llama"},
                                        {"hidden_size", 8},
                                        {"num_hidden_layers", 1},
                                        {"num_attention_heads", 2},
                                        {"intermediate_size", 16},
                                        {"vocab_size", 5}});
        const std::vector<float> emb(32, 0.1f);
        moe::write_safetensors(
            d + "/model.safetensors",
            {{"model.embed_tokens.weight", moe::DType::F32, {4, 8}, emb.data()}});
        const QString err = error_of([&] { moe::load_model(d); });
        QVERIFY2(err.contains("model.embed_tokens.weight") && err.contains("expected [5, 8]"),
                 qPrintable(err));
    }

    void unsupportedArchitectureIsNamed() {
        QTemporaryDir dir;
        write_json(dir.filePath("config.json").toStdString(), {{"model_type", "mamba"}});
        const QString err = error_of([&] { moe::load_model(dir.path().toStdString()); });
        QVERIFY2(err.contains("unsupported architecture") && err.contains("mamba") &&
                     err.contains("qwen3_moe"),
                 qPrintable(err));
    }

    void dtypeDecoding() {
        QCOMPARE(moe::bf16_to_f32(0x3f80), 1.0f);
        QCOMPARE(moe::f32_to_bf16(1.00390625f), uint16_t(0x3f80));  // tie -> even
        QCOMPARE(moe::f32_to_bf16(1.01171875f), uint16_t(0x3f82));  // tie -> even (up)
        QCOMPARE(moe::f16_to_f32(0x3c00), 1.0f);
        QCOMPARE(moe::f16_to_f32(0x0001), 5.9604644775390625e-08f);  // smallest subnormal
        QCOMPARE(moe::f16_to_f32(0xfbff), -65504.0f);
        QCOMPARE(moe::f8e4m3_to_f32(0x7e), 448.0f);  // largest finite
        QCOMPARE(moe::f8e4m3_to_f32(0x38), 1.0f);
        QCOMPARE(moe::f8e4m3_to_f32(0x01), 0.001953125f);  // 2^-9 subnormal
        QCOMPARE(moe::f8e4m3_to_f32(0xb8), -1.0f);
        QVERIFY(std::isnan(moe::f8e4m3_to_f32(0x7f)));
        // Round trips over every code / random values.
        for (int c = 0; c < 256; ++c) {
            const float f = moe::f8e4m3_to_f32(uint8_t(c));
            if (!std::isnan(f) && c != 0x80) QCOMPARE(int(moe::f32_to_f8e4m3(f)), c);
        }
        std::mt19937 rng(uint32_t(std::random_device{}()));
        std::uniform_real_distribution<float> u(-1000.0f, 1000.0f);
        for (int i = 0; i < 10000; ++i) {
            const float f = u(rng);
            const float h = moe::f16_to_f32(moe::f32_to_f16(f));
            QVERIFY(std::fabs(h - f) <= std::fabs(f) * (1.0f / 2048.0f));
        }
    }
};

QTEST_APPLESS_MAIN(ModelLoading)
#include "tst_model_loading.moc"
