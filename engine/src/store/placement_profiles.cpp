#include "store/placement_profiles.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "store/conversation_store.h"
#include "store/schema.h"

namespace moe {

std::string placement_profile_key(const ModelIdentity& m) {
    return m.architecture + ":" + std::to_string(m.layers) + "x" + std::to_string(m.experts) + ":" +
           m.fingerprint;
}

PlacementProfileStore::PlacementProfileStore(const std::string& path) : db_(path) {
    migrate(db_);
}

void PlacementProfileStore::save(const std::string& name, const Placement& placement) {
    if (name.find_first_not_of(" \t\n") == std::string::npos)
        throw Error("a placement profile needs a name");
    const int64_t t = now_ms();
    Statement(db_,
              "INSERT INTO placement_profiles (model, name, placement, created_ms, updated_ms) "
              "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (model, name) DO UPDATE SET "
              "placement = excluded.placement, updated_ms = excluded.updated_ms")
        .bind(1, placement_profile_key(placement.model))
        .bind(2, name)
        .bind(3, placement.to_json().dump())
        .bind(4, t)
        .run();
}

std::vector<PlacementProfileInfo> PlacementProfileStore::list(const ModelIdentity& model) {
    std::vector<PlacementProfileInfo> out;
    Statement s(db_,
                "SELECT name, updated_ms FROM placement_profiles WHERE model = ? ORDER BY name");
    s.bind(1, placement_profile_key(model));
    while (s.step()) out.push_back({s.text(0), s.int64(1)});
    return out;
}

std::optional<Placement> PlacementProfileStore::load(const ModelIdentity& model,
                                                     const std::string& name) {
    Statement s(db_, "SELECT placement FROM placement_profiles WHERE model = ? AND name = ?");
    s.bind(1, placement_profile_key(model)).bind(2, name);
    if (!s.step()) return std::nullopt;
    const std::string where = "placement profile '" + name + "'";
    const auto j = nlohmann::json::parse(s.text(0), nullptr, false);
    if (j.is_discarded()) throw Error(db_.path() + ": " + where + " is not valid JSON");
    Placement p = Placement::from_json(j, where);
    p.require_model(model, where);  // the key matched; a hand-edited row might not
    return p;
}

bool PlacementProfileStore::remove(const ModelIdentity& model, const std::string& name) {
    Statement(db_, "DELETE FROM placement_profiles WHERE model = ? AND name = ?")
        .bind(1, placement_profile_key(model))
        .bind(2, name)
        .run();
    return db_.changes() > 0;
}

}  // namespace moe
