#include "model/expert_usage.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/decoder_model.h"
#include "model/moe_block.h"

namespace moe {

uint64_t ExpertUsage::total() const {
    uint64_t n = 0;
    for (const auto& l : counts)
        for (uint64_t c : l) n += c;
    return n;
}

nlohmann::json ExpertUsage::to_json() const {
    return {{"version", 1}, {"model", architecture}, {"layers", counts}};
}

ExpertUsage ExpertUsage::from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object() || j.value("version", 0) != 1)
        throw Error(where + ": not an expert usage file (expected \"version\": 1)");
    if (!j.contains("layers") || !j["layers"].is_array())
        throw Error(where + ": \"layers\" must be a list of count lists");
    ExpertUsage u;
    u.architecture = j.value("model", std::string());
    for (const auto& l : j["layers"]) {
        if (!l.is_array()) throw Error(where + ": every entry of \"layers\" must be a list");
        std::vector<uint64_t> c;
        for (const auto& v : l) {
            if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
                throw Error(where + ": counts must be non-negative integers");
            c.push_back(v.get<uint64_t>());
        }
        u.counts.push_back(std::move(c));
    }
    return u;
}

void ExpertUsage::save(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        out << to_json().dump() << "\n";
        if (!out) throw Error(path + ": cannot write");
    }
    std::filesystem::rename(tmp, path);
}

ExpertUsage ExpertUsage::load(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot read");
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) throw Error(path + ": not valid JSON");
    return from_json(j, path);
}

ExpertUsage collect_expert_usage(const DecoderModel& model) {
    ExpertUsage u;
    u.architecture = model.info().architecture;
    for (const DecoderLayer& l : model.layers) {
        const auto* m = dynamic_cast<const MoeBlock*>(l.ffn.get());
        std::vector<uint64_t> c;
        if (m && !m->experts.empty()) {
            c = m->router.usage();
            c.resize(m->experts.size(), 0);  // a router that has not run yet
        }
        u.counts.push_back(std::move(c));
    }
    return u;
}

void reset_expert_usage(const DecoderModel& model) {
    for (const DecoderLayer& l : model.layers)
        if (const auto* m = dynamic_cast<const MoeBlock*>(l.ffn.get())) m->router.reset_usage();
}

}  // namespace moe
