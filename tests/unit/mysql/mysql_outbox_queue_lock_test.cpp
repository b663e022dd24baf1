// MysqlOutboxStore, MysqlSalesLedgerStore, MysqlWaitingQueue and MysqlAdvisoryLock against the
// binary's throwaway MariaDB (mysql_test_server.hpp), a fresh migrated database per test. Two
// "processes" are two MysqlPool instances, each used from its own thread and io_context.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/mysql/mysql_advisory_lock.hpp"
#include "adapters/mysql/mysql_named_lock.hpp"
#include "adapters/mysql/mysql_outbox_store.hpp"
#include "adapters/mysql/mysql_pool.hpp"
#include "adapters/mysql/mysql_rows.hpp"
#include "adapters/mysql/mysql_waiting_queue.hpp"
#include "mysql/mysql_test_server.hpp"

namespace concertd::mysql {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using detail::MysqlEndpoint;
using domain::TokenStatus;
using testing::environment;

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

MysqlPoolOptions pool_options(const MysqlEndpoint& endpoint, app::Counter* round_trips = nullptr) {
    MysqlPoolOptions options;
    options.endpoint = endpoint;
    options.connections_per_thread = 4;
    options.round_trips = round_trips;
    return options;
}

// A fresh database per test, and one-off statements on it (each on a connection of its own).
class MysqlAdapterTest : public testing::MariaDbTest {
protected:
    void use_database(const std::string& name) { endpoint_ = environment().fresh_database(name); }

    MysqlResult sql(std::string_view text, std::vector<MysqlParam> params = {}) {
        const auto endpoint = endpoint_;
        return run([endpoint, text, params]() -> asio::awaitable<MysqlResult> {
            auto conn = co_await detail::MysqlConnection::connect(
                co_await asio::this_coro::executor, endpoint, 5000ms);
            co_return co_await conn->execute(text, params, 5000ms);
        });
    }
    std::int64_t sql_int(std::string_view text, std::vector<MysqlParam> params = {}) {
        return sql(text, std::move(params)).int64(0, 0);
    }

    // Whether any session holds the lock port's `key`, or the adapter's own lock `internal`.
    bool key_free(const std::string& key) {
        return sql_int("SELECT IS_FREE_LOCK(?)",
                       {param(lock_name(kKeyLock, endpoint_.database, key))}) == 1;
    }
    bool internal_free(const std::string& name) {
        return sql_int("SELECT IS_FREE_LOCK(?)",
                       {param(lock_name(kInternalLock, endpoint_.database, name))}) == 1;
    }

