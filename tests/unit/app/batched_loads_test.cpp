// BatchedLoads: the misses of several keys on one thread share database loads, a load asks for
// the keys of all who joined it, and a reader only ever gets a load that started after it asked.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <vector>

#include "app/batched_loads.hpp"

namespace concertd::app {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Loads = BatchedLoads<int, int>;

Task<void> sleep_for(std::chrono::milliseconds duration) {
    asio::steady_timer timer(co_await asio::this_coro::executor, duration);
    co_await timer.async_wait(asio::use_awaitable);
}

// A "database" whose state is a number; a load answers every key asked but 0 with the state it
// read when it started, after 20 ms.
struct SlowDatabase {
    int state = 0;
    std::vector<Loads::Generations> loads;  // what each load asked for
    bool fail = false;

    Task<Loads::Found> load(Loads::Generations keys) {
        loads.push_back(keys);
        const int read = state;
        const bool failing = fail;
        co_await sleep_for(20ms);
        if (failing) throw std::runtime_error("database away");
        Loads::Found found;
        for (const auto& [key, generation] : keys) {
            if (key != 0) found.emplace(key, read);
        }
        co_return found;
    }
};

// A cache that takes `latency` to store what a load found, and notes what each store was given
// and how many loads had begun by its end.
struct SlowCache {
    const SlowDatabase& db;
    std::chrono::milliseconds latency = 0ms;
    std::vector<Loads::Generations> stored;
    std::vector<std::size_t> loads_begun_at_store_end;

    Task<void> put(Loads::Generations keys, Loads::Found found) {
        co_await sleep_for(latency);
        EXPECT_LE(found.size(), keys.size());
        stored.push_back(std::move(keys));
        loads_begun_at_store_end.push_back(db.loads.size());
    }
};

struct Answer {
    std::shared_ptr<const Loads::Found> found;
    bool shared = false;
    bool failed = false;
};

class BatchedLoadsTest : public ::testing::Test {
protected:
    // Starts a reader of `keys` (each at generation `generation`) after `delay`.
    void reader(std::vector<int> keys, std::chrono::milliseconds delay, Answer& answer,
                std::uint64_t generation = 1) {
        asio::co_spawn(io_, [this, keys, delay, generation, &answer]() -> Task<void> {
            co_await sleep_for(delay);
            Loads::Generations asked;
            for (int key : keys) asked.emplace(key, generation);
            try {
                answer.found = co_await loads_.get(
                    asked, [this](const Loads::Generations& k) { return db_.load(k); },
                    [this](const Loads::Generations& k, const Loads::Found& f) {
                        return cache_.put(k, f);
                    },
                    answer.shared);
            } catch (const std::runtime_error&) {
                answer.failed = true;
            }
        }, asio::detached);
    }

    asio::io_context io_;
    SlowDatabase db_;
    SlowCache cache_{db_};
    Loads loads_;
};

TEST_F(BatchedLoadsTest, MissesDuringALoadShareTheNextOneWithAllTheirKeys) {
    std::vector<Answer> answers(4);
    reader({1, 2}, 0ms, answers[0]);
    reader({2, 3}, 5ms, answers[1]);
    reader({4}, 5ms, answers[2], 7);
    reader({4, 0}, 5ms, answers[3], 3);
    io_.run();
    ASSERT_EQ(db_.loads.size(), 2u) << "the first reader's load, then one for the three after";
    EXPECT_EQ(db_.loads[0].size(), 2u);
    EXPECT_EQ(db_.loads[1], (Loads::Generations{{2, 1}, {3, 1}, {4, 7}, {0, 3}}))
        << "each key once, with the newer generation";
    EXPECT_FALSE(answers[0].shared);
    EXPECT_FALSE(answers[1].shared) << "the first of the next round runs its load";
    EXPECT_TRUE(answers[2].shared);
    EXPECT_TRUE(answers[3].shared);
    EXPECT_EQ(answers[3].found->count(4), 1u);
    EXPECT_EQ(answers[3].found->count(0), 0u) << "a key not found is absent";
}

// The cache write is not the database's turn: the readers waiting for the next load do not wait
// for the last one to be stored. Its runner stores it, with the keys of all its readers.
TEST_F(BatchedLoadsTest, TheNextLoadBeginsWhileTheLastOneIsStored) {
    cache_.latency = 30ms;
    std::vector<Answer> answers(3);
    reader({1}, 0ms, answers[0]);  // loads from 0 to 20 ms, stores from 20 to 50 ms
    reader({2}, 5ms, answers[1]);
    reader({3}, 6ms, answers[2], 4);
    io_.run();
    EXPECT_EQ(cache_.loads_begun_at_store_end, (std::vector<std::size_t>{2, 2}))
        << "the second load began at 20 ms, before the first store ended at 50 ms";
    ASSERT_EQ(cache_.stored.size(), 2u) << "one store per load, by its runner";
    EXPECT_EQ(cache_.stored[1], (Loads::Generations{{2, 1}, {3, 4}}));
}

// The rule of docs/caching.md: a write that answered before a reader asked must be in its answer,
// so a reader never joins the load already running (it read the database before the write).
TEST_F(BatchedLoadsTest, AReaderNeverGetsALoadThatStartedBeforeIt) {
    Answer early;
    Answer late;
    reader({1}, 0ms, early);
    asio::co_spawn(io_, [this]() -> Task<void> {
        co_await sleep_for(5ms);
        db_.state = 1;  // a hold commits and answers while the first load runs
    }, asio::detached);
    reader({1}, 6ms, late);
    io_.run();
    EXPECT_EQ(early.found->at(1), 0);
    EXPECT_EQ(late.found->at(1), 1);
}

TEST_F(BatchedLoadsTest, AFailedLoadFailsItsReadersAndTheNextLoadRuns) {
    Answer first;
    Answer second;
    Answer third;
    db_.fail = true;
    reader({1}, 0ms, first);
    reader({1}, 5ms, second);
    reader({1}, 5ms, third);
    asio::co_spawn(io_, [this]() -> Task<void> {
        co_await sleep_for(10ms);
        db_.fail = false;  // the database is back before the second load starts
    }, asio::detached);
    io_.run();
    EXPECT_TRUE(first.failed);
    EXPECT_FALSE(second.failed);
    EXPECT_FALSE(third.failed);
    EXPECT_EQ(db_.loads.size(), 2u);
    reader({5}, 0ms, first);  // the thread is free again: a load of its own
    io_.restart();
    io_.run();
    EXPECT_FALSE(first.shared);
    EXPECT_EQ(db_.loads.size(), 3u);
}

}  // namespace
}  // namespace concertd::app
