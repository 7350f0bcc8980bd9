#include "model/decoder_model.h"

#include <map>
#include <regex>

#include "core/error.h"
#include "core/trace.h"
#include "model/moe_block.h"

namespace moe {

KvCache DecoderModel::new_cache() const {
    std::vector<LayerKvCache> per_layer;
    per_layer.reserve(layers.size());
    for (const auto& l : layers) per_layer.push_back(l.attention->make_cache());
    return KvCache(std::move(per_layer));
}

void DecoderModel::embed_rows(std::span<const int32_t> tokens, float* x) const {
    for (size_t t = 0; t < tokens.size(); ++t) {
        const int32_t id = tokens[t];
        if (id < 0 || id >= vocab) {
            throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                        std::to_string(vocab));
        }
        embed.row_to_f32(id, x + int64_t(t) * hidden);
    }
}

void DecoderModel::run_layers(float* x_data, int64_t T, int64_t trace_pos,
                              const AttendFn& attend) const {
    const size_t n = size_t(T * hidden);
    std::vector<float> h(n), y(n);
    const std::span<float> x(x_data, n);
    std::vector<float> pending, later;  // deferred expert outputs (expert deferral)
    for (size_t li = 0; li < layers.size(); ++li) {
        const DecoderLayer& L = layers[li];
        if (trace::enabled()) trace::set_context(int32_t(li), trace_pos);
        trace::Scope layer_span(trace::Stage::Layer, "layer", int32_t(li), trace_pos);
        {
            trace::Scope span(trace::Stage::Attention, "attention", int32_t(li), trace_pos);
            L.input_norm.apply(x.data(), T, h.data());
            attend(li, h.data(), y.data());
        }
        for (size_t i = 0; i < n; ++i) x[i] += y[i];
        L.post_attention_norm.apply(x.data(), T, h.data());
        const auto* moe = dynamic_cast<const MoeBlock*>(L.ffn.get());
        const bool defer =
            deferred_experts > 0 && moe && !moe->experts.empty() && li + 1 < layers.size();
        if (defer) {
            later.resize(n);
            moe->forward_deferred(h.data(), T, deferred_experts, y.data(), later.data());
        } else if (moe) {
            L.ffn->forward(h.data(), T, y.data());
        } else {
            trace::Scope span(trace::Stage::Experts, "dense MLP", int32_t(li), trace_pos);
            L.ffn->forward(h.data(), T, y.data());
        }
        for (size_t i = 0; i < n; ++i) x[i] += y[i];
        if (!pending.empty()) {  // the previous layer's deferred experts join here
            for (size_t i = 0; i < n; ++i) x[i] += pending[i];
            pending.clear();
        }
        if (defer) pending.swap(later);
    }
}

void DecoderModel::head_rows(const float* x, int64_t rows, std::vector<float>& logits) const {
    std::vector<float> h(size_t(rows * hidden));
    final_norm.apply(x, rows, h.data());
    logits.resize(size_t(rows * vocab));
    lm_head.forward(h.data(), rows, logits.data());
}

void DecoderModel::forward(std::span<const int32_t> tokens, KvCache& cache,
                           std::vector<float>& logits, bool all_positions) {
    const int64_t T = int64_t(tokens.size());
    require(T > 0, "forward needs at least one token");
    const int64_t pos0 = cache.size();
    // Tracing (core/trace.h): a step span per call, a layer span per layer with attention and
    // the feed-forward part inside; router and experts are timed by MoeBlock, worker shares by
    // the pool, all attributed to this layer and token through the trace context.
    trace::Scope step_span(trace::Stage::Step, "forward", -1, pos0);
    std::vector<float> x(size_t(T * hidden));
    embed_rows(tokens, x.data());
    run_layers(x.data(), T, pos0, [&](size_t li, const float* h, float* y) {
        layers[li].attention->forward(h, T, pos0, cache.layer(li), y);
    });
    cache.advance(T);
    trace::Scope head_span(trace::Stage::Head, "head", -1, pos0);
    const int64_t first = all_positions ? 0 : T - 1;
    head_rows(x.data() + first * hidden, T - first, logits);
}

