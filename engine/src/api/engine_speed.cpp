// The engine's predicted speed (engine.h): machine rates measured on the loaded model, kept
// beside the database, and the cost model's figures for a placement the editor asks about.
#include <filesystem>

#include "api/engine.h"
#include "core/error.h"
#include "hybrid/calibration.h"
#include "hybrid/hybrid_model.h"
#include "hybrid/placement_planner.h"
#include "model/decoder_model.h"

namespace moe {

std::string Engine::machine_rates_path() const {
    const std::filesystem::path db(store_path_);
    return (db.parent_path() / "machine_rates.json").string();
}

void Engine::load_machine_rates() {
    const std::string path = machine_rates_path();
    if (!std::filesystem::exists(path)) return;
    try {
        rates_ = MachineRates::load(path);
    } catch (const std::exception&) {
        // A damaged or older file is as good as none: the editor then asks to calibrate,
        // and calibrating writes it anew.
        rates_.reset();
    }
}

void Engine::calibrate(std::function<void(const std::string&)> progress, RatesDone done) {
    post([this, progress = std::move(progress), done = std::move(done)] {
        cancel_ = false;
        std::optional<ExpertUsage> telemetry;
        DecoderModel* decoder = nullptr;
        try {
            decoder = const_cast<DecoderModel*>(&loaded_decoder());
            telemetry = collect_expert_usage(*decoder);
            CalibrationOptions o;
            // The calibration has no cancellation of its own: its progress report, between
            // two measurements, is where a cancel (or the Engine closing) ends it.
            o.progress = [this, &progress](const std::string& what) {
                if (cancel_) throw Error("calibration cancelled");
                if (progress) progress(what);
            };
            MachineRates r = calibrate_cpu(*decoder, o);
            r.expert_format = session_->info().expert_format;
            // Within the budget the model was loaded with (as `placement calibrate --gpu-budget`).
            if (auto* placed = dynamic_cast<PlacedModel*>(&session_->mutable_model()))
                calibrate_gpu(*placed, gpu_budget_, r, o);
            restore_expert_usage(*decoder, *telemetry);
            r.save(machine_rates_path());
            rates_ = r;
            done(r, "");
        } catch (const std::exception& e) {
            if (decoder && telemetry) restore_expert_usage(*decoder, *telemetry);
            done(std::nullopt, e.what());
        }
    });
}

void Engine::machine_rates(std::function<void(const std::optional<MachineRates>&)> done) {
    post([this, done = std::move(done)] { done(rates_); });
}

void Engine::predict_placement(
    Placement placement,
    std::function<void(const std::optional<Prediction>&, const std::string&)> done) {
    post([this, placement = std::move(placement), done = std::move(done)] {
        try {
            const DecoderModel& d = loaded_decoder();
            placement.require_model(model_identity(d), "placement");
            if (!rates_)
                throw Error(
                    "calibrate this machine first: the prediction needs its measured rates");
            if (placement.uses_gpu() && !rates_->has_gpu())
                throw Error(
                    "this placement puts weights on the GPU, but the machine rates have no GPU "
                    "figures: calibrate with the model loaded on the GPU");
            if (!cost_shape_) cost_shape_ = measure_cost_shape(const_cast<DecoderModel&>(d));
            const ExpertUsage usage = collect_expert_usage(d);
            Prediction p;
            p.speed = predict_speed(*cost_shape_, placement, usage.total() > 0 ? &usage : nullptr,
                                    *rates_);
            const std::string& format = session_->info().expert_format;
            if (!rates_->expert_format.empty() && rates_->expert_format != format)
                p.speed.notes.push_back("rates measured with " + rates_->expert_format +
                                        " experts, this model runs " + format);
            p.rates_machine = rates_->machine;
            p.measured = last_turn_;
            done(p, "");
        } catch (const std::exception& e) {
            // With a model loaded, its measured speed still goes with the reason.
            std::optional<Prediction> measured;
            if (session_) {
                measured.emplace();
                measured->measured = last_turn_;
            }
            done(measured, e.what());
        }
    });
}

}  // namespace moe
