#include "api/model_library.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/memory_info.h"
#include "cuda/gpu.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/gguf_loader.h"

namespace moe {

namespace fs = std::filesystem;

namespace {

std::string home() {
    const char* h = std::getenv("HOME");
    return h ? h : "";
}

bool is_gguf_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

bool is_hf_folder(const fs::path& p) {
    std::error_code ec;
    if (!fs::exists(p / "config.json", ec)) return false;
    for (const auto& e : fs::directory_iterator(p, ec))
        if (e.path().extension() == ".safetensors") return true;
    return false;
}

// Ollama: manifests/<registry>/<namespace>/<model>/<tag> JSON naming the model layer's digest.
std::map<std::string, std::string> ollama_names(const fs::path& models) {
    std::map<std::string, std::string> by_digest;
    std::error_code ec;
    const fs::path manifests = models / "manifests";
    if (!fs::exists(manifests, ec)) return by_digest;
    for (const auto& e : fs::recursive_directory_iterator(manifests, ec)) {
        if (!e.is_regular_file(ec)) continue;
        std::ifstream in(e.path());
        const auto j = nlohmann::json::parse(in, nullptr, false);
        if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array()) continue;
        const fs::path rel = fs::relative(e.path(), manifests, ec);
        std::vector<std::string> parts;
        for (const auto& p : rel) parts.push_back(p.string());
        if (parts.size() < 2) continue;
        std::string name = parts[parts.size() - 2] + ":" + parts.back();
        if (parts.size() >= 3 && parts[parts.size() - 3] != "library")
            name = parts[parts.size() - 3] + "/" + name;
        for (const auto& l : j["layers"]) {
            if (l.value("mediaType", "") != "application/vnd.ollama.image.model") continue;
            std::string digest = l.value("digest", "");
            std::replace(digest.begin(), digest.end(), ':', '-');
            by_digest[digest] = name;
        }
    }
    return by_digest;
}

// "models--Qwen--Qwen3-30B-A3B/snapshots/<hash>" -> "Qwen/Qwen3-30B-A3B"
std::string hf_cache_name(const fs::path& snapshot) {
    std::string repo = snapshot.parent_path().parent_path().filename().string();
    if (repo.rfind("models--", 0) == 0) repo = repo.substr(8);
    const size_t at = repo.find("--");
    if (at != std::string::npos) repo.replace(at, 2, "/");
    return repo;
}

void scan(const fs::path& root, std::vector<ModelEntry>& out) {
    std::error_code ec;
    if (!fs::exists(root, ec)) return;
    const std::string r = root.string();
    // Ollama's models folder: blobs named by digest.
    if (fs::exists(root / "blobs", ec) && fs::exists(root / "manifests", ec)) {
        const auto names = ollama_names(root);
        for (const auto& e : fs::directory_iterator(root / "blobs", ec)) {
            if (!e.is_regular_file(ec) || !is_gguf_file(e.path())) continue;
            const auto it = names.find(e.path().filename().string());
            out.push_back({e.path().string(),
                           it != names.end() ? it->second : e.path().filename().string(),
                           "ollama"});
        }
        return;
    }
    const bool hub = r.find("huggingface") != std::string::npos;
    const std::string source =
        hub ? "huggingface"
        : r.find("lmstudio") != std::string::npos || r.find("lm-studio") != std::string::npos
            ? "lmstudio"
            : "folder";
    constexpr int kMaxDepth = 5;
    auto it =
        fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it.depth() > kMaxDepth) {
            it.disable_recursion_pending();
            continue;
        }
        const fs::path p = it->path();
        if (it->is_directory(ec)) {
            if (p.filename() == "blobs" || p.filename() == ".git") {
                it.disable_recursion_pending();
                continue;
            }
            if (is_hf_folder(p)) {
                // The hub cache's layout: models--ORG--NAME/snapshots/<revision>/
                const bool hub =
                    p.parent_path().filename() == "snapshots" &&
                    p.parent_path().parent_path().filename().string().rfind("models--", 0) == 0;
                out.push_back({p.string(), hub ? hf_cache_name(p) : p.filename().string(),
                               hub ? "huggingface" : source});
                it.disable_recursion_pending();
            }
        } else if (p.extension() == ".gguf" && is_gguf_file(p)) {
            out.push_back({p.string(), p.filename().string(), source});
        }
    }
}

