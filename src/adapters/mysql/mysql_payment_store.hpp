// Payments on MariaDB/MySQL: balance, history, reservation, seat, payment row, idempotency key and
// outbox events in one transaction, as `pessimistic` (FOR UPDATE on the reservation and the
// wallet), `optimistic` (version checks, bounded retry, then the row locks once) or
// `distributed` (the reservation locked, the wallet fenced, inside the lock port's lock).
//
// Round trips of a payment (no pipeline in libmariadb: one per statement), the wallet row there
// already (its first use adds 2, 3 when fenced):
//   START TRANSACTION; the reservation (FOR UPDATE unless optimistic); the wallet, joined with
//   the Idempotency-Key and its payment (FOR UPDATE if pessimistic); one UPDATE of reservation,
//   seat and wallet (by version if optimistic); INSERT payments; INSERT wallet_entries;
//   INSERT idempotency_keys (with a key); one INSERT of the three outbox events; COMMIT.
// - pessimistic, optimistic: 8 without a key, 9 with one;
// - distributed: the same, plus the fence UPDATE before the wallet read when the lock has fences.
// - refused (insufficient balance, a replay, a conflict): 4 (… ROLLBACK after the reads),
//   +1 fenced; refused on the reservation alone (not found, another user's, expired, paid)
//   without a key: 3.
// - optimistic, a lost race: 5 (… the UPDATE matching nothing, ROLLBACK) before the next try.
// replay(): 1. purge_idempotency_keys(): 1.
//
// Lock order, the same as the PostgreSQL store's: the reservation row first, then the wallet
// (pessimistic) and the seat row. A hold takes the seat row, then inserts its reservation; the
// two meet only on a seat whose hold expired while its payment ran, where InnoDB sees the
// deadlock, rolls one back (1213), and retrying_conflicts runs it again: the payment then finds
// the hold expired, or the hold the seat sold. The expiry sweeper locks with SKIP LOCKED, so it
// never waits on a payment.
#pragma once

#include "adapters/mysql/mysql_pool.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"

namespace concertd::mysql {

class MysqlPaymentStore final : public app::PaymentStore {
public:
    MysqlPaymentStore(MysqlPool& pool, app::AppStats& stats) : pool_(pool), stats_(stats) {}
    app::Task<domain::Result<app::PaymentReceipt>> pay(app::PayCommand command) override;
    app::Task<std::optional<domain::Result<app::PaymentReceipt>>> replay(
        std::string key, domain::UserId user, domain::ReservationId reservation) override;
    app::Task<std::int64_t> purge_idempotency_keys(domain::TimePoint cutoff, int batch) override;

private:
    app::Task<domain::Result<app::PaymentReceipt>> pay_once(app::PayCommand command);
    enum class Mode { kRowLocked, kVersionChecked, kPlain };
    app::Task<std::optional<domain::Result<app::PaymentReceipt>>> attempt(
        const app::PayCommand& command, Mode mode);

    MysqlPool& pool_;
    app::AppStats& stats_;
};

}  // namespace concertd::mysql
