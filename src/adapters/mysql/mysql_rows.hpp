// Statements, row readers and retries the MariaDB/MySQL stores share. libmariadb has no
// pipeline, so a store's round trips are its statements: keep them few (docs/mysql.md).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "adapters/conflict_retry.hpp"
#include "adapters/mysql/detail/mysql_connection.hpp"
#include "adapters/mysql/mysql_pool.hpp"
#include "domain/outcome.hpp"
#include "domain/types.hpp"

namespace concertd::mysql {

using namespace concertd::domain;  // NOLINT
using detail::MysqlError;
using detail::MysqlParam;
using detail::MysqlResult;
using detail::param;

// The database's clock in ms since the epoch (UTC: the session's time_zone), the one every
// process agrees on. NOW(3) is fixed for the length of a statement.
#define CONCERTD_MY_NOW_MS "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"

inline std::int64_t to_millis(TimePoint at) { return at.time_since_epoch().count(); }
inline TimePoint from_millis(std::int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

inline constexpr std::string_view kBegin = "START TRANSACTION";
inline constexpr std::string_view kCommit = "COMMIT";
inline constexpr std::string_view kRollback = "ROLLBACK";

// Columns of a reservation joined with its schedule (alias r, sc), in read_reservation's order.
#define CONCERTD_MY_RESERVATION_COLUMNS \
    "r.id, r.user_id, r.schedule_id, sc.concert_id, r.seat_no, r.price, r.status, r.expires_at"

Reservation read_reservation(const MysqlResult& result, int row, int first_column = 0);

std::optional<Reservation> find_reservation_in(const MysqlResult& result);

// INSERT of one outbox row: co_await conn->execute(kInsertEvent, event_params(event), timeout).
inline constexpr std::string_view kInsertEvent =
    "INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at)"
    " VALUES (?, ?, ?, ?, ?)";
std::vector<MysqlParam> event_params(const Event& event);

// INSERTs every event in as few statements as it can: one per kEventsPerInsertMax (so the
// connection prepares at most that many distinct texts).
inline constexpr std::size_t kEventsPerInsertMax = 32;
boost::asio::awaitable<void> insert_events(detail::MysqlConnection& conn,
                                           const std::vector<Event>& events,
                                           std::chrono::milliseconds timeout);

// "1,2,3": integers for an IN (...) list of a text statement (integers only, so no escaping).
std::string int64_list(const std::vector<std::int64_t>& values);

// Refusal of a write whose lock fence is stale: its holder lost the lease meanwhile.
inline Refusal stale_fence_refusal() {
    return {Rejection::kRateLimited, "the lock's lease ran out before the write; retry"};
}

using adapters::jitter_pause;
using adapters::kConflictAttemptsMax;
using adapters::kOptimisticAttemptsMax;

// Runs `transaction()` again after an InnoDB deadlock (1213) or lock wait timeout (1205), up to
// kConflictAttemptsMax times (adapters/conflict_retry.hpp); the connection rolled it back first.
template <class Transaction>
auto retrying_conflicts(Transaction transaction) -> decltype(transaction()) {
    return adapters::retrying_conflicts<MysqlError>(std::move(transaction));
}

}  // namespace concertd::mysql
