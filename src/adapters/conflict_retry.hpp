// Retries shared by the database adapters: a short random pause between attempts, and a frame
// that runs a transaction again when the server aborted it for a conflict (a deadlock, a
// serialization failure, a lock wait timeout: nothing of it was committed, so a retry is safe).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

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

// Runs `transaction()` (returning an awaitable) again while it throws an `Error` whose
// is_retryable() is true, up to kConflictAttemptsMax times; other errors pass through.
template <class Error, class Transaction>
auto retrying_conflicts(Transaction transaction) -> decltype(transaction()) {
    for (int attempt = 1;; ++attempt) {
        bool conflicted = false;
        try {
            co_return co_await transaction();
        } catch (const Error& error) {
            if (!error.is_retryable()) throw;
            if (attempt >= kConflictAttemptsMax) {
                // Still colliding after every try: the database is overloaded, not the request
                // wrong; nothing was committed.
                throw domain::DependencyUnavailable(std::string(error.what()) +
                                                    " (after retries)");
            }
            conflicted = true;
        }
        if (conflicted) co_await jitter_pause(attempt);
    }
}

}  // namespace concertd::adapters
