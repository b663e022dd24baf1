// The definitions of ConnectionPool<Connection>: included only by the .cpp that instantiates
// the pool for one connection type (`template class adapters::ConnectionPool<MyConnection>;`).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <cassert>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "adapters/pool/connection_pool.hpp"
#include "domain/outcome.hpp"

namespace concertd::adapters {

// Everything below the map is touched only by the thread that runs the sub-pool's io_context
// (one io_context per thread, a coroutine never changes thread), so it takes no lock.
template <class Connection>
struct ConnectionPool<Connection>::State {
    struct SubPool;

    struct Slot {
        SubPool* owner;
        std::unique_ptr<Connection> connection;
    };

    // A coroutine waiting for a connection; woken by cancelling its timer (same executor).
    struct Waiter {
        boost::asio::steady_timer* timer;
        Slot* granted = nullptr;   // a connection handed over directly (FIFO, no stealing)
        bool may_open = false;     // a place freed up for this waiter to open a connection
        std::optional<std::string> failure;  // a connect failed: the database is unreachable
    };

    struct SubPool {
        std::vector<std::unique_ptr<Slot>> slots;  // every open connection, free or lent
        std::vector<Slot*> free;                   // LIFO: the warmest connection first
        int opening = 0;                           // connects in progress or promised to waiters
        std::deque<Waiter*> waiters;               // FIFO

        int places() const { return static_cast<int>(slots.size()) + opening; }

        Waiter* pop_waiter() {
            if (waiters.empty()) return nullptr;
            Waiter* waiter = waiters.front();
            waiters.pop_front();
            return waiter;
        }

        void destroy(Slot* slot) {
            auto found = std::find_if(slots.begin(), slots.end(),
                                      [slot](const auto& owned) { return owned.get() == slot; });
            assert(found != slots.end());
            slots.erase(found);  // closing it ends the session (and any transaction) on the server
        }

        // A place is free: the first waiter gets it and opens a connection of its own.
        void pass_place() {
            if (Waiter* waiter = pop_waiter()) {
                ++opening;
                waiter->may_open = true;
                waiter->timer->cancel();
            }
        }

        // A lent connection comes back: to the first waiter, or to the free list; an unhealthy
        // one is destroyed, which frees its place.
        void put_back(Slot* slot, bool healthy) {
            if (!healthy) {
                destroy(slot);
                pass_place();
                return;
            }
            if (Waiter* waiter = pop_waiter()) {
                waiter->granted = slot;
                waiter->timer->cancel();
                return;
            }
            free.push_back(slot);
        }

        // A healthy free connection, dropping the ones that died while idle.
        Slot* take_free() {
            while (!free.empty()) {
                Slot* slot = free.back();
                free.pop_back();
                if (slot->connection->healthy() && !slot->connection->in_transaction()) {
                    return slot;
                }
                destroy(slot);
            }
            return nullptr;
        }

        void fail_waiters(const std::string& reason) {
            while (Waiter* waiter = pop_waiter()) {
                waiter->failure = reason;
                waiter->timer->cancel();
            }
        }
    };

    // Queues a waiter for its lifetime; whatever it was given and did not claim (its coroutine
    // destroyed while waiting, at shutdown) goes back to the sub-pool.
    class WaiterEntry {
    public:
        WaiterEntry(SubPool& sub, Waiter& waiter) : sub_(sub), waiter_(waiter) {
            sub_.waiters.push_back(&waiter_);
        }
        ~WaiterEntry() {
            auto found = std::find(sub_.waiters.begin(), sub_.waiters.end(), &waiter_);
            if (found != sub_.waiters.end()) sub_.waiters.erase(found);
            if (waiter_.granted) sub_.put_back(std::exchange(waiter_.granted, nullptr), true);
            if (std::exchange(waiter_.may_open, false)) {
                --sub_.opening;
                sub_.pass_place();
            }
        }
        WaiterEntry(const WaiterEntry&) = delete;
        WaiterEntry& operator=(const WaiterEntry&) = delete;

        Slot* take_granted() { return std::exchange(waiter_.granted, nullptr); }
        bool take_place() { return std::exchange(waiter_.may_open, false); }

