#include "formats/hf_config.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace moe {

using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

Json read_json_file(const fs::path& p) {
    std::ifstream in(p);
    if (!in) throw Error(p.string() + ": cannot open file");
    try {
        return Json::parse(in);
    } catch (const Json::exception& e) {
        throw Error(p.string() + ": not valid JSON: " + e.what());
    }
}

}  // namespace

HfConfig HfConfig::load_folder(const std::string& dir) {
    const fs::path cfg = fs::path(dir) / "config.json";
    if (!fs::exists(cfg))
        throw Error(dir + ": no config.json (is this a Hugging Face model folder?)");
    HfConfig c(read_json_file(cfg), cfg.string());
    if (!c.j_.is_object()) throw Error(cfg.string() + ": must hold a JSON object");
    const fs::path gen = fs::path(dir) / "generation_config.json";
    if (fs::exists(gen)) c.generation_ = read_json_file(gen);
    return c;
}

std::string HfConfig::model_type() const {
    return get_string("model_type", "");
}

bool HfConfig::has(const std::string& key) const {
    return j_.contains(key) && !j_[key].is_null();
}

int64_t HfConfig::get_int(const std::string& key, int64_t fallback) const {
    if (!has(key)) return fallback;
    const Json& v = j_[key];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && v.get<double>() == double(int64_t(v.get<double>()))) {
        return int64_t(v.get<double>());
    }
    throw Error(origin_ + ": '" + key + "' must be an integer, found " + v.dump());
}

int64_t HfConfig::require_int(const std::string& key) const {
    if (!has(key)) throw Error(origin_ + ": missing required key '" + key + "'");
    return get_int(key, 0);
}

double HfConfig::get_double(const std::string& key, double fallback) const {
    if (!has(key)) return fallback;
    const Json& v = j_[key];
    if (!v.is_number())
        throw Error(origin_ + ": '" + key + "' must be a number, found " + v.dump());
    return v.get<double>();
}

bool HfConfig::get_bool(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const Json& v = j_[key];
    if (!v.is_boolean()) throw Error(origin_ + ": '" + key + "' must be true or false");
    return v.get<bool>();
}

std::string HfConfig::get_string(const std::string& key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const Json& v = j_[key];
    if (!v.is_string()) throw Error(origin_ + ": '" + key + "' must be a string");
    return v.get<std::string>();
}

std::vector<int64_t> HfConfig::get_int_list(const std::string& key) const {
    std::vector<int64_t> out;
    if (!has(key)) return out;
    const Json& v = j_[key];
    if (v.is_number_integer()) return {v.get<int64_t>()};
    if (!v.is_array()) throw Error(origin_ + ": '" + key + "' must be an integer or a list");
    for (const auto& x : v) {
        if (!x.is_number_integer()) throw Error(origin_ + ": '" + key + "' must list integers");
        out.push_back(x.get<int64_t>());
    }
    return out;
}

std::vector<std::string> HfConfig::get_string_list(const std::string& key) const {
    std::vector<std::string> out;
    if (!has(key)) return out;
    const Json& v = j_[key];
    if (!v.is_array()) throw Error(origin_ + ": '" + key + "' must be a list of strings");
    for (const auto& x : v) {
        if (!x.is_string()) throw Error(origin_ + ": '" + key + "' must list strings");
        out.push_back(x.get<std::string>());
    }
    return out;
}

int64_t HfConfig::get_int_any(std::initializer_list<const char*> keys, int64_t fallback) const {
    for (const char* k : keys) {
        if (has(k)) return get_int(k, fallback);
    }
    return fallback;
}

RopeConfig HfConfig::rope() const {
    RopeConfig r;
    r.theta = get_double("rope_theta", 10000.0);
    r.partial_rotary_factor = get_double("partial_rotary_factor", 1.0);
    // transformers 5 nests everything in rope_parameters; hub checkpoints use rope_scaling.
    Json params = Json::object();
    if (has("rope_scaling") && j_["rope_scaling"].is_object()) params = j_["rope_scaling"];
    if (has("rope_parameters") && j_["rope_parameters"].is_object()) {
        for (auto it = j_["rope_parameters"].begin(); it != j_["rope_parameters"].end(); ++it) {
            params[it.key()] = *it;
        }
    }
    HfConfig p(params, origin_ + " (rope parameters)");
    r.theta = p.get_double("rope_theta", r.theta);
    r.partial_rotary_factor = p.get_double("partial_rotary_factor", r.partial_rotary_factor);
    r.type = p.get_string("rope_type", p.get_string("type", "default"));
    r.factor = p.get_double("factor", 1.0);
    r.original_max_position_embeddings =
        p.get_int("original_max_position_embeddings", get_int("max_position_embeddings", 0));
    r.beta_fast = p.get_double("beta_fast", 32.0);
    r.beta_slow = p.get_double("beta_slow", 1.0);
    r.mscale = p.get_double("mscale", 0.0);  // 0 = absent (YaRN treats absent and 0 alike)
    r.mscale_all_dim = p.get_double("mscale_all_dim", 0.0);
    if (p.has("attention_factor")) r.attention_factor = p.get_double("attention_factor", 1.0);
    r.truncate = p.get_bool("truncate", true);
    r.low_freq_factor = p.get_double("low_freq_factor", 1.0);
    r.high_freq_factor = p.get_double("high_freq_factor", 4.0);
    r.bf16_frequencies = bf16_rope_frequencies_;
    if (has("moe_rope_freq_factors")) {
        for (const auto& v : j_["moe_rope_freq_factors"]) r.freq_factors.push_back(v.get<float>());
    }
    static const char* kKnown[] = {"default", "linear", "yarn", "llama3"};
    bool known = false;
    for (const char* k : kKnown) known = known || r.type == k;
    if (!known) throw Error(origin_ + ": unsupported rope type '" + r.type + "'");
    return r;
}

std::vector<int64_t> HfConfig::eos_token_ids() const {
    if (generation_.is_object() && generation_.contains("eos_token_id") &&
        !generation_["eos_token_id"].is_null()) {
        HfConfig g(generation_, origin_);
        return g.get_int_list("eos_token_id");
    }
    return get_int_list("eos_token_id");
}

std::optional<int64_t> HfConfig::bos_token_id() const {
    if (generation_.is_object() && generation_.contains("bos_token_id") &&
        generation_["bos_token_id"].is_number_integer()) {
        return generation_["bos_token_id"].get<int64_t>();
    }
    if (has("bos_token_id")) return get_int("bos_token_id", 0);
    return std::nullopt;
}

}  // namespace moe
