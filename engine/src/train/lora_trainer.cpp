#include "train/lora_trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>

#include "core/error.h"
#include "core/file_util.h"
#include "core/hash.h"
#include "formats/safetensors.h"
#include "model/moe_block.h"
#include "train/lora_gradients.h"
#include "train/peft_export.h"
#include "train/peft_layout.h"

namespace moe::train {

namespace {

std::string last_component(const std::string& name) {
    const auto dot = name.rfind('.');
    return dot == std::string::npos ? name : name.substr(dot + 1);
}

std::vector<float> uniform(std::mt19937_64& rng, size_t n, double bound) {
    std::uniform_real_distribution<double> d(-bound, bound);
    std::vector<float> v(n);
    for (float& x : v) x = float(d(rng));
    return v;
}

}  // namespace

LoraAdapter add_new_adapter(DecoderModel& model, const NewAdapterOptions& o) {
    require(o.rank > 0, "LoRA rank must be positive");
    const std::set<std::string> targets(o.targets.begin(), o.targets.end());
    std::mt19937_64 rng(o.seed);
    LoraAdapter ad;
    ad.origin = "new adapter";
    std::set<std::string> matched;
    // PEFT's initialisation: A kaiming-uniform (bound 1/sqrt(in)), B zero.
    const auto new_pair = [&](const Linear& l) {
        LoraPair p;
        p.rank = o.rank;
        p.in = l.in_features();
        p.out = l.out_features();
        p.a = uniform(rng, size_t(p.rank * p.in), 1.0 / std::sqrt(double(p.in)));
        p.b.assign(size_t(p.out * p.rank), 0.0f);
        p.alpha = o.alpha;
        return p;
    };
    // Attention, dense and shared-expert layers (not routers, not the output head, not routed
    // experts: those go through "experts").
    std::set<const Linear*> routed;
    for (auto& layer : model.layers)
        if (auto* moe = dynamic_cast<MoeBlock*>(layer.ffn.get())) {
            routed.insert(&moe->router.gate);
            for (Expert& e : moe->experts)
                for (const Linear* l : {&e.gate, &e.up, &e.down}) routed.insert(l);
        }
    model.visit_linears([&](Linear& l) {
        if (&l == &model.lm_head || routed.count(&l)) return;
        const std::string c = last_component(l.name);
        if (!targets.count(c)) return;
        matched.insert(c);
        ad.layers[l.name] = new_pair(l);
    });
    if (targets.count("router")) {  // routers are frozen unless asked for
        for (auto& layer : model.layers) {
            auto* moe = dynamic_cast<MoeBlock*>(layer.ffn.get());
            if (!moe || moe->experts.empty()) continue;
            matched.insert("router");
            ad.layers[moe->router.gate.name] = new_pair(moe->router.gate);
        }
    }
    if (targets.count("experts")) {
        for (size_t li = 0; li < model.layers.size(); ++li) {
            auto* moe = dynamic_cast<MoeBlock*>(model.layers[li].ffn.get());
            if (!moe || moe->experts.empty()) continue;
            matched.insert("experts");
            // PEFT's module path for transformers' fused experts (whatever the model's own
            // expert names; resolve_fused_experts maps them).
            const std::string experts = "model.layers." + std::to_string(li) + ".mlp.experts";
            const int64_t E = int64_t(moe->experts.size());
            const int64_t hidden = moe->experts[0].gate.in_features();
            const int64_t inter = moe->experts[0].gate.out_features();
            // PEFT wraps gate_up_proj first (inner, .base_layer), then down_proj.
            for (const auto& [module, in, out] :
                 {std::tuple{experts + ".base_layer", hidden, 2 * inter},
                  std::tuple{experts, inter, hidden}}) {
                FusedExpertPair f;
                f.peft_module = module;
                f.a_rows = E * o.rank;
                f.a_cols = in;
                f.b_rows = out;
                f.b_cols = E * o.rank;
                f.a = uniform(rng, size_t(f.a_rows * f.a_cols), 1.0 / std::sqrt(double(in)));
                f.b.assign(size_t(f.b_rows * f.b_cols), 0.0f);
                f.rank_gate_up = f.rank_down = o.rank;
                f.alpha_gate_up = f.alpha_down = o.alpha;
                ad.fused_raw.push_back(std::move(f));
            }
        }
    }
    for (const std::string& t : targets)
        if (!matched.count(t))
            throw Error("LoRA target '" + t + "' matches no layer of " + model.info().path);
    resolve_fused_experts(ad, model);
    apply_lora(model, ad, 1.0f);
    return ad;
}

LoraTrainer::LoraTrainer(DecoderModel& model, LoraAdapter layout, TrainConfig config)
    : model_(model), layout_(std::move(layout)), cfg_(std::move(config)), opt_(cfg_.adamw) {
    require(cfg_.grad_accum >= 1, "gradient accumulation must be at least 1");
    require(cfg_.epochs >= 1 || cfg_.max_steps > 0, "train for at least one epoch or step");
}

int64_t LoraTrainer::total_steps(const Dataset& data) const {
    if (cfg_.max_steps > 0) return cfg_.max_steps;
    return std::max<int64_t>(1, int64_t(data.train.size()) * cfg_.epochs / cfg_.grad_accum);
}

const Example& LoraTrainer::example_at(const Dataset& data, int64_t index) const {
    // Epoch e visits the examples in the order of a shuffle seeded by (seed, e): the order of
    // any step is known without replaying the ones before (resume).
    const int64_t n = int64_t(data.train.size());
    const int64_t epoch = index / n, pos = index % n;
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(cfg_.seed * 1000003ull + uint64_t(epoch));
    std::shuffle(order.begin(), order.end(), rng);
    return data.train[size_t(order[size_t(pos)])];
}

double LoraTrainer::evaluate(const std::vector<Example>& examples) const {
    if (examples.empty()) return std::numeric_limits<double>::quiet_NaN();
    double sum = 0;
    for (const Example& e : examples) sum += lora_loss(model_, e.ids, e.labels);
    return sum / double(examples.size());
}

StepMetrics LoraTrainer::run(const Dataset& data,
                             const std::function<bool(const StepMetrics&)>& on_step) {
    require(!data.train.empty(), "the dataset has no training examples");
    const int64_t total = total_steps(data);
    namespace fs = std::filesystem;
    std::ofstream metrics;
    if (!cfg_.out_dir.empty()) {
        fs::create_directories(cfg_.out_dir);
        metrics.open(fs::path(cfg_.out_dir) / "metrics.jsonl", std::ios::app);
    }
    StepMetrics m;
    while (step_ < total) {
        const auto t0 = std::chrono::steady_clock::now();
        PeftTensors grads;
        double loss = 0;
        int64_t tokens = 0;
        for (int64_t j = 0; j < cfg_.grad_accum; ++j) {
            const Example& ex = example_at(data, step_ * cfg_.grad_accum + j);
            const LossAndGrads lg =
                lora_loss_and_grads(model_, ex.ids, ex.labels, cfg_.gradient_checkpointing);
            loss += lg.loss / double(cfg_.grad_accum);
            tokens += int64_t(ex.ids.size());
            PeftTensors g = peft_gradients(layout_, lg.grads);
            for (auto& [name, v] : g) {
                std::vector<float>& acc = grads[name];
                acc.resize(v.size(), 0.0f);
                for (size_t i = 0; i < v.size(); ++i) acc[i] += v[i] / float(cfg_.grad_accum);
            }
        }
        m = StepMetrics{};
        m.step = step_ + 1;
        m.total_steps = total;
        m.loss = loss;
        m.grad_norm = clip_grad_norm(grads, cfg_.max_grad_norm);
        m.lr = scheduled_lr(cfg_.schedule, cfg_.adamw.lr, step_, cfg_.warmup_steps, total);
        PeftTensors values = peft_values(layout_, model_);
        opt_.step(values, grads, m.lr);
        set_peft_values(layout_, model_, values);
        ++step_;
        m.step_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        m.tokens_per_s = double(tokens) / std::max(1e-9, m.step_seconds);
        const bool last = step_ == total;
        if (!data.eval.empty() && ((cfg_.eval_every > 0 && step_ % cfg_.eval_every == 0) || last))
            m.eval_loss = evaluate(data.eval);
        if (metrics.is_open()) {
            nlohmann::json j = {{"step", m.step},
                                {"loss", m.loss},
                                {"lr", m.lr},
                                {"grad_norm", m.grad_norm},
                                {"step_seconds", m.step_seconds},
                                {"tokens_per_s", m.tokens_per_s}};
            if (!std::isnan(m.eval_loss)) j["eval_loss"] = m.eval_loss;
            metrics << j.dump() << "\n" << std::flush;
        }
        if (!cfg_.out_dir.empty() && cfg_.save_every > 0 && step_ % cfg_.save_every == 0)
            save_checkpoint(
                (fs::path(cfg_.out_dir) / ("checkpoint-" + std::to_string(step_))).string());
        const bool go_on = !on_step || on_step(m);
        if (!go_on) break;
    }
    if (!cfg_.out_dir.empty())
        save_peft_adapter((fs::path(cfg_.out_dir) / "adapter").string(), layout_,
                          peft_values(layout_, model_));
    return m;
}

namespace {

// The checksums of every file under `dir` (relative path -> FNV-1a of its bytes, hex), but
// checksums.json itself.
nlohmann::json checksums_of(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    nlohmann::json sums = nlohmann::json::object();
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file() || e.path().filename() == "checksums.json") continue;
        std::ifstream in(e.path(), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), {});
        if (!in.good() && !in.eof()) throw Error(e.path().string() + ": cannot read");
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx",
                      (unsigned long long)fnv1a(bytes.data(), bytes.size()));
        sums[fs::relative(e.path(), dir).generic_string()] = hex;
    }
    return sums;
}

}  // namespace

