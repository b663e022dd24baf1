// MysqlWalletStore and MysqlPaymentStore against the throwaway MariaDB of this binary, each test on
// a fresh migrated database, for every strategy: charge limits, concurrent charges lose nothing,
// a reservation is paid once (concurrent retries with one Idempotency-Key replay the first
// answer), insufficient balance and refused reservations change nothing, replay and conflict,
// purge of old keys, a stale lock fence is refused, a deadlock with a hold ends with one
// winner, and the documented round trips.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <cctype>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "adapters/memory/distributed_lock.hpp"
#include "adapters/mysql/mysql_payment_store.hpp"
#include "adapters/mysql/mysql_pool.hpp"
#include "adapters/mysql/mysql_rows.hpp"
#include "adapters/mysql/mysql_wallet_store.hpp"
#include "mysql/mysql_test_server.hpp"

namespace concertd::mysql {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace concertd::domain;
using app::Strategy;
using detail::MysqlParam;
using detail::MysqlResult;
using testing::environment;

template <class T>
asio::awaitable<std::optional<T>> wrapped(asio::awaitable<T> task) {
    co_return co_await std::move(task);
}

TimePoint now_ms() { return std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now()); }

// A database name from the running test's name (letters, digits and '_' only).
std::string database_name() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("wp_") + info->test_suite_name() + "_" + info->name();
    for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    }
    return name.substr(0, 64);
}