    private:
        SubPool& sub_;
        Waiter& waiter_;
    };

    // Counts a connect in `opening` until it ends, however it ends.
    class Opening {
    public:
        explicit Opening(SubPool& sub) : sub_(sub) {}
        ~Opening() { --sub_.opening; }
        Opening(const Opening&) = delete;
        Opening& operator=(const Opening&) = delete;

    private:
        SubPool& sub_;
    };

    // The only cross-thread part: finding (or making) the calling io_context's sub-pool.
    SubPool& sub_pool_for(const boost::asio::execution_context* context) {
        std::lock_guard lock(mutex);
        auto& sub = sub_pools[context];
        if (!sub) sub = std::make_unique<SubPool>();
        return *sub;
    }

    // Opens a connection into a place already counted in `sub.opening`.
    static boost::asio::awaitable<PooledConnection<Connection>> open(
        ConnectionPool* pool, SubPool& sub, boost::asio::any_io_executor executor) {
        Opening opening(sub);
        std::unique_ptr<Connection> connection;
        try {
            connection = co_await pool->connect_(executor);
        } catch (const domain::DependencyUnavailable& error) {
            // Those queued behind this connect would try again and fail the same way, one
            // after the other: fail them now, so a database that is down fails fast.
            sub.fail_waiters(error.what());
            throw;
        }
        auto& slot = sub.slots.emplace_back(std::make_unique<Slot>(Slot{&sub, nullptr}));
        slot->connection = std::move(connection);
        co_return PooledConnection<Connection>(pool, slot.get(), slot->connection.get());
    }

    std::mutex mutex;
    // Keyed by io_context. A sub-pool holds no Asio object between calls (a connection wraps
    // its socket only during a call), so a new io_context at a reused address is served fine.
    std::unordered_map<const boost::asio::execution_context*, std::unique_ptr<SubPool>> sub_pools;
};

template <class Connection>
ConnectionPool<Connection>::ConnectionPool(ConnectionPoolLimits limits, Connect connect)
    : limits_(std::move(limits)), connect_(std::move(connect)), state_(std::make_unique<State>()) {
    assert(limits_.connections_per_thread > 0);
}

template <class Connection>
ConnectionPool<Connection>::~ConnectionPool() {
    // The pool must outlive every coroutine that uses it: nothing may be lent or awaited now.
    for (const auto& [context, sub] : state_->sub_pools) {
        assert(sub->free.size() == sub->slots.size() && "a connection is still lent out");
        assert(sub->waiters.empty() && sub->opening == 0);
    }
}

template <class Connection>
boost::asio::awaitable<PooledConnection<Connection>> ConnectionPool<Connection>::acquire() {
    namespace asio = boost::asio;
    auto executor = co_await asio::this_coro::executor;
    typename State::SubPool& sub = state_->sub_pool_for(&executor.context());
    if (typename State::Slot* slot = sub.take_free()) {
        co_return PooledConnection<Connection>(this, slot, slot->connection.get());
    }
    if (sub.places() < limits_.connections_per_thread) {
        ++sub.opening;
        co_return co_await State::open(this, sub, executor);
    }

    asio::steady_timer timer(executor);
    timer.expires_after(limits_.acquire_timeout);
    typename State::Waiter waiter{.timer = &timer};
    typename State::WaiterEntry entry(sub, waiter);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));  // expiry or a wake-up
    // A hand-over wins over an expiry that raced with it.
    if (typename State::Slot* slot = entry.take_granted()) {
        co_return PooledConnection<Connection>(this, slot, slot->connection.get());
    }
    if (entry.take_place()) co_return co_await State::open(this, sub, executor);
    if (waiter.failure) throw domain::DependencyUnavailable(*waiter.failure);
    throw domain::DependencyUnavailable(limits_.name + ": no connection free within " +
                                        std::to_string(limits_.acquire_timeout.count()) + " ms");
}

template <class Connection>
void ConnectionPool<Connection>::give_back(void* slot, bool healthy) {
    auto* owned = static_cast<typename State::Slot*>(slot);
    owned->owner->put_back(owned, healthy);
}

}  // namespace concertd::adapters
