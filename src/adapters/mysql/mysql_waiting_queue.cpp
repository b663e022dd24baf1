#include "adapters/mysql/mysql_waiting_queue.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/memory/random_token.hpp"
#include "adapters/mysql/mysql_named_lock.hpp"
#include "adapters/mysql/mysql_rows.hpp"
#include "domain/outcome.hpp"

namespace concertd::mysql {

namespace {

// NOW(3) is fixed for the length of a statement, so each statement judges its rows by one clock
// reading; admit() reads it once and passes it to the rest of its transaction.
#define NOW_MS CONCERTD_MY_NOW_MS

constexpr std::string_view kTakeIssueTurn = "SELECT GET_LOCK(?, ?)";

// ? user, ? waiting_ttl_ms. A dead token gives its place up: the new one is a new row at the end
// of the line (a new seq; schema comment on queue_tokens.seq).
constexpr std::string_view kDeleteDead =
    "DELETE FROM queue_tokens WHERE user_id = ? AND IF(status = 'WAITING',"
    " last_poll_at <= " NOW_MS " - ?, expires_at IS NULL OR expires_at <= " NOW_MS ")";

// ? token, ? user, ? waiting_ttl_ms. The user's live token (the only one left) is kept, and a
// WAITING one polled; otherwise the fresh token goes in. A duplicate of the token itself (2^-128)
// changes at most another user's poll time, and the read below finds no token for this user.
constexpr std::string_view kInsertOrPoll =
    "INSERT INTO queue_tokens (token, user_id, status, last_poll_at)"
    " VALUES (?, ?, 'WAITING', " NOW_MS ")"
    " ON DUPLICATE KEY UPDATE last_poll_at = IF(status = 'WAITING' AND last_poll_at > " NOW_MS
    " - ?, " NOW_MS ", last_poll_at)";

// The columns every token read gives: status, live (1/0), position (WAITING: 1 + the live
// WAITING tokens ahead; else 0). Over t (the token) and c.now; ? waiting_ttl_ms twice.
#define TOKEN_STATE_COLUMNS                                                                    \
    " t.status,"                                                                               \
    " IF(t.status = 'WAITING', t.last_poll_at > c.now - ?, t.expires_at > c.now),"            \
    " IF(t.status = 'WAITING', 1 + (SELECT COUNT(*) FROM queue_tokens q"                       \
    "  WHERE q.status = 'WAITING' AND q.seq < t.seq AND q.last_poll_at > c.now - ?), 0)"

// ? ttl, ? ttl, ? user. Releases the issue turn in the same statement: every issue after it
// takes a larger seq, which this count does not look at, so what the read sees after the release
// does not matter. One row, token NULL when the user has none.
constexpr std::string_view kReadIssued =
    "SELECT RELEASE_ALL_LOCKS(), t.token," TOKEN_STATE_COLUMNS
    " FROM (SELECT " NOW_MS " AS now) c LEFT JOIN queue_tokens t ON t.user_id = ?";

// ? ttl, ? ttl, ? token.
constexpr std::string_view kReadToken =
    "SELECT t.user_id," TOKEN_STATE_COLUMNS
    " FROM (SELECT " NOW_MS " AS now) c JOIN queue_tokens t ON t.token = ?";

// ? token, ? waiting_ttl_ms. Matches 0 rows when the token was admitted, deleted or went stale
// since it was read.
constexpr std::string_view kPoll =
    "UPDATE queue_tokens SET last_poll_at = " NOW_MS
    " WHERE token = ? AND status = 'WAITING' AND last_poll_at > " NOW_MS " - ?";

constexpr std::string_view kExpireUser = "DELETE FROM queue_tokens WHERE user_id = ?";

// Without locks: is there a line, or an ACTIVE token due? Two index probes.
constexpr std::string_view kPeek =
    "SELECT EXISTS(SELECT 1 FROM queue_tokens WHERE status = 'WAITING'),"
    " EXISTS(SELECT 1 FROM queue_tokens WHERE status = 'ACTIVE' AND expires_at <= " NOW_MS ")";

// Admitters take turns on this row. NOWAIT: another admitter at work refuses at once (MariaDB
// 1205, MySQL 3572), and this tick adds nothing. The statements after it each take a new READ
// COMMITTED snapshot, which includes everything the previous admitter committed.
constexpr std::string_view kLockBucket =
    "SELECT budget, refilled_at, " NOW_MS " FROM queue_admission WHERE id = 1 FOR UPDATE NOWAIT";
constexpr unsigned kErLockNowait = 3572;  // MySQL 8; MariaDB answers NOWAIT with 1205

// ? now ×2, ? waiting cutoff ×2 (now - waiting_ttl_ms), ? kSweepBatch. ACTIVE live and due (the
// index queue_tokens_active, covering), and the stale and live tokens among the first
// kSweepBatch of the line (queue_tokens_line).
constexpr std::string_view kCounts =
    "SELECT a.active, a.due, w.stale, w.live FROM"
    " (SELECT COALESCE(SUM(expires_at > ?), 0) AS active, COALESCE(SUM(expires_at <= ?), 0) AS due"
    "  FROM queue_tokens WHERE status = 'ACTIVE') a,"
    " (SELECT COALESCE(SUM(h.last_poll_at <= ?), 0) AS stale,"
    "  COALESCE(SUM(h.last_poll_at > ?), 0) AS live"
    "  FROM (SELECT last_poll_at FROM queue_tokens WHERE status = 'WAITING'"
    "   ORDER BY seq LIMIT ?) h) w";

// ? now, ? kSweepBatch. No ORDER BY: every row it matches is due, and with one MariaDB 10.11
// walks queue_tokens_line and sorts every ACTIVE row instead of a range of queue_tokens_active.
constexpr std::string_view kDeleteDue =
    "DELETE FROM queue_tokens WHERE status = 'ACTIVE' AND expires_at <= ? LIMIT ?";

// ? kSweepBatch, ? cutoff, ? cutoff. Only the head is swept; stale tokens further back are
// invisible to find() and positions already, and are deleted when they reach the head or their
// user issues again. The derived table (with its LIMIT, never merged) is materialized first, so
// the target may appear in it; the outer WHERE rechecks each row's newest version.
constexpr std::string_view kDeleteStale =
    "DELETE t FROM queue_tokens t JOIN"
    " (SELECT h.token FROM (SELECT token, last_poll_at FROM queue_tokens"
    "   WHERE status = 'WAITING' ORDER BY seq LIMIT ?) h WHERE h.last_poll_at <= ?) d"
    " ON t.token = d.token"
    " WHERE t.status = 'WAITING' AND t.last_poll_at <= ?";

// ? kSweepBatch, ? cutoff, ? quota, ? expires_at, ? cutoff. The first `quota` live tokens of the
// head in seq order. The UPDATE waits for a row a poll holds for a moment rather than skipping
// it, which keeps FIFO; its count (rows matched: CLIENT_FOUND_ROWS) is what the budget pays.
constexpr std::string_view kAdmit =
    "UPDATE queue_tokens t JOIN"
    " (SELECT h.token FROM (SELECT token, seq, last_poll_at FROM queue_tokens"
    "   WHERE status = 'WAITING' ORDER BY seq LIMIT ?) h WHERE h.last_poll_at > ?"
    "  ORDER BY h.seq LIMIT ?) a"
    " ON t.token = a.token"
    " SET t.status = 'ACTIVE', t.expires_at = ?"
    " WHERE t.status = 'WAITING' AND t.last_poll_at > ?";

// ? budget, ? refilled_at.
constexpr std::string_view kChargeBucket =
    "UPDATE queue_admission SET budget = ?, refilled_at = ? WHERE id = 1";

// ? waiting_ttl_ms.
constexpr std::string_view kStats =
    "SELECT (SELECT COUNT(*) FROM queue_tokens"
    "  WHERE status = 'WAITING' AND last_poll_at > c.now - ?),"
    " (SELECT COUNT(*) FROM queue_tokens WHERE status = 'ACTIVE' AND expires_at > c.now)"
    " FROM (SELECT " NOW_MS " AS now) c";

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

// A token's state as TOKEN_STATE_COLUMNS give it, from `column` on.
struct TokenState {
    domain::TokenStatus status;
    bool live;
    std::int64_t position;
};

TokenState read_state(const MysqlResult& result, int column) {
    return {parse_status(result.text(0, column)), result.int64(0, column + 1) == 1,
            result.int64(0, column + 2)};
}

// The bucket after refilling for the time since refilled_at: a fresh row (refilled_at 0) starts
// full, like the in-process queue; at most one second's worth is added; a clock step back adds
// nothing.
double refilled_budget(double budget, std::int64_t refilled_at, std::int64_t now, double rate) {
    if (refilled_at == 0) return rate;
    const auto elapsed_ms = std::clamp<std::int64_t>(now - refilled_at, 0, 1000);
    return std::min(rate, budget + static_cast<double>(elapsed_ms) * rate / 1000.0);
}

}  // namespace

MysqlWaitingQueue::MysqlWaitingQueue(MysqlPool& pool, app::QueueSettings settings)
    : pool_(pool),
      settings_(settings),
      waiting_ttl_ms_(settings.waiting_ttl_seconds * 1000),
      active_ttl_ms_(settings.active_ttl_seconds * 1000) {
    require_positive(settings.admit_per_second, "admit_per_second");
    require_positive(settings.max_active, "max_active");
    require_positive(settings.active_ttl_seconds, "active_ttl_seconds");
    require_positive(settings.waiting_ttl_seconds, "waiting_ttl_seconds");
}

boost::asio::awaitable<app::IssuedTicket> MysqlWaitingQueue::issue(domain::UserId user) {
    for (int attempt = 1;; ++attempt) {
        // A deadlock or lock wait (the admitter holding the user's row) is tried again with the
        // same token: what an earlier try committed of it is then found as the user's own.
        auto issued = co_await retrying_conflicts(
            [this, user, token = memory::random_token_hex()] { return try_issue(user, token); });
        if (issued) co_return std::move(*issued);
        if (attempt >= kIssueAttemptsMax) {
            throw std::runtime_error("queue issue failed " + std::to_string(attempt) +
                                     " times (token collisions, or a token dying each time)");
        }
    }
}

boost::asio::awaitable<std::optional<app::IssuedTicket>> MysqlWaitingQueue::try_issue(
    domain::UserId user, std::string token) {
    const auto timeout = pool_.options().statement_timeout;
    MysqlResult result;
    {
        auto conn = co_await pool_.acquire();
        NamedLockGuard guard(conn);  // any failure below closes the session, and the turn with it
        const auto turn = co_await conn->execute(
            kTakeIssueTurn,
            {param(lock_name(kInternalLock, pool_.options().endpoint.database, "queue_issue")),
             param(kIssueTurnWaitSeconds)},
            timeout);
        if (turn.optional_int64(0, 0).value_or(0) != 1) {
            guard.disarm();  // not granted: nothing held
            throw domain::DependencyUnavailable("queue: the issue turn stayed taken for " +
                                                std::to_string(kIssueTurnWaitSeconds) + " s");
        }
        co_await conn->execute(kDeleteDead, {param(user), param(waiting_ttl_ms_)}, timeout);
        co_await conn->execute(kInsertOrPoll, {param(token), param(user), param(waiting_ttl_ms_)},
                               timeout);
        result = co_await conn->execute(
            kReadIssued, {param(waiting_ttl_ms_), param(waiting_ttl_ms_), param(user)}, timeout);
        guard.disarm();  // released by the read
    }
    if (result.rows() != 1) throw std::logic_error("queue issue read must return one row");
    // No token for the user: ours collided with another user's (2^-128). Not live: the user's
    // token died between the delete and the insert. Either way, again.
    if (result.is_null(0, 1)) co_return std::nullopt;
    const auto state = read_state(result, 2);
    if (!state.live) co_return std::nullopt;

    app::IssuedTicket issued;
    issued.created = result.text(0, 1) == token;  // ours went in: the token is 128 fresh bits
    if (state.status == domain::TokenStatus::kWaiting) {
        issued.ticket = waiting_ticket(std::string(result.text(0, 1)), user, state.position);
    } else {
        issued.ticket.token = std::string(result.text(0, 1));
        issued.ticket.user_id = user;
        issued.ticket.status = state.status;
    }
    co_return issued;
}

boost::asio::awaitable<std::optional<domain::QueueTicket>> MysqlWaitingQueue::find(
    std::string token) {
    if (!memory::parse_token_hex(token)) co_return std::nullopt;  // forged: no round trip
    // The poll can wait for the admitter's lock on the row; a retry reads the admitted token.
    co_return co_await retrying_conflicts([this, &token] { return find_once(token); });
}

boost::asio::awaitable<std::optional<domain::QueueTicket>> MysqlWaitingQueue::find_once(
    std::string token) {
    const auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    // A second pass only when the token changed between the read and the poll (admitted,
    // deleted, or gone stale at that moment): the read then tells which.
    for (int pass = 1; pass <= 2; ++pass) {
        const auto result = co_await conn->execute(
            kReadToken, {param(waiting_ttl_ms_), param(waiting_ttl_ms_), param(token)}, timeout);
        if (result.rows() != 1) co_return std::nullopt;
        const auto user = result.int64(0, 0);
        const auto state = read_state(result, 1);
        if (!state.live) co_return std::nullopt;
        if (state.status == domain::TokenStatus::kActive) {
            domain::QueueTicket ticket;
            ticket.token = std::move(token);
            ticket.user_id = user;
            ticket.status = domain::TokenStatus::kActive;
            co_return ticket;
        }
        const auto polled =
            co_await conn->execute(kPoll, {param(token), param(waiting_ttl_ms_)}, timeout);
        if (polled.affected_rows() == 1) {
            co_return waiting_ticket(std::move(token), user, state.position);
        }
    }
    co_return std::nullopt;
}

boost::asio::awaitable<void> MysqlWaitingQueue::expire_user(domain::UserId user) {
    auto conn = co_await pool_.acquire();
    co_await conn->execute(kExpireUser, {param(user)}, pool_.options().statement_timeout);
}

boost::asio::awaitable<std::int64_t> MysqlWaitingQueue::admit(domain::TimePoint /*now*/) {
    try {
        co_return co_await admit_tick();
    } catch (const MysqlError& error) {
        // Another process (or coroutine) is admitting (NOWAIT), or the tick ran into a poll's or
        // an issue's row locks: the connection rolled the transaction back, and the next tick
        // goes on.
        if (!error.is_retryable() && error.code() != kErLockNowait) throw;
    }
    co_return 0;
}

boost::asio::awaitable<std::int64_t> MysqlWaitingQueue::admit_tick() {
    const auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    const auto peek = co_await conn->execute(kPeek, {}, timeout);
    if (peek.int64(0, 0) == 0 && peek.int64(0, 1) == 0) co_return 0;  // nothing to do

    co_await conn->query(kBegin, timeout);
    const auto bucket = co_await conn->execute(kLockBucket, {}, timeout);
    if (bucket.rows() != 1) {
        co_await conn->query(kRollback, timeout);
        throw std::runtime_error("queue_admission has no row 1: apply migrations/mysql");
    }
    const std::int64_t refilled_at = bucket.int64(0, 1);
    const std::int64_t now = bucket.int64(0, 2);
    const double rate = static_cast<double>(settings_.admit_per_second);
    const double budget =
        refilled_budget(std::stod(std::string(bucket.text(0, 0))), refilled_at, now, rate);
    const std::int64_t cutoff = now - waiting_ttl_ms_;

    const auto counts = co_await conn->execute(
        kCounts, {param(now), param(now), param(cutoff), param(cutoff), param(kSweepBatch)},
        timeout);
    const std::int64_t active = counts.int64(0, 0);
    const std::int64_t due = counts.int64(0, 1);
    const std::int64_t stale = counts.int64(0, 2);
    const std::int64_t live = counts.int64(0, 3);

    if (due > 0) co_await conn->execute(kDeleteDue, {param(now), param(kSweepBatch)}, timeout);
    if (stale > 0) {
        co_await conn->execute(kDeleteStale,
                               {param(kSweepBatch), param(cutoff), param(cutoff)}, timeout);
    }
    const std::int64_t quota = std::max<std::int64_t>(
        0, std::min(static_cast<std::int64_t>(std::floor(budget + 1e-9)),
                    settings_.max_active - active));
    std::int64_t admitted = 0;
    if (quota > 0 && live > 0) {
        const auto result = co_await conn->execute(
            kAdmit,
            {param(kSweepBatch), param(cutoff), param(quota), param(now + active_ttl_ms_),
             param(cutoff)},
            timeout);
        admitted = result.affected_rows();
    }
    // Unchanged when nothing was spent: refilling from the older refilled_at later comes to the
    // same budget (the refill is linear up to the cap).
    if (admitted > 0) {
        co_await conn->execute(
            kChargeBucket,
            {std::to_string(std::max(budget - static_cast<double>(admitted), 0.0)),
             param(std::max(refilled_at, now))},
            timeout);
    }
    co_await conn->query(kCommit, timeout);
    co_return admitted;
}

boost::asio::awaitable<app::QueueStats> MysqlWaitingQueue::stats() {
    MysqlResult result;
    {
        auto conn = co_await pool_.acquire();
        result = co_await conn->execute(kStats, {param(waiting_ttl_ms_)},
                                        pool_.options().statement_timeout);
    }
    co_return app::QueueStats{result.int64(0, 0), result.int64(0, 1)};
}

domain::QueueTicket MysqlWaitingQueue::waiting_ticket(std::string token, domain::UserId user,
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

}  // namespace concertd::mysql
