#pragma once
// Per-sequence key/value cache. GQA layers store roped keys and values per KV head; MLA layers
// store only the compressed latent (kv_lora_rank) and the shared roped key (qk_rope_head_dim)
// per position, as one row of `k`, not full per-head K/V.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace moe {

struct LayerKvCache {
    int64_t k_width = 0;  // floats per position in `k`
    int64_t v_width = 0;  // floats per position in `v` (0 for MLA)
    std::vector<float> k;
    std::vector<float> v;

    int64_t positions() const { return k_width ? int64_t(k.size()) / k_width : 0; }
    const float* k_at(int64_t pos) const { return k.data() + pos * k_width; }
    const float* v_at(int64_t pos) const { return v.data() + pos * v_width; }
};

// What a backend keeps for a sequence instead of (or beside) the host rows, e.g. the KV cache of
// the GPU path (hybrid/). Its positions are the cache's size(): truncating the cache truncates
// it too, without the backend being told.
class KvCacheBackend {
  public:
    virtual ~KvCacheBackend() = default;
};

class KvCache {
  public:
    KvCache() = default;
    explicit KvCache(std::vector<LayerKvCache> layers) : layers_(std::move(layers)) {}

    // Number of positions already processed (the position of the next token).
    int64_t size() const { return n_past_; }
    LayerKvCache& layer(size_t i) { return layers_.at(i); }
    void advance(int64_t n) { n_past_ += n; }
    // Drops everything from position `n` on (used to roll back or reuse a prefix).
    void truncate(int64_t n);
    void clear() { truncate(0); }

    // Set by models that keep the cache elsewhere (null for the CPU decoder). Shared by copies
    // of this KvCache: a copy is not a snapshot of a backend's rows.
    std::shared_ptr<KvCacheBackend> backend;

  private:
    std::vector<LayerKvCache> layers_;
    int64_t n_past_ = 0;
};

}  // namespace moe
