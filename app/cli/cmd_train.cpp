// moestudio-cli train: LoRA fine-tuning of a model on a dataset. The flags (and --config FILE)
// are parsed by the engine's FinetuneSpec and the run is the engine's TrainingJob, the same
// that the app's fine-tuning wizard starts, so both train alike.
#include <cmath>
#include <cstdio>

#include "commands.h"

#include "api/finetune_spec.h"
#include "api/training_job.h"
#include "core/error.h"
#include "core/parallel.h"

namespace moecli {

int cmd_train(const std::vector<std::string>& argv) {
    // --quiet and --threads concern this process only, not the fine-tune: not in the spec.
    std::vector<std::string> rest;
    bool quiet = false;
    for (size_t i = 0; i < argv.size(); ++i) {
        if (argv[i] == "--quiet") {
            quiet = true;
        } else if (argv[i] == "--threads" && i + 1 < argv.size()) {
            moe::set_parallel_threads(std::stoi(argv[++i]));
        } else {
            rest.push_back(argv[i]);
        }
    }
    moe::FinetuneSpec spec;
    try {
        spec = moe::FinetuneSpec::from_args(rest);
        spec.check();
    } catch (const moe::Error& e) {
        throw moe::Error(std::string(e.what()) + "\n" + moe::finetune_usage());
    }
    moe::TrainingJobEvents ev;
    ev.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    ev.step = [quiet](const moe::TrainingPoint& p) {
        const moe::train::StepMetrics& m = p.metrics;
        if (quiet && m.step != m.total_steps) return;
        std::printf("step %lld/%lld loss %.4f lr %.3g grad-norm %.3f %.0f tok/s", (long long)m.step,
                    (long long)m.total_steps, m.loss, m.lr, m.grad_norm, m.tokens_per_s);
        if (!std::isnan(m.eval_loss)) std::printf(" eval-loss %.4f", m.eval_loss);
        std::printf("\n");
        std::fflush(stdout);
    };
    moe::TrainingJob job(spec, ev);
    job.start();
    if (job.wait() != moe::TrainingState::Finished) throw moe::Error(job.error());
    return 0;
}

}  // namespace moecli