class MysqlWalletPaymentTest : public testing::MariaDbTest,
                               public ::testing::WithParamInterface<Strategy> {
protected:
    void SetUp() override {
        testing::MariaDbTest::SetUp();
        if (IsSkipped()) return;
        make_stores(4);
    }

    void make_stores(int connections_per_thread) {
        payments_.reset();
        wallets_.reset();
        pool_.reset();
        MysqlPoolOptions options;
        if (!endpoint_) endpoint_ = environment().fresh_database(database_name());
        options.endpoint = *endpoint_;
        options.connections_per_thread = connections_per_thread;
        options.round_trips = &stats_.db_round_trips;
        pool_ = std::make_unique<MysqlPool>(options);
        wallets_ = std::make_unique<MysqlWalletStore>(*pool_, stats_);
        payments_ = std::make_unique<MysqlPaymentStore>(*pool_, stats_);
    }

    Strategy strategy() const { return GetParam(); }

    // On contexts_[0], one at a time.
    template <class T>
    T run(asio::awaitable<T> task) {
        contexts_[0].restart();
        auto future = asio::co_spawn(contexts_[0], wrapped(std::move(task)), asio::use_future);
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
            futures.push_back(
                asio::co_spawn(contexts_[i % 2], wrapped(make(i)), asio::use_future));
        }
        std::thread helper([&] { contexts_[1].run(); });
        contexts_[0].run();
        helper.join();
        std::vector<T> results;
        for (auto& f : futures) results.push_back(std::move(*f.get()));
        return results;
    }

    asio::awaitable<MysqlResult> execute_on_pool(std::string sql, std::vector<MysqlParam> params) {
        auto conn = co_await pool_->acquire();
        co_return co_await conn->execute(sql, std::move(params), 5000ms);
    }
    MysqlResult sql(std::string text, std::vector<MysqlParam> params = {}) {
        return run(execute_on_pool(std::move(text), std::move(params)));
    }
    std::int64_t count(const std::string& query, std::vector<MysqlParam> params = {}) {
        return sql("SELECT COUNT(*) FROM " + query, std::move(params)).int64(0, 0);
    }

    // A seat HELD by `user` with its HELD reservation, priced `price`, expiring `expires_in`
    // from the database's now (negative: already expired); the reservation's id.
    ReservationId held_seat(UserId user, Won price, std::chrono::milliseconds expires_in = 300s) {
        if (schedule_ == 0) {
            sql("INSERT INTO concerts (title, created_at) VALUES ('T', 0)");
            concert_ = sql("SELECT MAX(id) FROM concerts").int64(0, 0);
            schedule_ = sql("INSERT INTO schedules (concert_id, starts_at, total_seats)"
                            " VALUES (?, 0, 50)",
                            {detail::param(concert_)})
                            .insert_id();
        }
        auto expires = sql("SELECT " CONCERTD_MY_NOW_MS " + ?",
                           {detail::param(std::int64_t{expires_in.count()})})
                           .int64(0, 0);
        int seat_no = ++seats_;
        auto seat = sql("INSERT INTO seats (schedule_id, seat_no, price, status, hold_expires_at)"
                        " VALUES (?, ?, ?, 'HELD', ?)",
                        {detail::param(schedule_), detail::param(std::int64_t{seat_no}),
                         detail::param(price), detail::param(expires)})
                        .insert_id();
        return sql("INSERT INTO reservations (user_id, schedule_id, seat_id, seat_no, price,"
                   " status, created_at, expires_at) VALUES (?, ?, ?, ?, ?, 'HELD', 0, ?)",
                   {detail::param(user), detail::param(schedule_), detail::param(seat),
                    detail::param(std::int64_t{seat_no}), detail::param(price),
                    detail::param(expires)})
            .insert_id();
    }

    std::string reservation_status(ReservationId id) {
        return std::string(
            sql("SELECT status FROM reservations WHERE id = ?", {detail::param(id)}).text(0, 0));
    }
    std::string seat_status(ReservationId id) {
        return std::string(sql("SELECT s.status FROM seats s"
                               " JOIN reservations r ON r.seat_id = s.id WHERE r.id = ?",
                               {detail::param(id)})
                               .text(0, 0));
    }
    std::int64_t events(const char* type) {
        return count("outbox WHERE type = ?", {detail::param(type)});
    }

    // A fence newer than every earlier one of this test (the distributed strategy's lease).
    std::optional<std::uint64_t> next_fence() {
        if (strategy() != Strategy::kDistributed) return std::nullopt;
        return ++fence_;
    }
    app::ChargeCommand charge(UserId user, Won amount) {
        return {user, amount, now_ms(), strategy(), next_fence()};
    }
    app::PayCommand pay(UserId user, ReservationId reservation,
                        std::optional<std::string> key = std::nullopt) {
        return {user, reservation, std::move(key), now_ms(), strategy(), next_fence()};
    }

    // A charge as the use case runs it under `distributed`: inside the lock, with its fence.
    asio::awaitable<Result<Won>> locked_charge(UserId user, Won amount) {
        if (strategy() != Strategy::kDistributed) {
            co_return co_await wallets_->charge({user, amount, now_ms(), strategy(), std::nullopt});
        }
        auto lease = co_await lock_.acquire("wallet:" + std::to_string(user), 10s);
        if (!lease) co_return Result<Won>(Rejection::kRateLimited, "lock wait ran out");
        auto result =
            co_await wallets_->charge({user, amount, now_ms(), strategy(), lease->fence});
        co_await lock_.release(*lease);
        co_return result;
    }

    // A payment as the use case runs it under `distributed`: inside the wallet's lock.
    asio::awaitable<Result<app::PaymentReceipt>> locked_pay(UserId user,
                                                            ReservationId reservation) {
        if (strategy() != Strategy::kDistributed) {
            co_return co_await payments_->pay(
                {user, reservation, std::nullopt, now_ms(), strategy(), std::nullopt});
        }
        auto lease = co_await lock_.acquire("wallet:" + std::to_string(user), 10s);
        if (!lease) co_return Result<app::PaymentReceipt>(Rejection::kRateLimited, "lock wait");
        auto result = co_await payments_->pay(
            {user, reservation, std::nullopt, now_ms(), strategy(), lease->fence});
        co_await lock_.release(*lease);
        co_return result;
    }

    asio::awaitable<bool> pay_or_charge(bool pays, UserId user, ReservationId reservation,
                                        Won amount) {
        if (pays) co_return (co_await locked_pay(user, reservation)).ok();
        co_return (co_await locked_charge(user, amount)).ok();
    }

    // A hold's order on its own connection: the seat row first, then (after `pause`, while the
    // payment waits on that seat) the reservation, as a hold of a seat whose hold just expired
    // does. Returns whether it committed (false: InnoDB chose it as the deadlock's victim).
    asio::awaitable<bool> seat_then_reservation(std::int64_t seat, ReservationId reservation,
                                                std::chrono::milliseconds pause,
                                                std::shared_ptr<bool> seat_locked) {
        auto conn = co_await pool_->acquire();
        co_await conn->query(kBegin, 5000ms);
        co_await conn->execute("UPDATE seats SET version = version + 1 WHERE id = ?",
                               {detail::param(seat)}, 5000ms);
        *seat_locked = true;
        asio::steady_timer timer(co_await asio::this_coro::executor, pause);
        co_await timer.async_wait(asio::use_awaitable);
        try {
            co_await conn->execute(
                "UPDATE reservations SET status = 'EXPIRED', version = version + 1 WHERE id = ?",
                {detail::param(reservation)}, 5000ms);
            co_await conn->query(kCommit, 5000ms);
            co_return true;
        } catch (const detail::MysqlError& error) {
            if (!error.is_deadlock()) throw;
            co_return false;  // rolled back by the connection
        }
    }
    asio::awaitable<Result<app::PaymentReceipt>> pay_when_seat_locked(
        UserId user, ReservationId reservation, std::shared_ptr<bool> seat_locked) {
        while (!*seat_locked) {
            asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
            co_await timer.async_wait(asio::use_awaitable);
        }
        co_return co_await locked_pay(user, reservation);
    }

    asio::io_context contexts_[2];
    app::AppStats stats_;
    std::optional<detail::MysqlEndpoint> endpoint_;
    std::unique_ptr<MysqlPool> pool_;
    std::unique_ptr<MysqlWalletStore> wallets_;
    std::unique_ptr<MysqlPaymentStore> payments_;
    memory::MemoryDistributedLock lock_;
    std::int64_t concert_ = 0;
    ScheduleId schedule_ = 0;
    int seats_ = 0;
    std::uint64_t fence_ = 0;
};

