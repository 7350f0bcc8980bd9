#include "hybrid/placement.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/hash.h"

namespace moe {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const char* device_name(Device d) {
    return d == Device::Gpu ? "gpu" : "cpu";
}

namespace {

Device parse_device(const Json& v, const std::string& where, const std::string& field) {
    if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (s == "cpu") return Device::Cpu;
        if (s == "gpu") return Device::Gpu;
    }
    throw Error(where + ": " + field + " must be \"cpu\" or \"gpu\", got " + v.dump());
}

const Json& field(const Json& j, const char* name, const std::string& where,
                  const std::string& ctx) {
    if (!j.is_object() || !j.contains(name))
        throw Error(where + ": missing \"" + name + "\"" + (ctx.empty() ? "" : " in " + ctx));
    return j.at(name);
}

int64_t get_int(const Json& j, const char* name, const std::string& where) {
    const Json& v = field(j, name, where, "model");
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
        throw Error(where + ": model." + name + " must be a non-negative integer");
    return v.get<int64_t>();
}

}  // namespace

Placement Placement::all_cpu(const ModelIdentity& model, const std::vector<bool>& moe_layers) {
    require(int64_t(moe_layers.size()) == model.layers,
            "Placement::all_cpu: moe_layers must have one entry per layer");
    Placement p;
    p.model = model;
    p.layers.resize(size_t(model.layers));
    for (size_t l = 0; l < p.layers.size(); ++l) {
        if (moe_layers[l]) p.layers[l].experts.assign(size_t(model.experts), Device::Cpu);
    }
    return p;
}

int64_t Placement::gpu_expert_count(int64_t layer) const {
    int64_t n = 0;
    for (Device d : layers.at(size_t(layer)).experts) n += d == Device::Gpu;
    return n;
}

int64_t Placement::gpu_expert_count() const {
    int64_t n = 0;
    for (size_t l = 0; l < layers.size(); ++l) n += gpu_expert_count(int64_t(l));
    return n;
}

bool Placement::uses_gpu() const {
    if (embeddings == Device::Gpu || head == Device::Gpu) return true;
    for (const LayerPlacement& l : layers) {
        if (l.attention == Device::Gpu || l.dense == Device::Gpu) return true;
    }
    return gpu_expert_count() > 0;
}

std::vector<uint8_t> Placement::gpu_mask(int64_t layer) const {
    const auto& e = layers.at(size_t(layer)).experts;
    std::vector<uint8_t> mask(e.size());
    for (size_t i = 0; i < e.size(); ++i) mask[i] = e[i] == Device::Gpu;
    return mask;
}

std::string Placement::summary() const {
    int64_t attn = 0, dense = 0, experts = 0, gpu_experts = 0;
    for (const LayerPlacement& l : layers) {
        attn += l.attention == Device::Gpu;
        dense += l.dense == Device::Gpu;
        experts += int64_t(l.experts.size());
    }
    gpu_experts = gpu_expert_count();
    std::ostringstream s;
    s << "on the GPU: attention " << attn << "/" << layers.size() << " layers, dense " << dense
      << "/" << layers.size() << ", experts " << gpu_experts << "/" << experts;
    if (experts > 0) s << " (" << (100 * gpu_experts + experts / 2) / experts << " %)";
    s << ", embeddings " << device_name(embeddings) << ", head " << device_name(head);
    return s.str();
}

Json Placement::to_json() const {
    Json layers_json = Json::array();
    for (const LayerPlacement& l : layers) {
        Json gpu = Json::array();
        for (size_t e = 0; e < l.experts.size(); ++e)
            if (l.experts[e] == Device::Gpu) gpu.push_back(e);
        Json lj = {{"attention", device_name(l.attention)}, {"dense", device_name(l.dense)}};
        if (!l.experts.empty()) lj["gpu_experts"] = gpu;
        layers_json.push_back(lj);
    }
    return {{"version", kVersion},
            {"model",
             {{"architecture", model.architecture},
              {"layers", model.layers},
              {"experts", model.experts},
              {"fingerprint", model.fingerprint}}},
            {"embeddings", device_name(embeddings)},
            {"head", device_name(head)},
            {"layers", layers_json}};
}

