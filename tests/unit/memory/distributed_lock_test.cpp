#include "adapters/memory/distributed_lock.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "memory/memory_test_support.hpp"

namespace concertd::memory {
namespace {

using namespace std::chrono_literals;
using testing::Runner;
namespace asio = boost::asio;

asio::awaitable<void> yield_once() {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
    asio::steady_timer timer(co_await asio::this_coro::executor, duration);
    co_await timer.async_wait(asio::use_awaitable);
}

// Counts how often the lock was taken, with a counter that is not atomic on purpose: if two
// coroutines ever held the lock at once, increments would be lost (and TSan would report it).
struct Shared {
    MemoryDistributedLock lock;
    long counter = 0;
    std::atomic<long> granted{0};
    std::atomic<long> timed_out{0};
};

asio::awaitable<void> increment_loop(Shared& shared, int iterations,
                                     std::chrono::milliseconds wait, std::uint32_t seed) {
    std::mt19937 random(seed);
    for (int i = 0; i < iterations; ++i) {
        auto lease = co_await shared.lock.acquire("counter", wait);
        if (!lease) {
            ++shared.timed_out;
            continue;
        }
        const long seen = shared.counter;
        co_await yield_once();  // let others run while the lock is held
        if (random() % 16 == 0) {
            co_await sleep_for(std::chrono::milliseconds(random() % 2));
        }
        shared.counter = seen + 1;
        ++shared.granted;
        co_await shared.lock.release(*lease);
    }
}

// Runs `coroutines` copies of increment_loop on each of two io_contexts, one thread each.
void run_on_two_threads(Shared& shared, int coroutines, int iterations,
                        std::chrono::milliseconds wait) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            asio::io_context io;
            for (int c = 0; c < coroutines; ++c) {
                asio::co_spawn(io, increment_loop(shared, iterations, wait, t * 1000 + c),
                               [](std::exception_ptr e) {
                                   if (e) std::rethrow_exception(e);
                               });
            }
            io.run();
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
}

TEST(MemoryDistributedLock, GrantsAFreeKeyAtOnceAndForgetsItOnRelease) {
    MemoryDistributedLock lock;
    Runner runner;
    const auto lease = runner.run(lock.acquire("seat:1:7", 0ms));
    ASSERT_TRUE(lease);
    EXPECT_EQ(lease->key, "seat:1:7");
    EXPECT_EQ(lease->owner.size(), 32u);
    EXPECT_GT(lease->fence, 0u);
    EXPECT_EQ(lock.key_count(), 1u);
    EXPECT_FALSE(runner.run(lock.acquire("seat:1:7", 0ms)));  // a zero wait only tries
    EXPECT_TRUE(runner.run(lock.acquire("seat:1:8", 0ms)));   // other keys are independent
    runner.run(lock.release(*lease));
    EXPECT_EQ(lock.key_count(), 1u);
}

TEST(MemoryDistributedLock, WaitRunningOutReturnsNulloptAndLeavesTheLine) {
    MemoryDistributedLock lock;
    Runner runner;
    const auto held = runner.run(lock.acquire("k", 0ms));
    ASSERT_TRUE(held);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(runner.run(lock.acquire("k", 50ms)));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
    runner.run(lock.release(*held));
    EXPECT_EQ(lock.key_count(), 0u);  // the timed-out waiter did not get the lock
}

TEST(MemoryDistributedLock, FenceGrowsWithEveryGrant) {
    MemoryDistributedLock lock;
    Runner runner;
    const auto first = runner.run(lock.acquire("k", 0ms));
    runner.run(lock.release(*first));
    const auto second = runner.run(lock.acquire("k", 0ms));
    ASSERT_TRUE(first && second);
    EXPECT_GT(second->fence, first->fence);
    EXPECT_NE(second->owner, first->owner);
}

TEST(MemoryDistributedLock, ReleaseByAStaleOrForgedLeaseDoesNothing) {
    MemoryDistributedLock lock;
    Runner runner;
    const auto old_lease = runner.run(lock.acquire("k", 0ms));
    runner.run(lock.release(*old_lease));
    const auto current = runner.run(lock.acquire("k", 0ms));
    ASSERT_TRUE(current);

    runner.run(lock.release(*old_lease));
    EXPECT_FALSE(runner.run(lock.acquire("k", 0ms)));
    app::LockLease forged = *current;
    forged.owner[0] = forged.owner[0] == 'a' ? 'b' : 'a';
    runner.run(lock.release(forged));
    EXPECT_FALSE(runner.run(lock.acquire("k", 0ms)));
    runner.run(lock.release(app::LockLease{"other", current->owner, current->fence}));
    EXPECT_FALSE(runner.run(lock.acquire("k", 0ms)));

    runner.run(lock.release(*current));
    EXPECT_EQ(lock.key_count(), 0u);
}

asio::awaitable<void> wait_in_line(MemoryDistributedLock& lock, int id, std::vector<int>& order,
                                   std::vector<std::uint64_t>& fences) {
    const auto lease = co_await lock.acquire("k", 5s);
    EXPECT_TRUE(lease);
    if (lease) {
        order.push_back(id);
        fences.push_back(lease->fence);
        co_await sleep_for(1ms);
        co_await lock.release(*lease);
    }
}

TEST(MemoryDistributedLock, WaitersAreServedFirstComeFirstServed) {
    MemoryDistributedLock lock;
    asio::io_context io;
    std::vector<int> order;
    std::vector<std::uint64_t> fences;
    const auto holder = [&]() -> asio::awaitable<void> {
        const auto lease = co_await lock.acquire("k", 0ms);
        EXPECT_TRUE(lease);
        for (int id = 0; id < 5; ++id) {
            // Each waiter queues before its first suspension, so spawn order is line order.
            asio::co_spawn(io, wait_in_line(lock, id, order, fences), asio::detached);
            co_await yield_once();
        }
        co_await sleep_for(10ms);
        co_await lock.release(*lease);
    };
    asio::co_spawn(io, holder(), asio::detached);
    io.run();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_TRUE(std::is_sorted(fences.begin(), fences.end()));
    EXPECT_EQ(lock.key_count(), 0u);
}

TEST(MemoryDistributedLock, MutualExclusionAcrossTwoThreads) {
    Shared shared;
    run_on_two_threads(shared, 50, 100, 10s);
    EXPECT_EQ(shared.timed_out.load(), 0);
    EXPECT_EQ(shared.counter, 2 * 50 * 100);
    EXPECT_EQ(shared.lock.key_count(), 0u);
}

// Waits so short that grants and timeouts race all the time: every grant is used exactly once
// and the lock is never lost (it is free at the end).
TEST(MemoryDistributedLock, GrantsRacingTimeoutsNeverLoseOrDoubleTheLock) {
    Shared shared;
    run_on_two_threads(shared, 40, 100, 1ms);
    EXPECT_GT(shared.timed_out.load(), 0);
    EXPECT_EQ(shared.counter, shared.granted.load());
    EXPECT_EQ(shared.granted.load() + shared.timed_out.load(), 2 * 40 * 100);
    EXPECT_EQ(shared.lock.key_count(), 0u);
    Runner runner;
    EXPECT_TRUE(runner.run(shared.lock.acquire("counter", 0ms)));
}

TEST(MemoryDistributedLock, WaiterWhoseContextIsDestroyedLeavesTheLine) {
    MemoryDistributedLock lock;
    Runner runner;
    const auto held = runner.run(lock.acquire("k", 0ms));
    {
        asio::io_context other;
        asio::co_spawn(other, lock.acquire("k", 10s), asio::detached);
        other.poll();  // now suspended in the line
    }  // its frame is destroyed here
    runner.run(lock.release(*held));
    EXPECT_EQ(lock.key_count(), 0u);
}

TEST(MemoryDistributedLock, GrantToADestroyedWaiterPassesToTheNext) {
    MemoryDistributedLock lock;
    Runner runner;
    const auto held = runner.run(lock.acquire("k", 0ms));
    asio::io_context last;
    std::optional<app::LockLease> last_lease;
    {
        asio::io_context doomed;
        asio::co_spawn(doomed, lock.acquire("k", 10s), asio::detached);
        doomed.poll();
        asio::co_spawn(last, lock.acquire("k", 10s),
                       [&](std::exception_ptr, std::optional<app::LockLease> lease) {
                           last_lease = std::move(lease);
                       });
        last.poll();
        runner.run(lock.release(*held));  // granted to `doomed`, which never runs again
    }
    last.run_for(1s);
    ASSERT_TRUE(last_lease);
    EXPECT_GT(last_lease->fence, held->fence);
    runner.run(lock.release(*last_lease));
    EXPECT_EQ(lock.key_count(), 0u);
}

}  // namespace
}  // namespace concertd::memory