TEST_P(MysqlWalletPaymentTest, ChargeStaysWithinTheLimitAndKeepsHistory) {
    UserId user = 7;
    EXPECT_EQ(run(wallets_->balance(user)), 0) << "no wallet yet";
    auto first = run(wallets_->charge(charge(user, 1000)));
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first.value(), 1000);
    sql("UPDATE wallets SET balance = 99999000 WHERE user_id = ?", {detail::param(user)});
    auto to_limit = run(wallets_->charge(charge(user, 1000)));
    ASSERT_TRUE(to_limit.ok());
    EXPECT_EQ(to_limit.value(), 100'000'000);
    auto over = run(wallets_->charge(charge(user, 1)));
    ASSERT_FALSE(over.ok());
    EXPECT_EQ(over.refusal().code, Rejection::kBalanceLimitExceeded);
    EXPECT_EQ(run(wallets_->balance(user)), 100'000'000);

    auto history = run(wallets_->history(user, 10));
    ASSERT_EQ(history.size(), 2u) << "the refused charge left no row";
    EXPECT_EQ(history[0].type, WalletEntryType::kCharge);
    EXPECT_EQ(history[0].balance_after_won, 100'000'000) << "newest first";
    EXPECT_EQ(history[1].balance_after_won, 1000);
    EXPECT_EQ(run(wallets_->history(user, 1)).size(), 1u);
    EXPECT_EQ(events("points.charged"), 2);
}

TEST_P(MysqlWalletPaymentTest, ConcurrentChargesLoseNothing) {
    UserId user = 8;
    constexpr int kCharges = 100;
    auto results = race(kCharges, [&](int) { return locked_charge(user, 1000); });
    std::set<Won> balances;
    for (const auto& r : results) {
        ASSERT_TRUE(r.ok()) << r.refusal().message;
        balances.insert(r.value());
    }
    EXPECT_EQ(balances.size(), static_cast<std::size_t>(kCharges)) << "each saw its own balance";
    EXPECT_EQ(run(wallets_->balance(user)), kCharges * 1000);
    EXPECT_EQ(count("wallet_entries WHERE user_id = ?", {detail::param(user)}), kCharges);
    EXPECT_EQ(events("points.charged"), kCharges);
}

