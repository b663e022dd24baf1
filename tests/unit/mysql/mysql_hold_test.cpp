// The MariaDB catalog and reservation stores against the binary's throwaway server, each test
// on a fresh database: every strategy gives a seat to one holder, resolves a stale hold once,
// sweeps due holds, and spends the documented round trips.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <thread>

#include "adapters/mysql/mysql_catalog_store.hpp"
#include "adapters/mysql/mysql_reservation_store.hpp"
#include "mysql/mysql_test_server.hpp"

namespace concertd::mysql {
namespace {

using namespace std::chrono_literals;
using app::Strategy;
using namespace concertd::domain;

template <class T>
boost::asio::awaitable<std::optional<T>> wrapped(boost::asio::awaitable<T> task) {
    co_return co_await std::move(task);
}

TimePoint now_ms() { return std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now()); }

class MysqlHoldTest : public ::testing::TestWithParam<Strategy> {
protected:
    void SetUp() override {
        if (testing::environment().url().empty()) {
            GTEST_SKIP() << "MariaDB not available: " << testing::environment().reason();
        }
        static int databases = 0;
        MysqlPoolOptions options;
        options.endpoint = testing::environment().fresh_database("holds" + std::to_string(++databases));
        options.round_trips = &stats_.db_round_trips;
        pool_ = std::make_unique<MysqlPool>(options);
        catalog_ = std::make_unique<MysqlCatalogStore>(*pool_);
        reservations_ = std::make_unique<MysqlReservationStore>(*pool_, stats_);
        schedule_ = run(catalog_->create_concert({"T", {{now_ms() + 24h, 50, 1000}}}, now_ms()))
                        .schedule_ids.at(0);
    }

    template <class T>
    T run(boost::asio::awaitable<T> task) {
        contexts_[0].restart();
        auto future = boost::asio::co_spawn(contexts_[0], wrapped(std::move(task)),
                                            boost::asio::use_future);
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
            futures.push_back(boost::asio::co_spawn(contexts_[i % 2], wrapped(make(i)),
                                                    boost::asio::use_future));
        }
        std::thread helper([&] { contexts_[1].run(); });
        contexts_[0].run();
        helper.join();
        std::vector<T> results;
        for (auto& f : futures) results.push_back(std::move(*f.get()));
        return results;
    }

    app::HoldCommand hold(UserId user, SeatNo seat, std::chrono::milliseconds lasting = 300s,
                          std::optional<std::uint64_t> fence = std::nullopt) {
        auto now = now_ms();
        return {user, schedule_, seat, now, now + lasting, GetParam(), fence};
    }

    std::int64_t count(const std::string& sql) {
        return run([](MysqlPool& pool, std::string sql) -> app::Task<std::int64_t> {
            auto conn = co_await pool.acquire();
            co_return (co_await conn->execute(sql, {}, 5s)).int64(0, 0);
        }(*pool_, sql));
    }

    boost::asio::io_context contexts_[2];
    app::AppStats stats_;
    std::unique_ptr<MysqlPool> pool_;
    std::unique_ptr<MysqlCatalogStore> catalog_;
    std::unique_ptr<MysqlReservationStore> reservations_;
    ScheduleId schedule_ = 0;
};

TEST_P(MysqlHoldTest, OneSeatGoesToExactlyOneHolder) {
    // `distributed` here runs without the lock port: the claim and the unique index must hold.
    auto results = race(30, [&](int i) { return reservations_->hold(hold(1000 + i, 7)); });
    int won = 0;
    for (const auto& r : results) {
        if (r.ok()) {
            ++won;
            EXPECT_EQ(r.value().seat_no, 7);
            EXPECT_EQ(r.value().price_won, 1000);
        } else {
            EXPECT_EQ(r.refusal().code, Rejection::kSeatUnavailable) << r.refusal().message;
        }
    }
    EXPECT_EQ(won, 1);
    EXPECT_EQ(count("SELECT COUNT(*) FROM reservations WHERE status = 'HELD'"), 1);
    EXPECT_EQ(count("SELECT COUNT(*) FROM outbox WHERE type = 'reservation.held'"), 1);
    auto map = run(catalog_->seat_map(schedule_));
    ASSERT_TRUE(map);
    ASSERT_EQ(map->seats.size(), 50u);
    EXPECT_EQ(map->seats[6].stored_status, SeatStatus::kHeld);
    EXPECT_EQ(map->seats[5].stored_status, SeatStatus::kAvailable);
}

