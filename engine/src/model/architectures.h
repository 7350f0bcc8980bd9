#pragma once
// The registry of supported architectures (by config.json `model_type`).
#include <memory>
#include <string>
#include <vector>

#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/decoder_model.h"

namespace moe {

using ArchitectureBuilder = std::unique_ptr<DecoderModel> (*)(const HfConfig&, WeightStore);

struct ArchitectureEntry {
    const char* model_type;
    ArchitectureBuilder build;
};

const std::vector<ArchitectureEntry>& supported_architectures();

namespace arch {
std::unique_ptr<DecoderModel> build_llama(const HfConfig&, WeightStore);
std::unique_ptr<DecoderModel> build_qwen3_moe(const HfConfig&, WeightStore);
std::unique_ptr<DecoderModel> build_qwen2_moe(const HfConfig&, WeightStore);
std::unique_ptr<DecoderModel> build_mixtral(const HfConfig&, WeightStore);
std::unique_ptr<DecoderModel> build_olmoe(const HfConfig&, WeightStore);
std::unique_ptr<DecoderModel> build_deepseek_v2(const HfConfig&, WeightStore);
std::unique_ptr<DecoderModel> build_deepseek_v3(const HfConfig&, WeightStore);
std::unique_ptr<DecoderModel> build_glm4_moe(const HfConfig&, WeightStore);
std::unique_ptr<DecoderModel> build_gpt_oss(const HfConfig&, WeightStore);
}  // namespace arch

}  // namespace moe
