#include "adapters/mysql/mysql_payment_store.hpp"

#include <cassert>

#include "adapters/mysql/mysql_wallet.hpp"
#include "app/events.hpp"
#include "domain/rules.hpp"

namespace concertd::mysql {

using app::PaymentReceipt;
using app::PayCommand;

namespace {

// A reservation in read_reservation's order. The concert id comes from a scalar subquery, not a
// join: MariaDB has no FOR UPDATE OF, so a join would lock the schedule row as well, and every
// hold's foreign key check on that schedule (a shared lock) would wait for the payment. The outer
// FOR UPDATE does not lock a subquery's rows (MySQL 8 documents it; MariaDB 10.11 does the same).
#define CONCERTD_MY_PAY_RESERVATION_COLUMNS                                      \
    "r.id, r.user_id, r.schedule_id,"                                            \
    " (SELECT sc.concert_id FROM schedules sc WHERE sc.id = r.schedule_id),"     \
    " r.seat_no, r.price, r.status, r.expires_at"

#define CONCERTD_MY_PAY_RESERVATION                                                      \
    "SELECT " CONCERTD_MY_PAY_RESERVATION_COLUMNS ", r.version, " CONCERTD_MY_NOW_MS \
    " FROM reservations r WHERE r.id = ?"

constexpr std::string_view kReservationRead = CONCERTD_MY_PAY_RESERVATION;
constexpr std::string_view kReservationForUpdate = CONCERTD_MY_PAY_RESERVATION " FOR UPDATE";
constexpr int kReservationVersionColumn = 8;
constexpr int kReservationNowColumn = 9;

// The stored answer of an Idempotency-Key: who, for which reservation, and its payment.
#define CONCERTD_MY_PAY_KEY_COLUMNS "k.user_id, k.reservation_id, p.id, p.amount, p.paid_at"

// The wallet (read_wallet's columns) with the key's answer beside it (NULLs for an unknown key),
// in one round trip. Read after the reservation's lock: a second request with the same key waits
// for the first there, then sees its committed key (READ COMMITTED reads anew per statement).
// Under FOR UPDATE a known key's rows are locked too; such a request only replays and rolls back.
#define CONCERTD_MY_PAY_WALLET_AND_KEY                                                       \
    "SELECT w.balance, w.version, " CONCERTD_MY_NOW_MS ", " CONCERTD_MY_PAY_KEY_COLUMNS \
    " FROM wallets w LEFT JOIN idempotency_keys k ON k.idem_key = ?"                     \
    " LEFT JOIN payments p ON p.id = k.payment_id WHERE w.user_id = ?"

constexpr std::string_view kWalletAndKeyRead = CONCERTD_MY_PAY_WALLET_AND_KEY;
constexpr std::string_view kWalletAndKeyForUpdate = CONCERTD_MY_PAY_WALLET_AND_KEY " FOR UPDATE";
constexpr int kWalletKeyColumn = 3;

// A key's answer with its reservation, for replay(): one round trip.
constexpr std::string_view kKeyRead =
    "SELECT " CONCERTD_MY_PAY_KEY_COLUMNS ", " CONCERTD_MY_PAY_RESERVATION_COLUMNS
    " FROM idempotency_keys k JOIN payments p ON p.id = k.payment_id"
    " JOIN reservations r ON r.id = p.reservation_id WHERE k.idem_key = ?";
constexpr int kKeyReadReservationColumn = 5;

// Reservation CONFIRMED, seat SOLD and the new balance in one statement. The reservation is
// found by its primary key first, the seat and the wallet from it (eq_ref), so the row locks
// come in the order of the header (reservation, then seat). Its count is rows matched: 3.
#define CONCERTD_MY_PAY_CONFIRM                                                          \
    "UPDATE reservations r JOIN seats s ON s.id = r.seat_id"                             \
    " JOIN wallets w ON w.user_id = r.user_id"                                           \
    " SET r.status = 'CONFIRMED', r.resolved_at = ?, r.version = r.version + 1,"         \
    " s.status = 'SOLD', s.hold_expires_at = NULL, s.version = s.version + 1,"           \
    " w.balance = ?, w.version = w.version + 1 WHERE r.id = ?"

constexpr std::string_view kConfirm = CONCERTD_MY_PAY_CONFIRM;
// Optimistic: only if neither the reservation nor the wallet changed since they were read.
constexpr std::string_view kConfirmIfUnchanged =
    CONCERTD_MY_PAY_CONFIRM " AND r.version = ? AND r.status = 'HELD' AND w.version = ?";
constexpr std::int64_t kConfirmRowsMatched = 3;

constexpr std::string_view kInsertPayment =
    "INSERT INTO payments (reservation_id, user_id, amount, status, paid_at)"
    " VALUES (?, ?, ?, 'COMPLETED', ?)";
constexpr std::string_view kInsertKey =
    "INSERT INTO idempotency_keys (idem_key, user_id, reservation_id, payment_id, created_at)"
    " VALUES (?, ?, ?, ?, ?)";

// points.used, reservation.confirmed, payment.completed: one multi-row INSERT.
const std::string kInsertPaymentEvents =
    std::string(kInsertEvent) + ", (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)";

// The stored answer of an Idempotency-Key, if the key is known: `key` has the key columns from
// `key_column`, `reservation` the reservation's from `reservation_column` (first rows).
std::optional<Result<PaymentReceipt>> replay_from(const MysqlResult& key, int key_column,
                                                  const MysqlResult& reservation,
                                                  int reservation_column, UserId user,
                                                  ReservationId reservation_id) {
    if (key.rows() == 0 || key.is_null(0, key_column)) return std::nullopt;
    if (key.int64(0, key_column) != user || key.int64(0, key_column + 1) != reservation_id) {
        return Result<PaymentReceipt>(Rejection::kIdempotencyConflict,
                                      "Idempotency-Key was used with another request body");
    }
    Payment payment{key.int64(0, key_column + 2), reservation_id, user,
                    key.int64(0, key_column + 3), from_millis(key.int64(0, key_column + 4))};
    // The key names a payment of this reservation (foreign keys): the reservation is there, and
    // CONFIRMED for good, even where it was read (optimistic: unlocked) before that payment
    // committed and the key after.
    assert(reservation.rows() > 0);
    auto confirmed = read_reservation(reservation, 0, reservation_column);
    confirmed.stored_status = ReservationStatus::kConfirmed;
    return Result<PaymentReceipt>(PaymentReceipt{payment, confirmed, true});
}

}  // namespace

app::Task<Result<PaymentReceipt>> MysqlPaymentStore::pay(PayCommand command) {
    co_return co_await retrying_conflicts([&] { return pay_once(command); });
}

app::Task<Result<PaymentReceipt>> MysqlPaymentStore::pay_once(PayCommand c) {
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
app::Task<std::optional<Result<PaymentReceipt>>> MysqlPaymentStore::attempt(const PayCommand& c,
                                                                            Mode mode) {
    using Outcome = std::optional<Result<PaymentReceipt>>;
    auto timeout = pool_.options().statement_timeout;
    const bool optimistic = mode == Mode::kVersionChecked;
    const bool fenced = mode == Mode::kPlain && c.fence.has_value();
    auto conn = co_await pool_.acquire();
    co_await conn->query(kBegin, timeout);
    // The reservation is locked unless optimistic: the sweeper (SKIP LOCKED) must not expire it
    // between this read and the confirmation, and a second payment of it waits here.
    auto reservation_read = co_await conn->execute(
        optimistic ? kReservationRead : kReservationForUpdate, {param(c.reservation_id)}, timeout);
    auto reservation = find_reservation_in(reservation_read);
    TimePoint now{};
    std::optional<Refusal> refusal;
    if (!reservation) {
        refusal = Refusal{Rejection::kNotFound, "no such reservation"};
    } else {
        now = from_millis(reservation_read.int64(0, kReservationNowColumn));
        refusal = check_payable(*reservation, c.user_id, now);
    }
    if (refusal && !c.idempotency_key) {
        // Without a key nothing can replay: the reservation alone decides.
        co_await conn->query(kRollback, timeout);
        co_return Outcome(Result<PaymentReceipt>(*refusal));
    }

    // A fenced write takes its fence before reading the wallet (see the wallet store).
    const auto fence = fenced ? c.fence : std::nullopt;
    const bool row_lock = mode == Mode::kRowLocked;
    WalletForWrite wallet_read;
    if (c.idempotency_key) {
        wallet_read = co_await read_wallet_for_write(
            *conn, c.user_id, fence, row_lock ? kWalletAndKeyForUpdate : kWalletAndKeyRead,
            {param(*c.idempotency_key), param(c.user_id)}, timeout);
    } else {
        wallet_read = co_await read_wallet_for_write(
            *conn, c.user_id, fence, row_lock ? kWalletForUpdate : kWalletRead,
            {param(c.user_id)}, timeout);
    }
    // Precedence as on PostgreSQL: a replay, the reservation, the balance, the fence.
    Outcome answer;
    if (c.idempotency_key) {
        answer = replay_from(wallet_read.read, kWalletKeyColumn, reservation_read, 0, c.user_id,
                             c.reservation_id);
    }
    auto wallet = read_wallet(wallet_read.read);
    Won balance = 0;
    if (!answer && refusal) answer = Result<PaymentReceipt>(*refusal);
    if (!answer) {
        auto after = balance_after_use(wallet.balance_won, reservation->price_won);
        if (after) balance = after.value();
        else answer = Result<PaymentReceipt>(after.refusal());
    }
    if (!answer && !wallet_read.fence_taken) answer = Result<PaymentReceipt>(stale_fence_refusal());
    if (answer) {
        co_await conn->query(kRollback, timeout);
        co_return answer;
    }

    const auto now_ms = to_millis(now);
    try {
        MysqlResult confirmed;
        if (optimistic) {
            confirmed = co_await conn->execute(
                kConfirmIfUnchanged,
                {param(now_ms), param(balance), param(reservation->id),
                 param(reservation_read.int64(0, kReservationVersionColumn)),
                 param(wallet.version)},
                timeout);
        } else {
            confirmed = co_await conn->execute(
                kConfirm, {param(now_ms), param(balance), param(reservation->id)}, timeout);
        }
        if (confirmed.affected_rows() != kConfirmRowsMatched) {
            // Locked modes hold the reservation (HELD, checked) and read the wallet: all three
            // rows match. Optimistic: another writer changed one since the read; nothing written.
            assert(optimistic);
            co_await conn->query(kRollback, timeout);
            co_return std::nullopt;
        }
        auto inserted = co_await conn->execute(
            kInsertPayment,
            {param(reservation->id), param(c.user_id), param(reservation->price_won),
             param(now_ms)},
            timeout);
        Payment payment{inserted.insert_id(), reservation->id, c.user_id, reservation->price_won,
                        now};
        co_await conn->execute(kAppendWalletEntry,
                               wallet_entry_params(c.user_id, WalletEntryType::kUse,
                                                   payment.amount_won, balance, now),
                               timeout);
        if (c.idempotency_key) {
            co_await conn->execute(kInsertKey,
                                   {param(*c.idempotency_key), param(c.user_id),
                                    param(reservation->id), param(payment.id), param(now_ms)},
                                   timeout);
        }
        reservation->stored_status = ReservationStatus::kConfirmed;
        std::vector<MysqlParam> events;
        for (const auto& event :
             {app::points_used_event(c.user_id, payment.amount_won, balance,
                                     reservation->id, now),
              app::reservation_confirmed_event(*reservation, payment.id, now),
              app::payment_completed_event(payment, now)}) {
            auto params = event_params(event);
            events.insert(events.end(), std::make_move_iterator(params.begin()),
                          std::make_move_iterator(params.end()));
        }
        co_await conn->execute(kInsertPaymentEvents, std::move(events), timeout);
        co_await conn->query(kCommit, timeout);
        co_return Outcome(Result<PaymentReceipt>(PaymentReceipt{payment, *reservation, false}));
    } catch (const MysqlError& error) {
        // Another request paid this reservation, or stored this key, first (the connection
        // rolled back): the next try reads what it committed (a replay, or a refusal).
        if (!error.is_duplicate_key()) throw;
    }
    co_return std::nullopt;
}

app::Task<std::optional<Result<PaymentReceipt>>> MysqlPaymentStore::replay(
    std::string key, UserId user, ReservationId reservation) {
    auto conn = co_await pool_.acquire();
    auto read = co_await conn->execute(kKeyRead, {param(key)}, pool_.options().statement_timeout);
    co_return replay_from(read, 0, read, kKeyReadReservationColumn, user, reservation);
}

app::Task<std::int64_t> MysqlPaymentStore::purge_idempotency_keys(TimePoint cutoff, int batch) {
    auto conn = co_await pool_.acquire();
    // The oldest first along idempotency_keys_by_age, at most `batch` rows (record locks only).
    auto result = co_await conn->execute(
        "DELETE FROM idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?",
        {param(to_millis(cutoff)), param(std::int64_t{batch})}, pool_.options().statement_timeout);
    co_return result.affected_rows();
}

}  // namespace concertd::mysql
