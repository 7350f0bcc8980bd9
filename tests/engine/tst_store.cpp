// The SQLite store (engine/src/store): the message tree and its branches, deletion with undo,
// full-text search, export and import; migrations from the frozen copy of every earlier schema
// version (tests/data/store); refusing a newer database; and durability: a process killed with
// SIGKILL right after reporting a message as saved loses nothing it reported.
#include <QTemporaryDir>
#include <QtTest>

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "store/conversation_store.h"
#include "store/schema.h"
#include "store/training_runs.h"
#include "store/usage_store.h"
#include "test_paths.h"

namespace {

std::string read_file(const QString& path) {
    std::ifstream in(path.toStdString());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

QString frozen(int version) {
    return moetest::data_dir() + "/store/schema_v" + QString::number(version) + ".sql";
}

// Every schema object's SQL (FTS5's own shadow tables included), in a stable order.
std::vector<std::string> schema_of(moe::SqliteDb& db) {
    moe::Statement s(db, "SELECT type, name, sql FROM sqlite_master ORDER BY type, name");
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0) + " " + s.text(1) + ": " + s.text(2));
    return out;
}

std::vector<std::string> contents(const std::vector<moe::StoredMessage>& path) {
    std::vector<std::string> out;
    for (const auto& m : path) out.push_back(m.content);
    return out;
}

}  // namespace

