#pragma once
// Expert telemetry in MoE Studio's database (schema v4): per model (its placement fingerprint)
// and workload (a user's label such as "coding", or a conversation), how often each routed
// expert of each layer was chosen in prefill and in decode. Recordings add up; the planner
// reads a workload's totals back.
#include <cstdint>
#include <string>
#include <vector>

#include "store/sqlite_db.h"

namespace moe {

struct StoredUsage {
    // [layer][expert]; a dense layer has no entries.
    std::vector<std::vector<uint64_t>> prefill, decode;
};

class UsageStore {
  public:
    explicit UsageStore(const std::string& path);  // opens, creating and migrating

    // Adds counts to (model, workload), in one transaction.
    void add(const std::string& model, const std::string& workload, const StoredUsage& usage);
    // The totals of (model, workload) shaped as [layers][experts per layer] (zeros where
    // nothing was recorded). `experts_per_layer[l]` = 0 for a dense layer.
    StoredUsage load(const std::string& model, const std::string& workload,
                     const std::vector<int64_t>& experts_per_layer);
    std::vector<std::string> workloads(const std::string& model);

  private:
    SqliteDb db_;
};

}  // namespace moe
