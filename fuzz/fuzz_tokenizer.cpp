// tokenizer.json (tokenizer/hf_tokenizer: models, normalizers, pre-tokenizers with their
// regexes, decoders, added tokens): loaded, then used on a fixed text and on part of the input.
#include "fuzz_input.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::string path = moefuzz::write_file("tok/tokenizer.json", in);
    moefuzz::expect_only_moe_errors("tokenizer", [&] {
        const auto tok = moe::load_tokenizer(std::filesystem::path(path).parent_path().string());
        for (const std::string& text :
             {std::string("Hello world! 123 <|im_start|>user\n  tabs\tand ünïcödé 漢字 🙂"),
              std::string(in.substr(0, 256))}) {
            const auto ids = tok->encode(text, true);
            (void)tok->decode(ids, false);
            (void)tok->decode(ids, true);
        }
        for (int32_t id : {-1, 0, 1, tok->vocab_size() - 1, tok->vocab_size()}) {
            (void)tok->id_to_token(id);
        }
    });
    return 0;
}
