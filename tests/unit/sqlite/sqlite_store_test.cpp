// The SQLite stores against a real database file: every strategy gives one seat to one holder,
// loses no charge, pays a reservation once; the sweeper and the outbox do their part.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <thread>

#include "adapters/sqlite/sqlite_catalog_store.hpp"
#include "adapters/sqlite/sqlite_outbox_store.hpp"
#include "adapters/sqlite/sqlite_payment_store.hpp"
#include "adapters/sqlite/sqlite_reservation_store.hpp"
#include "adapters/sqlite/sqlite_wallet_store.hpp"

namespace concertd::sqlite {
namespace {

using namespace std::chrono_literals;
using app::Strategy;
using namespace concertd::domain;

// co_spawn wants a default-constructible result; Result<T> is not one.
template <class T>
boost::asio::awaitable<std::optional<T>> wrapped(boost::asio::awaitable<T> task) {
    co_return co_await std::move(task);
}

// Runs `task` on `context` (which must outlive every database whose pool threads post to it:
// a pool thread may still be inside post() when run() returns).
template <class T>
T run_task(boost::asio::io_context& context, boost::asio::awaitable<T> task) {
    context.restart();
    if constexpr (std::is_void_v<T>) {
        auto future = boost::asio::co_spawn(context, std::move(task), boost::asio::use_future);
        context.run();
        return future.get();
    } else {
    auto future = boost::asio::co_spawn(context, wrapped(std::move(task)), boost::asio::use_future);
    context.run();
    return std::move(*future.get());
    }
}

TimePoint now_ms() { return std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now()); }

class SqliteStoreTest : public ::testing::TestWithParam<Strategy> {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("concertd-sqlite-test-" + std::to_string(::getpid()) + "-" +
                std::to_string(counter_++));
        std::filesystem::remove_all(dir_);
        db_ = std::make_unique<SqliteDatabase>((dir_ / "test.db").string(), 2,
                                               &stats_.db_round_trips);
        catalog_ = std::make_unique<SqliteCatalogStore>(*db_);
        reservations_ = std::make_unique<SqliteReservationStore>(*db_, stats_);
        wallets_ = std::make_unique<SqliteWalletStore>(*db_, stats_);
        payments_ = std::make_unique<SqlitePaymentStore>(*db_, stats_);
        outbox_ = std::make_unique<SqliteOutboxStore>(*db_);
        auto created = run(catalog_->create_concert(
            {"Test", {{now_ms() + std::chrono::hours(24), 50, 1000}}}, now_ms()));
        schedule_ = created.schedule_ids.at(0);
    }
    void TearDown() override {
        payments_.reset();
        db_.reset();
        std::filesystem::remove_all(dir_);
    }

    template <class T>
    T run(boost::asio::awaitable<T> task) {
        return run_task(contexts_[0], std::move(task));
    }

    // Runs `count` copies of make(i) concurrently on two threads, as the server does: one
    // io_context per thread, so a coroutine never changes thread.
    template <class Make>
    auto race(int count, Make make) {
        using T = typename decltype(make(0))::value_type;
        auto& contexts = contexts_;
        for (auto& context : contexts) context.restart();
        std::vector<std::future<std::optional<T>>> futures;
        for (int i = 0; i < count; ++i) {
            futures.push_back(boost::asio::co_spawn(contexts[i % 2], wrapped(make(i)),
                                                    boost::asio::use_future));
        }
        std::thread helper([&] { contexts[1].run(); });
        contexts[0].run();
        helper.join();
        std::vector<T> results;
        for (auto& f : futures) results.push_back(std::move(*f.get()));
        return results;
    }

    app::HoldCommand hold_command(UserId user, SeatNo seat, Strategy strategy,
                                  std::chrono::milliseconds hold = 300s) {
        app::HoldCommand c;
        c.user_id = user;
        c.schedule_id = schedule_;
        c.seat_no = seat;
        c.now = now_ms();
        c.expires_at = c.now + hold;
        c.strategy = strategy;
        return c;
    }

    static inline int counter_ = 0;
    boost::asio::io_context contexts_[2];  // first member: outlives the database's pool threads
    std::filesystem::path dir_;
    app::AppStats stats_;
    std::unique_ptr<SqliteDatabase> db_;
    std::unique_ptr<SqliteCatalogStore> catalog_;
    std::unique_ptr<SqliteReservationStore> reservations_;
    std::unique_ptr<SqliteWalletStore> wallets_;
    std::unique_ptr<SqlitePaymentStore> payments_;
    std::unique_ptr<SqliteOutboxStore> outbox_;
    ScheduleId schedule_ = 0;
};

