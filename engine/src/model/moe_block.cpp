#include "model/moe_block.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/parallel.h"
#include "core/trace.h"
#include "cpu/moe/pack_cache.h"

namespace moe {

void ExpertActivation::apply(const float* gate, const float* up, float* h, int64_t n) const {
    if (kind == Kind::SiluGlu) {
        for (int64_t i = 0; i < n; ++i) h[i] = silu(gate[i]) * up[i];
        return;
    }
    for (int64_t i = 0; i < n; ++i) {
        const float g = std::min(gate[i], limit);
        const float u = std::clamp(up[i], -limit, limit);
        h[i] = (u + 1.0f) * (g / (1.0f + std::exp(-alpha * g)));
    }
}

void run_experts_reference(const std::vector<Expert>& experts, const ExpertActivation& act,
                           const float* x, int64_t T, int64_t hidden, const Routing& routing,
                           const std::vector<bool>* skip, float* out) {
    std::fill(out, out + T * hidden, 0.0f);
    const int64_t k = routing.k;
    std::vector<std::vector<std::pair<int64_t, float>>> assigned(experts.size());
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < k; ++j) {
            const auto e = size_t(routing.ids[size_t(t * k + j)]);
            assigned.at(e).push_back({t, routing.weights[size_t(t * k + j)]});
        }
    }
    std::vector<float> xs, g, u, y;
    for (size_t e = 0; e < experts.size(); ++e) {
        const auto& tokens = assigned[e];
        if (tokens.empty() || (skip && (*skip)[e])) continue;
        const Expert& ex = experts[e];
        const int64_t n = int64_t(tokens.size()), inter = ex.gate.out_features();
        xs.resize(size_t(n * hidden));
        for (int64_t i = 0; i < n; ++i) {
            std::copy(x + tokens[size_t(i)].first * hidden,
                      x + (tokens[size_t(i)].first + 1) * hidden, xs.data() + i * hidden);
        }
        g.resize(size_t(n * inter));
        u.resize(size_t(n * inter));
        y.resize(size_t(n * hidden));
        ex.gate.forward(xs.data(), n, g.data());
        ex.up.forward(xs.data(), n, u.data());
        act.apply(g.data(), u.data(), g.data(), n * inter);
        ex.down.forward(g.data(), n, y.data());
        for (int64_t i = 0; i < n; ++i) {
            const auto [t, w] = tokens[size_t(i)];
            float* o = out + t * hidden;
            const float* yi = y.data() + i * hidden;
            for (int64_t d = 0; d < hidden; ++d) o[d] += w * yi[d];
        }
    }
}

void MoeBlock::run_experts(const float* x, int64_t T, const Routing& routing, float* out,
                           const uint8_t* skip) const {
    if (bank) {
        fused_moe(*bank, x, T, routing.ids.data(), routing.weights.data(), routing.k, skip, out);
        return;
    }
    std::vector<bool> skip_experts;
    if (skip) {
        skip_experts.resize(experts.size());
        for (size_t e = 0; e < experts.size(); ++e) skip_experts[e] = skip[e] != 0;
    }
    run_experts_reference(experts, activation, x, T, hidden, routing,
                          skip ? &skip_experts : nullptr, out);
}

std::optional<PackOptions> expert_pack_options(const std::string& format) {
    if (format == "reference" || format == "gguf") return std::nullopt;
    PackOptions opt;
    if (format == "bf16" || format == "bf16-exact") {
        opt.format = PackedFormat::BF16;
        opt.f32_acts = format == "bf16-exact";
    } else if (format == "q4k") {
        opt.format = PackedFormat::Q4K;
    } else if (format == "int8") {
        opt.format = PackedFormat::INT8;
    } else if (format == "int4" || format == "int4-g32" || format == "int4-g64" ||
               format == "int4-g128") {
        opt.format = PackedFormat::INT4;
        opt.group = format == "int4-g64" ? 64 : format == "int4-g128" ? 128 : 32;
    } else {
        throw Error("unknown expert format '" + format +
                    "' (use auto, reference, gguf, q4k, bf16-exact, bf16, int8, int4, int4-g64 or "
                    "int4-g128)");
    }
    return opt;
}

