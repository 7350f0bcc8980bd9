#pragma once
// The narrow API the desktop app and the server use: one engine thread owns the loaded model,
// its chat session and the conversation store, and runs requests in the order they come.
// Every call returns at once; its results (streamed text, replies, errors as text a user can
// act on) come back through callbacks invoked on the engine thread (the GUI forwards them to
// its own thread with queued signals). cancel() may be called from any thread.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "api/adapter_chat.h"
#include "api/chat_session.h"
#include "hybrid/cost_model.h"
#include "hybrid/placement.h"
#include "hybrid/placement_planner.h"
#include "model/expert_usage.h"
#include "model/model.h"
#include "store/conversation_store.h"
#include "store/placement_profiles.h"

namespace moe {

class Engine {
  public:
    // Opens (creating) the conversation database at `store_path` on the engine thread.
    explicit Engine(std::string store_path);
    // Stops a running generation, finishes the queue, joins the thread.
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Where a loaded model's weights go: gpu_budget_gib 0 runs everything on the CPU; above 0,
    // the planner (hybrid/placement_planner.h) fills that much GPU memory (with the experts
    // chosen by cpu_experts: "auto", "all" on the CPU, or "none").
    struct Placing {
        double gpu_budget_gib = 0.0;
        std::string cpu_experts = "auto";
    };
    struct Loaded {
        ModelInfo info;
        std::string placement;  // Placement::summary(), e.g. "on the GPU: attention 48/48 ..."
    };
    using LoadDone = std::function<void(const std::optional<Loaded>&, const std::string& error)>;
    using ReplyDone =
        std::function<void(const std::optional<ChatReply>&, const std::string& error)>;

