#include "model/expert_usage.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "model/decoder_model.h"
#include "model/moe_block.h"

namespace moe {

uint64_t ExpertUsage::total() const {
    uint64_t n = 0;
    for (const auto& l : counts)
        for (uint64_t c : l) n += c;
    return n;
}

std::vector<std::vector<uint64_t>> ExpertUsage::prefill() const {
    std::vector<std::vector<uint64_t>> p = counts;
    for (size_t l = 0; l < p.size() && l < decode.size(); ++l)
        for (size_t e = 0; e < p[l].size() && e < decode[l].size(); ++e) p[l][e] -= decode[l][e];
    return p;
}

nlohmann::json ExpertUsage::to_json() const {
    nlohmann::json j = {
        {"version", 2}, {"model", architecture}, {"layers", counts}, {"decode", decode}};
    if (!coactivation.empty()) j["coactivation"] = coactivation;
    return j;
}

ExpertUsage ExpertUsage::from_json(const nlohmann::json& j, const std::string& where) {
    const int version = j.is_object() ? j.value("version", 0) : 0;
    if (version != 1 && version != 2)
        throw Error(where + ": not an expert usage file (expected \"version\": 1 or 2)");
    const auto read = [&](const char* key) {
        if (!j.contains(key) || !j[key].is_array())
            throw Error(where + ": \"" + key + "\" must be a list of count lists");
        std::vector<std::vector<uint64_t>> out;
        for (const auto& l : j[key]) {
            if (!l.is_array())
                throw Error(where + ": every entry of \"" + key + "\" must be a list");
            std::vector<uint64_t> c;
            for (const auto& v : l) {
                if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
                    throw Error(where + ": counts must be non-negative integers");
                c.push_back(v.get<uint64_t>());
            }
            out.push_back(std::move(c));
        }
        return out;
    };
    ExpertUsage u;
    u.architecture = j.value("model", std::string());
    u.counts = read("layers");
    if (version >= 2) {
        u.decode = read("decode");
        bool fits = u.decode.size() == u.counts.size();
        for (size_t l = 0; fits && l < u.counts.size(); ++l) {
            fits = u.decode[l].size() == u.counts[l].size();
            for (size_t e = 0; fits && e < u.counts[l].size(); ++e)
                fits = u.decode[l][e] <= u.counts[l][e];
        }
        if (!fits)
            throw Error(where +
                        ": \"decode\" must have the shape of \"layers\" and counts "
                        "no larger");
        if (j.contains("coactivation")) {
            u.coactivation = read("coactivation");
            bool fits = u.coactivation.size() == u.counts.size();
            for (size_t l = 0; fits && l < u.counts.size(); ++l)
                fits = u.coactivation[l].size() == u.counts[l].size() * u.counts[l].size();
            if (!fits)
                throw Error(where +
                            ": \"coactivation\" must hold experts x experts counts per "
                            "layer");
        }
    } else {
        u.decode.resize(u.counts.size());
        for (size_t l = 0; l < u.counts.size(); ++l) u.decode[l].assign(u.counts[l].size(), 0);
    }
    return u;
}

void ExpertUsage::save(const std::string& path) const {
    write_file_atomically(path, to_json().dump() + "\n");
}

ExpertUsage ExpertUsage::load(const std::string& path) {
    return from_json(read_json_file(path, "expert usage file"), path);
}

ExpertUsage collect_expert_usage(const DecoderModel& model) {
    ExpertUsage u;
    u.architecture = model.info().architecture;
    for (const DecoderLayer& l : model.layers) {
        const auto* m = dynamic_cast<const MoeBlock*>(l.ffn.get());
        std::vector<uint64_t> c, d;
        if (m && !m->experts.empty()) {
            c = m->router.usage();
            d = m->router.decode_usage();
            c.resize(m->experts.size(), 0);  // a router that has not run yet
            d.resize(m->experts.size(), 0);
        }
        u.counts.push_back(std::move(c));
        u.decode.push_back(std::move(d));
    }
    bool any = false;
    for (const DecoderLayer& l : model.layers)
        if (const auto* m = dynamic_cast<const MoeBlock*>(l.ffn.get()))
            any |= !m->router.coactivation().empty();
    if (any) {
        for (const DecoderLayer& l : model.layers) {
            const auto* m = dynamic_cast<const MoeBlock*>(l.ffn.get());
            u.coactivation.push_back(m && !m->experts.empty() ? m->router.coactivation()
                                                              : std::vector<uint64_t>{});
        }
    }
    return u;
}

void count_expert_coactivation(const DecoderModel& model, bool on) {
    for (const DecoderLayer& l : model.layers)
        if (const auto* m = dynamic_cast<const MoeBlock*>(l.ffn.get()))
            if (!m->experts.empty()) m->router.count_coactivation(on);
}

void reset_expert_usage(const DecoderModel& model) {
    for (const DecoderLayer& l : model.layers)
        if (const auto* m = dynamic_cast<const MoeBlock*>(l.ffn.get())) m->router.reset_usage();
}

void restore_expert_usage(const DecoderModel& model, const ExpertUsage& usage) {
    for (size_t i = 0; i < model.layers.size(); ++i) {
        const auto* m = dynamic_cast<const MoeBlock*>(model.layers[i].ffn.get());
        if (!m || m->experts.empty()) continue;
        const auto at = [&](const std::vector<std::vector<uint64_t>>& v) {
            return i < v.size() ? v[i] : std::vector<uint64_t>{};
        };
        // Co-activation stays off where it was off (an empty list), as it was counted.
        m->router.restore_usage(at(usage.counts), at(usage.decode),
                                usage.coactivation.empty()
                                    ? std::vector<uint64_t>(m->router.coactivation().size(), 0)
                                    : at(usage.coactivation));
    }
}

}  // namespace moe
