// Retries shared by the database adapters: a short random pause between attempts, and a frame
// that runs a transaction again when the server aborted it for a conflict (a deadlock, a
// serialization failure, a lock wait timeout: nothing of it was committed, so a retry is safe).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <type_traits>

#include "adapters/jittered_pause.hpp"
#include "domain/outcome.hpp"

namespace concertd::adapters {

inline constexpr int kConflictAttemptsMax = 3;

// Optimistic tries before a store takes the row lock once.
inline constexpr int kOptimisticAttemptsMax = 4;

// Sleeps a random 0..(2^attempt × 500 µs), so racing writers spread out.
inline boost::asio::awaitable<void> jitter_pause(int attempt) {
    return jittered_pause(attempt, std::chrono::microseconds(500));
}

template <class T>
struct IsResult : std::false_type {};
template <class T>
struct IsResult<domain::Result<T>> : std::true_type {};

// Runs `transaction()` (returning an awaitable) again while it throws an `Error` whose
// is_retryable() is true, up to kConflictAttemptsMax times; other errors pass through. Still
// colliding after every try, nothing committed: a use case's Result is refused kRateLimited
// (429 with Retry-After: the rows are contended, the database is up); anything else (a
// background job) throws DependencyUnavailable.
template <class Error, class Transaction>
auto retrying_conflicts(Transaction transaction) -> decltype(transaction()) {
    using Value = typename decltype(transaction())::value_type;
    for (int attempt = 1;; ++attempt) {
        std::optional<std::string> conflict;
        try {
            co_return co_await transaction();
        } catch (const Error& error) {
            if (!error.is_retryable()) throw;
            conflict = error.what();
        }
        if (attempt >= kConflictAttemptsMax) {
            if constexpr (IsResult<Value>::value) {
                co_return domain::Refusal{domain::Rejection::kRateLimited,
                                          "too much contention on these rows; retry"};
            } else {
                throw domain::DependencyUnavailable(*conflict + " (after retries)");
            }
        }
        co_await jitter_pause(attempt);
    }
}

}  // namespace concertd::adapters
