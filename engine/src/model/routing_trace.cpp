#include "model/routing_trace.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/decoder_model.h"
#include "model/moe_block.h"

namespace moe {

void RoutingTrace::save(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        out << nlohmann::json{{"version", 1},
                              {"model", architecture},
                              {"layers", layers},
                              {"experts", experts},
                              {"k", k}}
                   .dump()
            << "\n";
        for (const RoutingTraceStep& s : steps)
            out << nlohmann::json{{"layer", s.layer}, {"tokens", s.tokens}, {"ids", s.ids}}.dump()
                << "\n";
        if (!out) throw Error(path + ": cannot write");
    }
    std::filesystem::rename(tmp, path);
}

RoutingTrace RoutingTrace::load(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot read the routing trace");
    RoutingTrace t;
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        const std::string where = path + ":" + std::to_string(n);
        const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) throw Error(where + ": not a JSON object");
        if (n == 1) {
            if (j.value("version", 0) != 1)
                throw Error(where + ": not a routing trace (expected \"version\": 1)");
            t.architecture = j.value("model", std::string());
            t.layers = j.value("layers", int64_t(0));
            t.experts = j.value("experts", int64_t(0));
            t.k = j.value("k", int64_t(0));
            if (t.layers <= 0 || t.experts <= 0 || t.k <= 0)
                throw Error(where + ": layers, experts and k must be positive");
            continue;
        }
        RoutingTraceStep s;
        s.layer = j.value("layer", -1);
        s.tokens = j.value("tokens", 0);
        if (s.layer < 0 || s.layer >= t.layers || s.tokens <= 0 || !j.contains("ids"))
            throw Error(where + ": a step needs a layer below " + std::to_string(t.layers) +
                        ", tokens > 0 and ids");
        s.ids = j["ids"].get<std::vector<int32_t>>();
        if (int64_t(s.ids.size()) != s.tokens * t.k)
            throw Error(where + ": " + std::to_string(s.ids.size()) + " ids for " +
                        std::to_string(s.tokens) + " tokens of " + std::to_string(t.k));
        for (const int32_t id : s.ids)
            if (id < 0 || id >= t.experts) throw Error(where + ": expert id out of range");
        t.steps.push_back(std::move(s));
    }
    if (n == 0) throw Error(path + ": empty routing trace");
    return t;
}

std::vector<std::vector<uint64_t>> RoutingTrace::counts() const {
    std::vector<std::vector<uint64_t>> c(static_cast<size_t>(layers));
    for (const RoutingTraceStep& s : steps) {
        auto& l = c[size_t(s.layer)];
        l.resize(size_t(experts), 0);
        for (const int32_t id : s.ids) ++l[size_t(id)];
    }
    return c;
}

void start_routing_trace(const DecoderModel& model, RoutingTrace& trace) {
    trace.architecture = model.info().architecture;
    trace.layers = int64_t(model.layers.size());
    for (size_t i = 0; i < model.layers.size(); ++i) {
        const auto* m = dynamic_cast<const MoeBlock*>(model.layers[i].ffn.get());
        if (!m || m->experts.empty()) continue;
        trace.experts = m->router.cfg.experts;
        trace.k = m->router.cfg.top_k;
        m->router.trace(&trace, int32_t(i));
    }
}

void stop_routing_trace(const DecoderModel& model) {
    for (const DecoderLayer& l : model.layers)
        if (const auto* m = dynamic_cast<const MoeBlock*>(l.ffn.get())) m->router.trace(nullptr, 0);
}

}  // namespace moe
