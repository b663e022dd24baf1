// Storage ports: what the use cases need from a database. Each call is one transaction; a call
// either commits all of its change (with its outbox events) or none of it. Calls throw
// domain::DependencyUnavailable when the database cannot be reached.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "app/strategy.hpp"
#include "domain/outcome.hpp"
#include "domain/types.hpp"

namespace concertd::app {

template <class T>
using Task = boost::asio::awaitable<T>;

using namespace concertd::domain;  // NOLINT: the product's words are the app's vocabulary

struct NewSchedule {
    TimePoint starts_at;
    std::int32_t seat_count = 0;
    Won price_won = 0;
};

struct NewConcert {
    std::string title;
    std::vector<NewSchedule> schedules;
};

struct CreatedConcert {
    ConcertId concert_id = 0;
    std::vector<ScheduleId> schedule_ids;
};

class CatalogStore {
public:
    virtual ~CatalogStore() = default;
    virtual Task<std::vector<Concert>> list_concerts() = 0;
    // Every date of the concert (past ones too; the caller filters by time), by start time.
    // nullopt when the concert does not exist.
    virtual Task<std::optional<std::vector<ScheduleDate>>> list_schedules(ConcertId concert) = 0;
    // The usage of each of these schedules that exists, in one query, in no particular order.
    virtual Task<std::vector<ScheduleUsage>> schedule_usage(std::vector<ScheduleId> schedules) = 0;
    // nullopt when the schedule does not exist. Seats ordered by seat number.
    virtual Task<std::optional<SeatMap>> seat_map(ScheduleId schedule) = 0;
    virtual Task<CreatedConcert> create_concert(NewConcert concert, TimePoint now) = 0;
    virtual Task<bool> has_concerts() = 0;
};

struct HoldCommand {
    UserId user_id = 0;
    ScheduleId schedule_id = 0;
    SeatNo seat_no = 0;
    TimePoint now;
    TimePoint expires_at;
    Strategy strategy = Strategy::kOptimistic;
    // `distributed`: the lock's fencing token. A store that keeps fences refuses a write whose
    // fence is not newer than the last one it saw (a holder that lost its lease) with
    // kRateLimited, changing nothing.
    std::optional<std::uint64_t> fence;
    // When set, the store first checks that this queue token is `user_id`'s live ACTIVE token,
    // in the hold's own first round trip, and refuses (changing nothing) with kQueueTokenInvalid,
    // kForbidden, or kQueueNotActive for a token in any other state. Only stores whose database
    // holds the waiting queue accept it (ServiceSettings::store_checks_queue_token).
    std::optional<std::string> queue_token;
};

class ReservationStore {
public:
    virtual ~ReservationStore() = default;
    // Holds the seat, or refuses with kNotFound (no such schedule or seat) or kSeatUnavailable.
    // A stale hold on the seat is resolved EXPIRED in the same transaction.
    virtual Task<Result<Reservation>> hold(HoldCommand command) = 0;
    virtual Task<std::optional<Reservation>> find(ReservationId id) = 0;
    // Resolves up to `batch` HELD reservations whose time has passed as EXPIRED, frees their
    // seats and writes reservation.expired events. Returns what it expired.
    virtual Task<std::vector<Reservation>> expire_due(TimePoint now, int batch) = 0;
};

struct ChargeCommand {
    UserId user_id = 0;
    Won amount_won = 0;
    TimePoint now;
    Strategy strategy = Strategy::kDistributed;
    std::optional<std::uint64_t> fence;  // as HoldCommand::fence
};

class WalletStore {
public:
    virtual ~WalletStore() = default;
    // New balance, or kBalanceLimitExceeded.
    virtual Task<Result<Won>> charge(ChargeCommand command) = 0;
    virtual Task<Won> balance(UserId user) = 0;
    // Newest first.
    virtual Task<std::vector<WalletEntry>> history(UserId user, int limit) = 0;
};

struct PayCommand {
    UserId user_id = 0;
    ReservationId reservation_id = 0;
    std::optional<std::string> idempotency_key;
    TimePoint now;
    Strategy strategy = Strategy::kDistributed;
    std::optional<std::uint64_t> fence;  // as HoldCommand::fence (the wallet's lock)
};

struct PaymentReceipt {
    Payment payment;
    Reservation reservation;  // as confirmed
    bool replayed = false;    // answered from the idempotency key
};

class PaymentStore {
public:
    virtual ~PaymentStore() = default;
    // Pays the reservation in one transaction, or refuses with kNotFound, kForbidden,
    // kReservationExpired, kReservationNotPayable, kInsufficientBalance or kIdempotencyConflict.
    // A key seen before with the same user and reservation replays the first payment.
    virtual Task<Result<PaymentReceipt>> pay(PayCommand command) = 0;
    // The payment stored under `key`: nullopt when the key is unknown, kIdempotencyConflict when
    // it was used for another user or reservation.
    virtual Task<std::optional<Result<PaymentReceipt>>> replay(std::string key, UserId user,
                                                               ReservationId reservation) = 0;
    // Forgets up to `batch` idempotency keys stored before `cutoff`; returns how many.
    virtual Task<std::int64_t> purge_idempotency_keys(TimePoint cutoff, int batch) = 0;
};

// Hands a batch of events to the bus; returns once the bus accepted all of them, throws if not.
using PublishBatch = std::function<Task<void>(const std::vector<Event>&)>;

class OutboxStore {
public:
    virtual ~OutboxStore() = default;
    // One relay step: the oldest unpublished events (at most `limit`, in outbox order) go to
    // `publish` and are marked published only after it returned; if it throws they stay
    // unpublished and are sent again (at least once). One step at a time over every process on
    // the store, so events leave in outbox order (PostgreSQL: a transaction-scoped advisory lock,
    // which the server frees if the process dies); a step that finds another one running returns
    // 0 at once. Returns how many were published.
    virtual Task<std::size_t> relay(int limit, TimePoint now, PublishBatch publish) = 0;
    virtual Task<std::int64_t> unpublished_count() = 0;
    // Deletes up to `batch` events published before `cutoff`; returns how many.
    virtual Task<std::int64_t> purge_published(TimePoint cutoff, int batch) = 0;
};

// The store of the sales ledger consumer: one row per completed payment, once per event id.
class SalesLedgerStore {
public:
    virtual ~SalesLedgerStore() = default;
    // Records the sale unless this event id was processed before; false when it was.
    virtual Task<bool> record_sale(const Event& event) = 0;
};

// Does a dependency (database, Redis, broker) answer? For /readyz; ping() returns false or
// throws when it does not.
class DependencyHealth {
public:
    virtual ~DependencyHealth() = default;
    virtual Task<bool> ping() = 0;
};

}  // namespace concertd::app
