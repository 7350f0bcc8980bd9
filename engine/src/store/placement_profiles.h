#pragma once
// Named expert placements per model in MoE Studio's database (schema v5): the placement
// editor's "profiles" ("coding", "long context"), so a split a user shaped once comes back
// for the same weights after a restart. A profile is keyed by the model's identity (its
// architecture and weight files' fingerprint), not by path: a moved folder keeps its profiles,
// other weights under the same path do not inherit them.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hybrid/placement.h"
#include "store/sqlite_db.h"

namespace moe {

struct PlacementProfileInfo {
    std::string name;
    int64_t updated_ms = 0;
};

class PlacementProfileStore {
  public:
    // Opens (creating and migrating) the database at `path` (WAL: shared with the
    // conversation store).
    explicit PlacementProfileStore(const std::string& path);

    // Saves `placement` as `name` for the model it was made for (placement.model), replacing
    // a profile of that name. Throws moe::Error for an empty name.
    void save(const std::string& name, const Placement& placement);
    // The profiles of `model`, by name.
    std::vector<PlacementProfileInfo> list(const ModelIdentity& model);
    // nullopt when `model` has no profile `name`.
    std::optional<Placement> load(const ModelIdentity& model, const std::string& name);
    // False when there was nothing to delete.
    bool remove(const ModelIdentity& model, const std::string& name);

    SqliteDb& db() { return db_; }

  private:
    SqliteDb db_;
};

// The key profiles are stored under: architecture, shape and fingerprint together, so that two
// models whose files hash alike but differ in shape never share a profile.
std::string placement_profile_key(const ModelIdentity& model);

}  // namespace moe
