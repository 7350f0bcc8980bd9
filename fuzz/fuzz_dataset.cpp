// Fine-tuning datasets (train/dataset.h): the input as a .jsonl, a .json and a .txt file, in
// every format, with a real tokenizer and chat template (Qwen3's; the folder is named by
// MOE_FUZZ_MODEL_DIR, which scripts/fuzz.sh sets).
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "fuzz_input.h"
#include "model/model_tokenizer.h"
#include "tokenizer/chat_template.h"
#include "train/dataset.h"

namespace {

std::unique_ptr<moe::Tokenizer> tokenizer;
std::unique_ptr<moe::ChatTemplate> chat_template;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* dir = std::getenv("MOE_FUZZ_MODEL_DIR");
    if (!dir) {
        std::fprintf(stderr,
                     "fuzz_dataset: set MOE_FUZZ_MODEL_DIR to a folder with "
                     "tokenizer.json and a chat template (scripts/fuzz.sh does)\n");
        std::exit(2);
    }
    tokenizer = moe::load_model_tokenizer(dir);
    chat_template = std::make_unique<moe::ChatTemplate>(moe::ChatTemplate::from_model_folder(dir));
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    for (const char* name : {"data.jsonl", "data.json", "data.txt"}) {
        const std::string path = moefuzz::write_file(name, in);
        for (auto format : {moe::train::DataFormat::Auto, moe::train::DataFormat::Alpaca,
                            moe::train::DataFormat::Messages, moe::train::DataFormat::ShareGPT,
                            moe::train::DataFormat::Text}) {
            moefuzz::expect_only_moe_errors("dataset", [&] {
                moe::train::DatasetOptions o;
                o.format = format;
                o.cutoff = 64;
                o.packing = size % 2 == 0;
                o.eval_fraction = 0.25;
                (void)moe::train::load_dataset(path, *tokenizer, chat_template.get(), o);
            });
        }
        moefuzz::expect_only_moe_errors("dataset", [&] { (void)moe::train::dataset_keys(path); });
    }
    return 0;
}
