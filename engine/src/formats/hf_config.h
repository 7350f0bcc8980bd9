#pragma once
// A model's config.json (and generation_config.json) with typed, error-reporting accessors.
// Architectures read what they need from it; GGUF metadata is mapped onto the same keys.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

// Rotary position embedding settings, from `rope_theta`/`rope_scaling` (hub checkpoints) or
// transformers-5 `rope_parameters`.
struct RopeConfig {
    std::string type = "default";  // default | linear | yarn | llama3
    double theta = 10000.0;
    double factor = 1.0;
    double partial_rotary_factor = 1.0;
    int64_t original_max_position_embeddings = 0;
    // YaRN
    double beta_fast = 32.0, beta_slow = 1.0;
    double mscale = 0.0, mscale_all_dim = 0.0;  // 0 = not given
    std::optional<double> attention_factor;
    bool truncate = true;
    // Llama-3
    double low_freq_factor = 1.0, high_freq_factor = 4.0;
    // Per-frequency divisors (llama.cpp's rope_freqs tensor, e.g. Llama-3 scaling in GGUF).
    std::vector<float> freq_factors;
    // Round the frequencies to bf16 (see RotaryEmbedding::create); set from LoadOptions.
    bool bf16_frequencies = false;
};

class HfConfig {
  public:
    HfConfig() = default;
    HfConfig(nlohmann::json j, std::string origin) : j_(std::move(j)), origin_(std::move(origin)) {}
    // Reads DIR/config.json and, when present, DIR/generation_config.json.
    static HfConfig load_folder(const std::string& dir);

    const nlohmann::json& json() const { return j_; }
    // generation_config.json (an empty object when the folder has none).
    const nlohmann::json& generation() const { return generation_; }
    const std::string& origin() const { return origin_; }
    std::string model_type() const;
    bool has(const std::string& key) const;  // present and not null

    int64_t get_int(const std::string& key, int64_t fallback) const;
    int64_t require_int(const std::string& key) const;
    double get_double(const std::string& key, double fallback) const;
    bool get_bool(const std::string& key, bool fallback) const;
    std::string get_string(const std::string& key, const std::string& fallback) const;
    std::vector<int64_t> get_int_list(const std::string& key) const;  // scalar -> one element
    std::vector<std::string> get_string_list(const std::string& key) const;
    // First present key among `keys`, else fallback (configs name the same thing differently).
    int64_t get_int_any(std::initializer_list<const char*> keys, int64_t fallback) const;

    RopeConfig rope() const;
    void set_bf16_rope_frequencies(bool on) { bf16_rope_frequencies_ = on; }
    // Emulate llama.cpp's F16 KV cache and flash-attention arithmetic (see LoadOptions).
    void set_llama_cpp_attention(bool on) { llama_cpp_attention_ = on; }
    bool llama_cpp_attention() const { return llama_cpp_attention_; }
    // EOS ids: generation_config.json wins over config.json.
    std::vector<int64_t> eos_token_ids() const;
    std::optional<int64_t> bos_token_id() const;

  private:
    nlohmann::json j_;
    nlohmann::json generation_ = nlohmann::json::object();
    std::string origin_;
    bool bf16_rope_frequencies_ = false;
    bool llama_cpp_attention_ = false;
};

}  // namespace moe
