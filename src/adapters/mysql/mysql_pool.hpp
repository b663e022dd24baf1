// The pool of MariaDB/MySQL connections for the I/O threads: adapters::ConnectionPool over
// MysqlConnection (per-io_context connections opened lazily up to a bound, FIFO waiters, broken
// connections dropped), with the options every store reads.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>

#include "adapters/mysql/detail/mysql_connection.hpp"
#include "adapters/pool/connection_pool.hpp"

namespace concertd::mysql {

struct MysqlPoolOptions {
    detail::MysqlEndpoint endpoint;
    detail::MysqlSessionOptions session;
    int connections_per_thread = 4;                     // per io_context that uses the pool
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds statement_timeout{5000};  // each round trip
    std::chrono::milliseconds acquire_timeout{3000};    // longest wait for a free connection
    app::Counter* round_trips = nullptr;  // counts every connection's round trips, if given
};

using PooledConnection = adapters::PooledConnection<detail::MysqlConnection>;

class MysqlPool {
public:
    explicit MysqlPool(MysqlPoolOptions options);
    MysqlPool(const MysqlPool&) = delete;
    MysqlPool& operator=(const MysqlPool&) = delete;

    // A healthy connection bound to the calling coroutine's io_context. Throws
    // domain::DependencyUnavailable when the database cannot be reached or no connection
    // frees up within acquire_timeout.
    boost::asio::awaitable<PooledConnection> acquire() { return pool_.acquire(); }

    const MysqlPoolOptions& options() const { return options_; }

private:
    MysqlPoolOptions options_;
    adapters::ConnectionPool<detail::MysqlConnection> pool_;
};

}  // namespace concertd::mysql
