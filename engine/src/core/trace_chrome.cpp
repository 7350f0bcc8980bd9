#include "core/trace_chrome.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moe::trace {

namespace {

using nlohmann::json;

constexpr int kPid = 1;

double to_us(int64_t ns) {
    return double(ns) / 1e3;
}
int64_t to_ns(const json& us) {
    return int64_t(std::llround(us.get<double>() * 1e3));
}

json metadata(const char* what, int32_t tid, json args) {
    return json{
        {"name", what}, {"ph", "M"}, {"pid", kPid}, {"tid", tid}, {"args", std::move(args)}};
}

int64_t int_arg(const json& args, const char* key, int64_t fallback) {
    if (!args.is_object()) return fallback;
    auto it = args.find(key);
    return it != args.end() && it->is_number() ? it->get<int64_t>() : fallback;
}

}  // namespace

std::string to_chrome_json(const Capture& capture) {
    json events = json::array();
    events.push_back(metadata("process_name", 0, {{"name", "MoE Studio"}}));
    for (size_t i = 0; i < capture.lanes.size(); ++i) {
        const Lane& l = capture.lanes[i];
        events.push_back(metadata("thread_name", l.id, {{"name", l.name}}));
        events.push_back(metadata("thread_sort_index", l.id, {{"sort_index", int64_t(i)}}));
    }
    for (const Span& s : capture.spans) {
        json args = json::object();
        if (s.layer >= 0) args["layer"] = s.layer;
        if (s.token >= 0) args["token"] = s.token;
        events.push_back(json{{"name", s.name},
                              {"cat", stage_name(s.stage)},
                              {"ph", "X"},
                              {"pid", kPid},
                              {"tid", s.lane},
                              {"ts", to_us(s.begin_ns)},
                              {"dur", to_us(s.duration_ns())},
                              {"args", std::move(args)}});
    }
    json doc{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ns"}};
    if (capture.dropped > 0) doc["otherData"] = {{"dropped_spans", capture.dropped}};
    return doc.dump();
}

Capture from_chrome_json(std::string_view text) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(std::string("not a Chrome trace (invalid JSON): ") + e.what());
    }
    const json* events = &doc;
    if (doc.is_object()) {
        auto it = doc.find("traceEvents");
        require(it != doc.end() && it->is_array(), "not a Chrome trace: no \"traceEvents\" array");
        events = &*it;
    }
    require(events->is_array(), "not a Chrome trace: neither an object nor an event array");

    Capture c;
    std::map<int64_t, std::string> names;       // tid -> thread_name
    std::map<int64_t, std::vector<json>> open;  // tid -> "B" events awaiting their "E"
    auto add = [&](const json& e, int64_t begin, int64_t end) {
        Span s;
        s.begin_ns = begin;
        s.end_ns = end;
        s.lane = int32_t(e.value("tid", int64_t(0)));
        s.name = e.value("name", std::string());
        s.stage = stage_from_name(e.value("cat", std::string()));
        const json args = e.value("args", json::object());
        s.layer = int32_t(int_arg(args, "layer", -1));
        s.token = int_arg(args, "token", -1);
        c.spans.push_back(std::move(s));
        if (!names.count(c.spans.back().lane)) names[c.spans.back().lane] = {};
    };
    try {
        for (const json& e : *events) {
            if (!e.is_object()) continue;
            const std::string ph = e.value("ph", std::string());
            if (ph == "M" && e.value("name", std::string()) == "thread_name") {
                names[e.value("tid", int64_t(0))] = e["args"].value("name", std::string());
            } else if (ph == "X" && e.contains("ts")) {
                const int64_t begin = to_ns(e["ts"]);
                add(e, begin, begin + (e.contains("dur") ? to_ns(e["dur"]) : 0));
            } else if (ph == "B" && e.contains("ts")) {
                open[e.value("tid", int64_t(0))].push_back(e);
            } else if (ph == "E" && e.contains("ts")) {
                auto& stack = open[e.value("tid", int64_t(0))];
                if (stack.empty()) continue;
                const json b = std::move(stack.back());
                stack.pop_back();
                add(b, to_ns(b["ts"]), to_ns(e["ts"]));
            }
        }
    } catch (const json::exception& e) {
        throw Error(std::string("malformed Chrome trace event: ") + e.what());
    }
    for (const auto& [tid, name] : names)
        c.lanes.push_back({int32_t(tid), name.empty() ? "thread " + std::to_string(tid) : name});
    if (doc.is_object() && doc.contains("otherData") && doc["otherData"].is_object())
        c.dropped = int_arg(doc["otherData"], "dropped_spans", 0);
    c.sort();
    return c;
}

}  // namespace moe::trace
