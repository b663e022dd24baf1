// SharedLoads: cache misses of one key on one thread share database loads, and a reader only
// ever gets a load that started after it asked.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "app/shared_loads.hpp"

namespace concertd::app {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

Task<void> sleep_for(std::chrono::milliseconds duration) {
    asio::steady_timer timer(co_await asio::this_coro::executor, duration);
    co_await timer.async_wait(asio::use_awaitable);
}

// A "database" whose state is a number; a load returns the state it read when it started,
// after `latency`.
struct SlowDatabase {
    int state = 0;
    int loads = 0;
    std::chrono::milliseconds latency = 20ms;
    bool fail = false;

    Task<int> load() {
        ++loads;
        const int read = state;
        const bool failing = fail;
        co_await sleep_for(latency);
        if (failing) throw std::runtime_error("database away");
        co_return read;
    }
};

struct Answer {
    int value = -1;
    bool shared = false;
    bool failed = false;
};

// A cache that takes `latency` to store a value, and notes how many loads had begun by the end of
// each store.
struct SlowCache {
    const SlowDatabase& db;
    std::chrono::milliseconds latency = 0ms;
    std::vector<int> loads_begun_at_store_end;

    Task<void> put(int) {
        co_await sleep_for(latency);
        loads_begun_at_store_end.push_back(db.loads);
    }
};

class SharedLoadsTest : public ::testing::Test {
protected:
    // Starts a reader of `key` after `delay` on the test's io_context.
    void reader(int key, std::chrono::milliseconds delay, Answer& answer) {
        asio::co_spawn(io_, [this, key, delay, &answer]() -> Task<void> {
            co_await sleep_for(delay);
            try {
                answer.value = co_await loads_.get(
                    key, [this] { return db_.load(); },
                    [this](int value) { return cache_.put(value); },
                    answer.shared);
            } catch (const std::runtime_error&) {
                answer.failed = true;
            }
        }, asio::detached);
    }

    asio::io_context io_;
    SlowDatabase db_;
    SlowCache cache_{db_};
    SharedLoads<int, int> loads_;
};

TEST_F(SharedLoadsTest, MissesDuringALoadShareTheNextOne) {
    std::vector<Answer> answers(10);
    reader(1, 0ms, answers[0]);
    for (std::size_t i = 1; i < answers.size(); ++i) reader(1, 5ms, answers[i]);
    io_.run();
    EXPECT_EQ(db_.loads, 2) << "the first reader's load, then one for the nine who came during it";
    EXPECT_FALSE(answers[0].shared);
    EXPECT_FALSE(answers[1].shared) << "the first of the next round runs its load";
    for (std::size_t i = 2; i < answers.size(); ++i) EXPECT_TRUE(answers[i].shared) << i;
    for (const auto& a : answers) EXPECT_EQ(a.value, 0);
}

// The cache write is not the database's turn: the readers waiting for the next load do not wait
// for the last one to be stored. Only a load's runner stores it.
TEST_F(SharedLoadsTest, TheNextLoadBeginsWhileTheLastOneIsStored) {
    cache_.latency = 30ms;
    Answer first, runner, sharer;
    reader(1, 0ms, first);  // loads from 0 to 20 ms, stores from 20 to 50 ms
    reader(1, 5ms, runner);
    reader(1, 6ms, sharer);
    io_.run();
    EXPECT_EQ(cache_.loads_begun_at_store_end, (std::vector<int>{2, 2}))
        << "the second load began at 20 ms, before the first store ended at 50 ms";
    EXPECT_TRUE(sharer.shared);
}

TEST_F(SharedLoadsTest, AReaderNeverGetsALoadThatStartedBeforeIt) {
    Answer before, after;
    reader(1, 0ms, before);  // its load reads state 0 and takes 20 ms
    asio::co_spawn(io_, [this]() -> Task<void> {
        co_await sleep_for(5ms);
        db_.state = 1;  // a write commits and answers while that load runs...
    }, asio::detached);
    reader(1, 10ms, after);  // ...then this reader asks: it must see the write
    io_.run();
    EXPECT_EQ(before.value, 0);
    EXPECT_EQ(after.value, 1);
    EXPECT_EQ(db_.loads, 2);
}

TEST_F(SharedLoadsTest, KeysAndQuietTimesDoNotShare) {
    Answer one, two, later;
    reader(1, 0ms, one);
    reader(2, 0ms, two);
    reader(1, 60ms, later);  // after the first load of key 1 ended: a load of its own
    io_.run();
    EXPECT_EQ(db_.loads, 3);
    EXPECT_FALSE(one.shared);
    EXPECT_FALSE(two.shared);
    EXPECT_FALSE(later.shared);
}

TEST_F(SharedLoadsTest, AFailedLoadFailsEveryReaderSharingItAndFreesTheKey) {
    Answer first, runner, sharer, afterwards;
    reader(1, 0ms, first);
    asio::co_spawn(io_, [this]() -> Task<void> {
        co_await sleep_for(2ms);
        db_.fail = true;  // the next load fails
    }, asio::detached);
    reader(1, 5ms, runner);
    reader(1, 6ms, sharer);
    asio::co_spawn(io_, [this]() -> Task<void> {
        co_await sleep_for(30ms);
        db_.fail = false;
    }, asio::detached);
    reader(1, 80ms, afterwards);
    io_.run();
    EXPECT_FALSE(first.failed) << "its load began before the failure";
    EXPECT_TRUE(runner.failed);
    EXPECT_TRUE(sharer.failed);
    EXPECT_TRUE(sharer.shared);
    EXPECT_FALSE(afterwards.failed);
    EXPECT_FALSE(afterwards.shared);
    EXPECT_EQ(db_.loads, 3);
}

}  // namespace
}  // namespace concertd::app
