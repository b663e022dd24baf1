// The bounded retry of the optimistic strategy: a short random pause between attempts so that
// racing writers spread out instead of colliding again in lockstep.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <random>

namespace concertd::sqlite {

// Optimistic attempts that read on a reader connection before the write falls back to a read
// inside the write transaction. On SQLite's single writer that last attempt cannot conflict.
inline constexpr int kOptimisticAttemptsMax = 4;

// Sleeps a random 0..(2^attempt × 250 µs) before the next attempt.
inline boost::asio::awaitable<void> jitter_pause(int attempt) {
    thread_local std::minstd_rand random{std::random_device{}()};
    auto ceiling_us = 250 << attempt;
    std::chrono::microseconds pause(random() % static_cast<unsigned>(ceiling_us));
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, pause);
    co_await timer.async_wait(boost::asio::use_awaitable);
}

}  // namespace concertd::sqlite
