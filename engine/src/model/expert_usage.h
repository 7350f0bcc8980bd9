#pragma once
// Expert telemetry: how often each routed expert of each layer was chosen, gathered from the
// routers (Router::usage) over whatever the model ran. The placement planner puts the most
// used experts on the GPU first; the placement editor shows the counts as a heat map.
//
// JSON form: {"version": 2, "model": "<architecture>",
//             "layers": [[count per expert], ...],   (an empty list for a dense layer)
//             "decode": [[count per expert], ...],   (the part routed in decode steps)
//             "coactivation": [[experts * experts counts], ...]}   (when counted)
// Version 1 files (no "decode") still read, with the decode counts unknown (zero).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moe {

class DecoderModel;

struct ExpertUsage {
    std::string architecture;
    std::vector<std::vector<uint64_t>> counts;  // [layer][expert]; empty for dense layers
    std::vector<std::vector<uint64_t>> decode;  // the part of counts routed one token at a time
    // Per layer, experts x experts: how often two experts served the same token (empty unless
    // the routers counted it: count_expert_coactivation).
    std::vector<std::vector<uint64_t>> coactivation;
    // counts - decode: what prompts (prefill batches) routed.
    std::vector<std::vector<uint64_t>> prefill() const;

    uint64_t total() const;
    nlohmann::json to_json() const;
    // Throws moe::Error naming `where` and the bad field.
    static ExpertUsage from_json(const nlohmann::json& j, const std::string& where);
    // Writes FILE.tmp, then renames it over `path`.
    void save(const std::string& path) const;
    static ExpertUsage load(const std::string& path);
};

// The counts of every MoE layer's router since the last reset.
ExpertUsage collect_expert_usage(const DecoderModel& model);
void reset_expert_usage(const DecoderModel& model);
// Sets every router's counts back to `usage` (taken with collect_expert_usage on this model):
// what runs in between, e.g. a calibration's synthetic tokens, is not counted.
void restore_expert_usage(const DecoderModel& model, const ExpertUsage& usage);
// Switches co-activation counting on or off in every router (off by default).
void count_expert_coactivation(const DecoderModel& model, bool on);

}  // namespace moe
