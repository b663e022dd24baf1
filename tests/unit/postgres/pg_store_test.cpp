// The PostgreSQL stores against a live throwaway cluster (scripts/pg-start.sh) with every
// migration applied: each strategy gives a seat to one holder, loses no charge, pays once; a
// stale lock fence is refused.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <array>
#include <cstdio>
#include <thread>

#include "adapters/postgres/pg_catalog_store.hpp"
#include "adapters/postgres/pg_migrations.hpp"
#include "adapters/postgres/pg_outbox_store.hpp"
#include "adapters/postgres/pg_payment_store.hpp"
#include "adapters/postgres/pg_pool.hpp"
#include "adapters/postgres/pg_reservation_store.hpp"
#include "adapters/postgres/pg_wallet_store.hpp"
#include "adapters/postgres/pg_waiting_queue.hpp"

namespace concertd::postgres {
namespace {

using namespace std::chrono_literals;
using app::Strategy;
using namespace concertd::domain;

std::optional<std::string> command_output(const std::string& command) {
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return std::nullopt;
    std::string out;
    std::array<char, 4096> buffer;
    while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) out.append(buffer.data(), n);
    if (::pclose(pipe) != 0) return std::nullopt;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

class StoreCluster : public ::testing::Environment {
public:
    static inline std::string url;
    static inline std::string dir;
    void SetUp() override {
        dir = "/tmp/concertd-pg-store-test-" + std::to_string(::getpid());
        auto started = command_output(std::string(CONCERTD_SOURCE_DIR) + "/scripts/pg-start.sh " + dir +
                                      " 2>/dev/null");
        if (!started) return;
        try {
            apply_migrations(*started, kPostgresMigrations);
            url = *started;
        } catch (const std::exception& error) {
            std::fprintf(stderr, "pg_store_test: %s\n", error.what());
        }
    }
    void TearDown() override {
        command_output(std::string(CONCERTD_SOURCE_DIR) + "/scripts/pg-stop.sh " + dir +
                       " immediate >/dev/null 2>&1; rm -rf " + dir);
    }
};

const auto* const kCluster = ::testing::AddGlobalTestEnvironment(new StoreCluster);

template <class T>
boost::asio::awaitable<std::optional<T>> wrapped(boost::asio::awaitable<T> task) {
    co_return co_await std::move(task);
}

TimePoint now_ms() { return std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now()); }

class PgStoreTest : public ::testing::TestWithParam<Strategy> {
protected:
    void SetUp() override {
        if (StoreCluster::url.empty()) GTEST_SKIP() << "no PostgreSQL (scripts/pg-start.sh failed)";
        PgPoolOptions options;
        options.conninfo = StoreCluster::url;
        options.round_trips = &stats_.db_round_trips;
        pool_ = std::make_unique<PgPool>(options);
        catalog_ = std::make_unique<PgCatalogStore>(*pool_);
        reservations_ = std::make_unique<PgReservationStore>(*pool_, stats_);
        wallets_ = std::make_unique<PgWalletStore>(*pool_, stats_);
        payments_ = std::make_unique<PgPaymentStore>(*pool_, stats_);
        schedule_ = run(catalog_->create_concert({"T", {{now_ms() + 24h, 50, 1000}}}, now_ms()))
                        .schedule_ids.at(0);
        user_base_ = next_user_base_ += 100'000;
    }

    // On io_contexts_[0], one at a time; every io_context used keeps its thread's connections.
    template <class T>
    T run(boost::asio::awaitable<T> task) {
        contexts_[0].restart();
        auto future = boost::asio::co_spawn(contexts_[0], wrapped(std::move(task)), boost::asio::use_future);
        contexts_[0].run();
        return std::move(*future.get());
    }

