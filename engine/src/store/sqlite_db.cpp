#include "store/sqlite_db.h"

#include <sqlite3.h>

#include "core/error.h"

namespace moe {

namespace {

std::string shorten(std::string_view sql) {
    std::string s(sql.substr(0, 120));
    for (char& c : s)
        if (c == '\n') c = ' ';
    return sql.size() > 120 ? s + "..." : s;
}

}  // namespace

SqliteDb::SqliteDb(const std::string& path) : path_(path) {
    const int rc =
        sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) {
        const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        if (db_) sqlite3_close(db_);
        db_ = nullptr;
        throw Error(path + ": cannot open the database: " + msg);
    }
    sqlite3_busy_timeout(db_, 5000);
    // WAL: readers never block the writer, and a commit is one append (durable against a
    // crash of this process at once; NORMAL syncs at checkpoints, enough for desktop data).
    if (path != ":memory:") exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    exec("PRAGMA foreign_keys=ON;");
}

SqliteDb::~SqliteDb() {
    if (db_) sqlite3_close_v2(db_);
}

void SqliteDb::check(int rc, std::string_view what) const {
    if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
    throw Error(path_ + ": " + std::string(what) + ": " + sqlite3_errmsg(db_) + " (" +
                sqlite3_errstr(rc) + ")");
}

void SqliteDb::exec(std::string_view sql) {
    char* err = nullptr;
    const std::string s(sql);
    const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        const std::string msg = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        throw Error(path_ + ": " + msg + " in: " + shorten(sql));
    }
}

int64_t SqliteDb::last_insert_id() const {
    return sqlite3_last_insert_rowid(db_);
}

int SqliteDb::changes() const {
    return sqlite3_changes(db_);
}

int SqliteDb::user_version() {
    Statement s(*this, "PRAGMA user_version");
    s.step();
    return int(s.int64(0));
}

void SqliteDb::set_user_version(int v) {
    exec("PRAGMA user_version = " + std::to_string(v));
}

Statement::Statement(SqliteDb& db, std::string_view sql) : db_(&db), sql_(sql) {
    db.check(sqlite3_prepare_v2(db.handle(), sql_.data(), int(sql_.size()), &s_, nullptr),
             "cannot prepare " + shorten(sql_));
}

Statement::~Statement() {
    if (s_) sqlite3_finalize(s_);
}

Statement::Statement(Statement&& o) noexcept : db_(o.db_), s_(o.s_), sql_(std::move(o.sql_)) {
    o.s_ = nullptr;
}

Statement& Statement::bind(int i, int64_t v) {
    db_->check(sqlite3_bind_int64(s_, i, v), "bind in " + shorten(sql_));
    return *this;
}

Statement& Statement::bind(int i, double v) {
    db_->check(sqlite3_bind_double(s_, i, v), "bind in " + shorten(sql_));
    return *this;
}

Statement& Statement::bind(int i, std::string_view v) {
    db_->check(sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT),
               "bind in " + shorten(sql_));
    return *this;
}

Statement& Statement::bind_null(int i) {
    db_->check(sqlite3_bind_null(s_, i), "bind in " + shorten(sql_));
    return *this;
}

bool Statement::step() {
    const int rc = sqlite3_step(s_);
    db_->check(rc, shorten(sql_));
    return rc == SQLITE_ROW;
}

void Statement::run() {
    while (step()) {
    }
}

void Statement::reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
}

int64_t Statement::int64(int col) const {
    return sqlite3_column_int64(s_, col);
}

double Statement::real(int col) const {
    return sqlite3_column_double(s_, col);
}

std::string Statement::text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, size_t(sqlite3_column_bytes(s_, col))) : std::string();
}

bool Statement::is_null(int col) const {
    return sqlite3_column_type(s_, col) == SQLITE_NULL;
}

Transaction::Transaction(SqliteDb& db) : db_(db) {
    db_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
    if (done_) return;
    try {
        db_.exec("ROLLBACK");
    } catch (...) {
        // Nothing to do: the connection closes the transaction when it goes.
    }
}

void Transaction::commit() {
    db_.exec("COMMIT");
    done_ = true;
}

}  // namespace moe
