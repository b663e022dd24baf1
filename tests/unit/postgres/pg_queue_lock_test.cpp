// PgWaitingQueue and PgAdvisoryLock against a live throwaway PostgreSQL (scripts/pg-start.sh),
// started once per binary; every test is skipped when it cannot start. Two "processes" are two
// PgPool instances, each used from its own thread and io_context.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/postgres/pg_advisory_lock.hpp"
#include "adapters/postgres/pg_pool.hpp"
#include "adapters/postgres/pg_waiting_queue.hpp"

namespace concertd::postgres {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using domain::TokenStatus;

// --- the cluster -------------------------------------------------------------------------------

std::string shell_quote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) {
        if (c == '\'') {
            quoted += "'\\''";
        } else {
            quoted += c;
        }
    }
    return quoted + "'";
}

// Runs a shell command; its stdout, or nullopt when it exits non-zero.
std::optional<std::string> run_command(const std::string& command) {
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return std::nullopt;
    std::string out;
    std::array<char, 4096> buffer;
    while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) {
        out.append(buffer.data(), n);
    }
    if (::pclose(pipe) != 0) return std::nullopt;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
}

class PostgresCluster : public ::testing::Environment {
public:
    static const std::string& url() { return url_; }
    static bool up() { return !url_.empty(); }

    void SetUp() override {
        char pattern[] = "/tmp/concertd-pgq-XXXXXX";
        if (!::mkdtemp(pattern)) return;
        dir_ = pattern;
        const std::string scripts = std::string(CONCERTD_SOURCE_DIR) + "/scripts/";
        auto url = run_command(scripts + "pg-start.sh " + shell_quote(dir_));
        if (!url || url->empty()) {
            std::fprintf(stderr, "pg_queue_lock_test: PostgreSQL did not start; skipping\n");
            return;
        }
        const std::string migration =
            std::string(CONCERTD_SOURCE_DIR) + "/migrations/postgres/0001_init.sql";
        if (!run_command("psql -X -q -v ON_ERROR_STOP=1 -d " + shell_quote(*url) + " -f " +
                         shell_quote(migration) + " >/dev/null")) {
            std::fprintf(stderr, "pg_queue_lock_test: migration failed; skipping\n");
            return;
        }
        url_ = *url;
    }

    void TearDown() override {
        if (dir_.empty()) return;
        const std::string scripts = std::string(CONCERTD_SOURCE_DIR) + "/scripts/";
        run_command(scripts + "pg-stop.sh " + shell_quote(dir_) + " immediate >/dev/null 2>&1");
        run_command("rm -rf " + shell_quote(dir_));
    }

private:
    static inline std::string url_;
    std::string dir_;
};

[[maybe_unused]] const auto* const kCluster =
    ::testing::AddGlobalTestEnvironment(new PostgresCluster);

// One statement through psql, its unaligned output. Throws when psql fails.
std::string psql(const std::string& sql) {
    auto out = run_command("psql -X -q -A -t -v ON_ERROR_STOP=1 -d " +
                           shell_quote(PostgresCluster::url()) + " -c " + shell_quote(sql));
    if (!out) throw std::runtime_error("psql failed: " + sql);
    return *out;
}

PgPoolOptions pool_options() {
    PgPoolOptions options;
    options.conninfo = PostgresCluster::url();
    options.connections_per_thread = 4;
    return options;
}

// Runs coroutines to completion one at a time on one reused io_context.
class Runner {
public:
    template <class T>
    T run(asio::awaitable<T> task) {
        io_.restart();
        std::future<T> result = asio::co_spawn(io_, std::move(task), asio::use_future);
        io_.run();
        return result.get();
    }

private:
    asio::io_context io_;
};

asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration duration) {
    asio::steady_timer timer(co_await asio::this_coro::executor, duration);
    co_await timer.async_wait(asio::use_awaitable);
}

void rethrow_if(std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
}

class PgTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!PostgresCluster::up()) GTEST_SKIP() << "no PostgreSQL (scripts/pg-start.sh failed)";
        psql("TRUNCATE queue_tokens; UPDATE queue_admission SET budget = 0, refilled_at = 0");
    }
};

// --- the queue ---------------------------------------------------------------------------------

app::QueueSettings settings(std::int64_t admit_per_second, std::int64_t max_active,
                            std::int64_t active_ttl_seconds = 600,
                            std::int64_t waiting_ttl_seconds = 60) {
    return {admit_per_second, max_active, active_ttl_seconds, waiting_ttl_seconds};
}

