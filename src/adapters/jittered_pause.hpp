// The pause between two tries of a transaction that lost a race (optimistic version conflict,
// deadlock): random, so racing writers spread out instead of colliding again in lockstep, and
// doubling with each try. Shared by the storage adapters.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <random>

namespace concertd::adapters {

// Sleeps a random 0..(2^attempt × unit) on the caller's executor.
inline boost::asio::awaitable<void> jittered_pause(int attempt, std::chrono::microseconds unit) {
    thread_local std::minstd_rand random{std::random_device{}()};
    auto ceiling = static_cast<unsigned>(unit.count() << attempt);
    std::chrono::microseconds pause(random() % ceiling);
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, pause);
    co_await timer.async_wait(boost::asio::use_awaitable);
}

}  // namespace concertd::adapters
