// Helpers shared by the memory adapter tests: an injected clock and a way to run a coroutine.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdint>
#include <future>
#include <utility>

#include "app/ports/clock.hpp"

namespace concertd::memory::testing {

class FakeClock final : public app::ClockPort {
public:
    static constexpr std::int64_t kStartMs = 1'700'000'000'000;

    domain::TimePoint now() const override {
        return domain::TimePoint(std::chrono::milliseconds(now_ms_.load()));
    }
    void advance(std::chrono::milliseconds by) { now_ms_ += by.count(); }

private:
    std::atomic<std::int64_t> now_ms_{kStartMs};
};

// Runs coroutines to completion one at a time on one reused io_context.
class Runner {
public:
    // Returns (or throws) the coroutine's result.
    template <class T>
    T run(boost::asio::awaitable<T> task) {
        io_.restart();
        std::future<T> result = boost::asio::co_spawn(io_, std::move(task), boost::asio::use_future);
        io_.run();
        return result.get();
    }

private:
    boost::asio::io_context io_;
};

}  // namespace concertd::memory::testing