namespace {

void copy_activation(const ExpertActivation& from, GluActivation& to) {
    to.kind = from.kind == ExpertActivation::Kind::SiluGlu ? GluActivation::Kind::SiluGlu
                                                           : GluActivation::Kind::ClampedSwiGlu;
    to.alpha = from.alpha;
    to.limit = from.limit;
}

bool has_lora(const Expert& e) {
    return !e.gate.lora.empty() || !e.up.lora.empty() || !e.down.lora.empty();
}

// Whether a packed matrix has the shape and options that packing `rows` x `cols` with `opt`
// gives (the cache key covers the options; this guards against a key collision or a model whose
// shapes changed without its files changing, e.g. a different config for the same weights).
bool fits(const PackedMatrix& m, int64_t rows, int64_t cols, bool gate_up, const PackOptions& opt) {
    return m.format == opt.format && m.f32_acts == opt.f32_acts && m.rows == rows &&
           m.cols == cols && m.gate_up == gate_up &&
           (opt.format != PackedFormat::INT4 || m.group == opt.group) &&
           m.data.size == size_t(m.blocks) * m.block_bytes && m.data.data() != nullptr;
}

}  // namespace

void MoeBlock::prepare_experts(const std::string& format) {
    if (format == "reference") {
        bank.reset();
        return;
    }
    const std::optional<PackOptions> packed = expert_pack_options(format);
    const bool keep_gguf = !packed;
    const PackOptions opt = packed.value_or(PackOptions{});
    const std::vector<int> nodes = bank_part_nodes();
    auto b = std::make_shared<ExpertBank>();
    b->hidden = hidden;
    b->inter = experts.empty() ? 0 : experts.front().gate.out_features();
    copy_activation(activation, b->act);
    for (const Expert& e : experts) {
        if (has_lora(e)) {
            throw Error("expert '" + e.gate.name +
                        "' carries LoRA terms; the fused expert formats need merged weights");
        }
        const bool needs_gguf = keep_gguf || opt.format == PackedFormat::Q4K;
        if (needs_gguf && !(e.gate.w.ggml && e.up.w.ggml && e.down.w.ggml)) {
            throw Error("expert format '" + format + "' needs GGUF-stored experts; '" +
                        e.gate.name + "' is not");
        }
    }
    // One expert per task: an expert's matrices are small, and a parallel loop per matrix would
    // spend the load waking the pool (the packers' own loops run inline inside this one).
    b->experts.resize(experts.size());
    parallel_for(int64_t(experts.size()), 1, [&](int64_t e0, int64_t e1) {
        for (int64_t i = e0; i < e1; ++i) {
            const Expert& e = experts[size_t(i)];
            b->experts[size_t(i)] =
                make_bank_expert({e.gate.w, e.up.w, e.down.w, e.gate.bias, e.up.bias, e.down.bias},
                                 opt, keep_gguf, nodes);
        }
    });
    // Lets the pack cache's tests tell a cache hit from a repack.
    if (packed) note_packed_matrices(2 * int64_t(experts.size()));
    bank = std::move(b);
}

bool MoeBlock::adopt_bank(std::shared_ptr<ExpertBank> b, const PackOptions& opt) {
    if (!b || b->experts.size() != experts.size()) return false;
    const int64_t inter = experts.empty() ? 0 : experts.front().gate.out_features();
    const size_t parts = bank_part_nodes().size();
    for (size_t i = 0; i < experts.size(); ++i) {
        const Expert& e = experts[i];
        const BankExpert& be = b->experts[i];
        if (has_lora(e) || be.gguf_in || be.gguf_out || e.gate.out_features() != inter ||
            be.parts.size() != parts)
            return false;
        int64_t next = 0;  // the parts must tile [0, inter) in order
        for (const ExpertPart& part : be.parts) {
            const int64_t n = part.i1 - part.i0;
            if (part.i0 != next || n < 0 ||
                (n > 0 && (!fits(part.gate_up, n, hidden, true, opt) ||
                           !fits(part.down, hidden, n, false, opt)))) {
                return false;
            }
            next = part.i1;
        }
        if (next != inter) return false;
    }
    b->hidden = hidden;
    b->inter = inter;
    copy_activation(activation, b->act);
    for (size_t i = 0; i < experts.size(); ++i) {
        BankExpert& be = b->experts[i];
        be.gate_bias = experts[i].gate.bias;
        be.up_bias = experts[i].up.bias;
        be.down_bias = experts[i].down.bias;
    }
    bank = std::move(b);
    return true;
}