    // `count` copies of make(i) at once, spread over two threads (one io_context each).
    template <class Make>
    auto race(int count, Make make) {
        using T = typename decltype(make(0))::value_type;
        std::vector<std::future<std::optional<T>>> futures;
        for (auto& context : contexts_) context.restart();
        for (int i = 0; i < count; ++i) {
            futures.push_back(boost::asio::co_spawn(contexts_[i % 2], wrapped(make(i)), boost::asio::use_future));
        }
        std::thread helper([&] { contexts_[1].run(); });
        contexts_[0].run();
        helper.join();
        std::vector<T> results;
        for (auto& f : futures) results.push_back(std::move(*f.get()));
        return results;
    }

    app::HoldCommand hold(UserId user, SeatNo seat, Strategy strategy, std::chrono::milliseconds lasting = 300s,
                          std::optional<std::uint64_t> fence = std::nullopt) {
        auto now = now_ms();
        return {user, schedule_, seat, now, now + lasting, strategy, fence};
    }

    static inline std::int64_t next_user_base_ = 0;
    boost::asio::io_context contexts_[2];
    app::AppStats stats_;
    std::unique_ptr<PgPool> pool_;
    std::unique_ptr<PgCatalogStore> catalog_;
    std::unique_ptr<PgReservationStore> reservations_;
    std::unique_ptr<PgWalletStore> wallets_;
    std::unique_ptr<PgPaymentStore> payments_;
    ScheduleId schedule_ = 0;
    UserId user_base_ = 0;
};

TEST_P(PgStoreTest, OneSeatGoesToExactlyOneHolder) {
    // `distributed` here runs without the lock port: the unique index alone must still hold.
    auto results = race(30, [&](int i) { return reservations_->hold(hold(user_base_ + i, 7, GetParam())); });
    int won = 0;
    for (const auto& r : results) {
        if (r.ok()) ++won;
        else EXPECT_EQ(r.refusal().code, Rejection::kSeatUnavailable);
    }
    EXPECT_EQ(won, 1);
}

// A hold that lapsed before the sweeper saw it: the next holder expires it in its own
// transaction (the optimistic single-statement claim does not apply) and takes the seat.
TEST_P(PgStoreTest, NextHolderExpiresALapsedHold) {
    auto first = run(reservations_->hold(hold(user_base_ + 40, 40, GetParam(), 1ms)));
    ASSERT_TRUE(first.ok());
    std::this_thread::sleep_for(20ms);
    auto second = run(reservations_->hold(hold(user_base_ + 41, 40, GetParam())));
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->user_id, user_base_ + 41);
    auto lapsed = run(reservations_->find(first->id));
    ASSERT_TRUE(lapsed.has_value());
    EXPECT_EQ(lapsed->stored_status, ReservationStatus::kExpired);
    auto refused = run(reservations_->hold(hold(user_base_ + 42, 40, GetParam())));
    ASSERT_FALSE(refused.ok()) << "the new hold is live";
    EXPECT_EQ(refused.refusal().code, Rejection::kSeatUnavailable);
}

