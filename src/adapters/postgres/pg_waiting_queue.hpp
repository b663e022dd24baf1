// The waiting queue in a PostgreSQL table (SPEC §2 "Queue token", §4: no Redis configured): the
// line is `queue_tokens` ordered by `seq`, the admission budget is the one `queue_admission`
// row, and every time is the database's (now_ms()), so several concertd processes on one
// database behave as one queue.
//
// Guarantees (the in-process queue's, across processes):
// - Tokens are 128 random bits from the kernel (32 lowercase hex digits), bound to one user; a
//   user has at most one live token (unique index queue_tokens_by_user; issue() is one
//   INSERT … ON CONFLICT, so racing issues for one user agree on one token).
// - Positions are FIFO ranks by `seq` among WAITING tokens polled within waiting_ttl, 1-based.
// - find() never returns a dropped (not polled within waiting_ttl) or expired token, even before
//   admit() has deleted it.
// - At most admit_per_second admissions per second over all processes (one token bucket in the
//   database, capacity admit_per_second, refilled by elapsed database time) and never more than
//   max_active ACTIVE, unexpired tokens: admitters serialize on the queue_admission row lock and
//   count ACTIVE tokens after taking it.
// - Thread-safe: no state in the process besides the settings; each call borrows a pooled
//   connection of the calling coroutine's io_context.
// - Infrastructure failures throw domain::DependencyUnavailable (from the pool or connection).
//
// Costs, the price of "the first design a team reaches for": a position is a count over the
// tokens ahead (O(position) index and heap reads, on every WAITING find() and issue()); each
// WAITING poll writes a row version (a HOT update: last_poll_at is in no index); stats() scans
// the line. The Redis queue is the one that scales.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "adapters/postgres/pg_pool.hpp"
#include "app/ports/waiting_queue.hpp"

namespace concertd::postgres {

class PgWaitingQueue final : public app::WaitingQueue {
public:
    // Expired ACTIVE tokens admit() deletes per call, and how far into the line it looks (to
    // admit live tokens and delete stale ones): bounds the work of one tick.
    static constexpr std::int64_t kSweepBatch = 1000;
    // How long admit() waits for another process's admission transaction before skipping a tick.
    static constexpr std::int64_t kAdmissionLockWaitMs = 1000;
    // Attempts of issue() when a fresh token collides with an existing one (2^-128 per pair).
    static constexpr int kIssueAttemptsMax = 3;

    // Throws std::invalid_argument unless every setting is ≥ 1. `pool` must outlive the queue.
    PgWaitingQueue(PgPool& pool, app::QueueSettings settings);
    PgWaitingQueue(const PgWaitingQueue&) = delete;
    PgWaitingQueue& operator=(const PgWaitingQueue&) = delete;

    // The user's live token (WAITING and polled within waiting_ttl, or ACTIVE and not past
    // active_ttl) with created=false, else a new WAITING token at the end with created=true; a
    // dead token of the user is replaced in the same statement. Re-issuing counts as a poll.
    // One round trip.
    boost::asio::awaitable<app::IssuedTicket> issue(domain::UserId user) override;
    // WAITING: position (1-based) and ceil(position / admit_per_second) seconds, and the look
    // counts as a poll. ACTIVE: position 0, wait 0. nullopt when malformed (no round trip),
    // unknown, dropped or expired. One round trip (two statements in one pipeline).
    boost::asio::awaitable<std::optional<domain::QueueTicket>> find(std::string token) override;
    // Deletes the user's token in whatever state; a no-op when there is none. One round trip.
    boost::asio::awaitable<void> expire_user(domain::UserId user) override;
    // One transaction, one round trip: waits (at most kAdmissionLockWaitMs, else returns 0) for
    // the queue_admission row, refills the bucket, deletes up to kSweepBatch expired ACTIVE
    // tokens, and among the first kSweepBatch WAITING tokens of the line deletes the stale ones
    // and admits up to min(floor(budget), max_active - active) live ones in seq order (fewer
    // when the head is mostly stale: the next tick goes on). Returns how many were admitted.
    // `now` is ignored: the database's clock decides. Safe from any number of processes and
    // threads at once.
    boost::asio::awaitable<std::int64_t> admit(domain::TimePoint now) override;
    // Live WAITING tokens and unexpired ACTIVE tokens, counted now (O(N): for /metrics).
    boost::asio::awaitable<app::QueueStats> stats() override;

private:
    boost::asio::awaitable<std::optional<app::IssuedTicket>> try_issue(domain::UserId user,
                                                                       std::string token);
    domain::QueueTicket waiting_ticket(std::string token, domain::UserId user,
                                       std::int64_t position) const;

    PgPool& pool_;
    const app::QueueSettings settings_;
    const std::int64_t waiting_ttl_ms_;
    const std::int64_t active_ttl_ms_;
};

}  // namespace concertd::postgres
