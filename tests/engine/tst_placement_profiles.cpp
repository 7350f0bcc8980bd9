// Named placement profiles in the SQLite store (engine/src/store/placement_profiles.h): saved
// per model identity, listed by name, loaded back equal, replaced by a save under the same
// name, deleted; kept across reopening the database (the app restarting), never shown for
// another model (other weights, or another shape with the same files), refused without a name;
// and a database of schema v4 (before profiles) opens migrated with its chats intact.
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "store/conversation_store.h"
#include "store/placement_profiles.h"
#include "store/schema.h"
#include "test_paths.h"

namespace {

moe::ModelIdentity model_a() {
    return {"qwen3_moe", 4, 16, "fingerprint-a"};
}

// A placement for `id` with the given experts of layer `gpu_layer` on the GPU.
moe::Placement placement(const moe::ModelIdentity& id, int gpu_layer, std::vector<int> gpu) {
    moe::Placement p =
        moe::Placement::all_cpu(id, std::vector<bool>(size_t(id.layers), id.experts > 0));
    for (int e : gpu) p.layers[size_t(gpu_layer)].experts[size_t(e)] = moe::Device::Gpu;
    return p;
}

std::vector<std::string> names(const std::vector<moe::PlacementProfileInfo>& v) {
    std::vector<std::string> out;
    for (const auto& p : v) out.push_back(p.name);
    return out;
}

}  // namespace

class TestPlacementProfiles : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    std::string db_path(const char* name) { return tmp_.filePath(name).toStdString(); }

  private slots:
    void saveListLoadReplaceDelete() {
        const std::string path = db_path("profiles.db");
        const moe::Placement coding = placement(model_a(), 0, {1, 2, 3});
        const moe::Placement chat = placement(model_a(), 3, {0});
        {
            moe::PlacementProfileStore st(path);
            QVERIFY(st.list(model_a()).empty());
            st.save("coding", coding);
            st.save("chat", chat);
            QCOMPARE(names(st.list(model_a())), (std::vector<std::string>{"chat", "coding"}));
            QVERIFY(st.list(model_a())[0].updated_ms > 0);
        }
        // Reopened (the app restarted): the same profiles, each placement as saved.
        moe::PlacementProfileStore st(path);
        QCOMPARE(names(st.list(model_a())), (std::vector<std::string>{"chat", "coding"}));
        const auto got = st.load(model_a(), "coding");
        QVERIFY(got.has_value());
        QVERIFY(got->to_json() == coding.to_json());
        QCOMPARE(got->gpu_expert_count(0), int64_t(3));
        QVERIFY(!st.load(model_a(), "nothing"));

        // Saving under a taken name replaces that profile (no duplicate row).
        st.save("coding", placement(model_a(), 1, {7}));
        QCOMPARE(st.list(model_a()).size(), size_t(2));
        QCOMPARE(st.load(model_a(), "coding")->gpu_expert_count(1), int64_t(1));
        QCOMPARE(st.load(model_a(), "coding")->gpu_expert_count(0), int64_t(0));

        QVERIFY(st.remove(model_a(), "chat"));
        QVERIFY(!st.remove(model_a(), "chat"));  // already gone
        QCOMPARE(names(st.list(model_a())), (std::vector<std::string>{"coding"}));
    }

    // Profiles belong to one model: other weights (fingerprint) or another shape with the same
    // files never see them.
    void profilesAreKeyedByModelIdentity() {
        moe::PlacementProfileStore st(db_path("keyed.db"));
        st.save("mine", placement(model_a(), 0, {0}));
        moe::ModelIdentity other_weights = model_a();
        other_weights.fingerprint = "fingerprint-b";
        moe::ModelIdentity other_shape = model_a();
        other_shape.layers = 5;
        QVERIFY(st.list(other_weights).empty());
        QVERIFY(st.list(other_shape).empty());
        QVERIFY(!st.load(other_weights, "mine"));
        QVERIFY(!st.remove(other_weights, "mine"));
        QCOMPARE(st.list(model_a()).size(), size_t(1));
        QVERIFY(moe::placement_profile_key(model_a()) != moe::placement_profile_key(other_shape));
    }

    void emptyNameIsRefused() {
        moe::PlacementProfileStore st(db_path("names.db"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, st.save("", placement(model_a(), 0, {0})));
        QVERIFY_THROWS_EXCEPTION(moe::Error, st.save("  ", placement(model_a(), 0, {0})));
        QVERIFY(st.list(model_a()).empty());
    }

    // The app's one database file: chats written at schema v4 are still there after the
    // profile store migrates it to v5, and both stores work on it side by side.
    void migratesAVersion4DatabaseKeepingItsChats() {
        const std::string path = db_path("v4.db");
        {
            std::ifstream in((moetest::data_dir() + "/store/schema_v4.sql").toStdString());
            std::stringstream sql;
            sql << in.rdbuf();
            moe::SqliteDb old(path);
            old.exec(sql.str());
            old.set_user_version(4);
            old.exec(
                "INSERT INTO conversations (id, title, created_ms, updated_ms) VALUES "
                "(1, 'Old chat', 1, 2)");
        }
        moe::PlacementProfileStore st(path);
        QCOMPARE(st.db().user_version(), moe::kSchemaVersion);
        QVERIFY(moe::kSchemaVersion >= 5);
        st.save("kept", placement(model_a(), 2, {4}));
        moe::ConversationStore chats(path);
        QCOMPARE(chats.conversation(1)->title, std::string("Old chat"));
        QCOMPARE(st.load(model_a(), "kept")->gpu_expert_count(2), int64_t(1));
    }
};

QTEST_APPLESS_MAIN(TestPlacementProfiles)
#include "tst_placement_profiles.moc"
