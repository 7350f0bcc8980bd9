// moestudio-cli placement: plan where a model's weights live for a GPU budget, and show or
// check saved placements (hybrid/placement.h).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "api/model_library.h"
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "hybrid/cost_model.h"
#include "hybrid/expert_cache_sim.h"
#include "hybrid/hybrid_model.h"
#include "hybrid/placement.h"
#include "hybrid/placement_export.h"
#include "hybrid/placement_planner.h"
#include "hybrid/strategy_report.h"
#include "model/decoder_model.h"
#include "model/expert_usage.h"
#include "model/generator.h"
#include "model/model.h"
#include "model/model_tokenizer.h"
#include "model/moe_block.h"
#include "model/routing_trace.h"
#include "store/usage_store.h"

namespace moecli {

namespace {

constexpr const char* kUsage =
    "usage: moestudio-cli placement plan MODEL [--gpu-budget GiB] [--cpu-experts all|none|auto] "
    "[--usage USAGE.json | --workload NAME --store DB] "
    "[--strategy uniform|frequency|front|back|balanced] "
    "[--context N] [--out FILE.json] [--json] [--rates RATES.json [--defer-experts N] "
    "[--prompt-tokens N]] [--compare [--held-out TRACE.jsonl]]\n"
    "       moestudio-cli placement calibrate MODEL --out RATES.json [--gpu-budget GiB] "
    "[--threads N] [--expert-format F]\n"
    "       moestudio-cli placement predict MODEL --placement FILE.json --rates RATES.json "
    "[--usage USAGE.json | --workload NAME --store DB] [--defer-experts N] [--json]\n"
    "       moestudio-cli placement show FILE.json [--model MODEL]\n"
    "       moestudio-cli placement export FILE.json --format llama.cpp|sglang-kt [--frequency] "
    "[--out FILE] [--launch HF_MODEL_DIR [--threads N] [--port P] [--name NAME]]\n"
    "       moestudio-cli placement record MODEL --prompts FILE [--out TRACE.jsonl] "
    "[--max-new-tokens N] [--usage-out USAGE.json [--coactivation]] [--workload NAME --store "
    "DB]\n"
    "       moestudio-cli placement replay TRACE.jsonl [--placement FILE.json] [--slots N "
    "--policy lru|lfu]";

std::unique_ptr<moe::Model> load_for_placement(const std::string& path) {
    moe::LoadOptions o;
    o.expert_format = "reference";  // sizes only: nothing needs repacking
    return moe::load_model(path, o);
}

const moe::DecoderModel& decoder_of(const moe::Model& m) {
    if (const auto* d = dynamic_cast<const moe::DecoderModel*>(&m)) return *d;
    if (const auto* p = dynamic_cast<const moe::PlacedModel*>(&m)) return p->decoder();
    throw moe::Error("this model type records no expert usage");
}

// The model's key in the telemetry store: its placement identity's fingerprint.
std::string usage_key(const moe::DecoderModel& d) {
    const moe::ModelIdentity id = moe::model_identity(d);
    return id.architecture + ":" + id.fingerprint;
}

}  // namespace

moe::DecoderModel& decoder(moe::Model& m) {
    auto* d = dynamic_cast<moe::DecoderModel*>(&m);
    if (!d) throw moe::Error("placement: this model type has no per-layer placement");
    return *d;
}

namespace {

moe::PlanOptions plan_options(const Args& args) {
    moe::PlanOptions o;
    const double gib = args.get_double("gpu-budget", 0.0);
    if (gib < 0) throw moe::Error("--gpu-budget must be >= 0 (GiB)");
    o.gpu_budget = uint64_t(gib * double(1ull << 30));
    o.cpu_experts = moe::parse_cpu_experts(args.get_or("cpu-experts", "auto"));
    o.context = args.get_int("context", o.context);
    return o;
}

// --compare: every strategy at this budget on the workload (and a held-out trace), with a
// verdict on whether the choice matters.
void print_strategy_report(const Args& args, moe::Model& model) {
    moe::ExpertUsage usage;
    if (!usage_from_args(args, model, usage))
        throw moe::Error("--compare needs the workload's telemetry (--usage or --workload)");
    moe::PlanOptions o = plan_options(args);
    o.usage = &usage;
    std::optional<moe::RoutingTrace> held_out;
    if (args.has("held-out")) held_out = moe::RoutingTrace::load(*args.get("held-out"));
    std::optional<moe::MachineRates> rates;
    if (args.has("rates")) rates = moe::MachineRates::load(*args.get("rates"));
    moe::CostOptions co;
    co.deferred_experts = args.get_int("defer-experts", 0);
    const moe::StrategyReport r =
        moe::compare_strategies(moe::measure_cost_shape(decoder(model)), o,
                                held_out ? &*held_out : nullptr, rates ? &*rates : nullptr, co);
    std::printf("%s%s\n", r.table().c_str(), r.verdict.c_str());
}

}  // namespace

bool usage_from_args(const Args& args, const moe::Model& model, moe::ExpertUsage& usage) {
    if (args.has("usage")) {
        usage = moe::ExpertUsage::load(*args.get("usage"));
        return true;
    }
    if (!args.has("workload")) return false;
    // A workload's telemetry from the database.
    if (!args.has("store")) throw moe::Error("--workload needs --store DB");
    const auto& d = decoder_of(model);
    std::vector<int64_t> shape;
    for (const auto& l : d.layers) {
        const auto* m = dynamic_cast<const moe::MoeBlock*>(l.ffn.get());
        shape.push_back(m ? int64_t(m->experts.size()) : 0);
    }
    moe::UsageStore st(*args.get("store"));
    const moe::StoredUsage su = st.load(usage_key(d), *args.get("workload"), shape);
    usage.architecture = d.info().architecture;
    usage.decode = su.decode;
    usage.counts = su.prefill;
    for (size_t l = 0; l < usage.counts.size(); ++l)
        for (size_t e = 0; e < usage.counts[l].size(); ++e) usage.counts[l][e] += su.decode[l][e];
    return true;
}

moe::Placement placement_for(const Args& args, moe::Model& model) {
    const moe::ModelFootprint f = moe::measure_footprint(decoder(model));
    if (args.has("placement")) {
        if (args.has("gpu-budget") || args.has("cpu-experts"))
            throw moe::Error("--placement cannot be combined with --gpu-budget or --cpu-experts");
        const std::string file = *args.get("placement");
        moe::Placement p = moe::Placement::load(file);
        p.require_model(f.identity, file);
        return p;
    }
    moe::PlanOptions o = plan_options(args);
    moe::ExpertUsage usage;
    if (usage_from_args(args, model, usage)) o.usage = &usage;
    if (args.has("strategy")) o.strategy = moe::parse_expert_strategy(*args.get("strategy"));
    const moe::PlanResult r = moe::plan_placement(f, o);
    for (const std::string& n : r.notes) std::fprintf(stderr, "placement: %s\n", n.c_str());
    return r.placement;
}

void save_expert_usage(const Args& args, const moe::Model& model) {
    if (!args.has("usage-out")) return;
    moe::collect_expert_usage(decoder_of(model)).save(*args.get("usage-out"));
}

namespace {

bool on_off(const Args& args, const std::string& name, bool fallback) {
    const std::string v = args.get_or(name, fallback ? "on" : "off");
    if (v != "on" && v != "off")
        throw moe::Error("--" + name + ": expected on or off, got '" + v + "'");
    return v == "on";
}

}  // namespace

PlacedRun place_model(const Args& args, std::unique_ptr<moe::Model> model) {
    PlacedRun run;
    run.placement = placement_for(args, *model);
    if (!run.placement.uses_gpu()) {
        if (args.flag("gpu-exact") || args.has("cuda-graphs") || args.has("prefill-chunk") ||
            args.has("stream-experts") || args.has("signalled-steps"))
            throw moe::Error(
                "--gpu-exact, --cuda-graphs, --signalled-steps, --prefill-chunk and "
                "--stream-experts apply to the GPU path only");
        run.model = std::move(model);
        return run;
    }
    moe::HybridOptions o;
    o.exact = args.flag("gpu-exact");
    o.cuda_graphs = on_off(args, "cuda-graphs", o.cuda_graphs);
    o.signalled_steps = on_off(args, "signalled-steps", o.signalled_steps);
    o.stream_experts = moe::parse_expert_streaming(args.get_or("stream-experts", "auto"));
    o.prefill_chunk = args.get_int("prefill-chunk", o.prefill_chunk);
    if (o.prefill_chunk < 1) throw moe::Error("--prefill-chunk must be >= 1");
    run.model = moe::make_hybrid_model(std::move(model), run.placement, o);
    return run;
}

int cmd_placement(const std::vector<std::string>& argv) {
    if (argv.empty()) throw moe::Error(kUsage);
    const std::string verb = argv[0];
    const std::vector<std::string> rest(argv.begin() + 1, argv.end());
    if (verb == "plan") {
        const Args args(
            rest, {"json", "compare"},
            {"gpu-budget", "cpu-experts", "context", "out", "usage", "strategy", "workload",
             "store", "rates", "defer-experts", "prompt-tokens", "held-out"});
        if (args.positional().size() != 1) throw moe::Error(kUsage);
        auto model = load_for_placement(args.positional()[0]);
        const moe::Placement p = placement_for(args, *model);
        if (args.has("out")) p.save(*args.get("out"));
        if (args.flag("json"))
            std::printf("%s\n", p.to_json().dump(1).c_str());
        else
            std::printf("%s\n", p.summary().c_str());
        print_prediction(args, *model, p, args.flag("json"));
        if (args.flag("compare")) print_strategy_report(args, *model);
        return 0;
    }
    if (verb == "calibrate") return placement_calibrate(rest);
    if (verb == "predict") {
        const Args args(rest, {"json"},
                        {"placement", "rates", "usage", "workload", "store", "defer-experts",
                         "prompt-tokens", "context"});
        if (args.positional().size() != 1 || !args.has("placement") || !args.has("rates"))
            throw moe::Error(kUsage);
        auto model = load_for_placement(args.positional()[0]);
        const std::string file = *args.get("placement");
        const moe::Placement p = moe::Placement::load(file);
        p.require_model(moe::measure_footprint(decoder(*model)).identity, file);
        print_prediction(args, *model, p, args.flag("json"));
        return 0;
    }
    if (verb == "show") {
        const Args args(rest, {}, {"model"});
        if (args.positional().size() != 1) throw moe::Error(kUsage);
        const std::string file = args.positional()[0];
        const moe::Placement p = moe::Placement::load(file);
        if (args.has("model")) {
            auto model = load_for_placement(*args.get("model"));
            p.require_model(moe::measure_footprint(decoder(*model)).identity, file);
        }
        std::printf("%s\n", p.summary().c_str());
        return 0;
    }
    if (verb == "record") {
        // A workload's routing: each prompt (one per line) run and continued greedily.
        const Args args(rest, {"coactivation"},
                        {"prompts", "out", "max-new-tokens", "usage-out", "workload", "store"});
        if (args.positional().size() != 1 || !args.has("prompts") ||
            !(args.has("out") || args.has("store")))
            throw moe::Error(kUsage);
        if (args.has("workload") != args.has("store"))
            throw moe::Error("--workload and --store go together");
        const std::string path = args.positional()[0];
        auto model = moe::load_model(path, moe::LoadOptions{});
        const auto tokenizer = moe::load_model_tokenizer(path);
        auto* d = dynamic_cast<moe::DecoderModel*>(model.get());
        if (!d) throw moe::Error(path + ": not a per-layer decoder model");
        std::ifstream in(*args.get("prompts"));
        if (!in) throw moe::Error(*args.get("prompts") + ": cannot read");
        const int64_t gen = args.get_int("max-new-tokens", 32);
        moe::RoutingTrace trace;
        moe::reset_expert_usage(*d);
        if (args.flag("coactivation")) moe::count_expert_coactivation(*d, true);
        moe::start_routing_trace(*d, trace);
        std::string line;
        int prompts = 0;
        while (std::getline(in, line)) {
            if (line.empty()) continue;
            ++prompts;
            moe::GenerateRequest req;  // greedy, until the end of text or `gen` tokens
            req.prompt = tokenizer->encode(line, true);
            req.max_new_tokens = int(gen);
            req.sampling.greedy = true;
            for (const int64_t id : model->info().eos_token_ids)
                req.stop_ids.push_back(int32_t(id));
            if (req.prompt.empty()) continue;
            moe::KvCache cache = model->new_cache();
            moe::generate(*model, cache, req);
        }
        moe::stop_routing_trace(*d);
        const moe::ExpertUsage usage = moe::collect_expert_usage(*d);
        if (args.has("out")) trace.save(*args.get("out"));
        if (args.has("usage-out")) usage.save(*args.get("usage-out"));
        if (args.has("store")) {
            moe::UsageStore st(*args.get("store"));
            st.add(usage_key(*d), *args.get("workload"), {usage.prefill(), usage.decode});
        }
        std::fprintf(
            stderr, "recorded %zu routing decisions of %d prompts%s%s\n", trace.steps.size(),
            prompts, args.has("out") ? (" to " + *args.get("out")).c_str() : "",
            args.has("store") ? (" into workload '" + *args.get("workload") + "'").c_str() : "");
        return 0;
    }
    if (verb == "replay") {
        // What a placement and expert caches would serve from the GPU on a recorded workload.
        const Args args(rest, {}, {"slots", "policy", "placement"});
        if (args.positional().size() != 1) throw moe::Error(kUsage);
        const moe::RoutingTrace trace = moe::RoutingTrace::load(args.positional()[0]);
        if (args.has("placement")) {
            const auto h =
                moe::placement_hit_rate(trace, moe::Placement::load(*args.get("placement")));
            std::printf("placement: %.1f %% of %llu routed experts on the GPU\n", 100.0 * h.rate(),
                        (unsigned long long)h.lookups);
        }
        const int64_t slots = args.get_int("slots", 0);
        if (slots > 0) {
            const auto policy = moe::parse_cache_policy(args.get_or("policy", "lru"));
            const auto h = moe::simulate_expert_cache(trace, slots, policy);
            std::printf("cache of %lld slots per layer (%s): %.1f %% hits of %llu\n",
                        (long long)slots, args.get_or("policy", "lru").c_str(), 100.0 * h.rate(),
                        (unsigned long long)h.lookups);
        }
        return 0;
    }
    if (verb == "export") {
        // Another engine's options for this placement (approximated where it cannot say as
        // much; the note says how). sglang-kt also gets the exact per-layer GPU experts.
        const Args args(rest, {"frequency"},
                        {"format", "out", "launch", "threads", "port", "name"});
        if (args.positional().size() != 1 || !args.has("format")) throw moe::Error(kUsage);
        const moe::Placement p = moe::Placement::load(args.positional()[0]);
        const std::string format = *args.get("format");
        moe::ExportedPlacement e;
        if (format == "llama.cpp") {
            e = moe::export_llama_cpp(p);
        } else if (format == "sglang-kt") {
            e = moe::export_sglang_kt(p, args.flag("frequency"));
            if (args.has("out")) {
                std::ofstream f(*args.get("out"));
                f << moe::sglang_kt_experts(p).dump() << "\n";
                if (!f) throw moe::Error(*args.get("out") + ": cannot write");
            }
        } else {
            throw moe::Error("--format: expected llama.cpp or sglang-kt, got '" + format + "'");
        }
        if (args.has("launch")) {  // the whole SGLang + KTransformers command line
            if (format != "sglang-kt") throw moe::Error("--launch goes with --format sglang-kt");
            const moe::ModelDescription d = moe::describe_model(*args.get("launch"));
            if (!d.error.empty()) throw moe::Error(d.error);
            moe::SglangLaunch l;
            l.model_path =
                std::filesystem::absolute(*args.get("launch")).lexically_normal().string();
            l.served_name = args.get_or("name", "");
            l.weight_dtype = d.dtype;
            l.cpu_threads = int(args.get_int("threads", 0));
            l.port = int(args.get_int("port", 30000));
            std::printf("%s", moe::sglang_kt_launch_command(p, args.flag("frequency"), l).c_str());
        } else {
            std::printf("%s\n", e.options.c_str());
        }
        std::fprintf(stderr, "%s\n", e.note.c_str());
        return 0;
    }
    throw moe::Error("unknown placement command '" + verb + "'\n" + kUsage);
}

}  // namespace moecli