// A queue on its own pool and runner, with synchronous shorthands for the port's coroutines.
class QueueFixture {
public:
    explicit QueueFixture(app::QueueSettings s) : pool(pool_options()), queue(pool, s) {}

    app::IssuedTicket issue(domain::UserId user) { return runner.run(queue.issue(user)); }
    std::optional<domain::QueueTicket> find(const std::string& token) {
        return runner.run(queue.find(token));
    }
    void expire_user(domain::UserId user) { runner.run(queue.expire_user(user)); }
    std::int64_t admit() { return runner.run(queue.admit(domain::TimePoint{})); }
    app::QueueStats stats() { return runner.run(queue.stats()); }
    std::int64_t position(const std::string& token) {
        const auto ticket = find(token);
        return ticket ? ticket->position : -1;
    }

    PgPool pool;  // declared before the runner: destroyed after the io_context
    Runner runner;
    PgWaitingQueue queue;
};

using PgWaitingQueueTest = PgTest;

TEST_F(PgWaitingQueueTest, IssuesInFifoOrderWithPositionsAndEstimatedWait) {
    QueueFixture q(settings(2, 1000));
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 5; ++user) {
        const auto issued = q.issue(user);
        EXPECT_TRUE(issued.created);
        EXPECT_EQ(issued.ticket.user_id, user);
        EXPECT_EQ(issued.ticket.status, TokenStatus::kWaiting);
        EXPECT_EQ(issued.ticket.position, user);
        EXPECT_EQ(issued.ticket.estimated_wait_seconds, (user + 1) / 2);
        EXPECT_EQ(issued.ticket.token.size(), 32u);
        tokens.push_back(issued.ticket.token);
    }
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const auto ticket = q.find(tokens[i]);
        ASSERT_TRUE(ticket);
        EXPECT_EQ(ticket->user_id, static_cast<domain::UserId>(i + 1));
        EXPECT_EQ(ticket->position, static_cast<std::int64_t>(i + 1));
    }
    EXPECT_EQ(q.stats().waiting, 5);
    EXPECT_EQ(q.stats().active, 0);
}

TEST_F(PgWaitingQueueTest, ReissueReturnsTheLiveToken) {
    QueueFixture q(settings(1, 1000));
    const auto first = q.issue(1);
    q.issue(2);
    const auto again = q.issue(1);
    EXPECT_FALSE(again.created);
    EXPECT_EQ(again.ticket.token, first.ticket.token);
    EXPECT_EQ(again.ticket.position, 1);

    EXPECT_EQ(q.admit(), 1);  // a fresh bucket holds one admission
    const auto active = q.issue(1);
    EXPECT_FALSE(active.created);
    EXPECT_EQ(active.ticket.token, first.ticket.token);
    EXPECT_EQ(active.ticket.status, TokenStatus::kActive);
    EXPECT_EQ(active.ticket.position, 0);
    EXPECT_EQ(q.position(q.issue(2).ticket.token), 1);  // user 2 moved up
}

TEST_F(PgWaitingQueueTest, RacingIssuesForOneUserAgreeOnOneToken) {
    QueueFixture q(settings(1, 1000));
    std::vector<std::string> tokens(8);
    std::atomic<int> created{0};
    {
        asio::io_context io;
        for (auto& token : tokens) {
            asio::co_spawn(
                io,
                [&q, &token, &created]() -> asio::awaitable<void> {
                    auto issued = co_await q.queue.issue(42);
                    token = issued.ticket.token;
                    if (issued.created) ++created;
                },
                rethrow_if);
        }
        io.run();
    }
    EXPECT_EQ(created.load(), 1);
    for (const auto& token : tokens) EXPECT_EQ(token, tokens.front());
    EXPECT_EQ(psql("SELECT count(*) FROM queue_tokens"), "1");
}

TEST_F(PgWaitingQueueTest, UnknownAndMalformedTokensAreNotFound) {
    QueueFixture q(settings(1, 1000));
    q.issue(1);
    EXPECT_FALSE(q.find(""));
    EXPECT_FALSE(q.find("not-a-token"));
    EXPECT_FALSE(q.find("0123456789abcdef0123456789abcdef"));
    EXPECT_FALSE(q.find("0123456789ABCDEF0123456789ABCDEF"));
    EXPECT_FALSE(q.find("'; DROP TABLE queue_tokens; --"));
}

