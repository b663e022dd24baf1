// A pool of PostgreSQL connections for the I/O threads. Each io_context gets its own
// connections (a connection's socket lives on one io_context, and a coroutine never changes
// thread), opened lazily up to a bound; a coroutine that finds none free waits its turn.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "adapters/postgres/detail/pg_connection.hpp"

namespace concertd::postgres {

struct PgPoolOptions {
    std::string conninfo;                            // libpq keyword/value string or URI
    int connections_per_thread = 4;                  // per io_context that uses the pool
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds statement_timeout{5000};  // each pipeline() round trip
    std::chrono::milliseconds acquire_timeout{3000};    // longest wait for a free connection
    app::Counter* round_trips = nullptr;  // counts every connection's round trips, if given
};

class PgPool;

// A connection borrowed from the pool; returned (or dropped if broken) on destruction.
class PooledConnection {
public:
    PooledConnection(PgPool* pool, void* slot, detail::PgConnection* connection)
        : pool_(pool), slot_(slot), connection_(connection) {}
    PooledConnection(PooledConnection&& other) noexcept;
    PooledConnection& operator=(PooledConnection&&) = delete;
    ~PooledConnection();

    detail::PgConnection& operator*() const { return *connection_; }
    detail::PgConnection* operator->() const { return connection_; }

private:
    PgPool* pool_;
    void* slot_;  // the pool's bookkeeping for this connection
    detail::PgConnection* connection_;
};

class PgPool {
public:
    explicit PgPool(PgPoolOptions options);
    ~PgPool();
    PgPool(const PgPool&) = delete;
    PgPool& operator=(const PgPool&) = delete;

    // A healthy connection bound to the calling coroutine's io_context. Throws
    // domain::DependencyUnavailable when the database cannot be reached or no connection
    // frees up within acquire_timeout.
    boost::asio::awaitable<PooledConnection> acquire();

    const PgPoolOptions& options() const { return options_; }

    struct State;

private:
    friend class PooledConnection;
    void give_back(void* slot, bool healthy);

    PgPoolOptions options_;
    std::unique_ptr<State> state_;
};

}  // namespace concertd::postgres