void LoraTrainer::save_checkpoint(const std::string& dir) const {
    namespace fs = std::filesystem;
    // Written whole into DIR.partial, then renamed to DIR: a run killed while writing leaves a
    // .partial folder, which latest_checkpoint() does not take for a checkpoint and the next
    // save replaces. checksums.json lets resume() refuse a checkpoint damaged afterwards.
    const fs::path tmp = dir + ".partial";
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) throw Error(tmp.string() + ": cannot create the checkpoint folder: " + ec.message());
    save_peft_adapter((tmp / "adapter").string(), layout_, peft_values(layout_, model_));
    std::vector<TensorToWrite> tensors;
    for (const auto& [name, v] : opt_.moments())
        tensors.push_back({name, DType::F32, {int64_t(v.size())}, v.data()});
    write_safetensors((tmp / "optimizer.safetensors").string(), tensors);
    const nlohmann::json state = {
        {"step", step_}, {"optimizer_steps", opt_.steps()}, {"seed", cfg_.seed}};
    write_file_atomically((tmp / "trainer_state.json").string(), state.dump(2) + "\n");
    write_file_atomically((tmp / "checksums.json").string(), checksums_of(tmp).dump(1) + "\n");
    fs::remove_all(dir, ec);
    fs::rename(tmp, dir, ec);
    if (ec) throw Error(dir + ": cannot move the checkpoint in place: " + ec.message());
}