TEST_P(MysqlWalletPaymentTest, PaysOnceUnderConcurrentRetriesWithOneKey) {
    UserId user = 9;
    auto reservation = held_seat(user, 1000);
    ASSERT_TRUE(run(wallets_->charge(charge(user, 5000))).ok());
    // The same request sent again and again at once: one payment, every answer the same.
    auto results = race(20, [&](int) { return payments_->pay(pay(user, reservation, "retry-1")); });
    std::set<PaymentId> ids;
    int fresh = 0;
    for (const auto& r : results) {
        ASSERT_TRUE(r.ok()) << r.refusal().message;
        ids.insert(r->payment.id);
        if (!r->replayed) ++fresh;
        EXPECT_EQ(r->reservation.stored_status, ReservationStatus::kConfirmed);
        EXPECT_EQ(r->payment.amount_won, 1000);
    }
    EXPECT_EQ(ids.size(), 1u);
    EXPECT_EQ(fresh, 1);
    EXPECT_EQ(run(wallets_->balance(user)), 4000);
    EXPECT_EQ(reservation_status(reservation), "CONFIRMED");
    EXPECT_EQ(seat_status(reservation), "SOLD");
    EXPECT_EQ(count("payments"), 1);
    EXPECT_EQ(count("wallet_entries WHERE type = 'USE'"), 1);
    EXPECT_EQ(events("points.used"), 1);
    EXPECT_EQ(events("reservation.confirmed"), 1);
    EXPECT_EQ(events("payment.completed"), 1);
    auto order = sql("SELECT type FROM outbox WHERE type <> 'points.charged' ORDER BY id");
    ASSERT_EQ(order.rows(), 3);
    EXPECT_EQ(order.text(0, 0), "points.used");
    EXPECT_EQ(order.text(1, 0), "reservation.confirmed");
    EXPECT_EQ(order.text(2, 0), "payment.completed");
}

TEST_P(MysqlWalletPaymentTest, PaysOnceUnderConcurrentRequestsWithoutKey) {
    UserId user = 10;
    auto reservation = held_seat(user, 1000);
    ASSERT_TRUE(run(wallets_->charge(charge(user, 5000))).ok());
    auto results = race(20, [&](int) { return payments_->pay(pay(user, reservation)); });
    int paid = 0;
    for (const auto& r : results) {
        if (r.ok()) ++paid;
        else EXPECT_EQ(r.refusal().code, Rejection::kReservationNotPayable) << r.refusal().message;
    }
    EXPECT_EQ(paid, 1);
    EXPECT_EQ(run(wallets_->balance(user)), 4000);
    EXPECT_EQ(count("payments"), 1);
}

// Payments of several reservations and charges of one wallet at once: no update is lost, and
// the payment's lock order (reservation, then wallet and seat) meets the charge's (wallet) without
// a deadlock that outlasts its retries.
TEST_P(MysqlWalletPaymentTest, ConcurrentPaymentsAndChargesOfOneWalletLoseNothing) {
    UserId user = 17;
    constexpr int kEach = 10;
    std::vector<ReservationId> reservations;
    for (int i = 0; i < kEach; ++i) reservations.push_back(held_seat(user, 1000));
    ASSERT_TRUE(run(locked_charge(user, kEach * 1000)).ok());
    auto paid = race(kEach, [&](int i) { return locked_pay(user, reservations[i]); });
    for (const auto& r : paid) EXPECT_TRUE(r.ok()) << r.refusal().message;
    EXPECT_EQ(run(wallets_->balance(user)), 0);

    for (int i = 0; i < kEach; ++i) reservations[i] = held_seat(user, 1000);
    ASSERT_TRUE(run(locked_charge(user, kEach * 1000)).ok());
    // Even: a payment, odd: a charge; the balance never falls short whatever the order.
    auto mixed = race(2 * kEach, [&](int i) {
        return pay_or_charge(i % 2 == 0, user, reservations[i / 2], 1000);
    });
    for (bool ok : mixed) EXPECT_TRUE(ok);
    EXPECT_EQ(run(wallets_->balance(user)), kEach * 1000);
    EXPECT_EQ(count("payments"), 2 * kEach);
    EXPECT_EQ(count("wallet_entries WHERE type = 'USE'"), 2 * kEach);
    EXPECT_EQ(count("seats WHERE status = 'SOLD'"), 2 * kEach);
}

