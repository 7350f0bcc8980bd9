#include "store/schema.h"

#include "core/error.h"

namespace moe {

const std::vector<std::string>& schema_migrations() {
    static const std::vector<std::string> steps = {
        // 0 -> 1: conversations and their message tree (a message's parent is the message it
        // answers or follows; siblings are alternative branches: edits and regenerations).
        R"(
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    active_leaf INTEGER
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX messages_by_parent ON messages(conversation_id, parent_id);
)",
        // 1 -> 2: deletion with undo (deleted_ms), full-text search over message text.
        R"(
ALTER TABLE conversations ADD COLUMN deleted_ms INTEGER;
CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id');
INSERT INTO messages_fts(rowid, content) SELECT id, content FROM messages;
CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER message_search_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
)",
        // 2 -> 3: fine-tuning runs and their metrics, one row per optimizer step.
        R"(
CREATE TABLE training_runs (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    dataset TEXT NOT NULL,
    out_dir TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'finished', 'stopped', 'failed')),
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE training_metrics (
    run_id INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    loss REAL NOT NULL,
    eval_loss REAL,
    lr REAL NOT NULL,
    grad_norm REAL NOT NULL,
    tokens_per_s REAL NOT NULL,
    step_seconds REAL NOT NULL,
    ram_bytes INTEGER,
    vram_bytes INTEGER,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
);
)",
        // 3 -> 4: expert telemetry per model and workload (a user's label: "coding", a chat).
        R"(
CREATE TABLE expert_usage (
    model TEXT NOT NULL,
    workload TEXT NOT NULL,
    layer INTEGER NOT NULL,
    expert INTEGER NOT NULL,
    prefill INTEGER NOT NULL DEFAULT 0,
    decode INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (model, workload, layer, expert)
);
)",
        // 4 -> 5: named placement profiles per model (the placement editor's save/load).
        R"(
CREATE TABLE placement_profiles (
    model TEXT NOT NULL,
    name TEXT NOT NULL,
    placement TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (model, name)
);
)",
    };
    return steps;
}

void migrate(SqliteDb& db) {
    const int v = db.user_version();
    if (v > kSchemaVersion) {
        throw Error(db.path() + ": written by a newer MoE Studio (schema version " +
                    std::to_string(v) + "; this one knows up to " + std::to_string(kSchemaVersion) +
                    "). Update MoE Studio to open it.");
    }
    const auto& steps = schema_migrations();
    for (int i = v; i < kSchemaVersion; ++i) {
        Transaction t(db);
        db.exec(steps[size_t(i)]);
        db.set_user_version(i + 1);
        t.commit();
    }
}

}  // namespace moe