void MoeBlock::add_shared(const float* x, int64_t T, float* out) const {
    if (!shared) return;
    trace::Scope span(trace::Stage::SharedExperts, "shared experts");
    std::vector<float> s(size_t(T * hidden));
    shared->forward(x, T, s.data());
    std::vector<float> gate(size_t(T), 1.0f);
    if (has_shared_gate) {
        shared_gate.forward(x, T, gate.data());
        for (float& v : gate) v = 1.0f / (1.0f + std::exp(-v));
    }
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t d = 0; d < hidden; ++d)
            out[t * hidden + d] += gate[size_t(t)] * s[size_t(t * hidden + d)];
    }
}

void MoeBlock::visit_linears(const LinearVisitor& f) {
    f(router.gate);
    for (Expert& e : experts) {
        f(e.gate);
        f(e.up);
        f(e.down);
    }
    if (shared) shared->visit_linears(f);
    if (has_shared_gate) f(shared_gate);
}

namespace {

Routing traced_route(const MoeBlock& b, const float* x, int64_t T) {
    trace::Scope span(trace::Stage::Router, "router");
    return b.route(x, T);
}

}  // namespace

void split_routing(const Routing& r, int64_t deferred, Routing& immediate, Routing& later) {
    const int64_t k = r.k, d = std::clamp<int64_t>(deferred, 0, r.k);
    immediate = Routing{r.tokens, k - d, {}, {}};
    later = Routing{r.tokens, d, {}, {}};
    std::vector<int64_t> order(static_cast<size_t>(k));
    for (int64_t t = 0; t < r.tokens; ++t) {
        const float* w = r.weights.data() + t * k;
        for (int64_t j = 0; j < k; ++j) order[size_t(j)] = j;
        // The d lowest weights (ties: the later routing slot) are deferred.
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t b) { return w[a] > w[b]; });
        std::vector<bool> is_later(static_cast<size_t>(k), false);
        for (int64_t j = k - d; j < k; ++j) is_later[size_t(order[size_t(j)])] = true;
        for (int64_t j = 0; j < k; ++j) {
            Routing& dst = is_later[size_t(j)] ? later : immediate;
            dst.ids.push_back(r.ids[size_t(t * k + j)]);
            dst.weights.push_back(w[j]);
        }
    }
}

void MoeBlock::forward_deferred(const float* x, int64_t T, int64_t deferred, float* out,
                                float* later) const {
    const Routing routing = traced_route(*this, x, T);
    Routing now, then;
    split_routing(routing, deferred, now, then);
    if (now.k > 0) {
        trace::Scope span(trace::Stage::Experts, "routed experts");
        run_experts(x, T, now, out);
    } else {
        std::fill(out, out + T * hidden, 0.0f);
    }
    add_shared(x, T, out);
    if (then.k > 0) {
        trace::Scope span(trace::Stage::Experts, "deferred experts");
        run_experts(x, T, then, later);
    } else {
        std::fill(later, later + T * hidden, 0.0f);
    }
}

void MoeBlock::forward(const float* x, int64_t T, float* out) const {
    const Routing routing = traced_route(*this, x, T);
    {
        trace::Scope span(trace::Stage::Experts, "routed experts");
        run_experts(x, T, routing, out);
    }
    add_shared(x, T, out);
}

}  // namespace moe
