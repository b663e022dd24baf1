// A pool of database connections for the I/O threads, shared by the PostgreSQL and MariaDB
// adapters. Each io_context gets its own connections (a connection's socket lives on one
// io_context, and a coroutine never changes thread), opened lazily up to a bound; a coroutine
// that finds none free waits its turn (FIFO). A connection that comes back broken, or inside a
// transaction, is dropped, which frees its place (how the pool recovers after a restart).
//
// `Connection` needs `bool healthy() const` (false once it failed, or when an idle socket shows
// input or a hangup) and `bool in_transaction() const`. The definitions are in
// connection_pool_impl.hpp, instantiated once per connection type by its adapter.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace concertd::adapters {

template <class Connection>
class ConnectionPool;

// A connection borrowed from the pool; returned (or dropped if broken) on destruction.
template <class Connection>
class PooledConnection {
public:
    PooledConnection(ConnectionPool<Connection>* pool, void* slot, Connection* connection)
        : pool_(pool), slot_(slot), connection_(connection) {}
    PooledConnection(PooledConnection&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          slot_(std::exchange(other.slot_, nullptr)),
          connection_(std::exchange(other.connection_, nullptr)) {}
    PooledConnection& operator=(PooledConnection&&) = delete;
    ~PooledConnection() {
        // Given back inside a transaction (the user's coroutine threw between two statements of
        // a transaction): dropped, so the server rolls it back and the next user starts clean.
        if (pool_) pool_->give_back(slot_, connection_->healthy() && !connection_->in_transaction());
    }

    Connection& operator*() const { return *connection_; }
    Connection* operator->() const { return connection_; }

private:
    ConnectionPool<Connection>* pool_;
    void* slot_;  // the pool's bookkeeping for this connection
    Connection* connection_;
};

struct ConnectionPoolLimits {
    int connections_per_thread = 4;                   // per io_context that uses the pool
    std::chrono::milliseconds acquire_timeout{3000};  // longest wait for a free connection
    std::string name;                                 // "postgres": starts error messages
};

template <class Connection>
class ConnectionPool {
public:
    // Opens one connection on the given executor's io_context; throws
    // domain::DependencyUnavailable when the database cannot be reached.
    using Connect = std::function<boost::asio::awaitable<std::unique_ptr<Connection>>(
        boost::asio::any_io_executor)>;

    ConnectionPool(ConnectionPoolLimits limits, Connect connect);
    ~ConnectionPool();
    ConnectionPool(const ConnectionPool&) = delete;
    ConnectionPool& operator=(const ConnectionPool&) = delete;

    // A healthy connection bound to the calling coroutine's io_context. Throws
    // domain::DependencyUnavailable when the database cannot be reached or no connection
    // frees up within acquire_timeout.
    boost::asio::awaitable<PooledConnection<Connection>> acquire();

    struct State;

private:
    friend class PooledConnection<Connection>;
    void give_back(void* slot, bool healthy);

    ConnectionPoolLimits limits_;
    Connect connect_;
    std::unique_ptr<State> state_;
};

}  // namespace concertd::adapters