void DecoderModel::forward_batch(std::span<const int32_t> tokens, std::span<KvCache* const> caches,
                                 std::vector<float>& logits) {
    const int64_t B = int64_t(tokens.size());
    require(B > 0, "forward_batch needs at least one sequence");
    require(caches.size() == tokens.size(), "forward_batch: " + std::to_string(tokens.size()) +
                                                " tokens but " + std::to_string(caches.size()) +
                                                " caches");
    for (size_t i = 0; i < caches.size(); ++i) {
        require(caches[i] != nullptr, "forward_batch: cache " + std::to_string(i) + " is null");
        for (size_t j = 0; j < i; ++j) {
            // Two rows appending to one cache would interleave their positions.
            require(caches[j] != caches[i], "forward_batch: the same cache appears twice");
        }
    }
    trace::Scope step_span(trace::Stage::Step, "forward batch", -1, -1);
    std::vector<float> x(size_t(B * hidden));
    embed_rows(tokens, x.data());
    // Rows are independent everywhere except attention, which reads each sequence's own past:
    // that part runs row by row, the rest (norms, MLPs, routers, experts) as one [B, hidden]
    // batch, so each expert's weights are read once for all the rows routed to it.
    run_layers(x.data(), B, -1, [&](size_t li, const float* h, float* y) {
        for (int64_t b = 0; b < B; ++b) {
            KvCache& c = *caches[size_t(b)];
            layers[li].attention->forward(h + b * hidden, 1, c.size(), c.layer(li), y + b * hidden);
        }
    });
    for (KvCache* c : caches) c->advance(1);
    trace::Scope head_span(trace::Stage::Head, "head", -1, -1);
    head_rows(x.data(), B, logits);
}

void DecoderModel::visit_linears(const LinearVisitor& f) {
    for (auto& L : layers) {
        L.attention->visit_linears(f);
        L.ffn->visit_linears(f);
    }
    f(lm_head);
}

void DecoderModel::finalize_info(const std::string& path) {
    ModelInfo& i = info_;
    i.architecture = config.model_type();
    i.path = path;
    i.layers = int64_t(layers.size());
    i.hidden_size = hidden;
    i.vocab_size = vocab;
    i.max_context = config.get_int("max_position_embeddings", 0);
    i.eos_token_ids = config.eos_token_ids();
    i.bos_token_id = config.bos_token_id().value_or(-1);

    // Parameters: every stored weight of the layers in use (not FP8 scale grids, not extra
    // multi-token-prediction layers past num_hidden_layers).
    static const std::regex layer_re(R"(^model\.layers\.(\d+)\.)");
    std::map<std::string, int64_t> bytes_by_dtype;
    int64_t total = 0;
    for (const auto& name : store.names()) {
        if (name.ends_with("_scale_inv")) continue;
        std::smatch m;
        if (std::regex_search(name, m, layer_re) && std::stoll(m[1]) >= i.layers) continue;
        const TensorView& t = store.get(name);
        total += t.numel();
        bytes_by_dtype[std::string(dtype_name(t.dtype))] += int64_t(t.nbytes);
    }
    i.params_total = total;
    int64_t inactive = 0;
    for (const auto& L : layers) {
        const auto* moe = dynamic_cast<const MoeBlock*>(L.ffn.get());
        if (!moe || moe->experts.empty()) continue;
        ++i.moe_layers;
        i.experts = int64_t(moe->experts.size());
        i.experts_per_token = moe->router.cfg.top_k;
        const Expert& e = moe->experts.front();
        const int64_t per_expert = e.gate.w.rows * e.gate.w.cols + e.up.w.rows * e.up.w.cols +
                                   e.down.w.rows * e.down.w.cols + int64_t(e.gate.bias.size()) +
                                   int64_t(e.up.bias.size()) + int64_t(e.down.bias.size());
        inactive += per_expert * (i.experts - i.experts_per_token);
    }
    i.params_active = total - inactive;
    int64_t best = -1;
    for (const auto& [name, b] : bytes_by_dtype) {
        if (b > best) {
            best = b;
            i.dtype = name;
        }
    }
}

}  // namespace moe
