#pragma once
// Finding the models already on this machine and describing them before loading: Hugging Face
// folders (the HF hub cache's snapshots, or any folder with config.json and safetensors) and
// GGUF files (LM Studio's model folders, Ollama's blobs — GGUF under digest names, named from
// its manifests — and folders the user adds). A description reads only the config and the
// tensor headers (the weights stay on disk): architecture, parameters total and active,
// experts, stored type, context length, size on disk, and whether it fits this machine.
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct ModelEntry {
    std::string path;    // folder or .gguf file (what load_model takes)
    std::string name;    // for lists: "Qwen/Qwen3-30B-A3B", "qwen3:30b", file name
    std::string source;  // "huggingface", "lmstudio", "ollama", "folder"
};

struct ModelDescription {
    std::string architecture;
    int64_t layers = 0, experts = 0, experts_per_token = 0, context = 0;
    int64_t params_total = 0, params_active = 0;
    std::string dtype;  // dominant stored type ("BF16", "Q4_K", ...)
    uint64_t file_bytes = 0;
    bool fits_ram = false;   // the weights fit the memory available now
    bool fits_vram = false;  // ... the largest GPU (all of the model)
    std::string error;       // set when the model cannot be described (unsupported ...)
};

// The default places: $HF_HOME/hub or ~/.cache/huggingface/hub, ~/.lmstudio/models,
// ~/.cache/lm-studio/models, ~/.ollama/models and /usr/share/ollama/.ollama/models.
std::vector<std::string> default_model_roots();

// Models under `roots` (each a known layout or any folder, searched a few levels deep),
// sorted by name, without duplicates (by resolved path).
std::vector<ModelEntry> discover_models(const std::vector<std::string>& roots);

// Never throws: a model that cannot be read gets `error` set.
ModelDescription describe_model(const std::string& path);

}  // namespace moe