// The one place a payment's lock order (reservation, then seat) meets a hold's (seat, then
// reservation): InnoDB finds the deadlock and rolls one back; either the payment wins and the
// hold is refused, or the payment, run again, finds the reservation expired. Nothing is left
// half done, and no error escapes the store.
TEST_P(MysqlWalletPaymentTest, DeadlockWithAHoldResolvesToOneWinner) {
    UserId user = 18;
    auto reservation = held_seat(user, 1000);
    auto seat = sql("SELECT seat_id FROM reservations WHERE id = ?", {detail::param(reservation)})
                    .int64(0, 0);
    ASSERT_TRUE(run(locked_charge(user, 5000)).ok());
    auto deadlocks = [&] {
        return sql("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
                   " WHERE VARIABLE_NAME = 'INNODB_DEADLOCKS'")
            .int64(0, 0);
    };
    auto deadlocks_before = deadlocks();
    auto seat_locked = std::make_shared<bool>(false);
    contexts_[0].restart();
    auto hold = asio::co_spawn(contexts_[0],
                               seat_then_reservation(seat, reservation, 300ms, seat_locked),
                               asio::use_future);
    auto paid = asio::co_spawn(contexts_[0],
                               wrapped(pay_when_seat_locked(user, reservation, seat_locked)),
                               asio::use_future);
    contexts_[0].run();
    bool hold_committed = hold.get();
    auto payment = std::move(*paid.get());
    EXPECT_EQ(deadlocks() - deadlocks_before, 1) << "the two met as described";
    if (hold_committed) {
        ASSERT_FALSE(payment.ok());
        EXPECT_EQ(payment.refusal().code, Rejection::kReservationExpired);
        EXPECT_EQ(reservation_status(reservation), "EXPIRED");
        EXPECT_EQ(run(wallets_->balance(user)), 5000);
        EXPECT_EQ(count("payments"), 0);
    } else {
        ASSERT_TRUE(payment.ok()) << payment.refusal().message;
        EXPECT_EQ(reservation_status(reservation), "CONFIRMED");
        EXPECT_EQ(seat_status(reservation), "SOLD");
        EXPECT_EQ(run(wallets_->balance(user)), 4000);
        EXPECT_EQ(count("payments"), 1);
    }
}

TEST_P(MysqlWalletPaymentTest, InsufficientBalanceChangesNothing) {
    UserId user = 11;
    auto reservation = held_seat(user, 1000);
    ASSERT_TRUE(run(wallets_->charge(charge(user, 999))).ok());
    auto refused = run(payments_->pay(pay(user, reservation, "poor")));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.refusal().code, Rejection::kInsufficientBalance);
    EXPECT_EQ(run(wallets_->balance(user)), 999);
    EXPECT_EQ(reservation_status(reservation), "HELD");
    EXPECT_EQ(seat_status(reservation), "HELD");
    EXPECT_EQ(count("payments"), 0);
    EXPECT_EQ(count("idempotency_keys"), 0);
    EXPECT_EQ(count("wallet_entries WHERE type = 'USE'"), 0);
    EXPECT_EQ(events("points.used") + events("payment.completed"), 0);

    // A user with no wallet at all: refused the same way (the first use makes an empty one).
    auto stranger = held_seat(12, 1000);
    auto none = run(payments_->pay(pay(12, stranger)));
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.refusal().code, Rejection::kInsufficientBalance);
    EXPECT_EQ(reservation_status(stranger), "HELD");
}

