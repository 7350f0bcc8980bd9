#pragma once
// The MoE feed-forward block, exposed as separate steps so that the expert step can be handed
// to other backends (fast CPU kernels, GPU-resident experts) without touching routing:
//   route(x) -> Routing;  run_experts(x, routing, mask) -> out;  shared experts added last.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpu/moe/fused_moe.h"
#include "model/feed_forward.h"
#include "model/router.h"

namespace moe {

// One routed expert: gate/up [inter, hidden] and down [hidden, inter] (biases optional).
struct Expert {
    Linear gate, up, down;
};

struct ExpertActivation {
    enum class Kind { SiluGlu, ClampedSwiGlu } kind = Kind::SiluGlu;
    // gpt-oss: gate = min(gate, limit); up = clamp(up, -limit, limit);
    //          h = (up + 1) * gate * sigmoid(alpha * gate)
    float alpha = 1.702f;
    float limit = 7.0f;
    void apply(const float* gate, const float* up, float* h, int64_t n) const;
};

// Splits each token's routing into its `k - deferred` best-weighted experts and its `deferred`
// lowest-weighted ones (each part keeps routing order and the original weights), for expert
// deferral: the second part's output joins the residual stream one layer later.
void split_routing(const Routing& r, int64_t deferred, Routing& immediate, Routing& later);

// Reference expert step: out [T, hidden] = sum_j weights[t,j] * expert_{ids[t,j]}(x[t]).
// Experts whose `skip` entry is true are left out (they run elsewhere, e.g. on the GPU).
// Tokens are grouped per expert so that each expert's weights are read once per call.
void run_experts_reference(const std::vector<Expert>& experts, const ExpertActivation& act,
                           const float* x, int64_t T, int64_t hidden, const Routing& routing,
                           const std::vector<bool>* skip, float* out);

// The pack options of a repacking expert format ("bf16-exact", "bf16", "int8", "int4",
// "int4-g32", "int4-g64", "int4-g128"); nullopt for "reference" and "gguf", which repack nothing.
// Throws moe::Error on an unknown format.
std::optional<PackOptions> expert_pack_options(const std::string& format);

class MoeBlock : public FeedForward {
  public:
    Router router;
    std::vector<Expert> experts;
    ExpertActivation activation;
    std::unique_ptr<GatedMlp> shared;  // shared expert(s), or null
    Linear shared_gate;                // Qwen2-MoE: sigmoid(x . w) scales the shared output
    bool has_shared_gate = false;
    int64_t hidden = 0;
    // The experts prepared for the fused CPU operator (packed formats or GGUF rows in place);
    // null = the reference path over `experts`.
    std::shared_ptr<const ExpertBank> bank;

    // Builds `bank` from `experts`: "bf16-exact", "bf16", "int8", "int4" (group 32; "int4-g64",
    // "int4-g128")
    // repack; "gguf" uses GGUF experts in place (fails for other storage); "reference" drops
    // the bank. Throws moe::Error on an unknown format or on experts with LoRA terms.
    void prepare_experts(const std::string& format);
    // Uses a bank whose packed matrices were built elsewhere (the on-disk pack cache) after
    // checking that they fit these experts; fills in what the cache does not hold (sizes,
    // activation, biases). False, leaving `bank` alone, when it does not fit or the experts
    // carry LoRA terms (prepare_experts then repacks, or reports the LoRA error).
    bool adopt_bank(std::shared_ptr<ExpertBank> b, const PackOptions& opt);

    Routing route(const float* x, int64_t T) const { return router.route(x, T); }
    // Expert deferral: out = shared + the `k - deferred` best experts; later = the others
    // (both [T, hidden], overwritten). deferred = 0 gives forward()'s out and later = 0.
    void forward_deferred(const float* x, int64_t T, int64_t deferred, float* out,
                          float* later) const;
    // `skip`: one byte per expert, nonzero = the expert runs elsewhere (the GPU) and adds
    // nothing here; null = every expert runs here.
    void run_experts(const float* x, int64_t T, const Routing& routing, float* out,
                     const uint8_t* skip = nullptr) const;
    // Adds the shared expert output to out.
    void add_shared(const float* x, int64_t T, float* out) const;
    void forward(const float* x, int64_t T, float* out) const override;
    void visit_linears(const LinearVisitor& f) override;
};

}  // namespace moe