uint64_t path_bytes(const fs::path& p) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
    uint64_t n = 0;
    for (const auto& e : fs::directory_iterator(p, ec))
        if (e.is_regular_file(ec)) n += fs::file_size(e.path(), ec);
    return n;
}

}  // namespace

std::vector<std::string> default_model_roots() {
    std::vector<std::string> roots;
    const char* hf = std::getenv("HF_HOME");
    roots.push_back(hf ? std::string(hf) + "/hub" : home() + "/.cache/huggingface/hub");
    roots.push_back(home() + "/.lmstudio/models");
    roots.push_back(home() + "/.cache/lm-studio/models");
    roots.push_back(home() + "/.ollama/models");
    roots.push_back("/usr/share/ollama/.ollama/models");
    return roots;
}

std::vector<ModelEntry> discover_models(const std::vector<std::string>& roots) {
    std::vector<ModelEntry> found;
    for (const auto& r : roots) scan(r, found);
    std::set<std::string> seen;
    std::vector<ModelEntry> out;
    for (auto& e : found) {
        std::error_code ec;
        const std::string key = fs::weakly_canonical(e.path, ec).string();
        if (seen.insert(key).second) out.push_back(std::move(e));
    }
    std::sort(out.begin(), out.end(),
              [](const ModelEntry& a, const ModelEntry& b) { return a.name < b.name; });
    return out;
}

ModelDescription describe_model(const std::string& path) {
    ModelDescription d;
    try {
        HfConfig config;
        WeightStore ws;
        if (fs::is_directory(path)) {
            config = HfConfig::load_folder(path);
            ws = WeightStore::open_folder(path);
        } else {
            GgufModelSource src = open_gguf_model(path);
            config = std::move(src.config);
            ws = std::move(src.weights);
        }
        d.architecture = config.model_type();
        d.layers = config.get_int("num_hidden_layers", 0);
        d.experts = config.get_int_any({"num_experts", "num_local_experts", "n_routed_experts"}, 0);
        d.experts_per_token = config.get_int("num_experts_per_tok", 0);
        d.context = config.get_int("max_position_embeddings", 0);
        std::map<std::string, uint64_t> bytes_by_type;
        int64_t expert_params = 0;
        for (const auto& name : ws.names()) {
            const TensorView& t = ws.get(name);
            if (name.ends_with("_scale_inv")) continue;
            d.params_total += t.numel();
            bytes_by_type[t.ggml ? std::string(ggml_type_info(*t.ggml).name)
                                 : std::string(dtype_name(t.dtype))] += t.nbytes;
            if (name.find("experts") != std::string::npos &&
                name.find("shared_expert") == std::string::npos)
                expert_params += t.numel();
        }
        d.params_active = d.params_total;
        if (d.experts > 0 && d.experts_per_token > 0)
            d.params_active -= int64_t(double(expert_params) *
                                       (1.0 - double(d.experts_per_token) / double(d.experts)));
        uint64_t best = 0;
        for (const auto& [type, b] : bytes_by_type)
            if (b > best) best = b, d.dtype = type;
    } catch (const std::exception& e) {
        d.error = e.what();
    }
    d.file_bytes = path_bytes(path);
    d.fits_ram = d.file_bytes < available_memory_bytes();
    for (const GpuInfo& g : list_gpus()) d.fits_vram = d.fits_vram || d.file_bytes < g.total_bytes;
    return d;
}

}  // namespace moe
