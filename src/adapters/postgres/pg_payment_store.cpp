#include "adapters/postgres/pg_payment_store.hpp"

#include "adapters/postgres/pg_wallet.hpp"
#include "adapters/postgres/pg_retry.hpp"
#include "app/events.hpp"
#include "domain/rules.hpp"

namespace concertd::postgres {

using app::PaymentReceipt;
using app::PayCommand;

namespace {

#define CONCERTD_PG_PAY_RESERVATION                                                       \
    "SELECT " CONCERTD_PG_RESERVATION_COLUMNS ", r.version, now_ms()"                       \
    " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id WHERE r.id = $1"

constexpr const char* kReservationRead = CONCERTD_PG_PAY_RESERVATION;
constexpr const char* kReservationForUpdate = CONCERTD_PG_PAY_RESERVATION " FOR UPDATE OF r";
constexpr const char* kKeyRead =
    "SELECT k.user_id, k.reservation_id, p.id, p.amount, p.paid_at"
    " FROM idempotency_keys k JOIN payments p ON p.id = k.payment_id WHERE k.key = $1";
constexpr const char* kNextPaymentId = "SELECT nextval('payments_id_seq')";

// The stored answer of an Idempotency-Key, if the key is known.
std::optional<Result<PaymentReceipt>> replay_from(const PgResult& key, const PgResult& reservation,
                                                  UserId user, ReservationId reservation_id) {
    if (key.rows() == 0) return std::nullopt;
    if (key.int64(0, 0) != user || key.int64(0, 1) != reservation_id) {
        return Result<PaymentReceipt>(Rejection::kIdempotencyConflict,
                                      "Idempotency-Key was used with another request body");
    }
    Payment payment{key.int64(0, 2), reservation_id, user, key.int64(0, 3),
                    from_millis(key.int64(0, 4))};
    auto confirmed = find_reservation_in(reservation);
    assert(confirmed);
    return Result<PaymentReceipt>(PaymentReceipt{payment, *confirmed, true});
}

}  // namespace

app::Task<Result<PaymentReceipt>> PgPaymentStore::pay(PayCommand command) {
    co_return co_await retrying_conflicts([&] { return pay_once(command); });
}

app::Task<Result<PaymentReceipt>> PgPaymentStore::pay_once(PayCommand c) {
    auto mode = c.strategy == app::Strategy::kOptimistic    ? Mode::kVersionChecked
                : c.strategy == app::Strategy::kPessimistic ? Mode::kRowLocked
                                                            : Mode::kPlain;
    for (int attempt = 1; attempt <= kOptimisticAttemptsMax; ++attempt) {
        auto outcome = co_await this->attempt(c, mode);
        if (outcome) co_return std::move(*outcome);
        stats_.payment_retries.add();
        co_await jitter_pause(attempt);
    }
    // Still conflicting after every retry: take the row locks once. Under them the only race
    // left is the same key sent for another reservation at the same moment.
    auto outcome = co_await this->attempt(c, Mode::kRowLocked);
    if (outcome) co_return std::move(*outcome);
    co_return Result<PaymentReceipt>(Rejection::kIdempotencyConflict,
                                     "Idempotency-Key is being used by another request");
}

// One try; nullopt when it lost a race (a version check, or a unique key) and wrote nothing.
app::Task<std::optional<Result<PaymentReceipt>>> PgPaymentStore::attempt(const PayCommand& c,
                                                                         Mode mode) {
    auto timeout = pool_.options().statement_timeout;
    bool row_lock = mode == Mode::kRowLocked;
    bool optimistic = mode == Mode::kVersionChecked;
    auto conn = co_await pool_.acquire();
    // The key is read after the reservation's lock: a second request with the same key waits
    // for the first and then sees its committed key (READ COMMITTED reads anew per statement).
    std::vector<PgStatement> read{
        kBegin,
        // The reservation is locked unless optimistic: the sweeper (SKIP LOCKED) must not expire
        // it between this read and the confirmation.
        {optimistic ? kReservationRead : kReservationForUpdate, {param(c.reservation_id)}},
        {kKeyRead, {param(c.idempotency_key.value_or(""))}},
        ensure_wallet(c.user_id),
        {kNextPaymentId, {}}};
    // A fenced write takes its fence before reading the wallet (see the wallet store).
    bool fenced = mode == Mode::kPlain && c.fence.has_value();
    if (fenced) read.push_back(fence_wallet(c.user_id, *c.fence));
    read.push_back({row_lock ? kWalletForUpdate : kWalletRead, {param(c.user_id)}});
    auto results = co_await conn->pipeline(all(read), timeout);
    auto rollback_with = [&](Result<PaymentReceipt> answer) -> app::Task<std::optional<Result<PaymentReceipt>>> {
        co_await conn->execute("ROLLBACK", {}, timeout);
        co_return std::optional<Result<PaymentReceipt>>(std::move(answer));
    };
    if (c.idempotency_key) {
        if (auto replayed = replay_from(results[2], results[1], c.user_id, c.reservation_id)) {
            co_return co_await rollback_with(std::move(*replayed));
        }
    }
    auto reservation = find_reservation_in(results[1]);
    if (!reservation) co_return co_await rollback_with({Rejection::kNotFound, "no such reservation"});
    auto reservation_version = results[1].int64(0, 8);
    auto now = from_millis(results[1].int64(0, 9));
    if (auto refusal = check_payable(*reservation, c.user_id, now)) {
        co_return co_await rollback_with(*refusal);
    }
    auto wallet = read_wallet(results.back());
    auto balance = balance_after_use(wallet.balance_won, reservation->price_won);
    if (!balance) co_return co_await rollback_with(balance.refusal());
    if (fenced && results[5].affected_rows() == 0) {
        co_return co_await rollback_with(stale_fence_refusal());
    }

    std::vector<PgStatement> writes;
    if (optimistic) {
        // Claim both rows by version first; a lost race writes nothing.
        std::vector<PgStatement> claim{
            {"UPDATE reservations SET status = 'CONFIRMED', resolved_at = $3, version = version + 1"
             " WHERE id = $1 AND version = $2 AND status = 'HELD'",
             {param(reservation->id), param(reservation_version), param(to_millis(now))}},
            write_wallet_if_unchanged(c.user_id, balance.value(), wallet.version)};
        auto claimed = co_await conn->pipeline(all(claim), timeout);
        if (claimed[0].affected_rows() != 1 || claimed[1].affected_rows() != 1) {
            co_await conn->execute("ROLLBACK", {}, timeout);
            co_return std::nullopt;
        }
    } else {
        writes.push_back({"UPDATE reservations SET status = 'CONFIRMED', resolved_at = $2,"
                          " version = version + 1 WHERE id = $1",
                          {param(reservation->id), param(to_millis(now))}});
        writes.push_back(write_wallet(c.user_id, balance.value()));
    }
    Payment payment{results[4].int64(0, 0), reservation->id, c.user_id, reservation->price_won, now};
    writes.push_back({"UPDATE seats SET status = 'SOLD', hold_expires_at = NULL,"
                      " version = version + 1 WHERE schedule_id = $1 AND seat_no = $2",
                      {param(reservation->schedule_id), param(std::int64_t{reservation->seat_no})}});
    writes.push_back({"INSERT INTO payments (id, reservation_id, user_id, amount, status, paid_at)"
                      " VALUES ($1, $2, $3, $4, 'COMPLETED', $5)",
                      {param(payment.id), param(payment.reservation_id), param(payment.user_id),
                       param(payment.amount_won), param(to_millis(now))}});
    writes.push_back(append_wallet_entry(c.user_id, WalletEntryType::kUse, payment.amount_won,
                                         balance.value(), now));
    if (c.idempotency_key) {
        writes.push_back({"INSERT INTO idempotency_keys"
                          " (key, user_id, reservation_id, payment_id, created_at)"
                          " VALUES ($1, $2, $3, $4, $5)",
                          {param(*c.idempotency_key), param(c.user_id), param(reservation->id),
                           param(payment.id), param(to_millis(now))}});
    }
    reservation->stored_status = ReservationStatus::kConfirmed;
    writes.push_back(insert_event(app::points_used_event(c.user_id, payment.amount_won,
                                                         balance.value(), reservation->id, now)));
    writes.push_back(insert_event(app::reservation_confirmed_event(*reservation, payment.id, now)));
    writes.push_back(insert_event(app::payment_completed_event(payment, now)));
    writes.push_back(kCommit);
    try {
        co_await conn->pipeline(all(writes), timeout);
    } catch (const detail::PgError& error) {
        // Another request paid this reservation, or stored this key, first: the next try
        // reads what it committed (a replay, or a refusal).
        if (!error.is_unique_violation()) throw;
        co_return std::nullopt;
    }
    co_return Result<PaymentReceipt>(PaymentReceipt{payment, *reservation, false});
}

app::Task<std::optional<Result<PaymentReceipt>>> PgPaymentStore::replay(
    std::string key, UserId user, ReservationId reservation) {
    auto conn = co_await pool_.acquire();
    std::vector<PgStatement> read{{kReservationRead, {param(reservation)}},
                                  {kKeyRead, {param(key)}}};
    auto results = co_await conn->pipeline(all(read), pool_.options().statement_timeout);
    co_return replay_from(results[1], results[0], user, reservation);
}

app::Task<std::int64_t> PgPaymentStore::purge_idempotency_keys(TimePoint cutoff, int batch) {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute(
        "DELETE FROM idempotency_keys WHERE key IN"
        " (SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        {param(to_millis(cutoff)), param(std::int64_t{batch})}, pool_.options().statement_timeout);
    co_return result.affected_rows();
}

}  // namespace concertd::postgres