    MysqlEndpoint endpoint_;
};

// --- the outbox relay and the sales ledger -----------------------------------------------------

using MysqlOutboxTest = MysqlAdapterTest;

domain::TimePoint now_ms() {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(domain::Clock::now());
}

Event test_event(int n) {
    Event event;
    event.event_id = "00000000-0000-4000-8000-" + std::to_string(100000000000 + n);
    event.type = std::string(domain::event_type::kReservationHeld);
    event.aggregate_id = n;
    event.payload_json = "{\"n\":" + std::to_string(n) + "}";
    event.occurred_at = now_ms();
    return event;
}

TEST_F(MysqlOutboxTest, OneRelayStepAtATimeAndAFailedPublishMarksNothing) {
    use_database("outbox_turn");
    constexpr int kEvents = 20;
    for (int n = 0; n < kEvents; ++n) sql(kInsertEvent, event_params(test_event(n)));
    MysqlPool pool(pool_options(endpoint_));
    MysqlOutboxStore outbox(pool);
    Runner runner;
    ASSERT_EQ(runner.run(outbox.unpublished_count()), kEvents);

    auto failing = [](const std::vector<Event>&) -> app::Task<void> {
        throw std::runtime_error("broker down");
        co_return;
    };
    EXPECT_THROW(runner.run(outbox.relay(100'000, now_ms(), failing)), std::runtime_error);
    EXPECT_EQ(runner.run(outbox.unpublished_count()), kEvents);
    EXPECT_TRUE(internal_free("relay")) << "a failed step gives the turn back";

    // Two processes race for the turn; the publish is slow, so they overlap.
    std::atomic<int> inside{0};
    std::atomic<int> most_inside{0};
    std::mutex mutex;
    std::vector<std::int64_t> sent;  // outbox ids in the order they were published
    auto slow = [&](const std::vector<Event>& batch) -> app::Task<void> {
        const int now_inside = ++inside;
        most_inside = std::max(most_inside.load(), now_inside);
        co_await sleep_for(300ms);
        {
            std::lock_guard guard(mutex);
            for (const auto& event : batch) sent.push_back(event.sequence);
        }
        --inside;
    };
    std::vector<std::size_t> steps(2);
    std::vector<std::thread> threads;
    std::atomic<bool> failed{false};
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            try {
                MysqlPool own(pool_options(endpoint_));
                MysqlOutboxStore relayer(own);
                Runner own_runner;
                steps[t] = own_runner.run(relayer.relay(100'000, now_ms(), slow));
            } catch (const std::exception& error) {
                std::fprintf(stderr, "relayer failed: %s\n", error.what());
                failed = true;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_FALSE(failed);
    std::sort(steps.begin(), steps.end());
    EXPECT_EQ(steps[0], 0u) << "the second relayer found the turn taken";
    EXPECT_EQ(steps[1], static_cast<std::size_t>(kEvents));
    EXPECT_EQ(most_inside.load(), 1);
    EXPECT_EQ(sent.size(), static_cast<std::size_t>(kEvents));
    EXPECT_TRUE(std::is_sorted(sent.begin(), sent.end()));
    EXPECT_EQ(runner.run(outbox.unpublished_count()), 0);
    EXPECT_TRUE(internal_free("relay"));

    EXPECT_EQ(runner.run(outbox.purge_published(now_ms() - 1h, 100'000)), 0)
        << "kept for the retention";
    EXPECT_EQ(runner.run(outbox.purge_published(now_ms() + 1s, 7)), 7) << "one batch";
    EXPECT_EQ(runner.run(outbox.purge_published(now_ms() + 1s, 100'000)), kEvents - 7);
    EXPECT_EQ(sql_int("SELECT COUNT(*) FROM outbox"), 0);
}

TEST_F(MysqlOutboxTest, StepsLeaveInOutboxOrderAndMarkOnlyWhatWasSent) {
    use_database("outbox_order");
    for (int n = 0; n < 5; ++n) sql(kInsertEvent, event_params(test_event(n)));
    app::Counter round_trips;
    MysqlPool pool(pool_options(endpoint_, &round_trips));
    MysqlOutboxStore outbox(pool);
    Runner runner;
    std::vector<std::int64_t> sent;
    auto collect = [&](const std::vector<Event>& batch) -> app::Task<void> {
        for (const auto& event : batch) sent.push_back(event.sequence);
        co_return;
    };
    EXPECT_EQ(runner.run(outbox.relay(2, now_ms(), collect)), 2u);
    EXPECT_EQ(runner.run(outbox.relay(2, now_ms(), collect)), 2u);
    // A row written while the next step runs is not marked unless it was sent.
    auto add_one_more = [&](const std::vector<Event>& batch) -> app::Task<void> {
        for (const auto& event : batch) sent.push_back(event.sequence);
        sql(kInsertEvent, event_params(test_event(99)));
        co_return;
    };
    EXPECT_EQ(runner.run(outbox.relay(2, now_ms(), add_one_more)), 1u);
    EXPECT_EQ(runner.run(outbox.unpublished_count()), 1);
    // Every statement is prepared by now (a prepare is one more round trip, once).
    const auto before = round_trips.get();
    EXPECT_EQ(runner.run(outbox.relay(10, now_ms(), collect)), 1u);
    EXPECT_EQ(round_trips.get() - before, 4u) << "turn, read, mark, release";
    ASSERT_EQ(sent.size(), 6u);
    EXPECT_TRUE(std::is_sorted(sent.begin(), sent.end()));
    EXPECT_EQ(std::adjacent_find(sent.begin(), sent.end()), sent.end());

    const auto idle = round_trips.get();
    EXPECT_EQ(runner.run(outbox.relay(10, now_ms(), collect)), 0u);
    EXPECT_EQ(round_trips.get() - idle, 1u) << "an idle step is one round trip";
    EXPECT_TRUE(internal_free("relay")) << "an idle step takes no turn";
}

TEST_F(MysqlOutboxTest, LargeStepsMarkEveryEvent) {
    use_database("outbox_large");
    constexpr int kEvents = 1300;  // three mark statements (512 + 512 + 276, padded to 512)
    sql("INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at)"
        " SELECT CONCAT('e-', seq), 'reservation.held', seq, '{}', 0"
        " FROM seq_1_to_1300");  // MariaDB's Sequence engine
    MysqlPool pool(pool_options(endpoint_));
    MysqlOutboxStore outbox(pool);
    Runner runner;
    std::size_t sent = 0;
    auto count = [&](const std::vector<Event>& batch) -> app::Task<void> {
        sent += batch.size();
        co_return;
    };
    EXPECT_EQ(runner.run(outbox.relay(100'000, now_ms(), count)),
              static_cast<std::size_t>(kEvents));
    EXPECT_EQ(sent, static_cast<std::size_t>(kEvents));
    EXPECT_EQ(runner.run(outbox.unpublished_count()), 0);
}

TEST_F(MysqlOutboxTest, ARelayerKilledInsidePublishFreesTheTurn) {
    use_database("outbox_killed");
    sql(kInsertEvent, event_params(test_event(1)));
    MysqlPool pool(pool_options(endpoint_));
    MysqlOutboxStore outbox(pool);
    std::atomic<bool> publishing{false};
    // The step's coroutine is destroyed inside publish() (its io_context goes away), as when
    // the process dies: the connection must not return to the pool holding the turn.
    {
        asio::io_context io;
        auto hang = [&](const std::vector<Event>&) -> app::Task<void> {
            publishing = true;
            co_await sleep_for(10s);
        };
        asio::co_spawn(io, outbox.relay(10, now_ms(), hang), asio::detached);
        while (!publishing) io.run_one();
        EXPECT_FALSE(internal_free("relay"));
    }
    std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(internal_free("relay"));
    Runner runner;
    std::size_t sent = 0;
    auto count = [&](const std::vector<Event>& batch) -> app::Task<void> {
        sent += batch.size();
        co_return;
    };
    EXPECT_EQ(runner.run(outbox.relay(10, now_ms(), count)), 1u) << "sent again, at least once";
    EXPECT_EQ(sent, 1u);
}

TEST_F(MysqlOutboxTest, TheLedgerRecordsEachSaleOnce) {
    use_database("ledger_once");
    MysqlPool pool(pool_options(endpoint_));
    MysqlSalesLedgerStore ledger(pool);
    Runner runner;
    Event sale = test_event(7);
    sale.type = std::string(domain::event_type::kPaymentCompleted);
    sale.payload_json =
        R"({"paymentId":11,"reservationId":12,"userId":13,"amount":5000})";
    EXPECT_TRUE(runner.run(ledger.record_sale(sale)));
    EXPECT_FALSE(runner.run(ledger.record_sale(sale)));
    EXPECT_EQ(sql_int("SELECT COUNT(*) FROM sales_ledger"), 1);
    EXPECT_EQ(sql_int("SELECT COUNT(*) FROM processed_events"), 1);
    EXPECT_EQ(sql_int("SELECT amount FROM sales_ledger WHERE payment_id = 11"), 5000);

    // Racing deliveries of one event: one of them records it.
    std::atomic<int> recorded{0};
    Event other = sale;
    other.event_id = "another-event";
    other.payload_json = R"({"paymentId":21,"reservationId":22,"userId":23,"amount":700})";
    {
        asio::io_context io;
        for (int i = 0; i < 6; ++i) {
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    if (co_await ledger.record_sale(other)) ++recorded;
                },
                rethrow_if);
        }
        io.run();
    }
    EXPECT_EQ(recorded.load(), 1);
    EXPECT_EQ(sql_int("SELECT COUNT(*) FROM sales_ledger"), 2);
}

// --- the waiting queue -------------------------------------------------------------------------

app::QueueSettings settings(std::int64_t admit_per_second, std::int64_t max_active,
                            std::int64_t active_ttl_seconds = 600,
                            std::int64_t waiting_ttl_seconds = 60) {
    return {admit_per_second, max_active, active_ttl_seconds, waiting_ttl_seconds};
}

// A queue on its own pool and runner, with synchronous shorthands for the port's coroutines.
class QueueFixture {
public:
    QueueFixture(const MysqlEndpoint& endpoint, app::QueueSettings s)
        : pool(pool_options(endpoint, &round_trips)), queue(pool, s) {}

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

    app::Counter round_trips;
    MysqlPool pool;  // declared before the runner: destroyed after the io_context
    Runner runner;
    MysqlWaitingQueue queue;
};

using MysqlWaitingQueueTest = MysqlAdapterTest;

TEST_F(MysqlWaitingQueueTest, IssuesInFifoOrderWithPositionsAndEstimatedWait) {
    use_database("queue_fifo");
    QueueFixture q(endpoint_, settings(2, 1000));
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
    EXPECT_TRUE(internal_free("queue_issue"));
}

TEST_F(MysqlWaitingQueueTest, RoundTripsAreTheDocumentedOnes) {
    use_database("queue_round_trips");
    QueueFixture q(endpoint_, settings(1000, 1000));
    // Prepare every statement once (a prepare is one more round trip, once per connection).
    const auto warm = q.issue(1).ticket.token;
    q.find(warm);
    q.admit();
    q.find(warm);
    q.stats();
    q.expire_user(9);
    const auto waiting = q.issue(2).ticket.token;
    q.find(waiting);

    auto counted = [&](auto&& call) {
        const auto before = q.round_trips.get();
        call();
        return q.round_trips.get() - before;
    };
    EXPECT_EQ(counted([&] { q.issue(3); }), 4u);
    EXPECT_EQ(counted([&] { q.find(waiting); }), 2u) << "WAITING: read, poll";
    EXPECT_EQ(counted([&] { q.find(warm); }), 1u) << "ACTIVE: read";
    EXPECT_EQ(counted([&] { q.find("0123456789abcdef0123456789abcdef"); }), 1u);
    EXPECT_EQ(counted([&] { q.find("forged"); }), 0u);
    EXPECT_EQ(counted([&] { q.stats(); }), 1u);
    EXPECT_EQ(counted([&] { q.expire_user(1); }), 1u);
    std::int64_t admitted = 0;
    EXPECT_EQ(counted([&] { admitted = q.admit(); }), 7u)
        << "look, begin, bucket, counts, admit, charge, commit";
    EXPECT_EQ(admitted, 2);
    EXPECT_EQ(counted([&] { EXPECT_EQ(q.admit(), 0); }), 1u)
        << "nobody waits and no ACTIVE token is due: one look";
}

TEST_F(MysqlWaitingQueueTest, ReissueReturnsTheLiveToken) {
    use_database("queue_reissue");
    QueueFixture q(endpoint_, settings(1, 1000));
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

TEST_F(MysqlWaitingQueueTest, RacingIssuesForOneUserAgreeOnOneToken) {
    use_database("queue_racing_issue");
    QueueFixture q(endpoint_, settings(1, 1000));
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
    EXPECT_EQ(sql_int("SELECT COUNT(*) FROM queue_tokens"), 1);
    EXPECT_TRUE(internal_free("queue_issue"));
}

TEST_F(MysqlWaitingQueueTest, ConcurrentArrivalsFromTwoProcessesGetDistinctPositions) {
    use_database("queue_distinct");
    const auto s = settings(1, 1000);
    constexpr int kUsersPerProcess = 15;
    std::mutex mutex;
    std::vector<std::int64_t> positions;
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            try {
                MysqlPool pool(pool_options(endpoint_));
                MysqlWaitingQueue queue(pool, s);
                asio::io_context io;
                for (int i = 0; i < kUsersPerProcess; ++i) {
                    const domain::UserId user = 1 + t * kUsersPerProcess + i;
                    asio::co_spawn(
                        io,
                        [&, user]() -> asio::awaitable<void> {
                            auto issued = co_await queue.issue(user);
                            std::lock_guard guard(mutex);
                            positions.push_back(issued.ticket.position);
                        },
                        rethrow_if);
                }
                io.run();
            } catch (const std::exception& error) {
                std::fprintf(stderr, "issuer failed: %s\n", error.what());
                failed = true;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_FALSE(failed);
    std::sort(positions.begin(), positions.end());
    ASSERT_EQ(positions.size(), 2u * kUsersPerProcess);
    for (std::size_t i = 0; i < positions.size(); ++i) {
        EXPECT_EQ(positions[i], static_cast<std::int64_t>(i + 1));
    }
}

TEST_F(MysqlWaitingQueueTest, UnknownAndMalformedTokensAreNotFound) {
    use_database("queue_unknown");
    QueueFixture q(endpoint_, settings(1, 1000));
    q.issue(1);
    EXPECT_FALSE(q.find(""));
    EXPECT_FALSE(q.find("not-a-token"));
    EXPECT_FALSE(q.find("0123456789abcdef0123456789abcdef"));
    EXPECT_FALSE(q.find("0123456789ABCDEF0123456789ABCDEF"));
    EXPECT_FALSE(q.find("'; DROP TABLE queue_tokens; --"));
    const auto token = q.issue(1).ticket.token;
    std::string upper = token;
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    if (upper != token) EXPECT_FALSE(q.find(upper)) << "utf8mb4_bin: case matters";
}

TEST_F(MysqlWaitingQueueTest, ExpireUserEndsTheTokenAndMovesTheLineUp) {
    use_database("queue_expire_user");
    QueueFixture q(endpoint_, settings(1, 1000));
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

TEST_F(MysqlWaitingQueueTest, StaleWaitingTokensDropOut) {
    use_database("queue_stale");
    QueueFixture q(endpoint_, settings(1, 1000, 600, /*waiting_ttl_seconds=*/1));
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
    EXPECT_EQ(sql_int("SELECT COUNT(*) FROM queue_tokens"), 1);  // the stale ones were deleted

    const auto reissued = q.issue(1);  // a dropped user starts again at the end
    EXPECT_TRUE(reissued.created);
    EXPECT_NE(reissued.ticket.token, t1);
    EXPECT_EQ(reissued.ticket.position, 1);
}

TEST_F(MysqlWaitingQueueTest, StaleTokenIsReplacedOnIssueBeforeAnySweep) {
    use_database("queue_stale_reissue");
    QueueFixture q(endpoint_, settings(1, 1000, 600, /*waiting_ttl_seconds=*/1));
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

TEST_F(MysqlWaitingQueueTest, ActiveTokensExpireAfterActiveTtl) {
    use_database("queue_active_ttl");
    QueueFixture q(endpoint_, settings(10, 1000, /*active_ttl_seconds=*/1));
    const auto t1 = q.issue(1).ticket.token;
    EXPECT_EQ(q.admit(), 1);
    ASSERT_TRUE(q.find(t1));
    EXPECT_EQ(q.stats().active, 1);
    std::this_thread::sleep_for(1100ms);
    EXPECT_FALSE(q.find(t1));  // before any sweep
    EXPECT_EQ(q.stats().active, 0);
    const auto again = q.issue(1);  // the expired row is replaced
    EXPECT_TRUE(again.created);
    EXPECT_NE(again.ticket.token, t1);
    EXPECT_EQ(again.ticket.status, TokenStatus::kWaiting);
    EXPECT_EQ(again.ticket.position, 1);
    EXPECT_EQ(q.admit(), 1);
    EXPECT_EQ(q.find(again.ticket.token)->status, TokenStatus::kActive);

    const auto t2 = q.issue(2).ticket.token;
    std::this_thread::sleep_for(1100ms);
    EXPECT_EQ(q.admit(), 1);  // user 1 expired and is deleted; user 2 is admitted
    EXPECT_EQ(sql_int("SELECT COUNT(*) FROM queue_tokens"), 1);
    EXPECT_EQ(q.find(t2)->status, TokenStatus::kActive);
}

// Two "processes" (two pools, two queues) admit on two threads at once, every few ms.
struct AdmitRun {
    std::atomic<std::int64_t> admitted{0};
    std::atomic<std::int64_t> max_active_seen{0};
    std::atomic<bool> failed{false};
};

void admit_concurrently(const MysqlEndpoint& endpoint, const app::QueueSettings& s, AdmitRun& run,
                        std::chrono::milliseconds duration) {
    const auto until = std::chrono::steady_clock::now() + duration;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&] {
            try {
                MysqlPool pool(pool_options(endpoint));
                MysqlWaitingQueue queue(pool, s);
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

TEST_F(MysqlWaitingQueueTest, TwoProcessesNeverAdmitMoreThanMaxActiveAndKeepFifo) {
    use_database("queue_max_active");
    const auto s = settings(/*admit_per_second=*/50, /*max_active=*/7);
    QueueFixture q(endpoint_, s);
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 20; ++user) tokens.push_back(q.issue(user).ticket.token);

    AdmitRun run;
    admit_concurrently(endpoint_, s, run, 800ms);
    ASSERT_FALSE(run.failed);
    EXPECT_EQ(run.admitted.load(), 7);
    EXPECT_LE(run.max_active_seen.load(), 7);
    EXPECT_EQ(q.stats().active, 7);
    expect_fifo(q, tokens, 7);
}

TEST_F(MysqlWaitingQueueTest, TwoProcessesShareOneAdmissionRate) {
    use_database("queue_rate");
    const auto s = settings(/*admit_per_second=*/10, /*max_active=*/1000);
    QueueFixture q(endpoint_, s);
    std::vector<std::string> tokens;
    for (domain::UserId user = 1; user <= 100; ++user) {
        tokens.push_back(q.issue(user).ticket.token);
    }

    const auto started = std::chrono::steady_clock::now();
    AdmitRun run;
    admit_concurrently(endpoint_, s, run, 1500ms);
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

using MysqlAdvisoryLockTest = MysqlAdapterTest;

// One "process": a lock on its own pool, plus a storage pool for the guarded work.
struct Process {
    explicit Process(const MysqlEndpoint& endpoint)
        : lock_pool(pool_options(endpoint)), storage(pool_options(endpoint)), lock(lock_pool) {}
    MysqlPool lock_pool;
    MysqlPool storage;
    MysqlAdvisoryLock lock;
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
            co_await conn->execute("UPDATE lock_counter SET value = ? WHERE id = 1",
                                   {param(seen + 1)}, timeout);
        }
        co_await process.lock.release(*lease);
    }
}

TEST_F(MysqlAdvisoryLockTest, MutualExclusionAcrossTwoProcessesLosesNoUpdate) {
    use_database("lock_exclusion");
    sql("CREATE TABLE lock_counter (id INT PRIMARY KEY, value BIGINT NOT NULL) ENGINE=InnoDB");
    sql("INSERT INTO lock_counter VALUES (1, 0)");
    constexpr int kCoroutinesPerProcess = 3;
    constexpr int kIterations = 30;
    CounterRun run;
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&] {
            try {
                Process process(endpoint_);
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
    EXPECT_EQ(sql_int("SELECT value FROM lock_counter"), total);
    ASSERT_EQ(run.fences.size(), static_cast<std::size_t>(total));
    EXPECT_TRUE(std::is_sorted(run.fences.begin(), run.fences.end()));
    EXPECT_EQ(std::adjacent_find(run.fences.begin(), run.fences.end()), run.fences.end());
    EXPECT_TRUE(key_free("counter"));
}

TEST_F(MysqlAdvisoryLockTest, WaitRunsOutWhileAnotherProcessHoldsTheKey) {
    use_database("lock_wait");
    Process holder(endpoint_);
    Process waiter(endpoint_);
    Runner holder_runner;
    Runner waiter_runner;
    const auto held = holder_runner.run(holder.lock.acquire("seat:1:1", 1s));
    ASSERT_TRUE(held);
    EXPECT_FALSE(key_free("seat:1:1"));

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
    EXPECT_TRUE(key_free("seat:1:1"));
    EXPECT_TRUE(key_free("seat:1:2"));
}

TEST_F(MysqlAdvisoryLockTest, FencesStartAtTheClockInMicroseconds) {
    use_database("lock_fence_clock");
    Process process(endpoint_);
    Runner runner;
    const auto before_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    const auto lease = runner.run(process.lock.acquire("k", 1s));
    ASSERT_TRUE(lease);
    // Within a second of this machine's clock (the server is on it).
    EXPECT_GT(static_cast<std::int64_t>(lease->fence), before_us - 1'000'000);
    EXPECT_EQ(sql_int("SELECT value FROM lock_fence WHERE id = 1"),
              static_cast<std::int64_t>(lease->fence));
    runner.run(process.lock.release(*lease));
}

TEST_F(MysqlAdvisoryLockTest, LongKeysAreHashedAndStillExclusive) {
    use_database("lock_long_key");
    const std::string key(200, 'x');
    const std::string name = lock_name(kKeyLock, endpoint_.database, key);
    EXPECT_LE(name.size(), kLockNameCharsMax);
    EXPECT_NE(name, lock_name(kKeyLock, endpoint_.database, key + "y"));
    EXPECT_NE(lock_name(kKeyLock, "a", "b"), lock_name(kInternalLock, "a", "b"));
    EXPECT_NE(lock_name(kKeyLock, "db1", "k"), lock_name(kKeyLock, "db2", "k"));
    Process one(endpoint_);
    Process two(endpoint_);
    Runner runner_one;
    Runner runner_two;
    const auto lease = runner_one.run(one.lock.acquire(key, 1s));
    ASSERT_TRUE(lease);
    EXPECT_FALSE(runner_two.run(two.lock.acquire(key, 50ms)));
    runner_one.run(one.lock.release(*lease));
    const auto next = runner_two.run(two.lock.acquire(key, 50ms));
    ASSERT_TRUE(next);
    runner_two.run(two.lock.release(*next));
}

TEST_F(MysqlAdvisoryLockTest, WaiterInTheSameProcessGetsTheKeyAfterRelease) {
    use_database("lock_same_process");
    Process process(endpoint_);
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
    EXPECT_TRUE(key_free("wallet:1"));
}

// A crowd of this process's waiters on one key: the database is asked once per grant, never
// by two of them at a time (a burst of holds on a few seats would queue on the lock's pool).
TEST_F(MysqlAdvisoryLockTest, LocalWaitersOfOneKeyAskTheDatabaseOnlyWhenItIsFreeHere) {
    use_database("lock_local_crowd");
    Process process(endpoint_);
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
    EXPECT_TRUE(key_free("seat:5:5"));
}

TEST_F(MysqlAdvisoryLockTest, ReleaseWithAnUnknownOwnerDoesNothing) {
    use_database("lock_unknown_owner");
    Process process(endpoint_);
    Runner runner;
    const auto lease = runner.run(process.lock.acquire("k", 1s));
    ASSERT_TRUE(lease);
    app::LockLease forged = *lease;
    forged.owner = "someone-else";
    runner.run(process.lock.release(forged));
    EXPECT_EQ(process.lock.held_count(), 1u);
    EXPECT_FALSE(key_free("k"));
    runner.run(process.lock.release(*lease));
    runner.run(process.lock.release(*lease));  // twice: nothing more
    EXPECT_EQ(process.lock.held_count(), 0u);
    EXPECT_TRUE(key_free("k"));
}

TEST_F(MysqlAdvisoryLockTest, ReleaseFromAnotherIoContextUnlocksOnTheAcquiringOne) {
    use_database("lock_other_context");
    Process process(endpoint_);
    asio::io_context owner_io;
    auto work = asio::make_work_guard(owner_io);
    std::thread owner_thread([&] { owner_io.run(); });

    auto lease = asio::co_spawn(owner_io, process.lock.acquire("k2", 1s), asio::use_future).get();
    ASSERT_TRUE(lease);
    Runner other;  // another io_context, on this thread
    other.run(process.lock.release(*lease));
    EXPECT_EQ(process.lock.held_count(), 0u);
    EXPECT_TRUE(key_free("k2"));

    work.reset();
    owner_thread.join();
}

TEST_F(MysqlAdvisoryLockTest, DeadHolderConnectionLosesTheLockAndReleaseStillReturns) {
    use_database("lock_dead_holder");
    Process holder(endpoint_);
    Process other(endpoint_);
    Runner holder_runner;
    Runner other_runner;
    const auto lease = holder_runner.run(holder.lock.acquire("k3", 1s));
    ASSERT_TRUE(lease);
    // The holder's session dies (a server restart, a network cut, a kill): the server drops its
    // lock with it.
    const auto holder_id = sql_int("SELECT IS_USED_LOCK(?)",
                                   {param(lock_name(kKeyLock, endpoint_.database, "k3"))});
    ASSERT_GT(holder_id, 0);
    sql("KILL " + std::to_string(holder_id));
    std::this_thread::sleep_for(100ms);
    const auto taken = other_runner.run(other.lock.acquire("k3", 1s));
    ASSERT_TRUE(taken);
    EXPECT_GT(taken->fence, lease->fence);
    EXPECT_NO_THROW(holder_runner.run(holder.lock.release(*lease)));
    EXPECT_EQ(holder.lock.held_count(), 0u);
    other_runner.run(other.lock.release(*taken));
    EXPECT_TRUE(key_free("k3"));
}

TEST_F(MysqlAdvisoryLockTest, ALockDestroyedWithALeaseHeldDoesNotLeaveItOnAPooledSession) {
    use_database("lock_destroyed");
    MysqlPool pool(pool_options(endpoint_));
    Runner runner;
    {
        MysqlAdvisoryLock lock(pool);
        ASSERT_TRUE(runner.run(lock.acquire("k4", 1s)));
    }
    EXPECT_TRUE(key_free("k4"));
    MysqlAdvisoryLock again(pool);
    const auto lease = runner.run(again.acquire("k4", 0ms));
    ASSERT_TRUE(lease);
    runner.run(again.release(*lease));
}

}  // namespace
}  // namespace concertd::mysql
