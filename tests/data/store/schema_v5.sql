-- MoE Studio database schema, version 5 (frozen: never edit; tst_store compares a new
-- database with it and migrates from it).
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    active_leaf INTEGER
, deleted_ms INTEGER);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id');
CREATE INDEX messages_by_parent ON messages(conversation_id, parent_id);
CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER message_search_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
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
CREATE TABLE placement_profiles (
    model TEXT NOT NULL,
    name TEXT NOT NULL,
    placement TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (model, name)
);
