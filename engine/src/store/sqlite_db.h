#pragma once
// A thin owner of one SQLite connection: opening with the settings every MoE Studio database
// uses (WAL journal, foreign keys on, a busy timeout), prepared statements, and transactions
// that roll back unless committed. Every failure becomes a moe::Error naming the database file
// and, for statements, the SQL at fault.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace moe {

class SqliteDb;

class Statement {
  public:
    Statement(SqliteDb& db, std::string_view sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    Statement(Statement&& o) noexcept;

    // Parameters are 1-based, as in SQL's ?1, ?2 ...
    Statement& bind(int i, int64_t v);
    Statement& bind(int i, double v);
    Statement& bind(int i, std::string_view v);
    Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
    Statement& bind_null(int i);
    Statement& bind(int i, const std::optional<int64_t>& v) {
        return v ? bind(i, *v) : bind_null(i);
    }
    // Runs to the next row: true while there is one.
    bool step();
    // Runs a statement that returns no rows.
    void run();
    void reset();

    int64_t int64(int col) const;
    double real(int col) const;
    std::string text(int col) const;
    bool is_null(int col) const;
    std::optional<int64_t> optional_int64(int col) const {
        return is_null(col) ? std::nullopt : std::optional<int64_t>(int64(col));
    }

  private:
    SqliteDb* db_;
    sqlite3_stmt* s_ = nullptr;
    std::string sql_;
};

class SqliteDb {
  public:
    // Opens (creating it if needed) `path`; ":memory:" for a private in-memory database.
    explicit SqliteDb(const std::string& path);
    ~SqliteDb();
    SqliteDb(const SqliteDb&) = delete;
    SqliteDb& operator=(const SqliteDb&) = delete;

    const std::string& path() const { return path_; }
    sqlite3* handle() const { return db_; }
    // Runs one or more statements that return nothing.
    void exec(std::string_view sql);
    int64_t last_insert_id() const;
    int changes() const;
    int user_version();
    void set_user_version(int v);
    // Throws moe::Error naming the file and `what` when rc is not SQLITE_OK/ROW/DONE.
    void check(int rc, std::string_view what) const;

  private:
    std::string path_;
    sqlite3* db_ = nullptr;
};

// BEGIN IMMEDIATE now (the write lock at once: no deadlock between two writers), COMMIT on
// commit(), ROLLBACK when destroyed without it.
class Transaction {
  public:
    explicit Transaction(SqliteDb& db);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

  private:
    SqliteDb& db_;
    bool done_ = false;
};

}  // namespace moe
