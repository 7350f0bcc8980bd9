#include "api/engine.h"

#include <filesystem>

#include "core/error.h"
#include "core/memory_info.h"
#include "core/trace.h"
#include "hybrid/hybrid_model.h"
#include "hybrid/placement_planner.h"
#include "model/decoder_model.h"
#include "model/model_tokenizer.h"

namespace moe {

Engine::Engine(std::string store_path) : store_path_(std::move(store_path)) {
    thread_ = std::thread([this] { loop(); });
    post([this] {
        store_ = std::make_unique<ConversationStore>(store_path_);
        load_machine_rates();
    });
}

Engine::~Engine() {
    cancel_ = true;
    {
        std::lock_guard lock(m_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void Engine::post(std::function<void()> job) {
    {
        std::lock_guard lock(m_);
        queue_.push_back(std::move(job));
    }
    cv_.notify_all();
}

void Engine::loop() {
    trace::set_thread_name("engine");  // its lane in the profiler's timeline
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(m_);
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stop_ and nothing left
            job = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
        }
        try {
            job();
        } catch (...) {
            // Jobs report their own errors; one that escapes must not end the thread.
        }
        {
            std::lock_guard lock(m_);
            busy_ = false;
        }
        cv_.notify_all();
    }
}

void Engine::wait_idle() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void Engine::load(std::string model_path, LoadOptions options, Placing placing, LoadDone done) {
    post([this, path = std::move(model_path), options, placing, done = std::move(done)] {
        try {
            session_.reset();  // free the old model first: two may not fit
            gpu_budget_ = 0;
            cost_shape_.reset();
            last_turn_ = {};
            std::unique_ptr<Model> model = load_model(path, options);
            std::string placement = "everything on the CPU";
            if (placing.gpu_budget_gib > 0) {
                auto* d = dynamic_cast<DecoderModel*>(model.get());
                if (!d) throw Error("this model type has no per-layer placement");
                PlanOptions o;
                o.gpu_budget = uint64_t(placing.gpu_budget_gib * double(1ull << 30));
                o.cpu_experts = parse_cpu_experts(placing.cpu_experts);
                const Placement p = plan_placement(measure_footprint(*d), o).placement;
                if (p.uses_gpu()) {
                    placement = p.summary();
                    model = make_hybrid_model(std::move(model), p);
                    gpu_budget_ = o.gpu_budget;
                }
            }
            auto tokenizer = load_model_tokenizer(path);
            // A base model without a chat template continues the text it is given.
            std::optional<ChatTemplate> tmpl;
            bool plain = false;
            try {
                tmpl = load_model_chat_template(path);
            } catch (const Error&) {
                tmpl = ChatSession::plain_continuation_template();
                plain = true;
            }
            if (!store_) store_ = std::make_unique<ConversationStore>(store_path_);
            const std::string name = std::filesystem::path(path).filename().string();
            session_ = std::make_unique<ChatSession>(std::move(model), std::move(tokenizer),
                                                     std::move(*tmpl), *store_, name, plain);
            if (plain) placement += " · no chat template: the model continues your text";
            if (done) done(Loaded{session_->info(), placement}, "");
        } catch (const std::exception& e) {
            session_.reset();
            if (done) done(std::nullopt, e.what());
        }
    });
}

void Engine::unload(std::function<void()> done) {
    post([this, done = std::move(done)] {
        session_.reset();
        cost_shape_.reset();
        last_turn_ = {};
        if (done) done();
    });
}

void Engine::chat(const std::function<ChatReply(ChatSession&)>& turn, const ReplyDone& done) {
    if (!session_) {
        if (done) done(std::nullopt, "no model is loaded");
        return;
    }
    cancel_ = false;
    try {
        const ChatReply r = turn(*session_);
        // Only turns that decoded count as the running model's measured speed.
        if (r.stats.generated_tokens > 1) last_turn_ = r.stats;
        if (done) done(r, "");
    } catch (const std::exception& e) {
        if (done) done(std::nullopt, e.what());
    }
}

void Engine::send(int64_t conversation, std::string text, ChatSettings settings,
                  TextCallback on_text, ReplyDone done) {
    post([=, this, text = std::move(text), on_text = std::move(on_text), done = std::move(done)] {
        chat(
            [&](ChatSession& s) { return s.send(conversation, text, settings, on_text, &cancel_); },
            done);
    });
}

void Engine::regenerate(int64_t assistant_message, ChatSettings settings, TextCallback on_text,
                        ReplyDone done) {
    post([=, this, on_text = std::move(on_text), done = std::move(done)] {
        chat(
            [&](ChatSession& s) {
                return s.regenerate(assistant_message, settings, on_text, &cancel_);
            },
            done);
    });
}

void Engine::edit(int64_t user_message, std::string text, ChatSettings settings,
                  TextCallback on_text, ReplyDone done) {
    post([=, this, text = std::move(text), on_text = std::move(on_text), done = std::move(done)] {
        chat(
            [&](ChatSession& s) { return s.edit(user_message, text, settings, on_text, &cancel_); },
            done);
    });
}

void Engine::model_map(std::function<void(const std::optional<ModelMap>&)> done) {
    post([this, done = std::move(done)] {
        if (!session_) {
            done(std::nullopt);
            return;
        }
        const Model& m = session_->model();
        const DecoderModel* d = dynamic_cast<const DecoderModel*>(&m);
        const auto* placed = dynamic_cast<const PlacedModel*>(&m);
        if (placed) d = &placed->decoder();
        if (!d) {
            done(std::nullopt);
            return;
        }
        ModelMap map;
        map.info = m.info();
        map.usage = collect_expert_usage(*d);
        map.footprint = measure_footprint(const_cast<DecoderModel&>(*d));  // reads sizes only
        map.gpu_budget = gpu_budget_;
        if (placed) {
            map.placement = placed->placement();
        } else {
            std::vector<bool> moe_layers;
            for (const auto& l : map.usage.counts) moe_layers.push_back(!l.empty());
            map.placement = Placement::all_cpu(model_identity(*d), moe_layers);
        }
        done(map);
    });
}

void Engine::apply_placement(Placement placement, std::function<void(const std::string&)> done) {
    post([this, placement = std::move(placement), done = std::move(done)] {
        try {
            if (!session_) throw Error("no model is loaded");
            auto* placed = dynamic_cast<PlacedModel*>(&session_->mutable_model());
            if (!placed)
                throw Error(
                    "this model runs on the CPU only: load it with a GPU memory budget "
                    "(a CUDA build with a GPU) to move experts to the GPU");
            const uint64_t need = gpu_weight_bytes(
                measure_footprint(const_cast<DecoderModel&>(placed->decoder())), placement);
            if (need > gpu_budget_)
                throw Error("the placement puts " + format_gib(need) +
                            " of weights on the GPU; the budget is " + format_gib(gpu_budget_));
            placed->apply_placement(placement);
            done("");
        } catch (const std::exception& e) {
            done(e.what());
        }
    });
}

const DecoderModel& Engine::loaded_decoder() const {
    if (!session_) throw Error("no model is loaded");
    const Model& m = session_->model();
    if (const auto* placed = dynamic_cast<const PlacedModel*>(&m)) return placed->decoder();
    const auto* d = dynamic_cast<const DecoderModel*>(&m);
    if (!d) throw Error("this model type has no per-layer placement");
    return *d;
}

PlacementProfileStore& Engine::profiles() {
    if (!profiles_) profiles_ = std::make_unique<PlacementProfileStore>(store_path_);
    return *profiles_;
}

void Engine::plan_experts(Placement base, std::string strategy, uint64_t weight_budget,
                          PlacementDone done) {
    post([this, base = std::move(base), strategy = std::move(strategy), weight_budget,
          done = std::move(done)] {
        try {
            const DecoderModel& d = loaded_decoder();
            const ModelFootprint f = measure_footprint(const_cast<DecoderModel&>(d));
            base.require_model(f.identity, "placement");
            const ExpertStrategy s = parse_expert_strategy(strategy);
            // Telemetry ranks the experts once something was routed; all-zero counts would
            // only look like a ranking.
            const ExpertUsage usage = collect_expert_usage(d);
            const bool counted = usage.total() > 0;
            if (s == ExpertStrategy::Frequency && !counted)
                throw Error(
                    "the frequency preset needs expert telemetry: chat with the model first");
            done(moe::plan_experts(f, base, weight_budget, s, counted ? &usage : nullptr), "");
        } catch (const std::exception& e) {
            done(std::nullopt, e.what());
        }
    });
}

void Engine::placement_profiles(
    std::function<void(const std::vector<std::string>&, const std::string&)> done) {
    post([this, done = std::move(done)] {
        try {
            std::vector<std::string> names;
            for (const auto& p : profiles().list(model_identity(loaded_decoder())))
                names.push_back(p.name);
            done(names, "");
        } catch (const std::exception& e) {
            done({}, e.what());
        }
    });
}

void Engine::save_placement_profile(std::string name, Placement placement,
                                    std::function<void(const std::string&)> done) {
    post([this, name = std::move(name), placement = std::move(placement), done = std::move(done)] {
        try {
            placement.require_model(model_identity(loaded_decoder()), "placement");
            profiles().save(name, placement);
            done("");
        } catch (const std::exception& e) {
            done(e.what());
        }
    });
}

void Engine::load_placement_profile(std::string name, PlacementDone done) {
    post([this, name = std::move(name), done = std::move(done)] {
        try {
            done(profiles().load(model_identity(loaded_decoder()), name), "");
        } catch (const std::exception& e) {
            done(std::nullopt, e.what());
        }
    });
}

void Engine::delete_placement_profile(std::string name,
                                      std::function<void(const std::string&)> done) {
    post([this, name = std::move(name), done = std::move(done)] {
        try {
            profiles().remove(model_identity(loaded_decoder()), name);
            done("");
        } catch (const std::exception& e) {
            done(e.what());
        }
    });
}

void Engine::with_store(std::function<void(ConversationStore&)> fn,
                        std::function<void(const std::string&)> on_error) {
    post([this, fn = std::move(fn), on_error = std::move(on_error)] {
        try {
            if (!store_) store_ = std::make_unique<ConversationStore>(store_path_);
            fn(*store_);
        } catch (const std::exception& e) {
            if (on_error) on_error(e.what());
        }
    });
}

}  // namespace moe