TEST_P(PgStoreTest, ConcurrentChargesLoseNothing) {
    if (GetParam() == Strategy::kAtomic || GetParam() == Strategy::kDistributed) {
        GTEST_SKIP() << "atomic has no charge form; distributed relies on the lock port";
    }
    UserId user = user_base_ + 1;
    auto results = race(100, [&](int) { return wallets_->charge({user, 1000, now_ms(), GetParam()}); });
    for (const auto& r : results) EXPECT_TRUE(r.ok());
    EXPECT_EQ(run(wallets_->balance(user)), 100'000);
}

TEST_P(PgStoreTest, ReservationIsPaidOnce) {
    if (GetParam() == Strategy::kAtomic) GTEST_SKIP() << "no atomic form for payments";
    UserId user = user_base_ + 2;
    auto held = run(reservations_->hold(hold(user, 9, Strategy::kAtomic)));
    ASSERT_TRUE(held.ok());
    ASSERT_TRUE(run(wallets_->charge({user, 5000, now_ms(), Strategy::kPessimistic})).ok());
    auto strategy = GetParam() == Strategy::kDistributed ? Strategy::kPessimistic : GetParam();
    auto results = race(30, [&](int) { return payments_->pay({user, held->id, std::nullopt, now_ms(), strategy}); });
    int paid = 0;
    for (const auto& r : results) {
        if (r.ok()) ++paid;
        else EXPECT_EQ(r.refusal().code, Rejection::kReservationNotPayable);
    }
    EXPECT_EQ(paid, 1);
    EXPECT_EQ(run(wallets_->balance(user)), 4000);
}

// docs/postgres.md "Strategies, as SQL": what each use case costs in round trips
// (concertd_db_round_trips_total). `distributed` here is the store's part only: the lock's own
// round trips (advisory lock and unlock) are on the lock pool.
TEST_P(PgStoreTest, RoundTripsAreTheDocumentedOnes) {
    const bool optimistic = GetParam() == Strategy::kOptimistic;
    auto round_trips = [&] { return stats_.db_round_trips.get(); };
    auto before = round_trips();
    ASSERT_TRUE(run(reservations_->hold(hold(user_base_ + 20, 20, GetParam()))).ok());
    EXPECT_EQ(round_trips() - before, 2u) << "successful hold";
    before = round_trips();
    auto refused = run(reservations_->hold(hold(user_base_ + 21, 20, GetParam())));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.refusal().code, Rejection::kSeatUnavailable);
    EXPECT_EQ(round_trips() - before, optimistic ? 1u : 2u) << "refused hold";
    if (GetParam() == Strategy::kAtomic) return;  // no atomic form for charges and payments

    UserId user = user_base_ + 22;
    auto held = run(reservations_->hold(hold(user, 21, Strategy::kAtomic)));
    ASSERT_TRUE(held.ok());
    ASSERT_TRUE(run(wallets_->charge({user, 1000, now_ms(), Strategy::kPessimistic})).ok());
    before = round_trips();
    ASSERT_TRUE(run(wallets_->charge({user, 4000, now_ms(), GetParam()})).ok());
    EXPECT_EQ(round_trips() - before, optimistic ? 3u : 2u) << "charge";
    before = round_trips();
    ASSERT_TRUE(run(payments_->pay({user, held->id, std::nullopt, now_ms(), GetParam()})).ok());
    EXPECT_EQ(round_trips() - before, optimistic ? 3u : 2u) << "payment";
}

// The queue-token gate rides in the hold's first round trip (no round trip of its own) and a
// refused token changes nothing.
TEST_P(PgStoreTest, TokenGateAnswersInTheHoldsOwnRoundTrips) {
    if (GetParam() == Strategy::kDistributed) GTEST_SKIP() << "distributed checks before its lock";
    const bool optimistic = GetParam() == Strategy::kOptimistic;
    app::QueueSettings settings;
    settings.admit_per_second = 1000;
    settings.max_active = 100'000;
    PgWaitingQueue queue(*pool_, settings);
    const UserId user = user_base_ + 30;
    const auto active = run(queue.issue(user)).ticket.token;
    run(queue.admit(TimePoint{}));
    const auto waiting = run(queue.issue(user_base_ + 31)).ticket.token;

    auto gated = [&](UserId who, std::string token) {
        auto command = hold(who, 30, GetParam());
        command.queue_token = std::move(token);
        return run(reservations_->hold(command));
    };
    auto refused_with = [&](UserId who, std::string token) {
        auto result = gated(who, std::move(token));
        return result.ok() ? Rejection::kValidationFailed : result.refusal().code;
    };
    EXPECT_EQ(refused_with(user + 1, active), Rejection::kForbidden) << "another user's token";
    EXPECT_EQ(refused_with(user, std::string(32, 'a')), Rejection::kQueueTokenInvalid);
    EXPECT_EQ(refused_with(user_base_ + 31, waiting), Rejection::kQueueNotActive);

    const auto before = stats_.db_round_trips.get();
    auto held = gated(user, active);
    ASSERT_TRUE(held.ok()) << "the refusals left the seat free";
    EXPECT_EQ(stats_.db_round_trips.get() - before, 2u);
    EXPECT_EQ(held->user_id, user);
}