TEST_F(PgWaitingQueueTest, ExpireUserEndsTheTokenAndMovesTheLineUp) {
    QueueFixture q(settings(1, 1000));
    const auto t1 = q.issue(1).ticket.token;
    const auto t2 = q.issue(2).ticket.token;
    const auto t3 = q.issue(3).ticket.token;
    q.expire_user(2);
    EXPECT_FALSE(q.find(t2));
    EXPECT_EQ(q.position(t1), 1);
    EXPECT_EQ(q.position(t3), 2);
    q.expire_user(99);  // no token: nothing happens

    EXPECT_EQ(q.admit(), 1);
    q.expire_user(1);  // an ACTIVE token ends too (after payment)
    EXPECT_FALSE(q.find(t1));
    const auto again = q.issue(2);
    EXPECT_TRUE(again.created);
    EXPECT_NE(again.ticket.token, t2);
    EXPECT_EQ(again.ticket.position, 2);  // behind user 3
}

TEST_F(PgWaitingQueueTest, StaleWaitingTokensDropOut) {
    QueueFixture q(settings(1, 1000, 600, /*waiting_ttl_seconds=*/1));
    const auto t1 = q.issue(1).ticket.token;
    const auto t2 = q.issue(2).ticket.token;
    const auto t3 = q.issue(3).ticket.token;
    // Only user 3 keeps polling.
    for (int i = 0; i < 5; ++i) {
        std::this_thread::sleep_for(300ms);
        ASSERT_TRUE(q.find(t3));
    }
    EXPECT_FALSE(q.find(t1));  // invisible before any admit() has run
    EXPECT_FALSE(q.find(t2));
    EXPECT_EQ(q.position(t3), 1);
    EXPECT_EQ(q.stats().waiting, 1);

    // A stale token costs no budget: the one admission goes to user 3.
    EXPECT_EQ(q.admit(), 1);
    const auto ticket = q.find(t3);
    ASSERT_TRUE(ticket);
    EXPECT_EQ(ticket->status, TokenStatus::kActive);
    EXPECT_EQ(psql("SELECT count(*) FROM queue_tokens"), "1");  // the stale ones were deleted

    const auto reissued = q.issue(1);  // a dropped user starts again at the end
    EXPECT_TRUE(reissued.created);
    EXPECT_NE(reissued.ticket.token, t1);
    EXPECT_EQ(reissued.ticket.position, 1);
}

TEST_F(PgWaitingQueueTest, StaleTokenIsReplacedOnIssueBeforeAnySweep) {
    QueueFixture q(settings(1, 1000, 600, /*waiting_ttl_seconds=*/1));
    const auto t1 = q.issue(1).ticket.token;
    const auto t2 = q.issue(2).ticket.token;
    std::this_thread::sleep_for(700ms);
    ASSERT_TRUE(q.find(t2));
    std::this_thread::sleep_for(500ms);
    const auto again = q.issue(1);  // user 1 is stale, user 2 is not
    EXPECT_TRUE(again.created);
    EXPECT_NE(again.ticket.token, t1);
    EXPECT_EQ(again.ticket.position, 2);
}

TEST_F(PgWaitingQueueTest, ActiveTokensExpireAfterActiveTtl) {
    QueueFixture q(settings(10, 1000, /*active_ttl_seconds=*/1));
    const auto t1 = q.issue(1).ticket.token;
    EXPECT_EQ(q.admit(), 1);
    ASSERT_TRUE(q.find(t1));
    EXPECT_EQ(q.stats().active, 1);
    std::this_thread::sleep_for(1100ms);
    EXPECT_FALSE(q.find(t1));  // before any sweep
    EXPECT_EQ(q.stats().active, 0);
    const auto again = q.issue(1);  // the expired row is replaced in place
    EXPECT_TRUE(again.created);
    EXPECT_NE(again.ticket.token, t1);
    EXPECT_EQ(again.ticket.status, TokenStatus::kWaiting);
    EXPECT_EQ(again.ticket.position, 1);
    EXPECT_EQ(q.admit(), 1);
    EXPECT_EQ(q.find(again.ticket.token)->status, TokenStatus::kActive);

    const auto t2 = q.issue(2).ticket.token;
    std::this_thread::sleep_for(1100ms);
    EXPECT_EQ(q.admit(), 1);  // user 1 expired and is deleted; user 2 is admitted
    EXPECT_EQ(psql("SELECT count(*) FROM queue_tokens"), "1");
    EXPECT_EQ(q.find(t2)->status, TokenStatus::kActive);
}

