// What follows a committed change: the cache invalidation of the schedule it touched and, after a
// payment, the end of the user's queue token. The change stands whatever happens to them: when
// the cache or the queue is down (Redis), the effect is kept and done later by the background
// loop, instead of answering 503 for a change that did commit.
#pragma once

#include <cstddef>
#include <mutex>
#include <set>

#include "app/ports/catalog_cache.hpp"
#include "app/ports/storage.hpp"
#include "app/ports/waiting_queue.hpp"
#include "app/stats.hpp"

namespace concertd::app {

class AfterCommit {
public:
    // Effects kept at most; beyond it the oldest are dropped (the cache's own expiry and the
    // token's TTL still bound the staleness).
    static constexpr std::size_t kPendingMax = 100'000;

    AfterCommit(CatalogCache& cache, WaitingQueue& queue, AppStats& stats)
        : cache_(cache), queue_(queue), stats_(stats) {}

    Task<void> invalidate(ScheduleId schedule);
    Task<void> expire_token(UserId user);
    // Does the kept effects again; returns how many are still pending.
    Task<std::size_t> retry_pending();
    std::size_t pending() const;

private:
    void keep_invalidation(ScheduleId schedule);
    void keep_expiry(UserId user);

    CatalogCache& cache_;
    WaitingQueue& queue_;
    AppStats& stats_;
    mutable std::mutex mutex_;  // never held across a co_await
    std::set<ScheduleId> invalidations_;
    std::set<UserId> expiries_;
};

}  // namespace concertd::app
