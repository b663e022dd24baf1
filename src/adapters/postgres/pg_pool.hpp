// The pool of PostgreSQL connections for the I/O threads: adapters::ConnectionPool over
// PgConnection (per-io_context connections opened lazily up to a bound, FIFO waiters, broken
// connections dropped), with the options every store reads.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "adapters/pool/connection_pool.hpp"
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

// A connection borrowed from the pool; returned (or dropped if broken) on destruction.
using PooledConnection = adapters::PooledConnection<detail::PgConnection>;

class PgPool {
public:
    explicit PgPool(PgPoolOptions options);
    PgPool(const PgPool&) = delete;
    PgPool& operator=(const PgPool&) = delete;

    // A healthy connection bound to the calling coroutine's io_context. Throws
    // domain::DependencyUnavailable when the database cannot be reached or no connection
    // frees up within acquire_timeout.
    boost::asio::awaitable<PooledConnection> acquire() { return pool_.acquire(); }

    const PgPoolOptions& options() const { return options_; }

private:
    PgPoolOptions options_;
    adapters::ConnectionPool<detail::PgConnection> pool_;
};

}  // namespace concertd::postgres