// Two "processes" (two pools, two queues) admit on two threads at once, every few ms.
struct AdmitRun {
    std::atomic<std::int64_t> admitted{0};
    std::atomic<std::int64_t> max_active_seen{0};
    std::atomic<bool> failed{false};
};

void admit_concurrently(const app::QueueSettings& s, AdmitRun& run,
                        std::chrono::milliseconds duration) {
    const auto until = std::chrono::steady_clock::now() + duration;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&] {
            try {
                PgPool pool(pool_options());
                PgWaitingQueue queue(pool, s);
                asio::io_context io;
                auto loop = [&]() -> asio::awaitable<void> {
                    while (std::chrono::steady_clock::now() < until) {
                        run.admitted += co_await queue.admit(domain::TimePoint{});
                        const auto active = (co_await queue.stats()).active;
                        std::int64_t seen = run.max_active_seen.load();
                        while (active > seen &&
                               !run.max_active_seen.compare_exchange_weak(seen, active)) {
                        }
                        co_await sleep_for(5ms);
                    }
                };
                // Two tickers per process, so admissions also race inside one process.
                asio::co_spawn(io, loop, rethrow_if);
                asio::co_spawn(io, loop, rethrow_if);
                io.run();
            } catch (const std::exception& error) {
                std::fprintf(stderr, "admitter failed: %s\n", error.what());
                run.failed = true;
            }
        });
    }
    for (auto& thread : threads) thread.join();
}

// The line after admission: the first `admitted` users ACTIVE, the rest WAITING at 1, 2, …
void expect_fifo(QueueFixture& q, const std::vector<std::string>& tokens, std::int64_t admitted) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const auto ticket = q.find(tokens[i]);
        ASSERT_TRUE(ticket) << "token " << i;
        if (static_cast<std::int64_t>(i) < admitted) {
            EXPECT_EQ(ticket->status, TokenStatus::kActive) << "user " << i + 1;
        } else {
            EXPECT_EQ(ticket->status, TokenStatus::kWaiting) << "user " << i + 1;
            EXPECT_EQ(ticket->position, static_cast<std::int64_t>(i) - admitted + 1);
        }
    }
}

TEST_F(PgWaitingQueueTest, TwoProcessesNeverAdmitMoreThanMaxActiveAndKeepFifo) {
    const auto s = settings(/*admit_per_second=*/50, /*max_active=*/7);
    QueueFixture q(s);
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 20; ++user) tokens.push_back(q.issue(user).ticket.token);

    AdmitRun run;
    admit_concurrently(s, run, 800ms);
    ASSERT_FALSE(run.failed);
    EXPECT_EQ(run.admitted.load(), 7);
    EXPECT_LE(run.max_active_seen.load(), 7);
    EXPECT_EQ(q.stats().active, 7);
    expect_fifo(q, tokens, 7);
}

TEST_F(PgWaitingQueueTest, TwoProcessesShareOneAdmissionRate) {
    const auto s = settings(/*admit_per_second=*/10, /*max_active=*/1000);
    QueueFixture q(s);
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 100; ++user) {
        tokens.push_back(q.issue(user).ticket.token);
    }

    const auto started = std::chrono::steady_clock::now();
    AdmitRun run;
    admit_concurrently(s, run, 1500ms);
    const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count();
    ASSERT_FALSE(run.failed);
    // A full bucket (10) plus 10 per second over the run, whichever process admitted.
    const std::int64_t admitted = run.admitted.load();
    EXPECT_LE(admitted, 10 + (elapsed_ms * 10 + 999) / 1000);
    EXPECT_GE(admitted, 10 + 10);  // at least one more second's worth within 1.5 s
    EXPECT_EQ(q.stats().active, admitted);
    expect_fifo(q, tokens, admitted);
}

// --- the lock ----------------------------------------------------------------------------------

using PgAdvisoryLockTest = PgTest;

// One "process": a lock on its own pool, plus a storage pool for the guarded work.
struct Process {
    Process() : lock_pool(pool_options()), storage(pool_options()), lock(lock_pool) {}
    PgPool lock_pool;
    PgPool storage;
    PgAdvisoryLock lock;
};

struct CounterRun {
    std::mutex mutex;
    std::vector<std::uint64_t> fences;  // in grant order (appended while holding the lock)
    std::atomic<int> timeouts{0};
};

