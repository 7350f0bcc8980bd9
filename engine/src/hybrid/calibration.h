#pragma once
// Measures the rates of the cost model (cost_model.h) on this machine with the model the user
// wants to place: its own experts, format and shape, so that nothing is extrapolated from
// another kind of weight.
//
// CPU: the fused operator on the model's experts — one token routed to 1 and to k random
// experts of a random layer (the difference gives the bytes per second, the rest the fixed
// cost of a call), then a batch of tokens (the time per (token, expert) pair for prefill);
// whole CPU decode steps then give the rate at which the attention and dense weights are read.
// GPU (when `placed` is given): decode steps of the hybrid pipeline with every expert on the
// CPU (the GPU part of a layer, the per-token rest) and, when they fit, every expert on the
// GPU (the GPU experts' read rate), then a prompt batch (GEMM and attention rates).
#include <functional>
#include <string>

#include "hybrid/cost_model.h"

namespace moe {

class PlacedModel;

struct CalibrationOptions {
    int decode_steps = 16;    // timed steps per measurement (after one warm-up step)
    int operator_calls = 64;  // timed fused-operator calls per size
    int64_t prompt_tokens = 256;
    std::function<void(const std::string&)> progress;  // what is being measured, in words
};

// CPU rates, on the CPU path of `model` (its experts as loaded: the format it will run).
MachineRates calibrate_cpu(DecoderModel& model, const CalibrationOptions& options = {});

// Adds the GPU rates, measured on `placed` (which is restored to its placement afterwards),
// and the GPUs' names to rates.machine; `rates` must hold the CPU rates. The GPU experts' rate
// is measured with every expert on the GPU when they fit `gpu_budget` bytes (else left at 0,
// and said through options.progress).
void calibrate_gpu(PlacedModel& placed, uint64_t gpu_budget, MachineRates& rates,
                   const CalibrationOptions& options = {});

}  // namespace moe
