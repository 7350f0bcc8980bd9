#include "api/training_job.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "api/finetune_data.h"
#include "api/system_status.h"
#include "core/error.h"
#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "store/training_runs.h"
#include "train/gguf_adapter_export.h"
#include "train/peft_layout.h"

namespace moe {

namespace fs = std::filesystem;

const char* training_state_name(TrainingState s) {
    switch (s) {
        case TrainingState::Idle:
            return "idle";
        case TrainingState::Preparing:
            return "preparing";
        case TrainingState::Running:
            return "running";
        case TrainingState::Paused:
            return "paused";
        case TrainingState::Finished:
            return "finished";
        case TrainingState::Stopped:
            return "stopped";
        case TrainingState::Failed:
            return "failed";
    }
    return "?";
}

std::string latest_checkpoint(const std::string& out_dir) {
    std::error_code ec;
    long best = -1;
    std::string found;
    for (const auto& e : fs::directory_iterator(out_dir, ec)) {
        const std::string name = e.path().filename().string();
        if (!name.starts_with("checkpoint-") || !fs::exists(e.path() / "trainer_state.json"))
            continue;
        char* end = nullptr;
        const long n = std::strtol(name.c_str() + 11, &end, 10);
        if (end && *end == 0 && n > best) {
            best = n;
            found = e.path().string();
        }
    }
    return found;
}

TrainingJob::TrainingJob(FinetuneSpec spec, TrainingJobEvents events, int64_t resume_run)
    : spec_(std::move(spec)), events_(std::move(events)), run_id_(resume_run) {}

TrainingJob::~TrainingJob() {
    stop();
    if (thread_.joinable()) thread_.join();
}

void TrainingJob::start() {
    std::lock_guard lock(mu_);
    require(!thread_.joinable(), "the training job was already started");
    state_ = TrainingState::Preparing;
    thread_ = std::thread([this] { body(); });
}

void TrainingJob::pause() {
    std::lock_guard lock(mu_);
    pause_ = true;
}

void TrainingJob::resume() {
    {
        std::lock_guard lock(mu_);
        pause_ = false;
    }
    cv_.notify_all();
}

void TrainingJob::stop() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
}

TrainingState TrainingJob::wait() {
    if (thread_.joinable()) thread_.join();
    return state();
}

TrainingState TrainingJob::state() const {
    std::lock_guard lock(mu_);
    return state_;
}

std::string TrainingJob::error() const {
    std::lock_guard lock(mu_);
    return error_;
}

int64_t TrainingJob::run_id() const {
    std::lock_guard lock(mu_);
    return run_id_;
}

std::string TrainingJob::last_checkpoint() const {
    std::lock_guard lock(mu_);
    return checkpoint_;
}

void TrainingJob::set_state(TrainingState s, const std::string& message) {
    {
        std::lock_guard lock(mu_);
        state_ = s;
        if (s == TrainingState::Failed) error_ = message;
    }
    if (events_.state) events_.state(s, message);
}

void TrainingJob::log(const std::string& line) {
    if (events_.log) events_.log(line);
}

namespace {

// Everything a run needs that the spec names, loaded in the order that fails cheapest first:
// the dataset (tokenizer only) before the model's weights.
struct Prepared {
    FinetuneText text;
    train::Dataset data;
    std::unique_ptr<Model> model;
    DecoderModel* decoder = nullptr;
    std::unique_ptr<train::LoraTrainer> trainer;
};

void prepare(const FinetuneSpec& spec, Prepared& p) {
    spec.check();
    p.text = load_finetune_text(spec.model);
    p.data = load_finetune_data(spec, p.text);
    LoadOptions lo;
    lo.bf16_rope_frequencies = spec.rope_freq_bf16;
    lo.expert_format = "reference";  // the trainer differentiates the experts' terms
    if (!spec.adapter.empty()) lo.lora_path = spec.adapter;
    p.model = load_model(spec.model, lo);
    p.decoder = dynamic_cast<DecoderModel*>(p.model.get());
    if (!p.decoder) throw Error(spec.model + ": this model type cannot be trained");
    LoraAdapter layout;
    if (!spec.adapter.empty()) {
        layout = load_peft_adapter(spec.adapter);
        resolve_fused_experts(layout, *p.decoder);
    } else {
        train::NewAdapterOptions n;
        n.targets = spec.targets;
        n.rank = spec.rank;
        n.alpha = float(spec.alpha);
        n.seed = spec.seed;
        layout = train::add_new_adapter(*p.decoder, n);
    }
    train::TrainConfig cfg;
    cfg.adamw.lr = spec.lr;
    cfg.adamw.weight_decay = spec.weight_decay;
    cfg.schedule = train::parse_lr_schedule(spec.schedule);
    cfg.warmup_steps = spec.warmup;
    cfg.epochs = spec.epochs;
    cfg.max_steps = spec.steps;
    cfg.grad_accum = spec.grad_accum;
    cfg.max_grad_norm = spec.max_grad_norm;
    cfg.seed = spec.seed;
    cfg.gradient_checkpointing = spec.gradient_checkpointing;
    cfg.eval_every = spec.eval_every;
    cfg.save_every = spec.save_every;
    cfg.out_dir = spec.out;
    p.trainer = std::make_unique<train::LoraTrainer>(*p.decoder, std::move(layout), cfg);
    if (!spec.resume.empty()) p.trainer->resume(spec.resume);
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
}

}  // namespace

