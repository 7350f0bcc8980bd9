#include "store/usage_store.h"

#include <chrono>

#include "store/schema.h"

namespace moe {

UsageStore::UsageStore(const std::string& path) : db_(path) {
    migrate(db_);
}

void UsageStore::add(const std::string& model, const std::string& workload, const StoredUsage& u) {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    Transaction t(db_);
    Statement s(db_,
                "INSERT INTO expert_usage (model, workload, layer, expert, prefill, decode, "
                "updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model, workload, layer, "
                "expert) DO UPDATE SET prefill = prefill + excluded.prefill, decode = decode + "
                "excluded.decode, updated_ms = excluded.updated_ms");
    for (size_t l = 0; l < u.prefill.size(); ++l) {
        for (size_t e = 0; e < u.prefill[l].size(); ++e) {
            const uint64_t d = l < u.decode.size() && e < u.decode[l].size() ? u.decode[l][e] : 0;
            if (u.prefill[l][e] == 0 && d == 0) continue;
            s.reset();
            s.bind(1, model)
                .bind(2, workload)
                .bind(3, int64_t(l))
                .bind(4, int64_t(e))
                .bind(5, int64_t(u.prefill[l][e]))
                .bind(6, int64_t(d))
                .bind(7, now)
                .run();
        }
    }
    t.commit();
}

StoredUsage UsageStore::load(const std::string& model, const std::string& workload,
                             const std::vector<int64_t>& experts_per_layer) {
    StoredUsage u;
    for (const int64_t n : experts_per_layer) {
        u.prefill.emplace_back(static_cast<size_t>(n), 0);
        u.decode.emplace_back(static_cast<size_t>(n), 0);
    }
    Statement s(db_,
                "SELECT layer, expert, prefill, decode FROM expert_usage WHERE model = ? AND "
                "workload = ?");
    s.bind(1, model).bind(2, workload);
    while (s.step()) {
        const size_t l = size_t(s.int64(0)), e = size_t(s.int64(1));
        if (l >= u.prefill.size() || e >= u.prefill[l].size()) continue;  // another shape
        u.prefill[l][e] = uint64_t(s.int64(2));
        u.decode[l][e] = uint64_t(s.int64(3));
    }
    return u;
}

std::vector<std::string> UsageStore::workloads(const std::string& model) {
    std::vector<std::string> out;
    Statement s(db_,
                "SELECT DISTINCT workload FROM expert_usage WHERE model = ? ORDER BY workload");
    s.bind(1, model);
    while (s.step()) out.push_back(s.text(0));
    return out;
}

}  // namespace moe