class TestStore : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    std::string db_path(const char* name) { return tmp_.filePath(name).toStdString(); }

  private slots:
    void branchesFromEditsAndRegeneration() {
        moe::ConversationStore st(db_path("tree.db"));
        const int64_t c = st.create_conversation("Trip", R"({"system":"be brief"})");
        const int64_t u1 = st.append(c, std::nullopt, "user", "Where to go in May?");
        const int64_t a1 = st.append(c, u1, "assistant", "Lisbon.");
        const int64_t a2 = st.append(c, u1, "assistant", "Kyoto.");  // regenerate
        QCOMPARE(st.siblings(a1), (std::vector<int64_t>{a1, a2}));
        QCOMPARE(contents(st.active_path(c)),
                 (std::vector<std::string>{"Where to go in May?", "Kyoto."}));
        const int64_t u1b = st.append(c, std::nullopt, "user", "Where to go in June?");  // edit
        QCOMPARE(st.siblings(u1), (std::vector<int64_t>{u1, u1b}));
        st.append(c, u1b, "assistant", "Oslo.");
        // Switch back to the first branch: its newest leaf is the regenerated answer.
        st.set_active_leaf(c, st.newest_leaf(u1));
        QCOMPARE(contents(st.active_path(c)),
                 (std::vector<std::string>{"Where to go in May?", "Kyoto."}));
        st.update(a2, "Kyoto, for the gardens.", R"({"tokens":5})");
        QCOMPARE(st.message(a2)->content, std::string("Kyoto, for the gardens."));
        QCOMPARE(st.conversation(c)->settings, std::string(R"({"system":"be brief"})"));
        // A parent from another conversation is refused.
        const int64_t other = st.create_conversation("Other");
        QVERIFY_THROWS_EXCEPTION(moe::Error, st.append(other, u1, "user", "x"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, st.append(c, u1, "robot", "x"));
    }

    void renameDeleteUndoPurge() {
        moe::ConversationStore st(db_path("list.db"));
        const int64_t a = st.create_conversation("A");
        const int64_t b = st.create_conversation("B");
        st.append(b, std::nullopt, "user", "hello");
        st.rename(a, "Renamed");
        QCOMPARE(st.list().size(), size_t(2));
        st.delete_conversation(b);
        QCOMPARE(st.list().size(), size_t(1));
        QVERIFY(!st.conversation(b));
        st.undo_delete(b);
        QCOMPARE(st.list().size(), size_t(2));
        st.delete_conversation(b);
        QCOMPARE(st.purge_deleted(moe::now_ms() + 1), 1);
        st.undo_delete(b);  // gone for good
        QCOMPARE(st.list().size(), size_t(1));
        QCOMPARE(st.list().front().title, std::string("Renamed"));
        moe::Statement n(st.db(), "SELECT COUNT(*) FROM messages");
        n.step();
        QCOMPARE(n.int64(0), int64_t(0));  // the messages went with the conversation
    }

    void searchFindsTextAcrossConversations() {
        moe::ConversationStore st(db_path("search.db"));
        const int64_t a = st.create_conversation("Cooking");
        const int64_t b = st.create_conversation("Physics");
        const int64_t m = st.append(a, std::nullopt, "user", "How long to boil an egg?");
        st.append(b, std::nullopt, "user",
                  "Why does water boil at lower temperature on a mountain?");
        st.append(b, std::nullopt, "user", "unrelated");
        auto hits = st.search("boil");
        QCOMPARE(hits.size(), size_t(2));
        QVERIFY(QString::fromStdString(hits[0].snippet).contains("[boil]"));
        QCOMPARE(st.search("egg").front().message_id, m);
        QCOMPARE(st.search("egg").front().title, std::string("Cooking"));
        QVERIFY(st.search("zebra").empty());
        QVERIFY(st.search("  ").empty());
        QCOMPARE(st.search("\"boil").size(), size_t(2));  // user text is never FTS syntax
        st.update(m, "How long to poach an egg?", "{}");
        QCOMPARE(st.search("boil").size(), size_t(1));
        st.delete_conversation(b);
        QVERIFY(st.search("mountain").empty());
    }

    void exportAndImportRoundTrip() {
        moe::ConversationStore st(db_path("export.db"));
        const int64_t c = st.create_conversation("Recipe", R"({"temperature":0.7})");
        const int64_t u = st.append(c, std::nullopt, "user", "Pancakes?");
        st.append(c, u, "assistant", "Flour, eggs, milk.");
        const int64_t a2 =
            st.append(c, u, "assistant", "Flour, **eggs**, milk, salt.", R"({"tokens":9})");
        const std::string md = st.export_markdown(c);
        QVERIFY(md.starts_with("# Recipe\n"));
        QVERIFY(md.find("## User\n\nPancakes?") != std::string::npos);
        QVERIFY(md.find("salt") != std::string::npos);
        QVERIFY(md.find("Flour, eggs, milk.\n") == std::string::npos);  // not on the branch
        const nlohmann::json j = st.export_json(c);
        const int64_t c2 = st.import_json(nlohmann::json::parse(j.dump()));
        QCOMPARE(st.conversation(c2)->title, std::string("Recipe"));
        QCOMPARE(contents(st.active_path(c2)), contents(st.active_path(c)));
        const auto leaf = *st.conversation(c2)->active_leaf;
        QCOMPARE(st.siblings(leaf).size(), size_t(2));
        QCOMPARE(nlohmann::json::parse(st.message(leaf)->meta)["tokens"].get<int>(), 9);
        QVERIFY(leaf != a2);
        QVERIFY_THROWS_EXCEPTION(moe::Error, st.import_json(nlohmann::json{{"format", "other"}}));
        nlohmann::json bad = j;
        bad["messages"][0]["parent"] = 999;
        QVERIFY_THROWS_EXCEPTION(moe::Error, st.import_json(bad));
    }

    // A fresh database has exactly the frozen schema of the current version.
    void freshSchemaMatchesFrozenCopy() {
        moe::ConversationStore st(db_path("fresh.db"));
        QCOMPARE(st.db().user_version(), moe::kSchemaVersion);
        moe::SqliteDb ref(db_path("frozen-current.db"));
        ref.exec(read_file(frozen(moe::kSchemaVersion)));
        QCOMPARE(schema_of(st.db()), schema_of(ref));
    }

    // A database of every earlier version, with data, opens migrated and keeps its data.
    void migratesFromEveryEarlierVersion_data() {
        QTest::addColumn<int>("version");
        for (int v = 1; v < moe::kSchemaVersion; ++v)
            QTest::newRow(qPrintable("v" + QString::number(v))) << v;
    }
    void migratesFromEveryEarlierVersion() {
        QFETCH(int, version);
        const std::string path = db_path(("old-v" + std::to_string(version) + ".db").c_str());
        {
            moe::SqliteDb old(path);
            old.exec(read_file(frozen(version)));
            old.set_user_version(version);
            old.exec(
                "INSERT INTO conversations (id, title, created_ms, updated_ms, settings) VALUES "
                "(1, 'Old chat', 1, 2, '{}');"
                "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_ms) "
                "VALUES (1, 1, NULL, 'user', 'an ancient question about volcanoes', 1),"
                "(2, 1, 1, 'assistant', 'an answer', 2), (3, 1, 1, 'assistant', 'another', 3);"
                "UPDATE conversations SET active_leaf = 3 WHERE id = 1;");
        }
        moe::ConversationStore st(path);
        QCOMPARE(st.db().user_version(), moe::kSchemaVersion);
        QCOMPARE(contents(st.active_path(1)),
                 (std::vector<std::string>{"an ancient question about volcanoes", "another"}));
        QCOMPARE(st.siblings(2), (std::vector<int64_t>{2, 3}));
        QCOMPARE(st.search("volcanoes").size(), size_t(1));  // old text is indexed
        st.delete_conversation(1);
        st.undo_delete(1);
        moe::SqliteDb ref(db_path(("frozen-for-v" + std::to_string(version) + ".db").c_str()));
        ref.exec(read_file(frozen(moe::kSchemaVersion)));
        QCOMPARE(schema_of(st.db()), schema_of(ref));
    }

    // Fine-tuning runs: each step's metrics committed as it comes, read back after reopening
    // (also from the conversation store's file: one database).
    void trainingRunsAndMetrics() {
        const std::string path = db_path("runs.db");
        int64_t run = 0;
        {
            moe::ConversationStore chats(path);  // the same file the app keeps chats in
            moe::TrainingRunStore st(path);
            run = st.start_run("m.gguf", "data.jsonl", "/tmp/out", R"({"lr":0.001})");
            for (int64_t step = 1; step <= 3; ++step) {
                moe::TrainingMetricsRow m;
                m.step = step;
                m.loss = 3.0 - double(step);
                m.lr = 1e-3;
                m.grad_norm = 0.5;
                m.tokens_per_s = 100;
                m.step_seconds = 0.1;
                m.ram_bytes = 1 << 20;
                if (step == 3) m.eval_loss = 0.25;
                st.add_metrics(run, m);
            }
            moe::TrainingMetricsRow again;  // step 3 run again after a resume
            again.step = 3;
            again.loss = 0.125;
            st.add_metrics(run, again);
            st.finish_run(run, "finished");
        }
        moe::TrainingRunStore st(path);
        const auto runs = st.runs();
        QCOMPARE(runs.size(), size_t(1));
        QCOMPARE(runs[0].status, std::string("finished"));
        QCOMPARE(runs[0].config, std::string(R"({"lr":0.001})"));
        const auto m = st.metrics(run);
        QCOMPARE(m.size(), size_t(3));
        QCOMPARE(m[0].loss, 2.0);
        QCOMPARE(m[0].ram_bytes, std::optional<int64_t>(1 << 20));
        QVERIFY(!m[0].eval_loss);
        QCOMPARE(m[2].loss, 0.125);
        QVERIFY(!m[2].eval_loss);  // replaced by the re-run step's row
        QVERIFY_THROWS_EXCEPTION(moe::Error, st.finish_run(run, "exploded"));  // CHECK constraint
    }

    // Expert telemetry per model and workload: recordings add up, shapes come back as asked.
    void expertUsageByWorkload() {
        const std::string path = db_path("usage.db");
        {
            moe::UsageStore st(path);
            moe::StoredUsage u;
            u.prefill = {{}, {3, 0, 1}};
            u.decode = {{}, {1, 2, 0}};
            st.add("model-a", "coding", u);
            st.add("model-a", "coding", u);
            st.add("model-a", "chat", u);
            st.add("model-b", "coding", u);
        }
        moe::UsageStore st(path);
        const moe::StoredUsage got = st.load("model-a", "coding", {0, 3});
        QCOMPARE(got.prefill, (std::vector<std::vector<uint64_t>>{{}, {6, 0, 2}}));
        QCOMPARE(got.decode, (std::vector<std::vector<uint64_t>>{{}, {2, 4, 0}}));
        QCOMPARE(st.workloads("model-a"), (std::vector<std::string>{"chat", "coding"}));
        QCOMPARE(st.load("model-a", "nothing", {0, 3}).prefill[1],
                 (std::vector<uint64_t>{0, 0, 0}));
    }

    void refusesNewerDatabase() {
        const std::string path = db_path("newer.db");
        {
            moe::SqliteDb db(path);
            db.set_user_version(moe::kSchemaVersion + 1);
        }
        try {
            moe::ConversationStore st(path);
            QFAIL("a database from a newer version was opened");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("newer MoE Studio"), e.what());
        }
    }

    void unreadableFileIsAnError() {
        const QString dir = tmp_.filePath("not-a-db");
        QVERIFY(QDir().mkpath(dir));
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::ConversationStore(dir.toStdString()));
        const QString junk = tmp_.filePath("junk.db");
        std::ofstream(junk.toStdString()) << "this is not a database, it is a text file";
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::ConversationStore(junk.toStdString()));
    }

    // A child appends messages and reports each after append() returned; it is killed with
    // SIGKILL mid-stream. Every message it reported is in the database.
    void killedWriterLosesNothingReported() {
        const std::string path = db_path("kill.db");
        { moe::ConversationStore st(path); }
        int fds[2];
        QVERIFY(pipe(fds) == 0);
        const pid_t child = fork();
        QVERIFY(child >= 0);
        if (child == 0) {
            close(fds[0]);
            try {
                moe::ConversationStore st(path);
                const int64_t c = st.create_conversation("stress");
                std::optional<int64_t> parent;
                for (int i = 0;; ++i) {
                    parent = st.append(c, parent, i % 2 ? "assistant" : "user",
                                       "message " + std::to_string(i));
                    const std::string line = std::to_string(i) + "\n";
                    if (write(fds[1], line.data(), line.size()) < 0) _exit(3);
                }
            } catch (...) {
                _exit(2);
            }
        }
        close(fds[1]);
        FILE* in = fdopen(fds[0], "r");
        int reported = -1;
        char line[64];
        while (reported < 200 && fgets(line, sizeof line, in)) reported = std::atoi(line);
        kill(child, SIGKILL);
        int status = 0;
        waitpid(child, &status, 0);
        fclose(in);
        QVERIFY(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        moe::ConversationStore st(path);
        moe::Statement s(st.db(), "SELECT COUNT(*) FROM messages WHERE content = ?1");
        for (int i = 0; i <= reported; ++i) {
            s.reset();
            s.bind(1, "message " + std::to_string(i));
            s.step();
            QVERIFY2(s.int64(0) == 1, qPrintable(QString("message %1 lost").arg(i)));
        }
    }
};

QTEST_APPLESS_MAIN(TestStore)
#include "tst_store.moc"