bool TrainingJob::on_step(const train::StepMetrics& m, train::LoraTrainer& trainer) {
    TrainingPoint p;
    p.metrics = m;
    p.ram_bytes = int64_t(system_status(false).resident_bytes);
    if (events_.step) events_.step(p);
    if (m.step == m.total_steps) return true;  // the end: nothing left to pause or stop
    std::unique_lock lock(mu_);
    if (pause_ && !stop_) {
        state_ = TrainingState::Paused;
        lock.unlock();
        if (events_.state) events_.state(TrainingState::Paused, {});
        log("paused after step " + std::to_string(m.step));
        lock.lock();
        cv_.wait(lock, [&] { return !pause_ || stop_; });
        if (!stop_) {
            state_ = TrainingState::Running;
            lock.unlock();
            if (events_.state) events_.state(TrainingState::Running, {});
            log("resumed");
            return true;
        }
    }
    if (!stop_) return true;
    lock.unlock();
    // A checkpoint of this step (save_every may have written it already).
    const std::string dir =
        (fs::path(spec_.out) / ("checkpoint-" + std::to_string(m.step))).string();
    if (!fs::exists(fs::path(dir) / "trainer_state.json")) trainer.save_checkpoint(dir);
    {
        std::lock_guard g(mu_);
        checkpoint_ = dir;
    }
    log("stopped after step " + std::to_string(m.step) + "; resumable from " + dir);
    return false;
}

void TrainingJob::body() {
    set_state(TrainingState::Preparing);
    std::unique_ptr<TrainingRunStore> store;
    int64_t run = 0;
    try {
        Prepared p;
        prepare(spec_, p);
        char line[512];
        std::snprintf(line, sizeof line,
                      "train: %s, %lld records (%s, %lld cut at %lld tokens): %zu training and "
                      "%zu eval sequences, %lld steps",
                      spec_.model.c_str(), (long long)p.data.records,
                      train::data_format_name(p.data.format), (long long)p.data.truncated,
                      (long long)spec_.cutoff, p.data.train.size(), p.data.eval.size(),
                      (long long)p.trainer->total_steps(p.data));
        log(line);
        if (!spec_.resume.empty())
            log("resumed from " + spec_.resume + " at step " + std::to_string(p.trainer->step()));
        // The run is recorded only now: a bad dataset or model never makes a row.
        if (!spec_.store.empty()) {
            store = std::make_unique<TrainingRunStore>(spec_.store);
            std::lock_guard g(mu_);
            if (run_id_ > 0) {
                store->reopen_run(run_id_);
            } else {
                run_id_ = store->start_run(spec_.model, join(spec_.data), spec_.out,
                                           spec_.to_json().dump());
            }
            run = run_id_;
        }
        {
            std::unique_lock lock(mu_);
            if (stop_) {
                lock.unlock();
                if (store) store->finish_run(run, "stopped");
                set_state(TrainingState::Stopped);
                return;
            }
        }
        set_state(TrainingState::Running);
        bool stopped = false;
        const train::StepMetrics last = p.trainer->run(p.data, [&](const train::StepMetrics& m) {
            if (store) {
                TrainingMetricsRow row;
                row.step = m.step;
                row.loss = m.loss;
                row.lr = m.lr;
                row.grad_norm = m.grad_norm;
                row.tokens_per_s = m.tokens_per_s;
                row.step_seconds = m.step_seconds;
                if (!std::isnan(m.eval_loss)) row.eval_loss = m.eval_loss;
                row.ram_bytes = int64_t(system_status(false).resident_bytes);
                store->add_metrics(run, row);
            }
            const bool go_on = on_step(m, *p.trainer);
            stopped = !go_on;
            return go_on;
        });
        if (stopped) {
            if (store) store->finish_run(run, "stopped");
            set_state(TrainingState::Stopped);
            return;
        }
        std::snprintf(line, sizeof line,
                      "train: adapter saved to %s/adapter (PEFT format); final loss %.4f",
                      spec_.out.c_str(), last.loss);
        log(line);
        // Models read from GGUF also get the adapter in llama.cpp's form (where it has one).
        if (spec_.model.ends_with(".gguf") && p.trainer->layout().fused.empty()) {
            const std::string gguf = spec_.out + "/adapter.gguf";
            train::save_gguf_adapter(gguf, p.trainer->layout(),
                                     train::peft_values(p.trainer->layout(), *p.decoder),
                                     *p.decoder);
            log("train: and as a llama.cpp LoRA GGUF: " + gguf);
        }
        if (store) store->finish_run(run, "finished");
        set_state(TrainingState::Finished);
    } catch (const std::exception& e) {
        try {
            if (store && run > 0) store->finish_run(run, "failed");
        } catch (const std::exception&) {
            // The store's own failure must not hide the run's.
        }
        set_state(TrainingState::Failed, e.what());
    }
}

}  // namespace moe
