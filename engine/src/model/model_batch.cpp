// The default batched decode step of Model: one forward() per sequence. Models whose layers
// can take several sequences' rows at once (DecoderModel) override it.
#include <algorithm>
#include <string>

#include "core/error.h"
#include "model/model.h"

namespace moe {

void Model::forward_batch(std::span<const int32_t> tokens, std::span<KvCache* const> caches,
                          std::vector<float>& logits) {
    require(!tokens.empty(), "forward_batch needs at least one sequence");
    require(caches.size() == tokens.size(), "forward_batch: " + std::to_string(tokens.size()) +
                                                " tokens but " + std::to_string(caches.size()) +
                                                " caches");
    const size_t vocab = size_t(info().vocab_size);
    logits.resize(tokens.size() * vocab);
    std::vector<float> row;
    for (size_t i = 0; i < tokens.size(); ++i) {
        require(caches[i] != nullptr, "forward_batch: cache " + std::to_string(i) + " is null");
        forward(tokens.subspan(i, 1), *caches[i], row, /*all_positions=*/false);
        require(row.size() == vocab, "forward_batch: the model returned " +
                                         std::to_string(row.size()) + " logits, expected " +
                                         std::to_string(vocab));
        std::copy(row.begin(), row.end(), logits.begin() + std::ptrdiff_t(i * vocab));
    }
}

}  // namespace moe
