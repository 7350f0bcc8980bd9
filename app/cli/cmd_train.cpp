// moestudio-cli train: LoRA fine-tuning of a model on a dataset (engine/src/train/).
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>
#include "args.h"
#include "commands.h"

#include "api/system_status.h"
#include "core/error.h"
#include "core/parallel.h"
#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "model/model_tokenizer.h"
#include "store/training_runs.h"
#include "train/gguf_adapter_export.h"
#include "train/lora_trainer.h"
#include "train/peft_layout.h"

namespace moecli {

namespace {

constexpr const char* kUsage =
    "usage: moestudio-cli train MODEL --data FILE --out DIR [--format "
    "auto|text|alpaca|messages|sharegpt]\n"
    "       [--targets q_proj,k_proj,v_proj,o_proj[,gate_proj,up_proj,down_proj,experts]] "
    "[--rank 8] [--alpha 16]\n"
    "       [--adapter PEFT_DIR (continue training an adapter)] [--resume CHECKPOINT_DIR]\n"
    "       [--lr 2e-4] [--schedule cosine|linear|constant] [--warmup 0] [--epochs 1] "
    "[--steps N] [--grad-accum 1]\n"
    "       [--max-grad-norm 1] [--weight-decay 0] [--cutoff 1024] [--packing] "
    "[--train-on-prompt]\n"
    "       [--eval-fraction 0] [--eval-every 0] [--save-every 0] [--seed 0] [--quiet]\n"
    "       [--store DB (the run and its metrics in MoE Studio's database)] "
    "[--gradient-checkpointing]";

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

}  // namespace

int cmd_train(const std::vector<std::string>& argv) {
    const Args args(
        argv, {"packing", "train-on-prompt", "quiet", "rope-freq-bf16", "gradient-checkpointing"},
        {"data",         "out",     "format",        "targets",    "rank",
         "alpha",        "adapter", "resume",        "lr",         "schedule",
         "warmup",       "epochs",  "steps",         "grad-accum", "max-grad-norm",
         "weight-decay", "cutoff",  "eval-fraction", "eval-every", "save-every",
         "seed",         "threads", "store"});
    if (args.positional().size() != 1 || !args.has("data") || !args.has("out"))
        throw moe::Error(kUsage);
    const std::string path = args.positional()[0];
    if (args.has("threads")) moe::set_parallel_threads(int(args.get_int("threads", 0)));
    moe::LoadOptions lo;
    lo.bf16_rope_frequencies = args.flag("rope-freq-bf16");
    lo.expert_format = "reference";  // the trainer differentiates the experts' terms
    if (args.has("adapter")) lo.lora_path = *args.get("adapter");
    auto model = moe::load_model(path, lo);
    auto* decoder = dynamic_cast<moe::DecoderModel*>(model.get());
    if (!decoder) throw moe::Error(path + ": this model type cannot be trained");

    const auto tokenizer = moe::load_model_tokenizer(path);
    std::unique_ptr<moe::ChatTemplate> tmpl;
    try {
        tmpl = std::make_unique<moe::ChatTemplate>(moe::load_model_chat_template(path));
    } catch (const moe::Error&) {
        // Base models: plain text only (load_dataset says so for chat records).
    }
    moe::train::DatasetOptions dopt;
    dopt.format = moe::train::parse_data_format(args.get_or("format", "auto"));
    dopt.cutoff = args.get_int("cutoff", 1024);
    dopt.packing = args.flag("packing");
    dopt.train_on_prompt = args.flag("train-on-prompt");
    dopt.eval_fraction = args.get_double("eval-fraction", 0.0);
    dopt.seed = uint64_t(args.get_int("seed", 0));
    const moe::train::Dataset data =
        moe::train::load_dataset(*args.get("data"), *tokenizer, tmpl.get(), dopt);

    moe::LoraAdapter layout;
    if (args.has("adapter")) {
        layout = moe::load_peft_adapter(*args.get("adapter"));
        moe::resolve_fused_experts(layout, *decoder);
    } else {
        moe::train::NewAdapterOptions n;
        if (args.has("targets")) n.targets = split_list(*args.get("targets"));
        n.rank = args.get_int("rank", 8);
        n.alpha = float(args.get_double("alpha", 16.0));
        n.seed = dopt.seed;
        layout = moe::train::add_new_adapter(*decoder, n);
    }
    moe::train::TrainConfig cfg;
    cfg.adamw.lr = args.get_double("lr", 2e-4);
    cfg.adamw.weight_decay = args.get_double("weight-decay", 0.0);
    cfg.schedule = moe::train::parse_lr_schedule(args.get_or("schedule", "cosine"));
    cfg.warmup_steps = args.get_int("warmup", 0);
    cfg.epochs = args.get_int("epochs", 1);
    cfg.max_steps = args.get_int("steps", 0);
    cfg.grad_accum = args.get_int("grad-accum", 1);
    cfg.max_grad_norm = args.get_double("max-grad-norm", 1.0);
    cfg.seed = dopt.seed;
    cfg.gradient_checkpointing = args.flag("gradient-checkpointing");
    cfg.eval_every = args.get_int("eval-every", 0);
    cfg.save_every = args.get_int("save-every", 0);
    cfg.out_dir = *args.get("out");
    moe::train::LoraTrainer trainer(*decoder, std::move(layout), cfg);
    if (args.has("resume")) trainer.resume(*args.get("resume"));
    std::fprintf(stderr,
                 "train: %s, %lld records (%s, %lld cut at %lld tokens): %zu training and %zu "
                 "eval sequences, %lld steps\n",
                 path.c_str(), (long long)data.records, moe::train::data_format_name(data.format),
                 (long long)data.truncated, (long long)dopt.cutoff, data.train.size(),
                 data.eval.size(), (long long)trainer.total_steps(data));
    // --store DB: the run and every step's metrics in MoE Studio's database (the app's
    // conversations.db, or any file), committed as they come.
    std::unique_ptr<moe::TrainingRunStore> store;
    int64_t run_id = 0;
    if (args.has("store")) {
        store = std::make_unique<moe::TrainingRunStore>(*args.get("store"));
        const nlohmann::json config = {
            {"lr", cfg.adamw.lr},
            {"weight_decay", cfg.adamw.weight_decay},
            {"schedule", args.get_or("schedule", "cosine")},
            {"warmup", cfg.warmup_steps},
            {"epochs", cfg.epochs},
            {"steps", cfg.max_steps},
            {"grad_accum", cfg.grad_accum},
            {"max_grad_norm", cfg.max_grad_norm},
            {"cutoff", dopt.cutoff},
            {"seed", cfg.seed},
            {"adapter", args.get_or("adapter", "")},
            {"targets", args.get_or("targets", "q_proj,k_proj,v_proj,o_proj")},
            {"rank", args.get_int("rank", 8)},
            {"alpha", args.get_double("alpha", 16.0)}};
        run_id = store->start_run(path, *args.get("data"), cfg.out_dir, config.dump());
    }
    const bool quiet = args.flag("quiet");
    moe::train::StepMetrics last;
    try {
        last = trainer.run(data, [&](const moe::train::StepMetrics& m) {
            if (store) {
                moe::TrainingMetricsRow row;
                row.step = m.step;
                row.loss = m.loss;
                row.lr = m.lr;
                row.grad_norm = m.grad_norm;
                row.tokens_per_s = m.tokens_per_s;
                row.step_seconds = m.step_seconds;
                if (!std::isnan(m.eval_loss)) row.eval_loss = m.eval_loss;
                row.ram_bytes = int64_t(moe::system_status(false).resident_bytes);
                store->add_metrics(run_id, row);
            }
            if (!quiet || m.step == m.total_steps) {
                std::printf("step %lld/%lld loss %.4f lr %.3g grad-norm %.3f %.0f tok/s",
                            (long long)m.step, (long long)m.total_steps, m.loss, m.lr, m.grad_norm,
                            m.tokens_per_s);
                if (!std::isnan(m.eval_loss)) std::printf(" eval-loss %.4f", m.eval_loss);
                std::printf("\n");
                std::fflush(stdout);
            }
            return true;
        });
    } catch (...) {
        if (store) store->finish_run(run_id, "failed");
        throw;
    }
    if (store) store->finish_run(run_id, "finished");
    std::fprintf(stderr, "train: adapter saved to %s/adapter (PEFT format); final loss %.4f\n",
                 cfg.out_dir.c_str(), last.loss);
    // Models read from GGUF also get the adapter in llama.cpp's form (where it has one).
    if (path.ends_with(".gguf") && trainer.layout().fused.empty()) {
        const std::string gguf = cfg.out_dir + "/adapter.gguf";
        moe::train::save_gguf_adapter(
            gguf, trainer.layout(), moe::train::peft_values(trainer.layout(), *decoder), *decoder);
        std::fprintf(stderr, "train: and as a llama.cpp LoRA GGUF: %s\n", gguf.c_str());
    }
    return 0;
}

}  // namespace moecli