TEST_P(MysqlHoldTest, RefusesAnUnknownSeatAndAStartedPerformance) {
    auto unknown = run(reservations_->hold(hold(1, 51)));
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.refusal().code, Rejection::kNotFound);
    auto past = run(catalog_->create_concert({"Past", {{now_ms() - 1h, 5, 10}}}, now_ms()));
    auto command = hold(1, 1);
    command.schedule_id = past.schedule_ids.at(0);
    auto started = run(reservations_->hold(command));
    ASSERT_FALSE(started.ok());
    EXPECT_EQ(started.refusal().code, Rejection::kSeatUnavailable);
    EXPECT_EQ(count("SELECT COUNT(*) FROM reservations"), 0);
}

TEST_P(MysqlHoldTest, AStaleHoldIsResolvedOnceByTheNextHold) {
    auto first = run(reservations_->hold(hold(1, 3, 50ms)));
    ASSERT_TRUE(first.ok());
    std::this_thread::sleep_for(120ms);
    auto second = run(reservations_->hold(hold(2, 3)));
    ASSERT_TRUE(second.ok()) << second.refusal().message;
    auto old = run(reservations_->find(first.value().id));
    ASSERT_TRUE(old);
    EXPECT_EQ(old->stored_status, ReservationStatus::kExpired);
    EXPECT_EQ(count("SELECT COUNT(*) FROM outbox WHERE type = 'reservation.expired'"), 1);
    EXPECT_EQ(count("SELECT COUNT(*) FROM reservations WHERE status = 'HELD'"), 1);
}

TEST_P(MysqlHoldTest, TheSweeperExpiresDueHoldsAndFreesTheirSeats) {
    for (SeatNo seat = 1; seat <= 3; ++seat) ASSERT_TRUE(run(reservations_->hold(hold(seat, seat, 50ms))).ok());
    ASSERT_TRUE(run(reservations_->hold(hold(9, 9))).ok());  // not due
    std::this_thread::sleep_for(120ms);
    auto expired = run(reservations_->expire_due(now_ms(), 100));
    EXPECT_EQ(expired.size(), 3u);
    EXPECT_EQ(count("SELECT COUNT(*) FROM seats WHERE status = 'HELD'"), 1);
    EXPECT_EQ(count("SELECT COUNT(*) FROM outbox WHERE type = 'reservation.expired'"), 3);
    EXPECT_TRUE(run(reservations_->expire_due(now_ms(), 100)).empty());  // resolved once
    auto schedules = run(catalog_->list_schedules(1));
    ASSERT_TRUE(schedules);
    ASSERT_EQ(schedules->size(), 1u);
    auto usage = run(catalog_->schedule_usage({schedules->front().id}));
    ASSERT_EQ(usage.size(), 1u);
    EXPECT_EQ(usage.front().hold_expiries.size(), 1u);
}

TEST_P(MysqlHoldTest, RoundTripsAreTheDocumentedOnes) {
    ASSERT_TRUE(run(reservations_->hold(hold(1, 1))).ok());  // prepares the statements
    auto before = stats_.db_round_trips.get();
    ASSERT_TRUE(run(reservations_->hold(hold(2, 2))).ok());
    EXPECT_EQ(stats_.db_round_trips.get() - before, GetParam() == Strategy::kOptimistic ? 6u : 7u);
    before = stats_.db_round_trips.get();
    ASSERT_FALSE(run(reservations_->hold(hold(3, 2))).ok());
    EXPECT_EQ(stats_.db_round_trips.get() - before, 1u) << "a taken seat: the unlocked read alone";
}

TEST_P(MysqlHoldTest, AStaleFenceIsRefusedAndChangesNothing) {
    if (GetParam() != Strategy::kDistributed) GTEST_SKIP() << "fences are the distributed lock's";
    ASSERT_TRUE(run(reservations_->hold(hold(1, 4, 50ms, 10))).ok());
    std::this_thread::sleep_for(120ms);
    auto stale = run(reservations_->hold(hold(2, 4, 300s, 9)));
    ASSERT_FALSE(stale.ok());
    EXPECT_EQ(stale.refusal().code, Rejection::kRateLimited);
    EXPECT_EQ(count("SELECT COUNT(*) FROM reservations WHERE status = 'HELD'"), 1);
    EXPECT_TRUE(run(reservations_->hold(hold(3, 4, 300s, 11))).ok());
}

INSTANTIATE_TEST_SUITE_P(EveryStrategy, MysqlHoldTest,
                         ::testing::Values(Strategy::kOptimistic, Strategy::kPessimistic,
                                           Strategy::kDistributed, Strategy::kAtomic),
                         [](const auto& info) { return std::string(app::to_string(info.param)); });

}  // namespace
}  // namespace concertd::mysql