TEST_P(SqliteStoreTest, OneSeatGoesToExactlyOneHolder) {
    auto results = race(100, [&](int i) {
        return reservations_->hold(hold_command(1000 + i, 7, GetParam()));
    });
    int won = 0;
    for (const auto& r : results) {
        if (r.ok()) {
            ++won;
        } else {
            EXPECT_EQ(r.refusal().code, Rejection::kSeatUnavailable);
        }
    }
    EXPECT_EQ(won, 1);
    auto map = run(catalog_->seat_map(schedule_));
    ASSERT_TRUE(map);
    EXPECT_EQ(map->seats.at(6).status_at(now_ms()), SeatStatus::kHeld);
}

TEST_P(SqliteStoreTest, PassedHoldFreesTheSeatAtOnce) {
    auto first = run(reservations_->hold(hold_command(1, 3, GetParam(), 1ms)));
    ASSERT_TRUE(first.ok());
    std::this_thread::sleep_for(5ms);
    auto second = run(reservations_->hold(hold_command(2, 3, GetParam())));
    ASSERT_TRUE(second.ok());
    auto old = run(reservations_->find(first->id));
    ASSERT_TRUE(old);
    EXPECT_EQ(old->stored_status, ReservationStatus::kExpired);
}

TEST_P(SqliteStoreTest, UnknownSeatIsNotFound) {
    auto result = run(reservations_->hold(hold_command(1, 51, GetParam())));
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.refusal().code, Rejection::kNotFound);
}