asio::awaitable<void> increment_loop(Process& process, CounterRun& run, int iterations) {
    const auto timeout = process.storage.options().statement_timeout;
    for (int i = 0; i < iterations; ++i) {
        auto lease = co_await process.lock.acquire("counter", 10s);
        if (!lease) {
            ++run.timeouts;
            continue;
        }
        {
            std::lock_guard guard(run.mutex);
            run.fences.push_back(lease->fence);
        }
        {
            // Read, pause, write: without the lock, increments would be lost.
            auto conn = co_await process.storage.acquire();
            auto read = co_await conn->execute("SELECT value FROM lock_counter WHERE id = 1", {},
                                               timeout);
            const std::int64_t seen = read.int64(0, 0);
            co_await sleep_for(std::chrono::microseconds(200 * (i % 3)));
            co_await conn->execute("UPDATE lock_counter SET value = $1::bigint WHERE id = 1",
                                   {detail::param(seen + 1)}, timeout);
        }
        co_await process.lock.release(*lease);
    }
}

TEST_F(PgAdvisoryLockTest, MutualExclusionAcrossTwoProcessesLosesNoUpdate) {
    psql("DROP TABLE IF EXISTS lock_counter; "
         "CREATE TABLE lock_counter (id int PRIMARY KEY, value bigint NOT NULL); "
         "INSERT INTO lock_counter VALUES (1, 0)");
    constexpr int kCoroutinesPerProcess = 3;
    constexpr int kIterations = 30;
    CounterRun run;
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&] {
            try {
                Process process;
                asio::io_context io;
                for (int c = 0; c < kCoroutinesPerProcess; ++c) {
                    asio::co_spawn(io, increment_loop(process, run, kIterations), rethrow_if);
                }
                io.run();
                EXPECT_EQ(process.lock.held_count(), 0u);
            } catch (const std::exception& error) {
                std::fprintf(stderr, "process failed: %s\n", error.what());
                failed = true;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_FALSE(failed);
    EXPECT_EQ(run.timeouts.load(), 0);
    const int total = 2 * kCoroutinesPerProcess * kIterations;
    EXPECT_EQ(psql("SELECT value FROM lock_counter"), std::to_string(total));
    ASSERT_EQ(run.fences.size(), static_cast<std::size_t>(total));
    EXPECT_TRUE(std::is_sorted(run.fences.begin(), run.fences.end()));
    EXPECT_EQ(std::adjacent_find(run.fences.begin(), run.fences.end()), run.fences.end());
    EXPECT_EQ(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

TEST_F(PgAdvisoryLockTest, WaitRunsOutWhileAnotherProcessHoldsTheKey) {
    Process holder;
    Process waiter;
    Runner holder_runner;
    Runner waiter_runner;
    const auto held = holder_runner.run(holder.lock.acquire("seat:1:1", 1s));
    ASSERT_TRUE(held);

    const auto started = std::chrono::steady_clock::now();
    const auto refused = waiter_runner.run(waiter.lock.acquire("seat:1:1", 150ms));
    const auto waited = std::chrono::steady_clock::now() - started;
    EXPECT_FALSE(refused);
    EXPECT_GE(waited, 150ms);
    EXPECT_LT(waited, 1500ms);
    EXPECT_EQ(waiter.lock.held_count(), 0u);

    const auto other = waiter_runner.run(waiter.lock.acquire("seat:1:2", 0ms));  // another key
    ASSERT_TRUE(other);
    waiter_runner.run(waiter.lock.release(*other));

    holder_runner.run(holder.lock.release(*held));
    const auto granted = waiter_runner.run(waiter.lock.acquire("seat:1:1", 150ms));
    ASSERT_TRUE(granted);
    EXPECT_GT(granted->fence, held->fence);  // the fence grows
    EXPECT_GT(granted->fence, other->fence);
    EXPECT_NE(granted->owner, held->owner);
    waiter_runner.run(waiter.lock.release(*granted));
    EXPECT_EQ(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

TEST_F(PgAdvisoryLockTest, WaiterInTheSameProcessGetsTheKeyAfterRelease) {
    Process process;
    asio::io_context io;
    std::optional<app::LockLease> first;
    std::optional<app::LockLease> second;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            first = co_await process.lock.acquire("wallet:1", 1s);
            co_await sleep_for(100ms);
            co_await process.lock.release(*first);
        },
        rethrow_if);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await sleep_for(20ms);  // the first one is holding by now
            second = co_await process.lock.acquire("wallet:1", 2s);
            co_await process.lock.release(*second);
        },
        rethrow_if);
    io.run();
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    EXPECT_GT(second->fence, first->fence);
    EXPECT_EQ(process.lock.held_count(), 0u);
}

// A crowd of this process's waiters on one key: the database is asked once per grant, never
// by two of them at a time (a burst of holds on a few seats would queue on the lock's pool).
TEST_F(PgAdvisoryLockTest, LocalWaitersOfOneKeyAskTheDatabaseOnlyWhenItIsFreeHere) {
    Process process;
    // A burst that will not wait: one try reaches the database, the others answer busy here.
    constexpr int kBurst = 50;
    std::vector<std::optional<app::LockLease>> burst(kBurst);
    asio::io_context io;
    for (auto& lease : burst) {
        const auto try_now = [&]() -> asio::awaitable<void> {
            lease = co_await process.lock.acquire("seat:5:5", 0ms);
        };
        asio::co_spawn(io, try_now, rethrow_if);
    }
    io.run();
    EXPECT_EQ(std::ranges::count_if(burst, [](const auto& lease) { return lease.has_value(); }),
              1);
    EXPECT_EQ(process.lock.tries(), 1u);
    io.restart();
    for (const auto& lease : burst) {  // on the io_context that acquired, which runs it
        if (lease) asio::co_spawn(io, process.lock.release(*lease), rethrow_if);
    }
    // A crowd that waits: each gets the key in turn, with one try each.
    constexpr int kCrowd = 40;
    int granted = 0;
    for (int i = 0; i < kCrowd; ++i) {
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                const auto lease = co_await process.lock.acquire("seat:5:5", 10s);
                if (!lease) co_return;
                ++granted;
                co_await sleep_for(1ms);
                co_await process.lock.release(*lease);
            },
            rethrow_if);
    }
    io.run();
    EXPECT_EQ(granted, kCrowd);
    EXPECT_EQ(process.lock.tries(), 1u + kCrowd);
    EXPECT_EQ(process.lock.held_count(), 0u);
    EXPECT_EQ(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

TEST_F(PgAdvisoryLockTest, ReleaseWithAnUnknownOwnerDoesNothing) {
    Process process;
    Runner runner;
    const auto lease = runner.run(process.lock.acquire("k", 1s));
    ASSERT_TRUE(lease);
    app::LockLease forged = *lease;
    forged.owner = "someone-else";
    runner.run(process.lock.release(forged));
    EXPECT_EQ(process.lock.held_count(), 1u);
    EXPECT_EQ(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "1");
    runner.run(process.lock.release(*lease));
    runner.run(process.lock.release(*lease));  // twice: nothing more
    EXPECT_EQ(process.lock.held_count(), 0u);
    EXPECT_EQ(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

TEST_F(PgAdvisoryLockTest, ReleaseFromAnotherIoContextUnlocksOnTheAcquiringOne) {
    Process process;
    asio::io_context owner_io;
    auto work = asio::make_work_guard(owner_io);
    std::thread owner_thread([&] { owner_io.run(); });

    auto lease = asio::co_spawn(owner_io, process.lock.acquire("k2", 1s), asio::use_future).get();
    ASSERT_TRUE(lease);
    Runner other;  // another io_context, on this thread
    other.run(process.lock.release(*lease));
    EXPECT_EQ(process.lock.held_count(), 0u);
    EXPECT_EQ(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");

    work.reset();
    owner_thread.join();
}

TEST_F(PgAdvisoryLockTest, BrokenHolderConnectionLosesTheLockAndReleaseStillReturns) {
    Process holder;
    Process other;
    Runner holder_runner;
    Runner other_runner;
    const auto lease = holder_runner.run(holder.lock.acquire("k3", 1s));
    ASSERT_TRUE(lease);
    // The holder's session dies (a server restart, a network cut): the server drops its lock.
    psql("SELECT pg_terminate_backend(pid) FROM pg_locks"
         " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()");
    std::this_thread::sleep_for(100ms);
    const auto taken = other_runner.run(other.lock.acquire("k3", 1s));
    ASSERT_TRUE(taken);
    EXPECT_GT(taken->fence, lease->fence);
    EXPECT_NO_THROW(holder_runner.run(holder.lock.release(*lease)));
    EXPECT_EQ(holder.lock.held_count(), 0u);
    other_runner.run(other.lock.release(*taken));
}

}  // namespace
}  // namespace concertd::postgres
