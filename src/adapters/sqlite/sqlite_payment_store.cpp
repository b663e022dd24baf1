#include "adapters/sqlite/sqlite_payment_store.hpp"

#include "adapters/sqlite/optimistic_retry.hpp"
#include "adapters/sqlite/sqlite_rows.hpp"
#include "adapters/sqlite/sqlite_wallet.hpp"
#include "app/events.hpp"
#include "domain/rules.hpp"

namespace concertd::sqlite {

using app::PaymentReceipt;
using app::PayCommand;
using detail::Connection;
using detail::Transaction;

namespace {

// What a payment reads before it writes.
struct PaySnapshot {
    std::optional<Reservation> reservation;
    std::int64_t reservation_version = 0;
    WalletRow wallet;
};

PaySnapshot read_snapshot(Connection& db, const PayCommand& c) {
    PaySnapshot snapshot;
    auto query = db.prepare("SELECT " CONCERTD_RESERVATION_COLUMNS ", r.version"
                            " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id"
                            " WHERE r.id = ?");
    query->bind(1, c.reservation_id);
    if (query->step()) {
        snapshot.reservation = read_reservation(*query);
        snapshot.reservation_version = query->column_int64(8);
    }
    snapshot.wallet = read_wallet(db, c.user_id);
    return snapshot;
}

std::optional<Payment> find_payment(Connection& db, PaymentId id) {
    auto query = db.prepare(
        "SELECT id, reservation_id, user_id, amount, paid_at FROM payments WHERE id = ?");
    query->bind(1, id);
    if (!query->step()) return std::nullopt;
    return Payment{query->column_int64(0), query->column_int64(1), query->column_int64(2),
                   query->column_int64(3), from_millis(query->column_int64(4))};
}

std::optional<Result<PaymentReceipt>> replay_key(Connection& db, const std::string& key,
                                                 UserId user, ReservationId reservation) {
    PaymentId payment_id = 0;
    {
        auto query = db.prepare(
            "SELECT user_id, reservation_id, payment_id FROM idempotency_keys WHERE key = ?");
        query->bind(1, key);
        if (!query->step()) return std::nullopt;
        if (query->column_int64(0) != user || query->column_int64(1) != reservation) {
            return Result<PaymentReceipt>(Rejection::kIdempotencyConflict,
                                          "Idempotency-Key was used with another request body");
        }
        payment_id = query->column_int64(2);
    }
    auto payment = find_payment(db, payment_id);
    auto confirmed = find_reservation(db, reservation);
    assert(payment && confirmed);
    return Result<PaymentReceipt>(PaymentReceipt{*payment, *confirmed, true});
}

// Pays from `snapshot` (read before or inside this transaction); nullopt when a row changed
// since it was read. Commits only a completed payment.
std::optional<Result<PaymentReceipt>> pay_from(Connection& db, const PayCommand& c,
                                               const PaySnapshot& snapshot) {
    Transaction tx(db, Transaction::Kind::kImmediate);
    if (c.idempotency_key) {
        if (auto replayed = replay_key(db, *c.idempotency_key, c.user_id, c.reservation_id)) {
            return replayed;
        }
    }
    if (!snapshot.reservation) {
        return Result<PaymentReceipt>(Rejection::kNotFound, "no such reservation");
    }
    Reservation reservation = *snapshot.reservation;
    if (auto refusal = check_payable(reservation, c.user_id, c.now)) {
        return Result<PaymentReceipt>(*refusal);
    }
    auto balance = balance_after_use(snapshot.wallet.balance_won, reservation.price_won);
    if (!balance) return Result<PaymentReceipt>(balance.refusal());

    {
        auto confirm = db.prepare(
            "UPDATE reservations SET status = 'CONFIRMED', resolved_at = ?, version = version + 1"
            " WHERE id = ? AND version = ? AND status = 'HELD'");
        confirm->bind(1, to_millis(c.now))
            .bind(2, reservation.id)
            .bind(3, snapshot.reservation_version)
            .execute();
        if (db.changes() == 0) return std::nullopt;
    }
    if (!write_wallet_if_unchanged(db, c.user_id, snapshot.wallet, balance.value())) {
        return std::nullopt;
    }
    {
        auto sell = db.prepare(
            "UPDATE seats SET status = 'SOLD', hold_expires_at = NULL, version = version + 1"
            " WHERE schedule_id = ? AND seat_no = ?");
        sell->bind(1, reservation.schedule_id).bind(2, std::int64_t{reservation.seat_no}).execute();
    }
    Payment payment{0, reservation.id, c.user_id, reservation.price_won, c.now};
    {
        auto insert = db.prepare(
            "INSERT INTO payments (reservation_id, user_id, amount, status, paid_at)"
            " VALUES (?, ?, ?, 'COMPLETED', ?)");
        insert->bind(1, reservation.id)
            .bind(2, c.user_id)
            .bind(3, payment.amount_won)
            .bind(4, to_millis(c.now))
            .execute();
        payment.id = db.last_insert_rowid();
    }
    append_wallet_entry(db, c.user_id, WalletEntryType::kUse, payment.amount_won, balance.value(),
                        c.now);
    if (c.idempotency_key) {
        auto remember = db.prepare(
            "INSERT INTO idempotency_keys (key, user_id, reservation_id, payment_id, created_at)"
            " VALUES (?, ?, ?, ?, ?)");
        remember->bind(1, *c.idempotency_key)
            .bind(2, c.user_id)
            .bind(3, reservation.id)
            .bind(4, payment.id)
            .bind(5, to_millis(c.now))
            .execute();
    }
    reservation.stored_status = ReservationStatus::kConfirmed;
    insert_event(db, app::points_used_event(c.user_id, payment.amount_won, balance.value(),
                                            reservation.id, c.now));
    insert_event(db, app::reservation_confirmed_event(reservation, payment.id, c.now));
    insert_event(db, app::payment_completed_event(payment, c.now));
    tx.commit();
    return Result<PaymentReceipt>(PaymentReceipt{payment, reservation, false});
}

}  // namespace

app::Task<Result<PaymentReceipt>> SqlitePaymentStore::pay(PayCommand command) {
    if (command.strategy == app::Strategy::kOptimistic) {
        for (int attempt = 1; attempt < kOptimisticAttemptsMax; ++attempt) {
            auto snapshot = co_await db_.read(
                [command](Connection& db) { return read_snapshot(db, command); });
            auto outcome = co_await db_.write(
                [command, snapshot](Connection& db) { return pay_from(db, command, snapshot); });
            if (outcome) co_return std::move(*outcome);
            stats_.payment_retries.add();
            co_await jitter_pause(attempt);
        }
    }
    // pessimistic, distributed, and the optimistic strategy's last attempt: read inside the
    // write transaction, where nothing can change under it.
    co_return co_await db_.write([command](Connection& db) {
        auto outcome = pay_from(db, command, read_snapshot(db, command));
        assert(outcome);
        return std::move(*outcome);
    });
}

app::Task<std::optional<Result<PaymentReceipt>>> SqlitePaymentStore::replay(
    std::string key, UserId user, ReservationId reservation) {
    co_return co_await db_.read([key = std::move(key), user, reservation](Connection& db) {
        return replay_key(db, key, user, reservation);
    });
}

app::Task<std::int64_t> SqlitePaymentStore::purge_idempotency_keys(TimePoint cutoff, int batch) {
    co_return co_await db_.write([cutoff, batch](Connection& db) {
        auto purge = db.prepare(
            "DELETE FROM idempotency_keys WHERE key IN"
            " (SELECT key FROM idempotency_keys WHERE created_at < ? LIMIT ?)");
        purge->bind(1, to_millis(cutoff)).bind(2, std::int64_t{batch}).execute();
        return db.changes();
    });
}

}  // namespace concertd::sqlite
