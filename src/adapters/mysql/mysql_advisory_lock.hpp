// The lock of the `distributed` strategy on MariaDB/MySQL named locks, GET_LOCK() (SPEC §4: no
// Redis configured). A key becomes a lock name of at most 64 characters (lock_name(): the
// database and the key, or their hash when long); the fence comes from the one-row table
// lock_fence.
//
// Guarantees (PgAdvisoryLock's):
// - At most one lease per key at a time over every process and session on the database (GET_LOCK
//   names are server-wide: the name carries the database's; two long names with the same 64-bit
//   hash only share a lock: slower, never unsafe).
// - Every grant gets a fence larger than every earlier grant's (one row for all keys, and at
//   least the clock in microseconds, as the Redis lock's, so switching locks never makes fences
//   go down), taken only after the lock was granted; a fresh random owner string per lease;
//   release() with an unknown owner does nothing.
// - Waiting polls GET_LOCK(name, 0) with jittered exponential backoff (kBackoffFirst doubling to
//   kBackoffMax), giving the connection back between tries; a waiter whose key this process
//   holds, or is asking the server for, does not ask until that is over: one try of a key in
//   flight per process, however many wait here (adapters/local_claims.hpp). No FIFO among
//   waiters.
//   (A server-side wait, GET_LOCK(name, seconds), would keep a connection per waiter for the
//   whole wait and must end within the statement timeout; polling keeps the pool's use at one
//   connection per lease plus one per try in flight, as on PostgreSQL.) acquire() returns nullopt
//   once `wait` has run out; it may overrun `wait` by a try's round trips, or by up to the pool's
//   acquire_timeout when the pool has no free connection.
// - While a lease is held, its session holds the lock, so the adapter keeps that connection (out
//   of the pool) until release(). A connection never goes back to the pool holding a lock: the
//   release is RELEASE_ALL_LOCKS(), and when it fails, or anything fails between a grant and
//   keeping the lease, the connection is discarded (closed: the server frees the lock with the
//   session). If the lease's connection broke, the server has dropped the lock with the session;
//   release() then just drops the connection and does not throw.
// - Thread-safe. release() may come from any coroutine: on the io_context that acquired (the use
//   case's case) the unlock runs inline; from another io_context it is handed to the acquiring
//   one (which must still run) and awaited without the caller changing thread.
//
// Round trips: a try that finds the key busy, 1 (SELECT GET_LOCK); a grant, 2 (GET_LOCK, then the
// fence: UPDATE lock_fence … LAST_INSERT_ID(…), its value read from the OK packet); release(), 1.
//
// Pool use: one connection per held lease, plus one per waiter during its try. Give this adapter
// a MysqlPool of its own: on the storage pool, leases held on one thread could take every
// connection the transactions they guard need, which then wait until acquire_timeout. Destroy it
// only after every coroutine using it has finished: a lease still held then is discarded with its
// connection (the server frees the lock).
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "adapters/local_claims.hpp"
#include "adapters/mysql/mysql_pool.hpp"
#include "app/ports/distributed_lock.hpp"

namespace concertd::mysql {

class MysqlAdvisoryLock final : public app::DistributedLock {
public:
    static constexpr std::chrono::milliseconds kBackoffFirst{1};
    static constexpr std::chrono::milliseconds kBackoffMax{50};

    // `pool` must outlive the lock.
    explicit MysqlAdvisoryLock(MysqlPool& pool) : pool_(pool) {}
    ~MysqlAdvisoryLock() override;
    MysqlAdvisoryLock(const MysqlAdvisoryLock&) = delete;
    MysqlAdvisoryLock& operator=(const MysqlAdvisoryLock&) = delete;

    // Throws domain::DependencyUnavailable when the database cannot be reached.
    boost::asio::awaitable<std::optional<app::LockLease>> acquire(
        std::string key, std::chrono::milliseconds wait) override;
    // One round trip (RELEASE_ALL_LOCKS) on the lease's own connection, then gives it back.
    // Does nothing for an owner it does not know; never throws for a broken connection.
    boost::asio::awaitable<void> release(app::LockLease lease) override;

    // Leases held by this process, and the tries it sent to the server (for tests and metrics).
    std::size_t held_count() const;
    std::uint64_t tries() const { return tries_.load(std::memory_order_relaxed); }

private:
    // A granted lease: the session that holds the lock, and the io_context it lives on.
    struct Held {
        std::string key;
        boost::asio::any_io_executor executor;
        PooledConnection connection;
    };

    boost::asio::awaitable<std::optional<app::LockLease>> try_once(const std::string& key);
    // Unlocks on the held connection and gives it back (discards it if that fails). On its
    // io_context.
    static boost::asio::awaitable<void> unlock(Held held, std::chrono::milliseconds timeout);

    MysqlPool& pool_;
    mutable std::mutex mutex_;  // never held across a co_await
    std::unordered_map<std::string, Held> held_;  // by owner
    adapters::LocalClaims claims_;  // the keys of held_, and of tries in flight
    std::atomic<std::uint64_t> tries_{0};
};

}  // namespace concertd::mysql
