#include "adapters/postgres/pg_waiting_queue.hpp"

#include <array>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/memory/random_token.hpp"

namespace concertd::postgres {

namespace {

using detail::param;
using detail::PgError;
using detail::PgResult;
using detail::PgStatement;

// Every statement takes the time once (a MATERIALIZED CTE), so one row is judged by one clock
// reading; now_ms() is the database's clock, shared by every process.

// $1 fresh token, $2 user, $3 waiting_ttl_ms. A live token of the user is kept (and its poll
// refreshed); a dead one is replaced by the fresh token at the end of the line (excluded.seq is
// a new nextval). The ON CONFLICT arbiter makes racing issues for one user agree. A user id
// conflict is handled; a 23505 can only be the token (2^-128).
constexpr std::string_view kIssue =
    "WITH clock AS MATERIALIZED (SELECT now_ms() AS now), "
    "issued AS ("
    " INSERT INTO queue_tokens AS t (token, user_id, status, last_poll_at)"
    " SELECT $1, $2::bigint, 'WAITING', clock.now FROM clock"
    " ON CONFLICT (user_id) DO UPDATE SET"
    "  token = CASE WHEN (CASE t.status WHEN 'WAITING'"
    "   THEN t.last_poll_at > excluded.last_poll_at - $3::bigint"
    "   ELSE t.expires_at > excluded.last_poll_at END) THEN t.token ELSE excluded.token END,"
    "  seq = CASE WHEN (CASE t.status WHEN 'WAITING'"
    "   THEN t.last_poll_at > excluded.last_poll_at - $3::bigint"
    "   ELSE t.expires_at > excluded.last_poll_at END) THEN t.seq ELSE excluded.seq END,"
    "  status = CASE WHEN (CASE t.status WHEN 'WAITING'"
    "   THEN t.last_poll_at > excluded.last_poll_at - $3::bigint"
    "   ELSE t.expires_at > excluded.last_poll_at END) THEN t.status ELSE excluded.status END,"
    "  expires_at = CASE WHEN (CASE t.status WHEN 'WAITING'"
    "   THEN t.last_poll_at > excluded.last_poll_at - $3::bigint"
    "   ELSE t.expires_at > excluded.last_poll_at END)"
    "   THEN t.expires_at ELSE excluded.expires_at END,"
    "  last_poll_at = excluded.last_poll_at"
    " RETURNING t.token, t.status, t.seq, t.last_poll_at) "
    "SELECT i.token, i.status, CASE WHEN i.status = 'WAITING' THEN 1 + ("
    "  SELECT count(*) FROM queue_tokens q WHERE q.status = 'WAITING' AND q.seq < i.seq"
    "  AND q.last_poll_at > i.last_poll_at - $3::bigint) ELSE 0 END "
    "FROM issued i";

// $1 token, $2 waiting_ttl_ms. A live WAITING token: the poll and its position.
constexpr std::string_view kPollWaiting =
    "WITH clock AS MATERIALIZED (SELECT now_ms() AS now), "
    "polled AS ("
    " UPDATE queue_tokens t SET last_poll_at = c.now FROM clock c"
    " WHERE t.token = $1 AND t.status = 'WAITING' AND t.last_poll_at > c.now - $2::bigint"
    " RETURNING t.user_id, t.seq, c.now) "
    "SELECT p.user_id, 1 + ("
    "  SELECT count(*) FROM queue_tokens q WHERE q.status = 'WAITING' AND q.seq < p.seq"
    "  AND q.last_poll_at > p.now - $2::bigint) "
    "FROM polled p";

// $1 token. Sent after kPollWaiting in the same pipeline, so its snapshot is later: a token the
// poll missed because an admission committed meanwhile is seen here as ACTIVE. An ACTIVE look
// writes nothing (find() runs on every request of an admitted user).
constexpr std::string_view kFindActive =
    "SELECT user_id FROM queue_tokens"
    " WHERE token = $1 AND status = 'ACTIVE' AND expires_at > now_ms()";

constexpr std::string_view kExpireUser = "DELETE FROM queue_tokens WHERE user_id = $1::bigint";

constexpr std::string_view kBegin = "BEGIN";
constexpr std::string_view kCommit = "COMMIT";
// $1 milliseconds. Bounds the wait for the admission row below the client's statement timeout,
// which would mark the connection broken.
constexpr std::string_view kAdmissionLockTimeout = "SELECT set_config('lock_timeout', $1, true)";
// Admitters take turns here. The admission statement comes after, in its own statement, so its
// snapshot includes everything the previous admitter committed (READ COMMITTED takes a snapshot
// per statement; a lock taken inside the same statement would not refresh it).
constexpr std::string_view kLockAdmission =
    "SELECT 1 FROM queue_admission WHERE id = 1 FOR UPDATE";

// $1 admit_per_second, $2 max_active, $3 waiting_ttl_ms, $4 active_ttl_ms, $5 kSweepBatch.
// - One tick looks at most kSweepBatch rows into the line: it admits live tokens and deletes
//   stale ones among them, so a mass of dropped tokens at the head costs bounded work per tick
//   (and may delay admissions by a few ticks) rather than a scan of the whole line.
// - Each DELETE or UPDATE picks its rows as an array (= ANY(ARRAY(…))): the planner cannot see
//   the LIMIT's size and would hash-join the whole table; this keeps every part an index scan.
// - The row sets the CTEs touch are disjoint by their predicates under one clock reading
//   (ACTIVE expired / WAITING stale / WAITING live), and each DELETE or UPDATE repeats its
//   predicate on the target, so the recheck of a row changed meanwhile (a poll, an expire_user,
//   a re-issue) judges its newest version.
// - The UPDATE waits for a row a poll holds for a moment rather than skipping it (no SKIP
//   LOCKED), which keeps FIFO; other admitters are already excluded by the admission row lock,
//   and the budget is charged only for rows actually admitted.
constexpr std::string_view kAdmit =
    "WITH clock AS MATERIALIZED (SELECT now_ms() AS now), "
    // A fresh row (refilled_at 0) starts full, like the in-process queue; a clock step back
    // adds nothing.
    "bucket AS MATERIALIZED ("
    " SELECT CASE WHEN a.refilled_at = 0 THEN $1::float8"
    "  ELSE LEAST($1::float8, a.budget"
    "   + LEAST(GREATEST(c.now - a.refilled_at, 0), 1000) * $1::float8 / 1000.0) END AS budget,"
    "  GREATEST(a.refilled_at, c.now) AS refilled_at"
    " FROM queue_admission a, clock c WHERE a.id = 1), "
    "expired AS ("
    " DELETE FROM queue_tokens t USING clock c"
    " WHERE t.token = ANY(ARRAY(SELECT e.token FROM queue_tokens e, clock ce"
    "  WHERE e.status = 'ACTIVE' AND e.expires_at <= ce.now ORDER BY e.expires_at"
    "  LIMIT $5::bigint))"
    " AND t.status = 'ACTIVE' AND t.expires_at <= c.now"
    " RETURNING 1), "
    // Only the head is swept; stale tokens further back are invisible to find() and positions
    // already, and are deleted when they reach the head or their user issues again.
    "dropped AS ("
    " DELETE FROM queue_tokens t USING clock c"
    " WHERE t.token = ANY(ARRAY(SELECT h.token FROM (SELECT token, last_poll_at"
    "   FROM queue_tokens WHERE status = 'WAITING' ORDER BY seq LIMIT $5::bigint) h, clock ch"
    "  WHERE h.last_poll_at <= ch.now - $3::bigint))"
    " AND t.status = 'WAITING' AND t.last_poll_at <= c.now - $3::bigint"
    " RETURNING 1), "
    "active AS ("
    " SELECT count(*) AS n FROM queue_tokens t, clock c"
    " WHERE t.status = 'ACTIVE' AND t.expires_at > c.now), "
    "quota AS ("
    " SELECT GREATEST(0, LEAST(floor(b.budget + 1e-9)::bigint, $2::bigint - a.n)) AS n"
    " FROM bucket b, active a), "
    "admitted AS ("
    " UPDATE queue_tokens t SET status = 'ACTIVE', expires_at = c.now + $4::bigint"
    " FROM clock c"
    " WHERE t.token = ANY(ARRAY(SELECT h.token FROM (SELECT token, seq, last_poll_at"
    "   FROM queue_tokens WHERE status = 'WAITING' ORDER BY seq LIMIT $5::bigint) h, clock ch"
    "  WHERE h.last_poll_at > ch.now - $3::bigint"
    "  ORDER BY h.seq LIMIT COALESCE((SELECT n FROM quota), 0)))"
    " AND t.status = 'WAITING' AND t.last_poll_at > c.now - $3::bigint"
    " RETURNING 1), "
    "spent AS (SELECT count(*) AS n FROM admitted), "
    "refilled AS ("
    " UPDATE queue_admission a SET budget = GREATEST(b.budget - s.n, 0),"
    "  refilled_at = b.refilled_at"
    " FROM bucket b, spent s WHERE a.id = 1 RETURNING 1) "
    "SELECT (SELECT n FROM spent), (SELECT count(*) FROM refilled)";

// $1 waiting_ttl_ms.
constexpr std::string_view kStats =
    "SELECT (SELECT count(*) FROM queue_tokens"
    "  WHERE status = 'WAITING' AND last_poll_at > c.now - $1::bigint),"
    " (SELECT count(*) FROM queue_tokens WHERE status = 'ACTIVE' AND expires_at > c.now) "
    "FROM (SELECT now_ms() AS now) c";

constexpr std::string_view kSqlStateLockNotAvailable = "55P03";

void require_positive(std::int64_t value, const char* name) {
    if (value < 1) {
        throw std::invalid_argument(std::string("queue setting must be at least 1: ") + name);
    }
}

domain::TokenStatus parse_status(std::string_view text) {
    if (text == "WAITING") return domain::TokenStatus::kWaiting;
    if (text == "ACTIVE") return domain::TokenStatus::kActive;
    throw std::runtime_error("queue_tokens: unexpected status " + std::string(text));
}

}  // namespace

PgWaitingQueue::PgWaitingQueue(PgPool& pool, app::QueueSettings settings)
    : pool_(pool),
      settings_(settings),
      waiting_ttl_ms_(settings.waiting_ttl_seconds * 1000),
      active_ttl_ms_(settings.active_ttl_seconds * 1000) {
    require_positive(settings.admit_per_second, "admit_per_second");
    require_positive(settings.max_active, "max_active");
    require_positive(settings.active_ttl_seconds, "active_ttl_seconds");
    require_positive(settings.waiting_ttl_seconds, "waiting_ttl_seconds");
}

boost::asio::awaitable<app::IssuedTicket> PgWaitingQueue::issue(domain::UserId user) {
    for (int attempt = 1;; ++attempt) {
        auto issued = co_await try_issue(user, memory::random_token_hex());
        if (issued) co_return std::move(*issued);
        if (attempt >= kIssueAttemptsMax) {
            throw std::runtime_error("queue token collided " + std::to_string(attempt) +
                                     " times; the random source is broken");
        }
    }
}

boost::asio::awaitable<std::optional<app::IssuedTicket>> PgWaitingQueue::try_issue(
    domain::UserId user, std::string token) {
    PgResult result;
    bool collided = false;
    try {
        auto conn = co_await pool_.acquire();
        // Issues take turns (a transaction-scoped advisory lock): each counts the line after
        // every earlier issue committed, so concurrent arrivals get distinct positions.
        std::vector<PgStatement> statements{
            {"BEGIN", {}},
            {"SELECT pg_advisory_xact_lock(7160000001)", {}},
            {kIssue, {param(token), param(user), param(waiting_ttl_ms_)}},
            {"COMMIT", {}}};
        auto results = co_await conn->pipeline({statements.data(), statements.size()},
                                               pool_.options().statement_timeout);
        result = std::move(results[2]);
    } catch (const PgError& error) {
        if (!error.is_unique_violation()) throw;
        collided = true;
    }
    if (collided) co_return std::nullopt;  // the token is taken: try another
    if (result.rows() != 1) throw std::logic_error("queue issue must return one row");

    app::IssuedTicket issued;
    issued.created = result.text(0, 0) == token;  // ours won: the token is 128 fresh bits
    const auto status = parse_status(result.text(0, 1));
    if (status == domain::TokenStatus::kWaiting) {
        issued.ticket = waiting_ticket(std::string(result.text(0, 0)), user, result.int64(0, 2));
    } else {
        issued.ticket.token = std::string(result.text(0, 0));
        issued.ticket.user_id = user;
        issued.ticket.status = status;
    }
    co_return issued;
}

boost::asio::awaitable<std::optional<domain::QueueTicket>> PgWaitingQueue::find(
    std::string token) {
    if (!memory::parse_token_hex(token)) co_return std::nullopt;  // forged: no round trip
    const std::array<PgStatement, 2> statements{
        PgStatement{kPollWaiting, {param(token), param(waiting_ttl_ms_)}},
        PgStatement{kFindActive, {param(token)}},
    };
    std::vector<PgResult> results;
    {
        auto conn = co_await pool_.acquire();
        results = co_await conn->pipeline(statements, pool_.options().statement_timeout);
    }
    if (results.at(0).rows() == 1) {
        co_return waiting_ticket(std::move(token), results[0].int64(0, 0), results[0].int64(0, 1));
    }
    if (results.at(1).rows() == 1) {
        domain::QueueTicket ticket;
        ticket.token = std::move(token);
        ticket.user_id = results[1].int64(0, 0);
        ticket.status = domain::TokenStatus::kActive;
        co_return ticket;
    }
    co_return std::nullopt;
}

boost::asio::awaitable<void> PgWaitingQueue::expire_user(domain::UserId user) {
    auto conn = co_await pool_.acquire();
    co_await conn->execute(kExpireUser, {param(user)}, pool_.options().statement_timeout);
}

boost::asio::awaitable<std::int64_t> PgWaitingQueue::admit(domain::TimePoint /*now*/) {
    const std::array<PgStatement, 5> statements{
        PgStatement{kBegin, {}},
        PgStatement{kAdmissionLockTimeout, {param(kAdmissionLockWaitMs)}},
        PgStatement{kLockAdmission, {}},
        PgStatement{kAdmit,
                    {param(settings_.admit_per_second), param(settings_.max_active),
                     param(waiting_ttl_ms_), param(active_ttl_ms_), param(kSweepBatch)}},
        PgStatement{kCommit, {}},
    };
    std::vector<PgResult> results;
    try {
        auto conn = co_await pool_.acquire();
        results = co_await conn->pipeline(statements, pool_.options().statement_timeout);
    } catch (const PgError& error) {
        // Another process held the admission row for longer than kAdmissionLockWaitMs: it is
        // admitting; this tick has nothing to add. (The pipeline rolled back.)
        if (error.sqlstate() == kSqlStateLockNotAvailable) co_return 0;
        throw;
    }
    const PgResult& admitted = results.at(3);
    if (admitted.int64(0, 1) != 1) {
        throw std::runtime_error("queue_admission has no row 1: apply migrations/postgres");
    }
    co_return admitted.int64(0, 0);
}

boost::asio::awaitable<app::QueueStats> PgWaitingQueue::stats() {
    PgResult result;
    {
        auto conn = co_await pool_.acquire();
        result = co_await conn->execute(kStats, {param(waiting_ttl_ms_)},
                                        pool_.options().statement_timeout);
    }
    co_return app::QueueStats{result.int64(0, 0), result.int64(0, 1)};
}

domain::QueueTicket PgWaitingQueue::waiting_ticket(std::string token, domain::UserId user,
                                                   std::int64_t position) const {
    domain::QueueTicket ticket;
    ticket.token = std::move(token);
    ticket.user_id = user;
    ticket.status = domain::TokenStatus::kWaiting;
    ticket.position = position;
    ticket.estimated_wait_seconds =
        (position + settings_.admit_per_second - 1) / settings_.admit_per_second;
    return ticket;
}

}  // namespace concertd::postgres