Placement Placement::from_json(const Json& j, const std::string& where) {
    const Json& version = field(j, "version", where, "");
    if (!version.is_number_integer() || version.get<int>() != kVersion) {
        throw Error(where + ": placement version " + version.dump() + ", this build reads " +
                    std::to_string(kVersion));
    }
    Placement p;
    const Json& m = field(j, "model", where, "");
    const Json& arch = field(m, "architecture", where, "model");
    const Json& fp = field(m, "fingerprint", where, "model");
    if (!arch.is_string() || !fp.is_string())
        throw Error(where + ": model.architecture and model.fingerprint must be strings");
    p.model.architecture = arch.get<std::string>();
    p.model.fingerprint = fp.get<std::string>();
    p.model.layers = get_int(m, "layers", where);
    p.model.experts = get_int(m, "experts", where);
    p.embeddings = parse_device(field(j, "embeddings", where, ""), where, "embeddings");
    p.head = parse_device(field(j, "head", where, ""), where, "head");
    const Json& ls = field(j, "layers", where, "");
    if (!ls.is_array() || int64_t(ls.size()) != p.model.layers) {
        throw Error(where + ": \"layers\" must list " + std::to_string(p.model.layers) +
                    " layers (model.layers)");
    }
    for (size_t i = 0; i < ls.size(); ++i) {
        const std::string ctx = "layers[" + std::to_string(i) + "]";
        LayerPlacement l;
        l.attention =
            parse_device(field(ls[i], "attention", where, ctx), where, ctx + ".attention");
        l.dense = parse_device(field(ls[i], "dense", where, ctx), where, ctx + ".dense");
        if (ls[i].contains("gpu_experts")) {
            l.experts.assign(size_t(p.model.experts), Device::Cpu);
            const Json& g = ls[i].at("gpu_experts");
            if (!g.is_array()) throw Error(where + ": " + ctx + ".gpu_experts must be a list");
            std::set<int64_t> seen;
            for (const Json& e : g) {
                if (!e.is_number_integer() || e.get<int64_t>() < 0 ||
                    e.get<int64_t>() >= p.model.experts) {
                    throw Error(where + ": " + ctx + ".gpu_experts: " + e.dump() +
                                " is not an expert of this model (0.." +
                                std::to_string(p.model.experts - 1) + ")");
                }
                if (!seen.insert(e.get<int64_t>()).second)
                    throw Error(where + ": " + ctx + ".gpu_experts lists " + e.dump() + " twice");
                l.experts[size_t(e.get<int64_t>())] = Device::Gpu;
            }
        }
        p.layers.push_back(std::move(l));
    }
    return p;
}

void Placement::save(const std::string& path) const {
    write_file_atomically(path, to_json().dump(1) + "\n");
}

Placement Placement::load(const std::string& path) {
    return from_json(read_json_file(path, "placement file"), path);
}

void Placement::require_model(const ModelIdentity& actual, const std::string& where) const {
    if (model == actual) return;
    auto describe = [](const ModelIdentity& m) {
        return m.architecture + ", " + std::to_string(m.layers) + " layers, " +
               std::to_string(m.experts) + " experts, weights " + m.fingerprint;
    };
    throw Error(where + ": the placement was made for another model (" + describe(model) +
                "; this model: " + describe(actual) + ")");
}

std::string placement_fingerprint(const std::vector<std::string>& weight_files) {
    uint64_t h = fnv1a("placement-v1", 12);
    for (const std::string& f : weight_files) {
        std::error_code ec;
        const std::string name = fs::path(f).filename().string();
        const uint64_t size = fs::file_size(f, ec);
        h = fnv1a(name.data(), name.size(), h);
        h = fnv1a(&size, sizeof size, h);
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

}  // namespace moe
