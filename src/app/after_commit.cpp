#include "app/after_commit.hpp"

#include <vector>

namespace concertd::app {

Task<void> AfterCommit::invalidate(ScheduleId schedule) {
    try {
        co_await cache_.invalidate(schedule);
        co_return;
    } catch (const DependencyUnavailable&) {
    }
    keep_invalidation(schedule);
}

Task<void> AfterCommit::expire_token(UserId user) {
    try {
        co_await queue_.expire_user(user);
        co_return;
    } catch (const DependencyUnavailable&) {
    }
    keep_expiry(user);
}

void AfterCommit::keep_invalidation(ScheduleId schedule) {
    std::lock_guard lock(mutex_);
    if (invalidations_.size() >= kPendingMax) invalidations_.erase(invalidations_.begin());
    invalidations_.insert(schedule);
    stats_.after_commit_deferred.add();
}

void AfterCommit::keep_expiry(UserId user) {
    std::lock_guard lock(mutex_);
    if (expiries_.size() >= kPendingMax) expiries_.erase(expiries_.begin());
    expiries_.insert(user);
    stats_.after_commit_deferred.add();
}

Task<std::size_t> AfterCommit::retry_pending() {
    std::vector<ScheduleId> invalidations;
    std::vector<UserId> expiries;
    {
        std::lock_guard lock(mutex_);
        invalidations.assign(invalidations_.begin(), invalidations_.end());
        expiries.assign(expiries_.begin(), expiries_.end());
        invalidations_.clear();
        expiries_.clear();
    }
    // Each failure is kept again by invalidate() / expire_token().
    for (auto schedule : invalidations) co_await invalidate(schedule);
    for (auto user : expiries) co_await expire_token(user);
    co_return pending();
}

std::size_t AfterCommit::pending() const {
    std::lock_guard lock(mutex_);
    return invalidations_.size() + expiries_.size();
}

}  // namespace concertd::app
