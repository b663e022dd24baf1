// The lock of the `distributed` strategy in Redis 7 (SPEC §4): a lease with expiry, an owner
// check on release, a fencing token. Advisory: the database row stays the final arbiter.
//
// Keys (prefix P, default "concertd:lock:"): P "l:" key holds the owner while leased (SET NX PX);
// P "f:" key holds the key's last fence (kept kFenceKeep after the last grant).
//
// Guarantees:
// - At most one live lease per key over every process on this Redis, as long as Redis keeps
//   its data and clocks do not jump (a lease is a time: see fencing below).
// - Each grant takes a fresh 128-bit random owner and, in the same script, a fence: the key's
//   last fence + 1, or Redis's clock in microseconds if that is larger. So fences are strictly
//   increasing per key, also after the counter expired or Redis lost its data (as long as
//   grants of a key stay under one per microsecond on average).
// - While the holder works, a coroutine on the acquiring io_context renews the lease every
//   lease/3 (PEXPIRE only if the owner still matches) until release(). If the holder's process
//   stalls (GC, swap, SIGSTOP) or cannot reach Redis for a whole lease, the lease expires and
//   another process may be granted the key, with a larger fence.
// - An acquire that gets no answer (Redis down, frozen, too slow) throws, and its (key, owner)
//   goes to AbandonedLeases: if the SET still runs later (a frozen Redis resuming), the key is
//   released as soon as Redis answers again instead of staying taken for a whole lease.
// - release() deletes the key only if the owner still matches (a lease that expired and was
//   granted to someone else is left alone), and never throws: if Redis does not answer, the
//   release goes to AbandonedLeases too (retried once it answers; else the lease runs out).
// - Waiting retries with jittered exponential backoff (kBackoffFirst doubling to kBackoffMax);
//   a release in this process wakes one local waiter of that key at once. A key this process
//   holds or is trying is not tried again until that is over (adapters/local_claims.hpp): a
//   crowd of local waiters sends one try per key at a time, not one per waiter. No FIFO among
//   waiters. acquire() returns nullopt once `wait` has run out (it may overrun by one round
//   trip); it throws domain::DependencyUnavailable when Redis cannot be reached.
// - Thread-safe; release() may come from any io_context.
//
// FENCING CONTRACT. A lease can end without its holder knowing (a stall longer than the lease,
// a partition): from then on two holders may believe they hold the key. So the lock alone never
// guards a write. Every database write made under a lease carries LockLease::fence, and the
// database refuses (changing nothing) a write whose fence is not greater than the last fence it
// accepted for that resource, recording the fence with the write in the same transaction. The
// stale holder's write then fails instead of overwriting the newer holder's.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "adapters/local_claims.hpp"
#include "adapters/redis/abandoned_leases.hpp"
#include "adapters/redis/redis_client.hpp"
#include "app/ports/distributed_lock.hpp"

namespace concertd::redis {

class RedisLock final : public app::DistributedLock {
public:
    inline static const std::string kDefaultKeyPrefix = "concertd:lock:";
    static constexpr std::chrono::milliseconds kBackoffFirst{1};
    static constexpr std::chrono::milliseconds kBackoffMax{50};
    // The shortest lease (renewed every lease/3) and how long a fence counter outlives its
    // last grant.
    static constexpr std::chrono::milliseconds kLeaseMin{30};
    static constexpr std::chrono::hours kFenceKeep{24 * 7};
    // Waiters of one key in this process that a release can wake; more still poll.
    static constexpr std::size_t kMaxLocalWaitersPerKey = 4096;

    // Throws std::invalid_argument when lease < kLeaseMin. `client` must outlive the lock and
    // every lease's renewal (the destructor stops them).
    RedisLock(RedisClient& client, std::chrono::milliseconds lease,
              std::string key_prefix = kDefaultKeyPrefix);
    ~RedisLock() override;
    RedisLock(const RedisLock&) = delete;
    RedisLock& operator=(const RedisLock&) = delete;

    // One round trip per try (a script: SET NX PX, then the fence). On a grant, starts the
    // lease's renewal on the calling coroutine's io_context.
    boost::asio::awaitable<std::optional<app::LockLease>> acquire(
        std::string key, std::chrono::milliseconds wait) override;
    // Stops the renewal, then one round trip (compare-and-delete). Never throws.
    boost::asio::awaitable<void> release(app::LockLease lease) override;

    // Leases granted here and not released (for tests and metrics).
    std::size_t held_count() const;
    // Tries sent to Redis (for tests).
    std::uint64_t tries() const { return tries_.load(std::memory_order_relaxed); }
    // Acquires given up on whose release is still being tried (for tests).
    std::size_t abandoned_count() const { return abandoned_.size(); }
    // Tests: stops renewing `lease` without releasing it, as if its holder had stalled. The
    // lease then expires in Redis after at most `lease`. False when the lease is not held here.
    bool stop_renewal_for_test(const app::LockLease& lease);

private:
    struct Renewal;
    struct LocalWaiter;
    class LocalWaitGuard;

    boost::asio::awaitable<std::optional<std::uint64_t>> try_acquire(const std::string& key,
                                                                     const std::string& owner);
    static boost::asio::awaitable<void> renew(RedisClient& client,
                                              std::shared_ptr<Renewal> renewal,
                                              std::chrono::milliseconds lease);
    static void stop(const std::shared_ptr<Renewal>& renewal);
    // Wakes the first local waiter of `key`, if any.
    void wake_one(const std::string& key);

    std::string lock_key(const std::string& key) const { return prefix_ + "l:" + key; }
    std::string fence_key(const std::string& key) const { return prefix_ + "f:" + key; }

    RedisClient& client_;
    const std::chrono::milliseconds lease_;
    const std::string prefix_;

    mutable std::mutex mutex_;  // guards held_ and waiters_; never held across a co_await
    std::unordered_map<std::string, std::shared_ptr<Renewal>> held_;  // by owner
    std::unordered_map<std::string, std::list<std::shared_ptr<LocalWaiter>>> waiters_;  // by key

    adapters::LocalClaims claims_;
    std::atomic<std::uint64_t> tries_{0};

    AbandonedLeases abandoned_;  // last: its destructor stops its sweeper first
};

}  // namespace concertd::redis
