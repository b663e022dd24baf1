// Thin layer over libmariadb's non-blocking API (mysql_*_start / mysql_*_cont), its socket
// waited on by Asio (STYLE.md: MySQL/MariaDB notes). A connection belongs to the io_context it
// was opened on and is used by one coroutine at a time; nothing here blocks a thread. Every
// statement with parameters is a server-side prepared statement, prepared once per connection.
// libmariadb has no pipeline: each call is one round trip.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "app/stats.hpp"

namespace concertd::mysql::detail {

// A statement parameter: NULL, an integer or a string.
using MysqlParam = std::variant<std::monostate, std::int64_t, std::string>;

inline MysqlParam param(std::int64_t value) { return value; }
inline MysqlParam param(std::string_view value) { return std::string(value); }
inline MysqlParam null_param() { return std::monostate{}; }

// What a server's URL says: mysql://user:password@host:port/database.
struct MysqlEndpoint {
    std::string host = "127.0.0.1";
    unsigned port = 3306;
    std::string user;
    std::string password;
    std::string database;
};

// Parses a mysql:// URL (user, password and port optional; percent-escapes decoded). Throws
// std::invalid_argument saying what is wrong.
MysqlEndpoint parse_mysql_url(std::string_view url);

// The rows of one statement, every value as text (as the server's text form of it), owned.
class MysqlResult {
public:
    int rows() const { return rows_; }
    int columns() const { return columns_; }
    bool is_null(int row, int column) const;
    std::string_view text(int row, int column) const;
    std::int64_t int64(int row, int column) const;
    std::optional<std::int64_t> optional_int64(int row, int column) const;
    std::int64_t affected_rows() const { return affected_rows_; }  // UPDATE/DELETE/INSERT
    std::int64_t insert_id() const { return insert_id_; }          // AUTO_INCREMENT of an INSERT

    // Filled by the connection.
    void start(int columns) { columns_ = columns; }
    void add_cell(std::optional<std::string_view> value);
    void set_counts(std::int64_t affected, std::int64_t insert_id) {
        affected_rows_ = affected;
        insert_id_ = insert_id;
    }

private:
    struct Cell {
        std::uint32_t offset = 0;
        std::int32_t length = -1;  // -1: NULL
    };
    const Cell& cell(int row, int column) const;

    int rows_ = 0;
    int columns_ = 0;
    std::string data_;
    std::vector<Cell> cells_;
    std::int64_t affected_rows_ = 0;
    std::int64_t insert_id_ = 0;
};

// A statement the server refused, with its error number: 1062 duplicate key, 1213 deadlock
// (the transaction was rolled back), 1205 lock wait timeout (the statement was), 4025/3819
// CHECK constraint.
class MysqlError : public std::runtime_error {
public:
    MysqlError(unsigned code, const std::string& message)
        : std::runtime_error(message), code_(code) {}
    unsigned code() const { return code_; }
    bool is_duplicate_key() const { return code_ == 1062; }
    bool is_deadlock() const { return code_ == 1213; }
    bool is_lock_wait_timeout() const { return code_ == 1205; }
    // Ran into another transaction's locks: nothing of this one is committed, a retry may pass.
    bool is_retryable() const { return is_deadlock() || is_lock_wait_timeout(); }

private:
    unsigned code_;
};

// How every session is set up right after it connects.
struct MysqlSessionOptions {
    // InnoDB's REPEATABLE READ takes gap and next-key locks on the ranges a locking read or an
    // UPDATE scans; READ COMMITTED takes only record locks (docs/mysql.md).
    const char* isolation = "READ COMMITTED";
    int lock_wait_timeout_seconds = 2;  // innodb_lock_wait_timeout: a stuck lock fails fast
};

class MysqlConnection {
public:
    ~MysqlConnection();
    MysqlConnection(const MysqlConnection&) = delete;
    MysqlConnection& operator=(const MysqlConnection&) = delete;

    // Opens a connection (mysql_real_connect_start/_cont) on `executor`'s io_context, utf8mb4,
    // UTC, the session options set. Throws domain::DependencyUnavailable when the server cannot
    // be reached within `timeout`. `round_trips`, if given, counts each execute() and query().
    static boost::asio::awaitable<std::unique_ptr<MysqlConnection>> connect(
        boost::asio::any_io_executor executor, MysqlEndpoint endpoint,
        std::chrono::milliseconds timeout, MysqlSessionOptions session = {},
        app::Counter* round_trips = nullptr);

    // Runs one statement (`?` placeholders) as a prepared statement, preparing it on first use
    // on this connection (that prepare is one more round trip, once). Throws MysqlError for a
    // refusal; inside a transaction the connection rolls it back first, so the connection is
    // clean for the next user. A lost connection or a `timeout` throws
    // domain::DependencyUnavailable and marks the connection broken.
    boost::asio::awaitable<MysqlResult> execute(std::string_view sql,
                                                std::vector<MysqlParam> params,
                                                std::chrono::milliseconds timeout);

    // One statement of the text protocol without parameters or rows (START TRANSACTION,
    // COMMIT, ROLLBACK, SET, DDL). Errors as execute().
    boost::asio::awaitable<void> query(std::string_view sql, std::chrono::milliseconds timeout);

    // False once the connection failed at the protocol or network level: the pool drops it.
    // An idle connection whose socket has input or a hangup is not healthy either.
    bool healthy() const;

    // True while the server says a transaction is open.
    bool in_transaction() const;

    // Marks the connection broken, so the pool drops (closes) it instead of lending it again:
    // the server then ends the session and frees what it held (GET_LOCK locks). For a caller
    // that can no longer tell what the session holds.
    void discard();

    struct Impl;

private:
    explicit MysqlConnection(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace concertd::mysql::detail
