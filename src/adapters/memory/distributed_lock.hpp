// The in-process lock of the `distributed` strategy (SPEC §4 embedded mode): named locks shared
// by every I/O thread of one process.
//
// Guarantees:
// - At most one lease per key at a time; a free key is granted at once.
// - Waiting is asynchronous (no thread blocks), FIFO per key, and ends by `wait` or by the
//   caller's cancellation; then acquire() returns nullopt and leaves the line.
// - Every grant gets a fence larger than every earlier grant's (one counter for all keys) and a
//   fresh random owner string; release() with any other owner does nothing.
// - A grant racing a timeout is decided under one mutex: the waiter either gets the lease or the
//   lock goes to the next in line; it is never lost nor given twice. If a waiter's coroutine is
//   destroyed (its io_context torn down), it leaves the line, or passes a grant it got on.
// - Keys are forgotten when free with no waiters.
//
// A waiter sleeps on a steady_timer of its own executor; a grant posts the timer's cancel to that
// executor, because timers are not thread-safe. So each caller's executor must run its handlers
// one at a time (an io_context run by one thread, or a strand).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "app/ports/distributed_lock.hpp"

namespace concertd::memory {

class MemoryDistributedLock final : public app::DistributedLock {
public:
    // A key with this many waiters refuses more at once (acquire returns nullopt).
    static constexpr std::size_t kMaxWaitersPerKey = 65'536;

    MemoryDistributedLock() = default;
    MemoryDistributedLock(const MemoryDistributedLock&) = delete;
    MemoryDistributedLock& operator=(const MemoryDistributedLock&) = delete;

    boost::asio::awaitable<std::optional<app::LockLease>> acquire(
        std::string key, std::chrono::milliseconds wait) override;
    boost::asio::awaitable<void> release(app::LockLease lease) override;

    // Keys held or waited on (for tests and metrics).
    std::size_t key_count() const;

private:
    struct Waiter;
    class WaitGuard;

    struct KeyState {
        std::string owner;
        std::uint64_t fence = 0;
        std::list<std::shared_ptr<Waiter>> waiters;  // FIFO; a list so a timeout leaves in O(1)
    };
    using KeyMap = std::unordered_map<std::string, KeyState>;

    // Gives the key to the first waiter, or forgets the key when nobody waits. Under mutex_.
    void hand_off_locked(KeyMap::iterator it);

    mutable std::mutex mutex_;
    KeyMap keys_;  // a key is present exactly while it is held
    std::uint64_t last_fence_ = 0;
};

}  // namespace concertd::memory
