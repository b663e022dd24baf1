// Thin layer over libpq in non-blocking mode, its socket waited on by Asio (STYLE.md: libpq
// notes). A connection belongs to the io_context it was opened on and is used by one coroutine
// at a time; nothing here blocks a thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "app/stats.hpp"

struct pg_conn;
struct pg_result;

namespace concertd::postgres::detail {

// A parameter in text format; nullopt is SQL NULL.
using PgParam = std::optional<std::string>;

inline PgParam param(std::int64_t value) { return std::to_string(value); }
inline PgParam param(std::string_view value) { return std::string(value); }

struct PgStatement {
    std::string_view sql;  // $1..$n placeholders; prepared once per connection, by text
    std::vector<PgParam> params;
};

// The outcome of one statement (PGresult), owned.
class PgResult {
public:
    PgResult() = default;
    explicit PgResult(pg_result* result);
    PgResult(PgResult&&) noexcept;
    PgResult& operator=(PgResult&&) noexcept;
    ~PgResult();

    int rows() const;
    bool is_null(int row, int column) const;
    std::string_view text(int row, int column) const;
    std::int64_t int64(int row, int column) const;
    std::optional<std::int64_t> optional_int64(int row, int column) const;
    bool boolean(int row, int column) const;  // 't' / 'f'
    std::int64_t affected_rows() const;      // PQcmdTuples, 0 when none

private:
    pg_result* result_ = nullptr;
};

// A statement the server refused: SQLSTATE tells what (23505 unique violation, 40001
// serialization failure, 40P01 deadlock, 55P03 lock not available, 57014 statement timeout).
class PgError : public std::runtime_error {
public:
    PgError(std::string sqlstate, const std::string& message)
        : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }
    bool is_unique_violation() const { return sqlstate_ == "23505"; }
    bool is_retryable() const {  // serialization failure, deadlock
        return sqlstate_ == "40001" || sqlstate_ == "40P01";
    }
    bool is_lock_not_available() const { return sqlstate_ == "55P03"; }

private:
    std::string sqlstate_;
};

class PgConnection {
public:
    ~PgConnection();
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    // Opens a connection (PQconnectStart/PQconnectPoll) on `executor`'s io_context.
    // Throws domain::DependencyUnavailable when the server cannot be reached within `timeout`.
    // `round_trips`, if given, counts each round trip of pipeline() and execute() (one per
    // pipeline, one more for a ROLLBACK after a failed one); the connect itself is not counted.
    static boost::asio::awaitable<std::unique_ptr<PgConnection>> connect(
        boost::asio::any_io_executor executor, std::string conninfo,
        std::chrono::milliseconds timeout, app::Counter* round_trips = nullptr);

    // Sends every statement in one pipeline (one round trip) and returns one result per
    // statement, in order. Each distinct SQL text is prepared once per connection (the prepare
    // rides in the same pipeline). If a statement fails, the rest are skipped by the server and
    // this throws PgError for the first failure; an open transaction is rolled back before it
    // returns, so the connection is clean for the next user. A lost connection or a `timeout`
    // throws domain::DependencyUnavailable and marks the connection broken.
    boost::asio::awaitable<std::vector<PgResult>> pipeline(std::span<const PgStatement> statements,
                                                           std::chrono::milliseconds timeout);

    // One statement: pipeline() of one.
    boost::asio::awaitable<PgResult> execute(std::string_view sql, std::vector<PgParam> params,
                                             std::chrono::milliseconds timeout);

    // False once the connection failed at the protocol or network level: the pool drops it.
    // An idle connection whose socket has input or a hangup (the server closed it, e.g. on a
    // restart) is not healthy either.
    bool healthy() const;

    // True while a transaction is open (BEGIN sent, no COMMIT/ROLLBACK yet). The pool drops a
    // connection given back in that state: closing it makes the server roll back.
    bool in_transaction() const;

    struct Impl;

private:
    explicit PgConnection(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace concertd::postgres::detail
