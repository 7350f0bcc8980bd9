// LoRA adapters (model/lora_adapter.h): a PEFT folder — the input's part before the first
// "\n--\n" is adapter_config.json, the rest adapter_model.safetensors — and the whole input as
// a llama.cpp GGUF adapter.
#include "fuzz_input.h"
#include "model/lora_adapter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto [config, weights] = moefuzz::split(in, "\n--\n");
    const std::string config_path = moefuzz::write_file("peft/adapter_config.json", config);
    moefuzz::write_file("peft/adapter_model.safetensors", weights);
    moefuzz::expect_only_moe_errors("adapter", [&] {
        (void)moe::load_peft_adapter(std::filesystem::path(config_path).parent_path().string());
    });
    const std::string gguf = moefuzz::write_file("adapter.gguf", in);
    moefuzz::expect_only_moe_errors("adapter", [&] { (void)moe::load_gguf_adapter(gguf); });
    return 0;
}
