#include "store/conversation_store.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "store/schema.h"

namespace moe {

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

namespace {

constexpr const char* kMessageColumns =
    "id, conversation_id, parent_id, role, content, created_ms, meta";

StoredMessage read_message(const Statement& s) {
    return {s.int64(0), s.int64(1), s.optional_int64(2), s.text(3), s.text(4),
            s.int64(5), s.text(6)};
}

Conversation read_conversation(const Statement& s) {
    return {s.int64(0), s.text(1), s.int64(2), s.int64(3), s.text(4), s.optional_int64(5)};
}

constexpr const char* kConversationColumns =
    "id, title, created_ms, updated_ms, settings, active_leaf";

}  // namespace

ConversationStore::ConversationStore(const std::string& path) : db_(path) {
    migrate(db_);
}

int64_t ConversationStore::create_conversation(const std::string& title,
                                               const std::string& settings) {
    const int64_t t = now_ms();
    Statement s(db_,
                "INSERT INTO conversations (title, created_ms, updated_ms, settings) "
                "VALUES (?1, ?2, ?2, ?3)");
    s.bind(1, title).bind(2, t).bind(3, settings).run();
    return db_.last_insert_id();
}

void ConversationStore::touch(int64_t conversation) {
    Statement(db_, "UPDATE conversations SET updated_ms = ?2 WHERE id = ?1")
        .bind(1, conversation)
        .bind(2, now_ms())
        .run();
}

void ConversationStore::rename(int64_t conversation, const std::string& title) {
    Statement(db_, "UPDATE conversations SET title = ?2 WHERE id = ?1")
        .bind(1, conversation)
        .bind(2, title)
        .run();
    require(db_.changes() == 1, "no conversation " + std::to_string(conversation));
}

void ConversationStore::set_settings(int64_t conversation, const std::string& settings) {
    Statement(db_, "UPDATE conversations SET settings = ?2 WHERE id = ?1")
        .bind(1, conversation)
        .bind(2, settings)
        .run();
}

void ConversationStore::delete_conversation(int64_t conversation) {
    Statement(db_, "UPDATE conversations SET deleted_ms = ?2 WHERE id = ?1")
        .bind(1, conversation)
        .bind(2, now_ms())
        .run();
}

void ConversationStore::undo_delete(int64_t conversation) {
    Statement(db_, "UPDATE conversations SET deleted_ms = NULL WHERE id = ?1")
        .bind(1, conversation)
        .run();
}

int ConversationStore::purge_deleted(int64_t before_ms) {
    Transaction t(db_);
    // Messages first, children before parents: delete each conversation's whole tree at once
    // with the foreign keys' cascade from the conversation row.
    Statement(db_, "DELETE FROM conversations WHERE deleted_ms IS NOT NULL AND deleted_ms <= ?1")
        .bind(1, before_ms)
        .run();
    const int n = db_.changes();
    t.commit();
    return n;
}

std::optional<Conversation> ConversationStore::conversation(int64_t id) {
    Statement s(db_, std::string("SELECT ") + kConversationColumns +
                         " FROM conversations WHERE id = ?1 AND deleted_ms IS NULL");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_conversation(s);
}

std::vector<Conversation> ConversationStore::list() {
    Statement s(db_, std::string("SELECT ") + kConversationColumns +
                         " FROM conversations WHERE deleted_ms IS NULL "
                         "ORDER BY updated_ms DESC, id DESC");
    std::vector<Conversation> out;
    while (s.step()) out.push_back(read_conversation(s));
    return out;
}

int64_t ConversationStore::append(int64_t conversation, std::optional<int64_t> parent,
                                  const std::string& role, const std::string& content,
                                  const std::string& meta) {
    Transaction t(db_);
    if (parent) {
        const auto p = message(*parent);
        require(p && p->conversation_id == conversation, "message " + std::to_string(*parent) +
                                                             " is not in conversation " +
                                                             std::to_string(conversation));
    }
    Statement s(db_,
                "INSERT INTO messages (conversation_id, parent_id, role, content, created_ms, "
                "meta) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    s.bind(1, conversation).bind(2, parent).bind(3, role).bind(4, content).bind(5, now_ms());
    s.bind(6, meta).run();
    const int64_t id = db_.last_insert_id();
    Statement(db_, "UPDATE conversations SET active_leaf = ?2, updated_ms = ?3 WHERE id = ?1")
        .bind(1, conversation)
        .bind(2, id)
        .bind(3, now_ms())
        .run();
    t.commit();
    return id;
}

void ConversationStore::update(int64_t message, const std::string& content,
                               const std::string& meta) {
    Statement(db_, "UPDATE messages SET content = ?2, meta = ?3 WHERE id = ?1")
        .bind(1, message)
        .bind(2, content)
        .bind(3, meta)
        .run();
}

std::optional<StoredMessage> ConversationStore::message(int64_t id) {
    Statement s(db_, std::string("SELECT ") + kMessageColumns + " FROM messages WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_message(s);
}

void ConversationStore::set_active_leaf(int64_t conversation, int64_t leaf) {
    const auto m = message(leaf);
    require(m && m->conversation_id == conversation, "message " + std::to_string(leaf) +
                                                         " is not in conversation " +
                                                         std::to_string(conversation));
    Statement(db_, "UPDATE conversations SET active_leaf = ?2 WHERE id = ?1")
        .bind(1, conversation)
        .bind(2, leaf)
        .run();
}

std::vector<StoredMessage> ConversationStore::path_to(int64_t leaf) {
    Statement s(db_, std::string("WITH RECURSIVE up(id, depth) AS (SELECT ?1, 0 UNION ALL "
                                 "SELECT m.parent_id, up.depth + 1 FROM messages m JOIN up ON "
                                 "m.id = up.id WHERE m.parent_id IS NOT NULL) "
                                 "SELECT ") +
                         "m.id, m.conversation_id, m.parent_id, m.role, m.content, m.created_ms, "
                         "m.meta FROM up JOIN messages m ON m.id = up.id ORDER BY up.depth DESC");
    s.bind(1, leaf);
    std::vector<StoredMessage> out;
    while (s.step()) out.push_back(read_message(s));
    return out;
}

std::vector<StoredMessage> ConversationStore::active_path(int64_t conv) {
    const auto c = conversation(conv);
    return c && c->active_leaf ? path_to(*c->active_leaf) : std::vector<StoredMessage>{};
}

std::vector<int64_t> ConversationStore::siblings(int64_t message_id) {
    const auto m = message(message_id);
    require(m.has_value(), "no message " + std::to_string(message_id));
    Statement s(db_,
                "SELECT id FROM messages WHERE conversation_id = ?1 AND parent_id IS ?2 "
                "ORDER BY id");
    s.bind(1, m->conversation_id).bind(2, m->parent_id);
    std::vector<int64_t> out;
    while (s.step()) out.push_back(s.int64(0));
    return out;
}

int64_t ConversationStore::newest_leaf(int64_t message_id) {
    Statement s(db_, "SELECT MAX(id) FROM messages WHERE parent_id = ?1");
    int64_t at = message_id;
    for (;;) {
        s.reset();
        s.bind(1, at);
        if (!s.step() || s.is_null(0)) return at;
        at = s.int64(0);
    }
}

std::vector<SearchHit> ConversationStore::search(const std::string& query, int limit) {
    // Each word quoted: user text is not FTS5 syntax (a stray quote or "-" must not fail).
    std::string q;
    std::string word;
    const auto flush = [&] {
        if (word.empty()) return;
        std::string quoted = "\"";
        for (char c : word) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
        q += (q.empty() ? "" : " ") + quoted + "\"";
        word.clear();
    };
    for (char c : query) {
        if (c == ' ' || c == '\t' || c == '\n') {
            flush();
        } else {
            word += c;
        }
    }
    flush();
    if (q.empty()) return {};
    Statement s(db_,
                "SELECT m.conversation_id, m.id, c.title, "
                "snippet(messages_fts, 0, '[', ']', '...', 12) "
                "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "JOIN conversations c ON c.id = m.conversation_id "
                "WHERE messages_fts MATCH ?1 AND c.deleted_ms IS NULL "
                "ORDER BY m.created_ms DESC, m.id DESC LIMIT ?2");
    s.bind(1, q).bind(2, int64_t(limit));
    std::vector<SearchHit> out;
    while (s.step()) out.push_back({s.int64(0), s.int64(1), s.text(2), s.text(3)});
    return out;
}

std::string ConversationStore::export_markdown(int64_t conv) {
    const auto c = conversation(conv);
    require(c.has_value(), "no conversation " + std::to_string(conv));
    std::string md = "# " + c->title + "\n";
    for (const StoredMessage& m : active_path(conv)) {
        std::string who = m.role;
        if (!who.empty()) who[0] = char(std::toupper(static_cast<unsigned char>(who[0])));
        md += "\n## " + who + "\n\n" + m.content + "\n";
    }
    return md;
}

nlohmann::json ConversationStore::export_json(int64_t conv) {
    const auto c = conversation(conv);
    require(c.has_value(), "no conversation " + std::to_string(conv));
    nlohmann::json msgs = nlohmann::json::array();
    Statement s(db_, std::string("SELECT ") + kMessageColumns +
                         " FROM messages WHERE conversation_id = ?1 ORDER BY id");
    s.bind(1, conv);
    while (s.step()) {
        const StoredMessage m = read_message(s);
        msgs.push_back({{"id", m.id},
                        {"parent", m.parent_id ? nlohmann::json(*m.parent_id) : nullptr},
                        {"role", m.role},
                        {"content", m.content},
                        {"created_ms", m.created_ms},
                        {"meta", nlohmann::json::parse(m.meta, nullptr, false)}});
    }
    return {{"format", "moestudio-conversation"},
            {"version", 1},
            {"title", c->title},
            {"created_ms", c->created_ms},
            {"settings", nlohmann::json::parse(c->settings, nullptr, false)},
            {"active_leaf", c->active_leaf ? nlohmann::json(*c->active_leaf) : nullptr},
            {"messages", msgs}};
}

int64_t ConversationStore::import_json(const nlohmann::json& j) {
    if (!j.is_object() || j.value("format", "") != "moestudio-conversation")
        throw Error(
            "not a MoE Studio conversation export (\"format\" is not "
            "\"moestudio-conversation\")");
    if (j.value("version", 0) != 1)
        throw Error("conversation export version " + j.value("version", nlohmann::json()).dump() +
                    " is not supported (expected 1)");
    if (!j.contains("messages") || !j["messages"].is_array())
        throw Error("conversation export: \"messages\" must be an array");
    Transaction t(db_);
    const int64_t t0 = now_ms();
    Statement c(db_,
                "INSERT INTO conversations (title, created_ms, updated_ms, settings) "
                "VALUES (?1, ?2, ?3, ?4)");
    const nlohmann::json settings = j.value("settings", nlohmann::json::object());
    c.bind(1, j.value("title", std::string("Imported conversation")))
        .bind(2, j.value("created_ms", t0))
        .bind(3, t0)
        .bind(4, settings.is_discarded() ? std::string("{}") : settings.dump())
        .run();
    const int64_t conv = db_.last_insert_id();
    std::map<int64_t, int64_t> new_id;  // exported id -> id here (parents come first)
    Statement m(db_,
                "INSERT INTO messages (conversation_id, parent_id, role, content, created_ms, "
                "meta) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    for (const auto& e : j["messages"]) {
        std::optional<int64_t> parent;
        if (e.contains("parent") && !e["parent"].is_null()) {
            const auto it = new_id.find(e["parent"].get<int64_t>());
            if (it == new_id.end())
                throw Error("conversation export: message " +
                            e.value("id", nlohmann::json()).dump() + " comes before its parent");
            parent = it->second;
        }
        const std::string role = e.value("role", std::string());
        if (role != "system" && role != "user" && role != "assistant")
            throw Error("conversation export: unknown role '" + role + "'");
        m.reset();
        m.bind(1, conv).bind(2, parent).bind(3, role).bind(4, e.value("content", std::string()));
        m.bind(5, e.value("created_ms", t0));
        const nlohmann::json meta = e.value("meta", nlohmann::json::object());
        m.bind(6, meta.is_discarded() ? std::string("{}") : meta.dump()).run();
        new_id[e.value("id", int64_t(0))] = db_.last_insert_id();
    }
    if (j.contains("active_leaf") && !j["active_leaf"].is_null()) {
        const auto it = new_id.find(j["active_leaf"].get<int64_t>());
        if (it != new_id.end())
            Statement(db_, "UPDATE conversations SET active_leaf = ?2 WHERE id = ?1")
                .bind(1, conv)
                .bind(2, it->second)
                .run();
    }
    t.commit();
    return conv;
}

}  // namespace moe
