// The waiting queue in a MariaDB/MySQL table (SPEC §2 "Queue token", §4: no Redis configured):
// the line is `queue_tokens` ordered by `seq` (AUTO_INCREMENT: a new place is a new row), the
// admission budget is the one `queue_admission` row, and every time is the database's
// (CONCERTD_MY_NOW_MS), so several concertd processes on one database behave as one queue.
//
// Guarantees (PgWaitingQueue's, across processes):
// - Tokens are 128 random bits from the kernel (32 lowercase hex digits), bound to one user; a
//   user has at most one live token (unique key queue_tokens_by_user). Issues take turns on the
//   named lock 'concertd.<database>:queue_issue', so racing issues for one user agree on one
//   token and concurrent arrivals get distinct positions (each counts the line after every
//   earlier issue committed).
// - Positions are FIFO ranks by `seq` among WAITING tokens polled within waiting_ttl, 1-based
//   (a count over queue_tokens_line (status, seq)).
// - find() never returns a dropped (not polled within waiting_ttl) or expired token, even before
//   admit() has deleted it.
// - At most admit_per_second admissions per second over all processes (one token bucket in the
//   database, capacity admit_per_second, refilled by elapsed database time) and never more than
//   max_active ACTIVE, unexpired tokens: admitters take the queue_admission row lock (FOR UPDATE
//   NOWAIT: a tick that finds another admitter at work adds nothing and returns 0 at once) and
//   count ACTIVE tokens after taking it, in the same transaction as the admissions and the
//   budget's charge.
// - Thread-safe: no state in the process besides the settings; each call borrows a pooled
//   connection of the calling coroutine's io_context. A connection never goes back to the pool
//   holding the issue lock (NamedLockGuard).
// - Infrastructure failures throw domain::DependencyUnavailable (from the pool or connection).
//   InnoDB deadlocks and lock wait timeouts are retried (issue(), find(): retrying_conflicts,
//   then DependencyUnavailable) or end the tick (admit() returns 0).
//
// Round trips (libmariadb has no pipeline: one per statement):
// - issue(): 4 (take the issue turn; delete the user's dead token; INSERT … ON DUPLICATE KEY
//   UPDATE; read the token and its position, releasing the turn in the same statement).
// - find(): 1 for an ACTIVE, unknown, dropped or expired token; 2 for a WAITING one (read with
//   its position, then the poll); 0 for a malformed one.
// - expire_user(), stats(): 1.
// - admit(): 1 when the line is empty and no ACTIVE token is due (a look without locks); else
//   START TRANSACTION, the bucket row (locked), the counts, COMMIT: 4, plus one each for
//   deleting expired ACTIVE tokens, deleting stale ones at the head, admitting, and charging
//   the bucket, when there is such work (7 for a tick that admits and deletes nothing).
//
// Costs, as PgWaitingQueue's: a position is a count over the tokens ahead (O(position) index and
// row reads, on every WAITING find() and issue()); each WAITING poll writes the row; stats()
// scans the line; issues are serialized over the whole service. The Redis queue is the one that
// scales.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "adapters/mysql/mysql_pool.hpp"
#include "app/ports/waiting_queue.hpp"

namespace concertd::mysql {

class MysqlWaitingQueue final : public app::WaitingQueue {
public:
    // Expired ACTIVE tokens admit() deletes per call, and how far into the line it looks (to
    // admit live tokens and delete stale ones): bounds the work of one tick.
    static constexpr std::int64_t kSweepBatch = 1000;
    // Longest server-side wait for the issue turn; must stay below the pool's statement timeout
    // (the connection would be marked broken). Past it issue() throws DependencyUnavailable.
    static constexpr std::int64_t kIssueTurnWaitSeconds = 2;
    // Attempts of issue() when a fresh token collides with an existing one (2^-128 per pair) or
    // the user's token died between two statements of the issue.
    static constexpr int kIssueAttemptsMax = 3;

    // Throws std::invalid_argument unless every setting is ≥ 1. `pool` must outlive the queue.
    MysqlWaitingQueue(MysqlPool& pool, app::QueueSettings settings);
    MysqlWaitingQueue(const MysqlWaitingQueue&) = delete;
    MysqlWaitingQueue& operator=(const MysqlWaitingQueue&) = delete;

    // The user's live token (WAITING and polled within waiting_ttl, or ACTIVE and not past
    // active_ttl) with created=false, else a new WAITING token at the end with created=true; a
    // dead token of the user is deleted first (its place is not kept). Re-issuing a WAITING token
    // counts as a poll.
    boost::asio::awaitable<app::IssuedTicket> issue(domain::UserId user) override;
    // WAITING: position (1-based) and ceil(position / admit_per_second) seconds, and the look
    // counts as a poll. ACTIVE: position 0, wait 0 (the look writes nothing). nullopt when
    // malformed (no round trip), unknown, dropped or expired.
    boost::asio::awaitable<std::optional<domain::QueueTicket>> find(std::string token) override;
    // Deletes the user's token in whatever state; a no-op when there is none.
    boost::asio::awaitable<void> expire_user(domain::UserId user) override;
    // One transaction: takes the queue_admission row (or returns 0 when another admitter has it),
    // refills the bucket, deletes up to kSweepBatch expired ACTIVE tokens, and among the first
    // kSweepBatch WAITING tokens of the line deletes the stale ones and admits up to
    // min(floor(budget), max_active - active) live ones in seq order (fewer when the head is
    // mostly stale: the next tick goes on). Returns how many were admitted. `now` is ignored:
    // the database's clock decides. Safe from any number of processes and threads at once.
    boost::asio::awaitable<std::int64_t> admit(domain::TimePoint now) override;
    // Live WAITING tokens and unexpired ACTIVE tokens, counted now (O(N): for /metrics).
    boost::asio::awaitable<app::QueueStats> stats() override;

private:
    boost::asio::awaitable<std::optional<app::IssuedTicket>> try_issue(domain::UserId user,
                                                                       std::string token);
    boost::asio::awaitable<std::optional<domain::QueueTicket>> find_once(std::string token);
    boost::asio::awaitable<std::int64_t> admit_tick();
    domain::QueueTicket waiting_ticket(std::string token, domain::UserId user,
                                       std::int64_t position) const;

    MysqlPool& pool_;
    const app::QueueSettings settings_;
    const std::int64_t waiting_ttl_ms_;
    const std::int64_t active_ttl_ms_;
};

}  // namespace concertd::mysql