INSTANTIATE_TEST_SUITE_P(EveryStrategy, PgStoreTest,
                         ::testing::Values(Strategy::kPessimistic, Strategy::kOptimistic,
                                           Strategy::kDistributed, Strategy::kAtomic),
                         [](const auto& info) { return std::string(app::to_string(info.param)); });

using PgOutboxTest = PgStoreTest;

// The relay's turn: one step at a time over every relayer; a failed publish marks nothing.
TEST_F(PgOutboxTest, OneRelayStepAtATimeAndAFailedPublishMarksNothing) {
    PgOutboxStore outbox(*pool_);
    ASSERT_TRUE(run(reservations_->hold(hold(user_base_ + 40, 40, Strategy::kAtomic))).ok());
    const auto waiting = run(outbox.unpublished_count());
    ASSERT_GT(waiting, 0);

    auto failing = [](const std::vector<Event>&) -> app::Task<void> {
        throw std::runtime_error("broker down");
        co_return;
    };
    EXPECT_THROW(run(outbox.relay(100'000, now_ms(), failing)), std::runtime_error);
    EXPECT_EQ(run(outbox.unpublished_count()), waiting);

    std::atomic<int> inside{0};
    std::atomic<int> most_inside{0};
    std::atomic<std::int64_t> published{0};
    auto slow = [&](const std::vector<Event>& batch) -> app::Task<void> {
        const int now_inside = ++inside;
        most_inside = std::max(most_inside.load(), now_inside);
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 300ms);
        co_await timer.async_wait(boost::asio::use_awaitable);
        published += static_cast<std::int64_t>(batch.size());
        --inside;
    };
    auto steps = race(2, [&](int) { return outbox.relay(100'000, now_ms(), slow); });
    std::sort(steps.begin(), steps.end());
    EXPECT_EQ(steps[0], 0u) << "the second relayer found the turn taken";
    EXPECT_EQ(static_cast<std::int64_t>(steps[1]), waiting);
    EXPECT_EQ(most_inside.load(), 1);
    EXPECT_EQ(published.load(), waiting);
    EXPECT_EQ(run(outbox.unpublished_count()), 0);
    EXPECT_EQ(run(outbox.purge_published(now_ms() - 1h, 100'000)), 0) << "kept for the retention";
    EXPECT_GE(run(outbox.purge_published(now_ms() + 1ms, 100'000)), waiting);
}

using PgFenceTest = PgStoreTest;

TEST_F(PgFenceTest, StaleFenceIsRefusedAndChangesNothing) {
    UserId user = user_base_ + 3;
    ASSERT_TRUE(run(wallets_->charge({user, 100, now_ms(), Strategy::kDistributed, 10})).ok());
    auto stale = run(wallets_->charge({user, 100, now_ms(), Strategy::kDistributed, 9}));
    ASSERT_FALSE(stale.ok());
    EXPECT_EQ(stale.refusal().code, Rejection::kRateLimited);
    EXPECT_EQ(run(wallets_->balance(user)), 100);
    EXPECT_TRUE(run(wallets_->charge({user, 100, now_ms(), Strategy::kDistributed, 11})).ok());

    // A seat: the holder with fence 20 holds briefly; a stale holder (fence 19) may not take it.
    ASSERT_TRUE(run(reservations_->hold(hold(user, 12, Strategy::kDistributed, 1ms, 20))).ok());
    std::this_thread::sleep_for(20ms);
    auto late = run(reservations_->hold(hold(user + 1, 12, Strategy::kDistributed, 300s, 19)));
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.refusal().code, Rejection::kRateLimited);
    EXPECT_TRUE(run(reservations_->hold(hold(user + 1, 12, Strategy::kDistributed, 300s, 21))).ok());
}

}  // namespace
}  // namespace concertd::postgres
