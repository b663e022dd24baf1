// The use cases, one class per part of the product. Each validates what the domain rules say,
// talks to its ports, and returns a Result; handlers only translate HTTP to these calls.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/after_commit.hpp"
#include "app/ports/catalog_cache.hpp"
#include "app/ports/clock.hpp"
#include "app/ports/distributed_lock.hpp"
#include "app/ports/storage.hpp"
#include "app/ports/waiting_queue.hpp"
#include "app/stats.hpp"
#include "app/strategy.hpp"

namespace concertd::app {

struct ServiceSettings {
    std::chrono::seconds hold_duration{300};
    StrategyChoice strategies;
    std::chrono::milliseconds lock_wait{2000};  // `distributed`: longest wait for a lock
    std::optional<std::string> admin_key;       // unset: the admin API refuses every call
    // The waiting queue is a table of the reservation store's database: a hold checks its token
    // in its own first round trip (HoldCommand::queue_token) rather than in one of its own.
    bool store_checks_queue_token = false;
};

// The ports and settings every use case shares.
struct Ports {
    CatalogStore& catalog;
    ReservationStore& reservations;
    WalletStore& wallets;
    PaymentStore& payments;
    WaitingQueue& queue;
    DistributedLock& lock;
    CatalogCache& cache;
    AfterCommit& after_commit;
    const ClockPort& clock;
    AppStats& stats;
    ServiceSettings settings;
};

class QueueService {
public:
    // Tokens are 32 hex characters; anything far longer is not worth a lookup.
    static constexpr std::size_t kTokenLengthMax = 256;

    explicit QueueService(Ports& ports) : ports_(ports) {}
    Task<Result<IssuedTicket>> issue(UserId user);
    // The token's state for its holder (any live token). kQueueTokenMissing / kQueueTokenInvalid.
    Task<Result<QueueTicket>> current(std::optional<std::string_view> token);
    // The gate of every ACTIVE-only endpoint, on a ticket from current(). When `user` is given,
    // the token must be that user's. Precedence: other user (kForbidden), still waiting
    // (kQueueNotActive).
    static std::optional<Refusal> check_active(const QueueTicket& ticket,
                                               std::optional<UserId> user);

private:
    Ports& ports_;
};

// A line of the dates list: the date, and its seats taken as stored.
struct ScheduleLine {
    ScheduleDate date;
    std::shared_ptr<const ScheduleUsage> usage;  // never null
};

struct ConcertSchedules {
    ConcertId concert_id = 0;
    std::vector<ScheduleLine> schedules;  // future ones, by start time
};

class CatalogService {
public:
    explicit CatalogService(Ports& ports);
    ~CatalogService();
    Task<std::vector<Concert>> concerts();
    // For a read that began at `since`; it sees every write that answered before then.
    Task<Result<ConcertSchedules>> schedules(ConcertId concert, ReadStart since);
    Task<Result<std::shared_ptr<const SeatMap>>> seat_map(ScheduleId schedule, ReadStart since);
    // A read of this list (map) follows the caller's queue token check: said before that check,
    // the cache may confirm its copy in the same Redis call (CatalogCache::expect_*).
    Task<void> expect_schedules(ConcertId concert);
    Task<void> expect_seat_map(ScheduleId schedule);

private:
    // The usage of each schedule (null: none such), cached or loaded (one query for all the
    // misses, batched with the other misses of the thread; `loaded` is set then).
    Task<std::vector<std::shared_ptr<const ScheduleUsage>>> usage_of(
        const std::vector<ScheduleId>& schedules, ReadStart since, bool& loaded);

    struct Loads;  // cache misses of one key share database loads (app/shared_loads.hpp)
    Ports& ports_;
    std::unique_ptr<Loads> loads_;
};

class ReservationService {
public:
    ReservationService(Ports& ports, CatalogService& catalog) : ports_(ports), catalog_(catalog) {}
    // Holds the seat for the holder of `token`, which must be the user's ACTIVE queue token
    // (refusals as QueueService::current, then check_active).
    Task<Result<Reservation>> hold(std::optional<std::string_view> token, UserId user,
                                   ScheduleId schedule, SeatNo seat_no);
    Task<Result<Reservation>> find(ReservationId id);

private:
    Task<Result<Reservation>> hold_gated(std::string_view token, HoldCommand command);
    Task<Result<Reservation>> hold_checked(std::optional<std::string_view> token,
                                           HoldCommand command);
    Task<Result<Reservation>> hold_seat(HoldCommand command);
    Task<std::optional<Refusal>> refuse_taken_seat(const HoldCommand& command);

    Ports& ports_;
    CatalogService& catalog_;
};

class WalletService {
public:
    explicit WalletService(Ports& ports) : ports_(ports) {}
    Task<Result<Won>> charge(UserId user, Won amount);
    Task<Result<Won>> balance(UserId user);
    Task<Result<std::vector<WalletEntry>>> history(UserId user, int limit);

private:
    Ports& ports_;
};

class PaymentService {
public:
    explicit PaymentService(Ports& ports) : ports_(ports) {}
    Task<Result<PaymentReceipt>> pay(UserId user, ReservationId reservation,
                                     std::optional<std::string> idempotency_key);
    // The payment an earlier request stored under `key`, answered before the token gate
    // because that payment expired the token. nullopt when the key is new.
    Task<std::optional<Result<PaymentReceipt>>> replay(std::string key, UserId user,
                                                       ReservationId reservation);

private:
    Ports& ports_;
};

class AdminService {
public:
    explicit AdminService(Ports& ports) : ports_(ports) {}
    // Checks the Admin-Key in constant time; kAdminKeyInvalid when unset or wrong.
    std::optional<Refusal> authorize(std::optional<std::string_view> admin_key) const;
    Task<Result<CreatedConcert>> create_concert(NewConcert concert);

private:
    Ports& ports_;
};

// Everything the HTTP adapter calls.
struct Services {
    explicit Services(Ports& p)
        : queue(p), catalog(p), reservations(p, catalog), wallets(p), payments(p), admin(p) {}
    QueueService queue;
    CatalogService catalog;
    ReservationService reservations;
    WalletService wallets;
    PaymentService payments;
    AdminService admin;
};

}  // namespace concertd::app
