#include "adapters/sqlite/detail/sqlite_connection.hpp"

#include <spdlog/spdlog.h>

namespace concertd::sqlite::detail {

namespace {

[[noreturn]] void throw_error(sqlite3* db, int code, std::string_view context) {
    std::string message(context);
    message += ": ";
    message += db ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    throw SqliteError(db ? sqlite3_extended_errcode(db) : code, message);
}

void check(sqlite3* db, int code, std::string_view context) {
    if (code != SQLITE_OK) throw_error(db, code, context);
}

}  // namespace

Statement& Statement::bind(int index, std::int64_t value) {
    check(db_, sqlite3_bind_int64(stmt_, index, value), "sqlite3_bind_int64");
    return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
    check(db_,
          sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                            SQLITE_TRANSIENT),
          "sqlite3_bind_text");
    return *this;
}

Statement& Statement::bind(int index, std::optional<std::int64_t> value) {
    return value ? bind(index, *value) : bind_null(index);
}

Statement& Statement::bind_null(int index) {
    check(db_, sqlite3_bind_null(stmt_, index), "sqlite3_bind_null");
    return *this;
}

bool Statement::step() {
    int code = sqlite3_step(stmt_);
    if (code == SQLITE_ROW) return true;
    if (code == SQLITE_DONE) return false;
    throw_error(db_, code, sqlite3_sql(stmt_));
}

std::optional<std::int64_t> Statement::column_optional_int64(int index) const {
    if (column_is_null(index)) return std::nullopt;
    return column_int64(index);
}

std::string_view Statement::column_text(int index) const {
    auto text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
    if (!text) return {};
    return {text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index))};
}

void Statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

Connection::Connection(const std::string& path, Mode mode) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (mode == Mode::kWriter) flags |= SQLITE_OPEN_CREATE;
    int code = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (code != SQLITE_OK) {
        std::string message = "cannot open " + path + ": " +
                              (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(code));
        sqlite3_close(db_);
        db_ = nullptr;
        throw SqliteError(code, message);
    }
    // WAL: readers never block the writer nor each other. synchronous=NORMAL keeps every
    // committed transaction across a process crash (kill -9); only an OS crash may lose the last.
    exec("PRAGMA busy_timeout = 5000");
    if (mode == Mode::kWriter) {
        exec("PRAGMA journal_mode = WAL");
    }
    exec("PRAGMA synchronous = NORMAL");
    exec("PRAGMA foreign_keys = ON");
    exec("PRAGMA temp_store = MEMORY");
    exec("PRAGMA cache_size = -16384");  // 16 MiB page cache per connection
    if (mode == Mode::kReader) exec("PRAGMA query_only = ON");
}

Connection::~Connection() {
    statements_.clear();
    cache_.clear();
    if (db_) sqlite3_close_v2(db_);
}

void Connection::exec(const char* sql) {
    char* error = nullptr;
    int code = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
    if (code != SQLITE_OK) {
        std::string message = std::string(sql).substr(0, 80) + ": " + (error ? error : "");
        sqlite3_free(error);
        throw SqliteError(sqlite3_extended_errcode(db_), message);
    }
}

ScopedStatement Connection::prepare(const char* sql) {
    // Keyed by the literal's address: every call site passes a string literal.
    auto found = statements_.find(sql);
    if (found != statements_.end()) return ScopedStatement(found->second);
    sqlite3_stmt* raw = nullptr;
    check(db_, sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr), sql);
    cache_.emplace(sql, std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)>(raw, sqlite3_finalize));
    auto [inserted, _] = statements_.emplace(sql, Statement(db_, raw));
    return ScopedStatement(inserted->second);
}

Transaction::Transaction(Connection& connection, Kind kind) : connection_(connection) {
    connection_.exec(kind == Kind::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

Transaction::~Transaction() {
    if (!open_) return;
    try {
        connection_.exec("ROLLBACK");
    } catch (const std::exception& error) {
        spdlog::error("sqlite rollback failed: {}", error.what());
    }
}

void Transaction::commit() {
    connection_.exec("COMMIT");
    open_ = false;
}

}  // namespace concertd::sqlite::detail
