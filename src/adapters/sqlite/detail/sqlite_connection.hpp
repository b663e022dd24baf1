// Thin RAII wrapper over the SQLite C API: a connection with a cache of prepared statements,
// statements whose methods name what they wrap, and a transaction guard. Errors throw
// SqliteError carrying the SQLite result code.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace concertd::sqlite::detail {

class SqliteError : public std::runtime_error {
public:
    SqliteError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const { return code_; }                   // extended result code
    int primary_code() const { return code_ & 0xff; }  // SQLITE_CONSTRAINT, SQLITE_BUSY, ...

private:
    int code_;
};

class Statement {
public:
    Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

    // Binds by 1-based index (sqlite3_bind_*).
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view value);
    Statement& bind(int index, std::optional<std::int64_t> value);
    Statement& bind_null(int index);

    // sqlite3_step: true while a row is available, false when done.
    bool step();
    // Steps a statement that returns no rows.
    void execute() { while (step()) {} }

    std::int64_t column_int64(int index) const { return sqlite3_column_int64(stmt_, index); }
    bool column_is_null(int index) const {
        return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
    }
    std::optional<std::int64_t> column_optional_int64(int index) const;
    std::string_view column_text(int index) const;

    // sqlite3_reset + sqlite3_clear_bindings: ready for the next use.
    void reset();

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_;
};

// A statement borrowed from the connection's cache; reset when it goes out of scope.
class ScopedStatement {
public:
    explicit ScopedStatement(Statement& statement) : statement_(statement) {}
    ~ScopedStatement() { statement_.reset(); }
    ScopedStatement(const ScopedStatement&) = delete;
    ScopedStatement& operator=(const ScopedStatement&) = delete;
    Statement* operator->() { return &statement_; }
    Statement& operator*() { return statement_; }

private:
    Statement& statement_;
};

class Connection {
public:
    // kCheckpointer: read-write, for WAL checkpoints only (WalCheckpointer).
    enum class Mode { kWriter, kReader, kCheckpointer };
    Connection(const std::string& path, Mode mode);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // sqlite3_exec for statements without parameters or rows (PRAGMA, BEGIN, DDL).
    void exec(const char* sql);
    // A prepared statement from this connection's cache (sqlite3_prepare_v3, persistent).
    ScopedStatement prepare(const char* sql);
    // sqlite3_changes64: rows changed by the last statement.
    std::int64_t changes() const { return sqlite3_changes64(db_); }
    std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
    // The raw handle, for the C API calls this wrapper does not name (sqlite3_wal_hook).
    sqlite3* handle() { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::unordered_map<const char*, std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)>> cache_;
    std::unordered_map<const char*, Statement> statements_;
};

// BEGIN on construction, ROLLBACK on destruction unless committed.
class Transaction {
public:
    enum class Kind { kDeferred, kImmediate };
    Transaction(Connection& connection, Kind kind);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Connection& connection_;
    bool open_ = true;
};

}  // namespace concertd::sqlite::detail
