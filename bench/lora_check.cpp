// lora-check: the engine's side of the PEFT export check (tools/make_train_goldens.py --check),
// without Qt, for the GPU machine (which has torch, transformers and peft). For each hf-tiny
// fixture folder given: loads it with its PEFT adapter, takes two AdamW steps on the loss of
// lora_golden.safetensors' labels (as the AdamW goldens), saves the trained adapter as a PEFT
// folder <out>/<fixture>/adapter and the engine's logits of the golden input ids with it
// (<out>/<fixture>/engine_logits.safetensors).
//   lora-check OUT tests/data/hf-tiny/qwen3_moe-s1 [...]
#include <cstdio>
#include <filesystem>
#include <vector>

#include "formats/safetensors.h"
#include "golden.h"
#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "model/model.h"
#include "train/peft_export.h"
#include "train/train_step.h"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: lora-check OUT FIXTURE_DIR...\n");
        return 2;
    }
    try {
        for (int i = 2; i < argc; ++i) {
            const std::filesystem::path dir = argv[i];
            const std::string name = dir.filename().string();
            const moetest::LoraGolden lg = moetest::read_lora_golden(dir.string());
            const auto& ids = lg.ids;
            const auto& labels = lg.labels;
            moe::LoadOptions o;
            o.bf16_rope_frequencies = true;
            o.expert_format = "reference";
            o.lora_path = (dir / "lora").string();
            auto model = moe::load_model(dir.string(), o);
            auto& d = dynamic_cast<moe::DecoderModel&>(*model);
            auto layout = moe::load_peft_adapter((dir / "lora").string());
            moe::resolve_fused_experts(layout, d);
            moe::train::AdamWConfig c;
            c.lr = 1e-2;
            c.weight_decay = 0.1;
            moe::train::AdamW opt(c);
            for (int s = 0; s < 2; ++s) {
                const auto r = moe::train::train_step(d, layout, opt, ids, labels, c.lr);
                std::printf("%s: step %d loss %.6f grad norm %.4f\n", name.c_str(), s, r.loss,
                            r.grad_norm);
            }
            const std::filesystem::path out = std::filesystem::path(argv[1]) / name;
            moe::train::save_peft_adapter((out / "adapter").string(), layout,
                                          moe::train::peft_values(layout, d));
            moe::KvCache cache = model->new_cache();
            std::vector<float> logits;
            model->forward(ids, cache, logits, true);
            moe::write_safetensors(
                (out / "engine_logits.safetensors").string(),
                {{"input_ids", moe::DType::I32, {int64_t(ids.size())}, ids.data()},
                 {"logits",
                  moe::DType::F32,
                  {int64_t(ids.size()), int64_t(logits.size() / ids.size())},
                  logits.data()}});
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lora-check: %s\n", e.what());
        return 1;
    }
    return 0;
}
