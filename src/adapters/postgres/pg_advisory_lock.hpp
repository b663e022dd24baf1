// The lock of the `distributed` strategy on PostgreSQL session advisory locks (SPEC §4: no Redis
// configured). The key is hashed to the 64-bit advisory key space with hashtextextended(key, 0);
// the fence comes from the sequence lock_fence.
//
// Guarantees:
// - At most one lease per key at a time over every process and session on the database (two
//   keys with the same 64-bit hash only share a lock: slower, never unsafe).
// - Every grant gets a fence larger than every earlier grant's (one sequence for all keys), taken
//   in the same statement as the lock, only when it was granted; a fresh random owner string per
//   lease; release() with an unknown owner does nothing.
// - Waiting polls pg_try_advisory_lock with jittered exponential backoff (kBackoffFirst doubling
//   to kBackoffMax), giving the connection back between tries; a waiter whose key this process
//   holds, or is asking the database for, does not ask until that is over: one try of a key in
//   flight per process, however many wait here (adapters/local_claims.hpp). No FIFO among
//   waiters.
//   acquire() returns nullopt once `wait` has run out; it may overrun `wait` by one round trip,
//   or by up to the pool's acquire_timeout when the pool has no free connection.
// - While a lease is held, its session holds the lock, so the adapter keeps that connection
//   (out of the pool) until release(). If that connection breaks, the server has dropped the
//   lock with the session; release() then just drops the connection and does not throw.
// - Thread-safe. release() may come from any coroutine: on the io_context that acquired (the use
//   case's case) the unlock runs inline; from another io_context it is handed to the acquiring
//   one (which must still run) and awaited without the caller changing thread.
//
// Pool use: one connection per held lease, plus one per waiter during its try. Give this adapter
// a PgPool of its own: on the storage pool, leases held on one thread could take every
// connection the transactions they guard need, which then wait until acquire_timeout.
// Destroy it only after every coroutine using it has finished: a lease still held then is
// given back to the pool with its session lock still held (PooledConnection has no discard).
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
#include "adapters/postgres/pg_pool.hpp"
#include "app/ports/distributed_lock.hpp"

namespace concertd::postgres {

class PgAdvisoryLock final : public app::DistributedLock {
public:
    static constexpr std::chrono::milliseconds kBackoffFirst{1};
    static constexpr std::chrono::milliseconds kBackoffMax{50};

    // `pool` must outlive the lock.
    explicit PgAdvisoryLock(PgPool& pool) : pool_(pool) {}
    PgAdvisoryLock(const PgAdvisoryLock&) = delete;
    PgAdvisoryLock& operator=(const PgAdvisoryLock&) = delete;

    // One round trip per try: SELECT CASE WHEN pg_try_advisory_lock(…) THEN nextval(…) END.
    // Throws domain::DependencyUnavailable when the database cannot be reached.
    boost::asio::awaitable<std::optional<app::LockLease>> acquire(
        std::string key, std::chrono::milliseconds wait) override;
    // One round trip (pg_advisory_unlock) on the lease's own connection, then gives it back.
    // Does nothing for an owner it does not know; never throws for a broken connection.
    boost::asio::awaitable<void> release(app::LockLease lease) override;

    // Leases held by this process, and the tries it sent to the database (for tests and metrics).
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
    // Unlocks on the held connection and gives it back (drops it if broken). On its io_context.
    static boost::asio::awaitable<void> unlock(Held held, std::chrono::milliseconds timeout);

    PgPool& pool_;
    mutable std::mutex mutex_;  // never held across a co_await
    std::unordered_map<std::string, Held> held_;  // by owner
    adapters::LocalClaims claims_;  // the keys of held_, and of tries in flight
    std::atomic<std::uint64_t> tries_{0};
};

}  // namespace concertd::postgres
