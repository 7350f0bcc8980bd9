#pragma once
// Where a model's weights live: per layer the device of its attention and of its dense part
// (a dense MLP, or the router and shared experts of a MoE layer), and a device per routed
// expert; plus the embeddings and the output head. One type for the planner, the scheduler,
// the placement editor and the store (design.md, "Data that several parts share").
//
// A placement is tied to the model it was made for (ModelIdentity): loading it for another
// model is an error that says which, instead of a silently wrong split.
//
// JSON form (version 1):
//   {"version": 1,
//    "model": {"architecture": "qwen3_moe", "layers": 48, "experts": 128, "fingerprint": "..."},
//    "embeddings": "cpu", "head": "gpu",
//    "layers": [{"attention": "gpu", "dense": "gpu", "gpu_experts": [0, 5, 17]}, ...]}
// Experts are listed by the GPU side only (most experts of a large model stay on the CPU).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moe {

enum class Device : uint8_t { Cpu, Gpu };
const char* device_name(Device d);

struct ModelIdentity {
    std::string architecture;
    int64_t layers = 0;
    int64_t experts = 0;      // routed experts per MoE layer (0: dense model)
    std::string fingerprint;  // weight files' names and sizes (placement_fingerprint)
    bool operator==(const ModelIdentity&) const = default;
};

struct LayerPlacement {
    Device attention = Device::Cpu;
    Device dense = Device::Cpu;   // dense MLP, or the router + shared experts of a MoE layer
    std::vector<Device> experts;  // one per routed expert; empty for a dense layer
};

struct Placement {
    static constexpr int kVersion = 1;

    ModelIdentity model;
    Device embeddings = Device::Cpu;
    Device head = Device::Cpu;
    std::vector<LayerPlacement> layers;

    // Everything on the CPU, shaped for `model` (experts only in `moe_layers`).
    static Placement all_cpu(const ModelIdentity& model, const std::vector<bool>& moe_layers);

    int64_t gpu_expert_count() const;
    int64_t gpu_expert_count(int64_t layer) const;
    bool uses_gpu() const;
    // One byte per expert of `layer`, nonzero where the expert runs on the GPU: the CPU
    // operator's skip mask (fused_moe).
    std::vector<uint8_t> gpu_mask(int64_t layer) const;
    // e.g. "attention 48/48 layers, dense 48/48, experts 1536/6144 (25 %), head gpu" on GPU.
    std::string summary() const;

    nlohmann::json to_json() const;
    // Throws moe::Error naming `where` (a file path or "placement") and the bad field.
    static Placement from_json(const nlohmann::json& j, const std::string& where);
    // Writes FILE.tmp then renames it over `path`, so a crash never leaves half a file.
    void save(const std::string& path) const;
    static Placement load(const std::string& path);

    // Throws moe::Error when this placement was made for another model (naming both).
    void require_model(const ModelIdentity& actual, const std::string& where) const;
};

// Names and sizes of the model's weight files, hashed: stable across loads and machines,
// different after a re-download of other weights.
std::string placement_fingerprint(const std::vector<std::string>& weight_files);

}  // namespace moe