TEST_P(MysqlWalletPaymentTest, ReplaysTheFirstAnswerAndRefusesAnotherBody) {
    UserId user = 13;
    auto first = held_seat(user, 1000);
    auto second = held_seat(user, 1000);
    ASSERT_TRUE(run(wallets_->charge(charge(user, 5000))).ok());
    auto paid = run(payments_->pay(pay(user, first, "key-1")));
    ASSERT_TRUE(paid.ok()) << paid.refusal().message;
    EXPECT_FALSE(paid->replayed);

    auto again = run(payments_->pay(pay(user, first, "key-1")));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->replayed);
    EXPECT_EQ(again->payment.id, paid->payment.id);
    EXPECT_EQ(again->payment.paid_at, paid->payment.paid_at);
    EXPECT_EQ(again->reservation.id, first);

    auto replayed = run(payments_->replay("key-1", user, first));
    ASSERT_TRUE(replayed && replayed->ok());
    EXPECT_EQ((*replayed)->payment.id, paid->payment.id);
    EXPECT_EQ((*replayed)->reservation.stored_status, ReservationStatus::kConfirmed);
    EXPECT_FALSE(run(payments_->replay("unknown", user, first)).has_value());
    auto other_user = run(payments_->replay("key-1", user + 1, first));
    ASSERT_TRUE(other_user && !other_user->ok());
    EXPECT_EQ(other_user->refusal().code, Rejection::kIdempotencyConflict);

    // The same key for another reservation: a conflict, and the other stays unpaid.
    auto conflict = run(payments_->pay(pay(user, second, "key-1")));
    ASSERT_FALSE(conflict.ok());
    EXPECT_EQ(conflict.refusal().code, Rejection::kIdempotencyConflict);
    EXPECT_EQ(reservation_status(second), "HELD");
    EXPECT_EQ(run(wallets_->balance(user)), 4000);

    // Paying the first again without a key: already paid.
    auto twice = run(payments_->pay(pay(user, first)));
    ASSERT_FALSE(twice.ok());
    EXPECT_EQ(twice.refusal().code, Rejection::kReservationNotPayable);

    // Purge: kept until the cutoff passes them, then in batches.
    ASSERT_TRUE(run(payments_->pay(pay(user, second, "key-2"))).ok());
    EXPECT_EQ(run(payments_->purge_idempotency_keys(now_ms() - 1h, 100)), 0);
    EXPECT_EQ(run(payments_->purge_idempotency_keys(now_ms() + 1s, 1)), 1);
    EXPECT_EQ(run(payments_->purge_idempotency_keys(now_ms() + 1s, 100)), 1);
    EXPECT_EQ(count("idempotency_keys"), 0);
    EXPECT_EQ(count("payments"), 2) << "payments stay";
}

