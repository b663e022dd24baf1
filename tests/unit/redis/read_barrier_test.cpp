// The read barrier (src/adapters/redis/read_barrier.hpp) under the queue and the cache, against a
// throwaway redis-server (scripts/redis-start.sh) started once for this binary; the tests are
// skipped, with the reason, when it cannot start. A "process" is a RedisClient of its own, with
// its own io_context, barrier, queue and cache, as wiring/backend.cpp builds them.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/redis/read_barrier.hpp"
#include "adapters/redis/redis_catalog_cache.hpp"
#include "adapters/redis/redis_client.hpp"
#include "adapters/redis/redis_waiting_queue.hpp"
#include "domain/outcome.hpp"

namespace concertd::redis {
namespace {

// The start of a read that begins at the call (CatalogCache's `since`).
app::ReadStart starting_now() { return std::chrono::steady_clock::now(); }

namespace asio = boost::asio;
using namespace std::chrono_literals;
using domain::DependencyUnavailable;
using domain::TokenStatus;

// --- the server ----------------------------------------------------------------------------------

std::pair<int, std::string> run_command(const std::string& command) {
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return {-1, ""};
    std::array<char, 256> buffer{};
    while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
    const int status = ::pclose(pipe);
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class BarrierRedis : public ::testing::Environment {
public:
    void SetUp() override {
        std::string pattern = std::filesystem::temp_directory_path() / "concertd-barrier-XXXXXX";
        if (!::mkdtemp(pattern.data())) {
            reason_ = "mkdtemp failed";
            return;
        }
        dir_ = pattern;
        const auto [status, output] = run_command(script("redis-start.sh") + " " + dir_);
        if (status != 0 || !output.starts_with("redis://")) {
            reason_ = "scripts/redis-start.sh failed (exit " + std::to_string(status) + ")";
            return;
        }
        url_ = output;
        port_ = std::to_string(parse_redis_url(url_).port);
    }

    void TearDown() override {
        if (dir_.empty()) return;
        run_command(script("redis-stop.sh") + " " + dir_);
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    bool stop() { return run_command(script("redis-stop.sh") + " " + dir_).first == 0; }
    bool start() {  // on the same port, without the old data
        return run_command(script("redis-start.sh") + " " + dir_ + " " + port_).first == 0;
    }

    const std::string& url() const { return url_; }
    const std::string& reason() const { return reason_; }

private:
    static std::string script(const char* name) {
        return std::string(CONCERTD_SOURCE_DIR) + "/scripts/" + name;
    }

    std::string dir_;
    std::string url_;
    std::string port_;
    std::string reason_;
};

auto* const server =
    dynamic_cast<BarrierRedis*>(::testing::AddGlobalTestEnvironment(new BarrierRedis));

RedisOptions options() {
    RedisOptions options = parse_redis_url(server->url());
    options.command_timeout = 2s;
    options.connect_timeout = 500ms;
    return options;
}

app::QueueSettings settings() { return {1000, 1000, 600, 60}; }

domain::SeatMap seat_map_of(domain::ScheduleId schedule, domain::Won price) {
    domain::SeatMap map;
    map.schedule_id = schedule;
    for (int i = 1; i <= 5; ++i) {
        domain::SeatState seat;
        seat.seat_no = i;
        seat.price_won = price;
        map.seats.push_back(seat);
    }
    return map;
}

// --- processes -----------------------------------------------------------------------------------

// Driven by the test's thread: handlers run only inside run()/poll_one(), so the test decides
// what a barrier call may see.
struct Process {
    Process()
        : client(options()),
          barrier(client),
          queue(client, settings(), RedisWaitingQueue::kDefaultKeyPrefix, &barrier),
          cache(client, RedisCatalogCache::kDefaultKeyPrefix, &barrier) {}

    template <class T>
    std::future<T> spawn(asio::awaitable<T> task) {
        return asio::co_spawn(io, std::move(task), asio::use_future);
    }
    template <class T>
    T wait(std::future<T> result) {
        io.restart();
        while (result.wait_for(0s) != std::future_status::ready) {
            if (io.run_one_for(10s) == 0 && result.wait_for(0s) != std::future_status::ready) {
                ADD_FAILURE() << "io_context ran out of work before the coroutine finished";
                break;
            }
        }
        return result.get();
    }
    template <class T>
    T run(asio::awaitable<T> task) {
        return wait(spawn(std::move(task)));
    }

    std::string admitted_token(domain::UserId user) {
        const std::string token = run(queue.issue(user)).ticket.token;
        run(queue.admit(domain::TimePoint{}));
        return token;
    }
    std::optional<domain::QueueTicket> find(const std::string& token) {
        return run(queue.find(token));
    }
    // A cached copy of schedule `schedule` at `price`, in Redis and in this process's layer.
    void cache_seat_map(domain::ScheduleId schedule, domain::Won price) {
        const auto miss = run(cache.seat_map(schedule, starting_now()));
        run(cache.put_seat_map(schedule,
                               std::make_shared<const domain::SeatMap>(seat_map_of(schedule, price)),
                               miss.generation));
    }

    // Cached copies of the dates of concert `concert` (schedules 1..count) and of their usage,
    // `sold` seats sold each, in Redis and in this process's layer.
    void cache_dates(domain::ConcertId concert, int count, int sold) {
        auto dates = std::make_shared<app::ScheduleDates>();
        std::vector<domain::ScheduleId> ids;
        for (domain::ScheduleId id = 1; id <= count; ++id) {
            dates->push_back({id, domain::TimePoint{}, 50});
            ids.push_back(id);
        }
        const auto miss = run(cache.schedules(concert, starting_now()));
        run(cache.put_schedules(concert, dates, miss.generation));
        const auto misses = run(cache.usage(ids, starting_now()));
        std::vector<app::UsagePut> puts;
        for (std::size_t i = 0; i < ids.size(); ++i) {
            puts.push_back({ids[i],
                            std::make_shared<const domain::ScheduleUsage>(
                                domain::ScheduleUsage{ids[i], sold, {}}),
                            misses[i].generation});
        }
        run(cache.put_usage(puts));
    }
    // A dates-list read as the handler makes it: the expectation, the token check, the dates,
    // then the usage of each. Returns how many usages came back.
    asio::awaitable<std::size_t> read_dates(domain::ConcertId concert, std::string token,
                                            app::ReadStart since) {
        co_await cache.expect_schedules(concert);
        EXPECT_TRUE(co_await queue.find(token));
        const auto dates = co_await cache.schedules(concert, since);
        EXPECT_TRUE(dates.value);
        std::vector<domain::ScheduleId> ids;
        for (const auto& date : *dates.value) ids.push_back(date.id);
        co_return found_count(co_await cache.usage(ids, since));
    }
    using UsageLookups = std::vector<app::CacheLookup<domain::ScheduleUsage>>;
    static std::size_t found_count(const UsageLookups& usages) {
        return static_cast<std::size_t>(std::ranges::count_if(usages, [](const auto& usage) {
            return usage.value != nullptr;
        }));
    }

    asio::io_context io;  // declared first: destroyed after everything that uses it
    RedisClient client;
    ReadBarrier barrier;
    RedisWaitingQueue queue;
    RedisCatalogCache cache;
};

// Runs its io_context on a thread of its own, as a server's I/O thread does, with readers that
// keep a barrier call in flight all the time.
struct BusyProcess : Process {
    BusyProcess() : thread([this] { io.run(); }) {}
    ~BusyProcess() {
        stopping = true;
        for (auto& reader : readers) reader.wait();
        work.reset();
        io.stop();
        thread.join();
    }

    template <class T>
    T call(asio::awaitable<T> task) {
        return asio::co_spawn(io, std::move(task), asio::use_future).get();
    }
    // Looks again and again (token, then schedule 7's seat map), as a burst of reads does.
    void keep_reading(std::string token, int readers_count) {
        for (int i = 0; i < readers_count; ++i) {
            readers.push_back(asio::co_spawn(io, read_loop(token), asio::use_future));
        }
    }
    asio::awaitable<void> read_loop(std::string token) {
        while (!stopping) {
            co_await queue.find(token);
            co_await cache.seat_map(7, starting_now());
        }
    }

    std::atomic<bool> stopping{false};
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::vector<std::future<void>> readers;
    std::thread thread;
};

class ReadBarrierTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (server->url().empty()) GTEST_SKIP() << "no redis-server: " << server->reason();
        admin.emplace();
        admin->run(admin->client.command({"FLUSHALL"}));
    }

    std::optional<Process> admin;
};

// --- the queue -----------------------------------------------------------------------------------

TEST_F(ReadBarrierTest, ReadsOfAThreadShareOneCallAndEachTokenIsAskedOnce) {
    Process p;
    const std::string first = p.admitted_token(1);
    const std::string second = p.admitted_token(2);
    ASSERT_TRUE(p.find(first));  // the secret is loaded from here on
    const auto before = p.barrier.counters();

    std::vector<std::future<std::optional<domain::QueueTicket>>> finds;
    for (int i = 0; i < 20; ++i) finds.push_back(p.spawn(p.queue.find(i % 2 ? first : second)));
    for (int i = 0; i < 20; ++i) {
        const auto ticket = p.wait(std::move(finds[i]));
        ASSERT_TRUE(ticket);
        EXPECT_EQ(ticket->status, TokenStatus::kActive);
        EXPECT_EQ(ticket->user_id, i % 2 ? 1 : 2);
    }
    const auto after = p.barrier.counters();
    EXPECT_EQ(after.calls - before.calls, 1u);  // all twenty registered before it was sent
    EXPECT_EQ(after.reads - before.reads, 20u);
    EXPECT_EQ(after.tokens - before.tokens, 2u);
}

TEST_F(ReadBarrierTest, ABatchOfMixedTokensAnswersEachAsAFindOfItsOwnWould) {
    Process p;
    const std::string active = p.admitted_token(1);
    const std::string other_active = p.admitted_token(2);
    const std::string paid = p.admitted_token(4);
    p.run(p.queue.expire_user(4));
    const std::string old_stay = p.admitted_token(5);
    p.run(p.queue.expire_user(5));
    const std::string new_stay = p.admitted_token(5);
    ASSERT_NE(old_stay, new_stay);
    const std::string waiting = p.run(p.queue.issue(3)).ticket.token;  // not admitted
    std::string forged = active;
    forged.back() = forged.back() == '0' ? '1' : '0';
    ASSERT_TRUE(p.find(active));

    const std::vector<std::string> tokens{active, other_active, paid, old_stay,
                                          new_stay, waiting,      forged};
    std::vector<std::future<std::optional<domain::QueueTicket>>> finds;
    for (int round = 0; round < 3; ++round) {
        for (const auto& token : tokens) finds.push_back(p.spawn(p.queue.find(token)));
    }
    std::map<std::string, std::vector<std::optional<domain::QueueTicket>>> answers;
    for (std::size_t i = 0; i < finds.size(); ++i) {
        answers[tokens[i % tokens.size()]].push_back(p.wait(std::move(finds[i])));
    }
    for (const auto& ticket : answers[active]) {
        ASSERT_TRUE(ticket);
        EXPECT_EQ(ticket->status, TokenStatus::kActive);
        EXPECT_EQ(ticket->user_id, 1);
    }
    for (const auto& ticket : answers[other_active]) {
        ASSERT_TRUE(ticket);
        EXPECT_EQ(ticket->user_id, 2);
    }
    for (const auto& ticket : answers[new_stay]) {
        ASSERT_TRUE(ticket);
        EXPECT_EQ(ticket->user_id, 5);
        EXPECT_EQ(ticket->status, TokenStatus::kActive);
    }
    for (const auto& ticket : answers[waiting]) {  // the full look: a position, and a poll
        ASSERT_TRUE(ticket);
        EXPECT_EQ(ticket->status, TokenStatus::kWaiting);
        EXPECT_EQ(ticket->position, 1);
    }
    for (const auto& token : {paid, old_stay, forged}) {
        for (const auto& ticket : answers[token]) EXPECT_FALSE(ticket);
    }
}

TEST_F(ReadBarrierTest, APaymentInOneProcessRefusesTheNextReadInAnother) {
    Process payer;
    BusyProcess reader;
    constexpr int kUsers = 40;
    std::vector<std::string> tokens;
    for (int user = 1; user <= kUsers; ++user) tokens.push_back(payer.admitted_token(user));
    for (const auto& token : tokens) reader.keep_reading(token, 2);  // calls always in flight
    for (int user = 1; user <= kUsers; ++user) {
        const std::string& token = tokens[user - 1];
        ASSERT_TRUE(reader.call(reader.queue.find(token)));
        payer.run(payer.queue.expire_user(user));  // after a payment, before it answers
        EXPECT_FALSE(reader.call(reader.queue.find(token))) << "user " << user;
    }
    EXPECT_LT(reader.barrier.counters().calls, reader.barrier.counters().reads);
}

// The call in flight was made before the read: it cannot answer it, even for the same token.
TEST_F(ReadBarrierTest, AReadNeverJoinsTheCallInFlight) {
    Process payer;
    Process reader;
    for (int user = 1; user <= 20; ++user) {
        const std::string token = payer.admitted_token(user);
        ASSERT_TRUE(reader.find(token));
        const auto calls = reader.barrier.counters().calls;
        auto first = reader.spawn(reader.queue.find(token));
        reader.io.restart();
        while (reader.barrier.counters().calls == calls) {
            ASSERT_EQ(reader.io.run_one_for(1s), 1u);
        }
        reader.io.poll_one();  // the write
        std::this_thread::sleep_for(5ms);  // Redis runs the call; its answer waits in the socket
        payer.run(payer.queue.expire_user(user));
        auto second = reader.spawn(reader.queue.find(token));
        reader.wait(std::move(first));
        EXPECT_FALSE(reader.wait(std::move(second))) << "user " << user;
    }
}

// --- the cache -----------------------------------------------------------------------------------

TEST_F(ReadBarrierTest, AnInvalidationInOneProcessIsSeenByTheNextReadInAnother) {
    Process writer;
    BusyProcess reader;
    const std::string token = writer.admitted_token(1);
    writer.cache_seat_map(7, 1);
    reader.keep_reading(token, 8);
    for (domain::Won price = 2; price <= 16; ++price) {
        const auto seen = reader.call(reader.cache.seat_map(7, starting_now()));
        ASSERT_TRUE(seen.value);
        EXPECT_EQ(seen.value->seats.front().price_won, price - 1);
        // Now a local copy is current: a read confirms it through the barrier, and gets it.
        const auto again = reader.call(reader.cache.seat_map(7, starting_now()));
        ASSERT_TRUE(again.value);
        EXPECT_EQ(again.value->seats.front().price_won, price - 1);
        writer.run(writer.cache.invalidate(7));  // after a hold committed, before it answers
        const auto after = reader.call(reader.cache.seat_map(7, starting_now()));
        EXPECT_FALSE(after.value) << "price " << price;  // nobody stored the new state yet
        writer.cache_seat_map(7, price);
    }
    EXPECT_GE(reader.cache.counters().local_hits, 15u);  // the `again` reads at least
}

TEST_F(ReadBarrierTest, CacheKeysOfAThreadShareOneCall) {
    Process p;
    p.cache_seat_map(7, 1);
    p.cache_seat_map(8, 1);
    const auto before = p.barrier.counters();
    std::vector<std::future<app::CacheLookup<domain::SeatMap>>> reads;
    for (int i = 0; i < 10; ++i) reads.push_back(p.spawn(p.cache.seat_map(7 + i % 2, starting_now())));
    for (auto& read : reads) EXPECT_TRUE(p.wait(std::move(read)).value);
    const auto after = p.barrier.counters();
    EXPECT_EQ(after.calls - before.calls, 1u);
    EXPECT_EQ(after.versions - before.versions, 2u);
    EXPECT_EQ(p.cache.counters().local_hits, 10u);
}

// As the seat-map handler reads: the key is named before the token check, so the one call that
// checks the token also confirms the local copy.
TEST_F(ReadBarrierTest, AnExpectedReadChecksItsTokenAndItsCopyInOneCall) {
    Process p;
    const std::string token = p.admitted_token(1);
    p.cache_seat_map(7, 1);
    ASSERT_TRUE(p.find(token));  // the secret is loaded from here on
    const auto before = p.barrier.counters();
    const auto read = [&]() -> asio::awaitable<app::CacheLookup<domain::SeatMap>> {
        const auto since = starting_now();
        co_await p.cache.expect_seat_map(7);
        EXPECT_TRUE(co_await p.queue.find(token));
        co_return co_await p.cache.seat_map(7, since);
    };
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(p.run(read()).value);
    const auto after = p.barrier.counters();
    EXPECT_EQ(after.calls - before.calls, 3u);
    EXPECT_EQ(after.early - before.early, 3u);
    EXPECT_EQ(after.versions - before.versions, 3u);
}

// An expectation no read waits for (a forged token never reaches the barrier) sends nothing.
TEST_F(ReadBarrierTest, AnExpectationAloneMakesNoCall) {
    Process p;
    p.cache_seat_map(7, 1);
    const auto before = p.barrier.counters();
    p.run(p.cache.expect_seat_map(7));
    EXPECT_EQ(p.barrier.counters().calls, before.calls);
    EXPECT_TRUE(p.run(p.cache.seat_map(7, starting_now())).value);  // its own call, as before
    EXPECT_EQ(p.barrier.counters().calls - before.calls, 1u);
}

// The last call serves only reads that began before it was sent: a read that began after an
// invalidation answered sees it, one that began before the call may still see the older copy.
TEST_F(ReadBarrierTest, AnEarlierCallServesOnlyReadsThatBeganBeforeIt) {
    Process writer;
    Process p;
    const std::string token = writer.admitted_token(1);
    writer.cache_seat_map(7, 1);
    p.cache_seat_map(7, 1);
    ASSERT_TRUE(p.find(token));
    const auto reads = [&]() -> asio::awaitable<std::pair<bool, bool>> {
        const auto first_since = starting_now();
        co_await p.cache.expect_seat_map(7);
        EXPECT_TRUE(co_await p.queue.find(token));
        EXPECT_TRUE((co_await p.cache.seat_map(7, first_since)).value);
        writer.run(writer.cache.invalidate(7));  // a hold answers in another process
        const auto later_since = starting_now();
        const bool began_before = (co_await p.cache.seat_map(7, first_since)).value != nullptr;
        const bool began_after = (co_await p.cache.seat_map(7, later_since)).value != nullptr;
        co_return std::pair{began_before, began_after};
    };
    const auto [began_before, began_after] = p.run(reads());
    EXPECT_TRUE(began_before);  // the call was sent after it began: as good as its own
    EXPECT_FALSE(began_after);  // nobody stored the new state yet
}

// A dates list of 100 schedules checks its token, its dates and every date's usage in one
// barrier call, as a seat map does its token and its copy.
TEST_F(ReadBarrierTest, ADatesListChecksItsTokenAndEveryDateInOneCall) {
    Process p;
    const std::string token = p.admitted_token(1);
    p.cache_dates(3, 100, 2);
    ASSERT_TRUE(p.find(token));
    const auto before = p.barrier.counters();
    EXPECT_EQ(p.run(p.read_dates(3, token, starting_now())), 100u);
    const auto after = p.barrier.counters();
    EXPECT_EQ(after.calls - before.calls, 1u);
    EXPECT_EQ(after.versions - before.versions, 101u);  // the dates and 100 usages
    EXPECT_EQ(p.cache.counters().local_hits, 101u);
}

// Without the expectation, the usage checks still share one call, whatever their number.
TEST_F(ReadBarrierTest, TheUsageOfManySchedulesIsCheckedInOneCall) {
    Process p;
    p.cache_dates(3, 100, 2);
    std::vector<domain::ScheduleId> ids;
    for (domain::ScheduleId id = 1; id <= 100; ++id) ids.push_back(id);
    const auto before = p.barrier.counters();
    const auto found = p.run(p.cache.usage(ids, starting_now()));
    EXPECT_EQ(p.barrier.counters().calls - before.calls, 1u);
    EXPECT_EQ(Process::found_count(found), ids.size());
}

// A hold in another process changes one date: the next dates read loads that date's usage
// alone, and serves the 99 others from its copies.
TEST_F(ReadBarrierTest, AHoldElsewhereReloadsOnlyItsDate) {
    Process writer;
    Process p;
    const std::string token = writer.admitted_token(1);
    p.cache_dates(3, 100, 2);
    ASSERT_TRUE(p.find(token));
    writer.run(writer.cache.invalidate(42));
    const auto before = p.barrier.counters();
    const auto misses_before = p.cache.counters().misses;
    EXPECT_EQ(p.run(p.read_dates(3, token, starting_now())), 99u);
    EXPECT_EQ(p.barrier.counters().calls - before.calls, 1u);
    EXPECT_EQ(p.cache.counters().misses - misses_before, 1u);  // 42 alone, in one script after
}

// As for a single key: the last call serves only a read that began before it was sent.
TEST_F(ReadBarrierTest, AnEarlierCallServesOnlyUsageReadsThatBeganBeforeIt) {
    Process writer;
    Process p;
    const std::string token = writer.admitted_token(1);
    p.cache_dates(3, 5, 2);
    ASSERT_TRUE(p.find(token));
    const auto reads = [&]() -> asio::awaitable<std::pair<std::size_t, std::size_t>> {
        const auto first_since = starting_now();
        EXPECT_EQ(co_await p.read_dates(3, token, first_since), 5u);
        writer.run(writer.cache.invalidate(4));  // a hold answers in another process
        const auto later_since = starting_now();
        const std::vector<domain::ScheduleId> ids{1, 2, 3, 4, 5};
        const auto began_before = co_await p.cache.usage(ids, first_since);
        const auto began_after = co_await p.cache.usage(ids, later_since);
        co_return std::pair{Process::found_count(began_before), Process::found_count(began_after)};
    };
    const auto [began_before, began_after] = p.run(reads());
    EXPECT_EQ(began_before, 5u);  // the call was sent after it began: as good as its own
    EXPECT_EQ(began_after, 4u);   // schedule 4's new state is not stored yet
}

TEST_F(ReadBarrierTest, TheLocalCopyIsNotServedOnceRedisLostTheValue) {
    Process p;
    p.cache_seat_map(7, 1);
    admin->run(admin->client.command({"DEL", "concertd:cache:sm:7"}));  // the safety TTL ran out
    EXPECT_FALSE(p.run(p.cache.seat_map(7, starting_now())).value);
    p.cache_seat_map(7, 2);
    admin->run(admin->client.command({"FLUSHALL"}));
    const auto lost = p.run(p.cache.seat_map(7, starting_now()));
    EXPECT_FALSE(lost.value);
}

// --- Redis away ----------------------------------------------------------------------------------

TEST_F(ReadBarrierTest, WhenRedisIsDownEveryReadOfTheBatchFails) {
    Process p;
    const std::string token = p.admitted_token(1);
    p.cache_seat_map(7, 1);
    ASSERT_TRUE(p.find(token));
    admin.reset();
    ASSERT_TRUE(server->stop());

    std::vector<std::future<std::optional<domain::QueueTicket>>> finds;
    std::vector<std::future<app::CacheLookup<domain::SeatMap>>> lookups;
    for (int i = 0; i < 5; ++i) {
        finds.push_back(p.spawn(p.queue.find(token)));
        lookups.push_back(p.spawn(p.cache.seat_map(7, starting_now())));
    }
    for (auto& find : finds) EXPECT_THROW(p.wait(std::move(find)), DependencyUnavailable);
    for (auto& lookup : lookups) EXPECT_THROW(p.wait(std::move(lookup)), DependencyUnavailable);

    ASSERT_TRUE(server->start());  // empty: a new secret, the old token is worthless
    EXPECT_FALSE(p.find(token));
    const std::string again = p.admitted_token(1);
    EXPECT_TRUE(p.find(again));
}

}  // namespace
}  // namespace concertd::redis
