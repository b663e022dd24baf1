// The `distributed` strategy's frame: take the named lock, run the transaction with the lease's
// fencing token, release the lock whatever happened. A wait that runs out changes nothing and
// answers kRateLimited.
#pragma once

#include <exception>
#include <functional>
#include <optional>
#include <string>

#include "app/services.hpp"

namespace concertd::app {

// `when_busy` (optional) runs once when the first try finds the lock taken, before the wait: a
// refusal it returns is the answer, and the caller never joins the crowd waiting for the lock.
template <class T, class Work>
Task<Result<T>> run_under_lock(Ports& ports, std::string key, Work work,
                               std::function<Task<std::optional<Refusal>>()> when_busy = {}) {
    std::optional<LockLease> lease;
    if (when_busy) {
        lease = co_await ports.lock.acquire(key, std::chrono::milliseconds(0));
        if (!lease) {
            if (auto refusal = co_await when_busy()) co_return *refusal;
        }
    }
    if (!lease) lease = co_await ports.lock.acquire(std::move(key), ports.settings.lock_wait);
    if (!lease) {
        ports.stats.lock_timeouts.add();
        co_return Refusal{Rejection::kRateLimited, "resource is busy, retry shortly"};
    }
    std::exception_ptr failure;
    std::optional<Result<T>> result;
    try {
        result.emplace(co_await work(lease->fence));
    } catch (...) {
        failure = std::current_exception();
    }
    co_await ports.lock.release(std::move(*lease));  // no co_await inside a catch block
    if (failure) std::rethrow_exception(failure);
    co_return std::move(*result);
}

inline std::string seat_lock_key(ScheduleId schedule, SeatNo seat_no) {
    return "seat:" + std::to_string(schedule) + ":" + std::to_string(seat_no);
}

// Charges and payments of one user share the wallet's lock.
inline std::string wallet_lock_key(UserId user) { return "wallet:" + std::to_string(user); }

}  // namespace concertd::app