TEST_P(MysqlWalletPaymentTest, RefusesExpiredForeignAndUnknownReservations) {
    UserId user = 14;
    ASSERT_TRUE(run(wallets_->charge(charge(user, 5000))).ok());
    auto expired = held_seat(user, 1000, -1000ms);
    auto refused = run(payments_->pay(pay(user, expired)));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.refusal().code, Rejection::kReservationExpired);
    auto with_key = run(payments_->pay(pay(user, expired, "late")));
    ASSERT_FALSE(with_key.ok());
    EXPECT_EQ(with_key.refusal().code, Rejection::kReservationExpired);
    EXPECT_EQ(reservation_status(expired), "HELD") << "the sweeper's to expire, not the payment's";

    auto foreign = held_seat(user + 1, 1000);
    auto forbidden = run(payments_->pay(pay(user, foreign)));
    ASSERT_FALSE(forbidden.ok());
    EXPECT_EQ(forbidden.refusal().code, Rejection::kForbidden);

    auto unknown = run(payments_->pay(pay(user, 999'999, "nowhere")));
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.refusal().code, Rejection::kNotFound);

    EXPECT_EQ(run(wallets_->balance(user)), 5000);
    EXPECT_EQ(count("payments") + count("idempotency_keys"), 0);
}

// The statements of the store headers' comments, counted as the connection's round trips after
// one warm-up of each (a statement's first use on a connection adds its prepare).
TEST_P(MysqlWalletPaymentTest, RoundTripsAreTheDocumentedOnes) {
    make_stores(1);
    const bool fenced = strategy() == Strategy::kDistributed;
    UserId user = 15;
    auto round_trips = [&] { return stats_.db_round_trips.get(); };
    std::vector<ReservationId> reservations;
    for (int i = 0; i < 4; ++i) reservations.push_back(held_seat(user, 1000));
    ASSERT_TRUE(run(wallets_->charge(charge(user, 10'000))).ok());  // creates the wallet
    ASSERT_TRUE(run(wallets_->charge(charge(user, 1000))).ok());    // warm-up
    auto before = round_trips();
    ASSERT_TRUE(run(wallets_->charge(charge(user, 1000))).ok());
    EXPECT_EQ(round_trips() - before, fenced ? 7u : 6u) << "charge";

    ASSERT_TRUE(run(payments_->pay(pay(user, reservations[0]))).ok());  // warm-up
    before = round_trips();
    ASSERT_TRUE(run(payments_->pay(pay(user, reservations[1]))).ok());
    EXPECT_EQ(round_trips() - before, fenced ? 9u : 8u) << "payment without a key";

    ASSERT_TRUE(run(payments_->pay(pay(user, reservations[2], "rt-1"))).ok());  // warm-up
    before = round_trips();
    ASSERT_TRUE(run(payments_->pay(pay(user, reservations[3], "rt-2"))).ok());
    EXPECT_EQ(round_trips() - before, fenced ? 10u : 9u) << "payment with a key";

    before = round_trips();
    ASSERT_TRUE(run(payments_->pay(pay(user, reservations[3], "rt-2")))->replayed);
    EXPECT_EQ(round_trips() - before, fenced ? 5u : 4u) << "replayed payment";

    // Refusals: the reservation alone decides without a key; the balance after both reads.
    before = round_trips();
    EXPECT_FALSE(run(payments_->pay(pay(user, reservations[3]))).ok());
    EXPECT_EQ(round_trips() - before, 3u) << "paid already, no key";
    auto poor = held_seat(user, 1'000'000);
    before = round_trips();
    auto refused = run(payments_->pay(pay(user, poor)));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.refusal().code, Rejection::kInsufficientBalance);
    EXPECT_EQ(round_trips() - before, fenced ? 5u : 4u) << "insufficient balance";
    sql("UPDATE wallets SET balance = 100000000 WHERE user_id = ?", {detail::param(user)});
    ASSERT_FALSE(run(wallets_->charge(charge(user, 1))).ok());  // warm-up of the ROLLBACK
    before = round_trips();
    ASSERT_FALSE(run(wallets_->charge(charge(user, 1))).ok());
    EXPECT_EQ(round_trips() - before, strategy() == Strategy::kOptimistic ? 1u : fenced ? 4u : 3u)
        << "charge over the limit";
}

INSTANTIATE_TEST_SUITE_P(EveryStrategy, MysqlWalletPaymentTest,
                         ::testing::Values(Strategy::kPessimistic, Strategy::kOptimistic,
                                           Strategy::kDistributed),
                         [](const auto& info) { return std::string(app::to_string(info.param)); });

using MysqlFenceTest = MysqlWalletPaymentTest;

// Only a fence newer than the wallet's last one may write it; a stale one changes nothing.
TEST_P(MysqlFenceTest, StaleFenceIsRefusedAndChangesNothing) {
    UserId user = 16;
    auto command = [&](Won amount, std::uint64_t fence) {
        return app::ChargeCommand{user, amount, now_ms(), Strategy::kDistributed, fence};
    };
    ASSERT_TRUE(run(wallets_->charge(command(5000, 10))).ok()) << "first use, fenced";
    auto stale = run(wallets_->charge(command(100, 9)));
    ASSERT_FALSE(stale.ok());
    EXPECT_EQ(stale.refusal().code, Rejection::kRateLimited);
    auto same = run(wallets_->charge(command(100, 10)));
    ASSERT_FALSE(same.ok()) << "a fence is used once";
    EXPECT_EQ(run(wallets_->balance(user)), 5000);
    ASSERT_TRUE(run(wallets_->charge(command(100, 11))).ok());

    auto reservation = held_seat(user, 1000);
    auto fenced_pay = [&](std::uint64_t fence) {
        return app::PayCommand{user,     reservation,           "fenced",
                               now_ms(), Strategy::kDistributed, fence};
    };
    auto late = run(payments_->pay(fenced_pay(5)));
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.refusal().code, Rejection::kRateLimited);
    EXPECT_EQ(reservation_status(reservation), "HELD");
    EXPECT_EQ(run(wallets_->balance(user)), 5100);
    EXPECT_EQ(count("payments") + count("idempotency_keys"), 0);
    auto paid = run(payments_->pay(fenced_pay(12)));
    ASSERT_TRUE(paid.ok()) << paid.refusal().message;
    EXPECT_EQ(run(wallets_->balance(user)), 4100);
}

INSTANTIATE_TEST_SUITE_P(Distributed, MysqlFenceTest, ::testing::Values(Strategy::kDistributed),
                         [](const auto& info) { return std::string(app::to_string(info.param)); });

}  // namespace
}  // namespace concertd::mysql
