#pragma once
// Conversations as message trees, stored in SQLite (schema.h). Every write is its own
// committed transaction, so whatever a caller has been told is saved survives the process
// being killed the next instant. Used from one thread (the engine thread owns a store; the
// CLI and the server open their own).
//
// The tree: a message's parent is the message it follows (null for the first). Editing a
// user message adds a sibling with the same parent; regenerating an answer adds a sibling
// answer; each conversation remembers the leaf of the branch on screen (active leaf).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "store/sqlite_db.h"

namespace moe {

struct Conversation {
    int64_t id = 0;
    std::string title;
    int64_t created_ms = 0, updated_ms = 0;
    std::string settings;  // JSON: system prompt, model, sampling
    std::optional<int64_t> active_leaf;
};

struct StoredMessage {
    int64_t id = 0;
    int64_t conversation_id = 0;
    std::optional<int64_t> parent_id;
    std::string role;  // "system", "user", "assistant"
    std::string content;
    int64_t created_ms = 0;
    std::string meta;  // JSON: token counts, tok/s, time to first token, model
};

struct SearchHit {
    int64_t conversation_id = 0, message_id = 0;
    std::string title;
    std::string snippet;  // the match in context, marked with [ and ]
};

class ConversationStore {
  public:
    // Opens (creating and migrating as needed) the database at `path`.
    explicit ConversationStore(const std::string& path);

    int64_t create_conversation(const std::string& title, const std::string& settings = "{}");
    void rename(int64_t conversation, const std::string& title);
    void set_settings(int64_t conversation, const std::string& settings);
    // Hidden at once; undo_delete() brings it back until purge_deleted() removes it for good.
    void delete_conversation(int64_t conversation);
    void undo_delete(int64_t conversation);
    // Removes conversations deleted at or before `before_ms` (with their messages).
    int purge_deleted(int64_t before_ms);
    std::optional<Conversation> conversation(int64_t id);
    // Not deleted, most recently updated first.
    std::vector<Conversation> list();

    // Adds a message under `parent` (null: a first message) and makes it the active leaf.
    int64_t append(int64_t conversation, std::optional<int64_t> parent, const std::string& role,
                   const std::string& content, const std::string& meta = "{}");
    // Replaces a message's text and meta (an answer that finished streaming).
    void update(int64_t message, const std::string& content, const std::string& meta);
    std::optional<StoredMessage> message(int64_t id);
    void set_active_leaf(int64_t conversation, int64_t leaf);
    // The messages from the first to `leaf`.
    std::vector<StoredMessage> path_to(int64_t leaf);
    // The active branch of a conversation (empty when it has no messages).
    std::vector<StoredMessage> active_path(int64_t conversation);
    // The ids of the messages sharing `message`'s parent, oldest first (the ‹ i/n › switcher).
    std::vector<int64_t> siblings(int64_t message);
    // The leaf reached from `message` by always taking the newest child.
    int64_t newest_leaf(int64_t message);

    // Full-text search over every message of the conversations not deleted (FTS5 syntax;
    // plain words are matched as prefixes-free terms). Newest first, at most `limit`.
    std::vector<SearchHit> search(const std::string& query, int limit = 50);

    // The active branch as Markdown, and the whole tree as JSON (import_json reads it back
    // into a new conversation).
    std::string export_markdown(int64_t conversation);
    nlohmann::json export_json(int64_t conversation);
    int64_t import_json(const nlohmann::json& j);

    SqliteDb& db() { return db_; }

  private:
    void touch(int64_t conversation);
    SqliteDb db_;
};

// Milliseconds since the epoch (the store's timestamps).
int64_t now_ms();

}  // namespace moe