    // Loads a model (HF folder or GGUF), replacing the one loaded.
    void load(std::string model_path, LoadOptions options, Placing placing, LoadDone done);
    void load(std::string model_path, LoadOptions options, LoadDone done) {
        load(std::move(model_path), std::move(options), Placing{}, std::move(done));
    }
    void unload(std::function<void()> done = {});
    void send(int64_t conversation, std::string text, ChatSettings settings, TextCallback on_text,
              ReplyDone done);
    void regenerate(int64_t assistant_message, ChatSettings settings, TextCallback on_text,
                    ReplyDone done);
    void edit(int64_t user_message, std::string text, ChatSettings settings, TextCallback on_text,
              ReplyDone done);
    // The loaded model's map: where each layer's parts and each routed expert live, and how
    // often each expert was chosen since loading (expert telemetry). `done` gets nullopt when
    // no model is loaded.
    struct ModelMap {
        ModelInfo info;
        Placement placement;
        ExpertUsage usage;
        ModelFootprint footprint;  // bytes of each part on the GPU
        uint64_t gpu_budget = 0;   // the budget the model was loaded with (0: CPU only)
    };
    void model_map(std::function<void(const std::optional<ModelMap>&)> done);
    // Moves the loaded model's experts to match `placement` without reloading it (the GPU
    // path); `done` gets "" or the reason it could not (no model, CPU-only model, another
    // model's placement, too little GPU memory).
    void apply_placement(Placement placement, std::function<void(const std::string&)> done);
    // A preset for the placement editor: `base` (the loaded model's placement as edited) with
    // its routed experts chosen again by a planner strategy ("uniform", "frequency", "front",
    // "back", "balanced": hybrid/placement_planner.h, as `placement plan --strategy`) within
    // `weight_budget` bytes of GPU weights, ranked by the telemetry counted since loading.
    // `done` gets the placement or the reason (no model, frequency without telemetry, ...).
    using PlacementDone =
        std::function<void(const std::optional<Placement>&, const std::string& error)>;
    void plan_experts(Placement base, std::string strategy, uint64_t weight_budget,
                      PlacementDone done);
    // Named placements of the loaded model, kept in the database (store/placement_profiles.h)
    // under its identity. Errors (no model loaded, a placement for another model, an empty
    // name) come back as text; a profile that is not there loads as nullopt with "".
    void placement_profiles(
        std::function<void(const std::vector<std::string>& names, const std::string& error)> done);
    void save_placement_profile(std::string name, Placement placement,
                                std::function<void(const std::string& error)> done);
    void load_placement_profile(std::string name, PlacementDone done);
    void delete_placement_profile(std::string name,
                                  std::function<void(const std::string& error)> done);
    // Predicted speed (hybrid/cost_model.h). The machine's rates are measured on the loaded
    // model by calibrate() and kept in machine_rates_path(), read again when an Engine starts.
    // calibrate: the CPU rates (hybrid/calibration.h), and the GPU part's when the model was
    // loaded onto the GPU; `progress` gets what is being measured (on the engine thread).
    // cancel() stops it between two measurements with "calibration cancelled", keeping the
    // rates there were. The synthetic tokens it runs do not count as expert telemetry.
    using RatesDone =
        std::function<void(const std::optional<MachineRates>&, const std::string& error)>;
    void calibrate(std::function<void(const std::string& what)> progress, RatesDone done);
    // The rates predictions use now (nullopt: none measured yet).
    void machine_rates(std::function<void(const std::optional<MachineRates>&)> done);
    // `<folder of the database>/machine_rates.json`.
    std::string machine_rates_path() const;
    struct Prediction {
        SpeedPrediction speed;      // for the placement asked about, at the telemetry's workload
        std::string rates_machine;  // what the rates were measured on
        // The running model's last chat turn that decoded, measured (zeros before one):
        // its decode and prompt tok/s (a prompt mostly from the KV cache is short).
        GenerateStats measured;
    };
    // The cost model's figures for `placement` of the loaded model, with the expert telemetry
    // counted since loading as the workload (every expert equally likely before any). `done`
    // gets them or the reason there are none: no model, another model's placement, "calibrate
    // this machine first", or GPU weights with rates that have no GPU figures (with a model
    // loaded, the reason comes with a Prediction that holds only `measured`).
    void predict_placement(
        Placement placement,
        std::function<void(const std::optional<Prediction>&, const std::string& error)> done);
    // "Chat with this adapter" (api/adapter_chat.h): `prompt` answered by the model at
    // `model_path`, then by the same model carrying `adapter_path`, streamed to `on_text` with
    // the side (0 base, 1 adapter). The pair stays loaded, beside the chat's model, for the next
    // prompt to the same paths until close_adapter_chat(). cancel() stops the side running and
    // the other is not started; `done` then gets what there was.
    struct AdapterAnswers {
        AdapterChat::Answer base, adapted;
    };
    void adapter_chat(
        std::string model_path, std::string adapter_path, std::string prompt, ChatSettings settings,
        std::function<void(int side, const std::string& piece)> on_text,
        std::function<void(const std::optional<AdapterAnswers>&, const std::string& error)> done);
    void close_adapter_chat(std::function<void()> done = {});
    // Runs `fn` with the store on the engine thread (reads and writes off the caller's thread);
    // an exception it throws is passed to `on_error` (when given) as text.
    void with_store(std::function<void(ConversationStore&)> fn,
                    std::function<void(const std::string&)> on_error = {});
    // Stops the generation running now (its text so far is kept and stored).
    void cancel() { cancel_ = true; }
    // Waits until every request queued so far has run (tests, shutdown).
    void wait_idle();

  private:
    void post(std::function<void()> job);
    void loop();
    // Runs a chat turn with the session, mapping errors (no model, engine errors) to text.
    void chat(const std::function<ChatReply(ChatSession&)>& turn, const ReplyDone& done);

    std::string store_path_;
    // The loaded model's decoder (under a PlacedModel too); throws moe::Error when none is.
    const DecoderModel& loaded_decoder() const;
    PlacementProfileStore& profiles();

    std::unique_ptr<ConversationStore> store_;
    // Machine rates (engine_speed.cpp) and the loaded model's sizes as the cost model reads
    // them (measured on first use: it walks every tensor).
    void load_machine_rates();
    std::optional<MachineRates> rates_;
    std::optional<CostShape> cost_shape_;
    GenerateStats last_turn_;                          // the loaded model's last chat turn
    std::unique_ptr<PlacementProfileStore> profiles_;  // opened on first use
    std::unique_ptr<ChatSession> session_;
    uint64_t gpu_budget_ = 0;  // of the loaded model
    // "Chat with this adapter"'s two models (engine_adapter_chat.cpp), loaded on demand.
    std::unique_ptr<AdapterChat> adapter_chat_;
    std::atomic<bool> cancel_{false};
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool busy_ = false, stop_ = false;
    std::thread thread_;
};

}  // namespace moe