TEST_P(SqliteStoreTest, ConcurrentChargesLoseNothing) {
    if (GetParam() == Strategy::kAtomic) GTEST_SKIP() << "no atomic form for charges";
    auto results = race(200, [&](int) {
        return wallets_->charge({42, 1000, now_ms(), GetParam()});
    });
    for (const auto& r : results) EXPECT_TRUE(r.ok());
    EXPECT_EQ(run(wallets_->balance(42)), 200'000);
    EXPECT_EQ(run(wallets_->history(42, 100)).size(), 100u);
    EXPECT_EQ(run(wallets_->history(42, 1)).at(0).balance_after_won, 200'000);
}

TEST_P(SqliteStoreTest, ReservationIsPaidOnce) {
    if (GetParam() == Strategy::kAtomic) GTEST_SKIP() << "no atomic form for payments";
    auto held = run(reservations_->hold(hold_command(5, 9, Strategy::kAtomic)));
    ASSERT_TRUE(held.ok());
    ASSERT_TRUE(run(wallets_->charge({5, 5000, now_ms(), Strategy::kPessimistic})).ok());
    auto results = race(30, [&](int) {
        return payments_->pay({5, held->id, std::nullopt, now_ms(), GetParam()});
    });
    int paid = 0;
    for (const auto& r : results) {
        if (r.ok()) {
            ++paid;
        } else {
            EXPECT_EQ(r.refusal().code, Rejection::kReservationNotPayable);
        }
    }
    EXPECT_EQ(paid, 1);
    EXPECT_EQ(run(wallets_->balance(5)), 4000);
    EXPECT_EQ(run(reservations_->find(held->id))->stored_status, ReservationStatus::kConfirmed);
}

TEST_P(SqliteStoreTest, IdempotencyKeyReplaysAndRefusesOtherBodies) {
    if (GetParam() == Strategy::kAtomic) GTEST_SKIP() << "no atomic form for payments";
    auto held = run(reservations_->hold(hold_command(6, 10, Strategy::kAtomic)));
    ASSERT_TRUE(run(wallets_->charge({6, 5000, now_ms(), Strategy::kPessimistic})).ok());
    auto results = race(10, [&](int) {
        return payments_->pay({6, held->id, std::string("key-1"), now_ms(), GetParam()});
    });
    PaymentId id = 0;
    for (const auto& r : results) {
        ASSERT_TRUE(r.ok());
        if (id == 0) id = r->payment.id;
        EXPECT_EQ(r->payment.id, id);
    }
    EXPECT_EQ(run(wallets_->balance(6)), 4000);
    auto other = run(payments_->replay("key-1", 7, held->id));
    ASSERT_TRUE(other);
    EXPECT_EQ(other->refusal().code, Rejection::kIdempotencyConflict);

    EXPECT_EQ(run(payments_->purge_idempotency_keys(now_ms() - std::chrono::hours(1), 100)), 0);
    EXPECT_TRUE(run(payments_->replay("key-1", 6, held->id)).has_value());
    EXPECT_EQ(run(payments_->purge_idempotency_keys(now_ms() + 1ms, 100)), 1);
    EXPECT_FALSE(run(payments_->replay("key-1", 6, held->id)).has_value());
}

TEST_P(SqliteStoreTest, InsufficientBalanceChangesNothing) {
    if (GetParam() == Strategy::kAtomic) GTEST_SKIP() << "no atomic form for payments";
    auto held = run(reservations_->hold(hold_command(8, 11, Strategy::kAtomic)));
    ASSERT_TRUE(run(wallets_->charge({8, 999, now_ms(), Strategy::kPessimistic})).ok());
    auto result = run(payments_->pay({8, held->id, std::string("k"), now_ms(), GetParam()}));
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.refusal().code, Rejection::kInsufficientBalance);
    EXPECT_EQ(run(wallets_->balance(8)), 999);
    EXPECT_EQ(run(reservations_->find(held->id))->stored_status, ReservationStatus::kHeld);
    EXPECT_FALSE(run(payments_->replay("k", 8, held->id)).has_value());
}

// SQLite's "round trip" (concertd_db_round_trips_total) is one job on the writer or a reader
// thread: optimistic reads on a reader and then writes (2), the others do it all in one write
// transaction (1); an optimistic refusal is decided by the read alone (1).
TEST_P(SqliteStoreTest, RoundTripsAreOneJobEach) {
    const bool optimistic = GetParam() == Strategy::kOptimistic;
    auto round_trips = [&] { return stats_.db_round_trips.get(); };
    auto before = round_trips();
    ASSERT_TRUE(run(reservations_->hold(hold_command(20, 20, GetParam()))).ok());
    EXPECT_EQ(round_trips() - before, optimistic ? 2u : 1u);
    before = round_trips();
    ASSERT_FALSE(run(reservations_->hold(hold_command(21, 20, GetParam()))).ok());
    EXPECT_EQ(round_trips() - before, 1u);
    if (GetParam() == Strategy::kAtomic) return;  // no atomic form for charges and payments

    auto held = run(reservations_->hold(hold_command(22, 21, Strategy::kAtomic)));
    ASSERT_TRUE(held.ok());
    before = round_trips();
    ASSERT_TRUE(run(wallets_->charge({22, 5000, now_ms(), GetParam()})).ok());
    EXPECT_EQ(round_trips() - before, optimistic ? 2u : 1u);
    before = round_trips();
    ASSERT_TRUE(run(payments_->pay({22, held->id, std::nullopt, now_ms(), GetParam()})).ok());
    EXPECT_EQ(round_trips() - before, optimistic ? 2u : 1u);
}

INSTANTIATE_TEST_SUITE_P(EveryStrategy, SqliteStoreTest,
                         ::testing::Values(Strategy::kPessimistic, Strategy::kOptimistic,
                                           Strategy::kDistributed, Strategy::kAtomic),
                         [](const auto& info) { return std::string(app::to_string(info.param)); });

TEST(SqliteSweeper, ExpiresDueHoldsAndWritesEvents) {
    auto dir = std::filesystem::temp_directory_path() / ("concertd-sweep-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    boost::asio::io_context context;  // outlives the database's pool threads
    {
        SqliteDatabase db((dir / "t.db").string(), 1);
        SqliteCatalogStore catalog(db);
        app::AppStats stats;
        SqliteReservationStore reservations(db, stats);
        SqliteOutboxStore outbox(db);
        auto run = [&context](auto task) { return run_task(context, std::move(task)); };
        auto created = run(catalog.create_concert({"S", {{now_ms() + std::chrono::hours(1), 5, 10}}}, now_ms()));
        app::HoldCommand c{1, created.schedule_ids[0], 2, now_ms(), now_ms() + 1ms, Strategy::kAtomic};
        ASSERT_TRUE(run(reservations.hold(c)).ok());
        std::this_thread::sleep_for(5ms);
        auto expired = run(reservations.expire_due(now_ms(), 100));
        ASSERT_EQ(expired.size(), 1u);
        EXPECT_EQ(run(catalog.seat_map(created.schedule_ids[0]))->seats.at(1).stored_status,
                  SeatStatus::kAvailable);
        std::vector<Event> events;
        auto capture = [&events](const std::vector<Event>& batch) -> app::Task<void> {
            events = batch;
            co_return;
        };
        EXPECT_EQ(run(outbox.relay(10, now_ms(), capture)), 2u);
        ASSERT_EQ(events.size(), 2u);
        EXPECT_EQ(events[0].type, "reservation.held");
        EXPECT_EQ(events[1].type, "reservation.expired");
        EXPECT_EQ(run(outbox.unpublished_count()), 0);
        EXPECT_EQ(run(outbox.purge_published(now_ms() - 1h, 10)), 0) << "kept for the retention";
        EXPECT_EQ(run(outbox.purge_published(now_ms() + 1ms, 10)), 2);
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace concertd::sqlite