void LoraTrainer::verify_checkpoint(const std::string& dir) {
    namespace fs = std::filesystem;
    const fs::path list = fs::path(dir) / "checksums.json";
    if (!fs::exists(list)) return;  // written before checksums were kept
    const nlohmann::json want = read_json_file(list.string(), "checkpoint checksum list");
    const nlohmann::json have = checksums_of(dir);
    for (const auto& [file, sum] : want.items()) {
        if (!have.contains(file))
            throw Error(dir + ": the checkpoint lost " + file +
                        "; resume from an earlier checkpoint");
        if (have[file] != sum)
            throw Error(dir + "/" + file +
                        ": damaged (its checksum differs from checksums.json); resume from an "
                        "earlier checkpoint");
    }
}

void LoraTrainer::resume(const std::string& dir) {
    namespace fs = std::filesystem;
    verify_checkpoint(dir);
    std::ifstream in(fs::path(dir) / "trainer_state.json");
    if (!in) throw Error(dir + ": no trainer_state.json (not a checkpoint folder)");
    nlohmann::json state;
    try {
        state = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error(dir + "/trainer_state.json: " + e.what());
    }
    LoraAdapter saved = load_peft_adapter((fs::path(dir) / "adapter").string());
    resolve_fused_experts(saved, model_);
    // The checkpoint's per-layer values into the model's terms.
    std::map<std::string, Linear*> by_name;
    model_.visit_linears([&](Linear& l) { by_name[l.name] = &l; });
    for (const auto& [module, p] : layout_.layers) {
        const auto it = saved.layers.find(module);
        if (it == saved.layers.end())
            throw Error(dir + ": the checkpoint has no adapter for '" + module + "'");
        Linear& l = *by_name.at(module);
        require(l.lora.size() == 1 && l.lora[0].a.size() == it->second.a.size() &&
                    l.lora[0].b.size() == it->second.b.size(),
                dir + ": the checkpoint's adapter does not fit '" + module + "'");
        l.lora[0].a = it->second.a;
        l.lora[0].b = it->second.b;
        ++l.lora_version;
    }
    const auto file = SafetensorsFile::open((fs::path(dir) / "optimizer.safetensors").string());
    PeftTensors moments;
    for (const auto& [name, t] : file->tensors()) {
        const float* p = reinterpret_cast<const float*>(t.data);
        moments[name].assign(p, p + t.numel());
    }
    opt_.restore(std::move(moments), state.value("optimizer_steps", int64_t(0)));
    step_ = state.value("step", int64_t(0));
}

}  // namespace moe::train
