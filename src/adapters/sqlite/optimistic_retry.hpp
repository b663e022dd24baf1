// The bounded retry of the optimistic strategy on SQLite.
#pragma once

#include "adapters/jittered_pause.hpp"

namespace concertd::sqlite {

// Optimistic attempts that read on a reader connection before the write falls back to a read
// inside the write transaction. On SQLite's single writer that last attempt cannot conflict.
inline constexpr int kOptimisticAttemptsMax = 4;

// Sleeps a random 0..(2^attempt × 250 µs) before the next attempt.
inline boost::asio::awaitable<void> jitter_pause(int attempt) {
    return adapters::jittered_pause(attempt, std::chrono::microseconds(250));
}

}  // namespace concertd::sqlite
