// Statements and row readers the PostgreSQL stores share: reservations, seats, outbox events.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adapters/postgres/detail/pg_connection.hpp"
#include "adapters/postgres/pg_pool.hpp"
#include "domain/outcome.hpp"
#include "domain/types.hpp"

namespace concertd::postgres {

using namespace concertd::domain;  // NOLINT
using detail::param;
using detail::PgParam;
using detail::PgResult;
using detail::PgStatement;

inline std::int64_t to_millis(TimePoint at) { return at.time_since_epoch().count(); }
inline TimePoint from_millis(std::int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

// A bigint[] literal ("{1,2,3}"): one statement for a whole batch (`= ANY($1::bigint[])`).
std::string int64_array(std::span<const std::int64_t> values);

inline const PgStatement kBegin{"BEGIN", {}};
inline const PgStatement kCommit{"COMMIT", {}};
inline const PgStatement kRollback{"ROLLBACK", {}};

// Columns of a reservation joined with its schedule (alias r, sc), in read_reservation's order.
#define CONCERTD_PG_RESERVATION_COLUMNS \
    "r.id, r.user_id, r.schedule_id, sc.concert_id, r.seat_no, r.price, r.status, r.expires_at"

Reservation read_reservation(const PgResult& result, int row, int first_column = 0);

std::optional<Reservation> find_reservation_in(const PgResult& result);

// INSERT of one outbox row.
PgStatement insert_event(const Event& event);

// Refusal of a write whose lock fence is stale: its holder lost the lease meanwhile.
inline Refusal stale_fence_refusal() {
    return {Rejection::kRateLimited, "the lock's lease ran out before the write; retry"};
}

// The round trip's statements, as a span for pipeline().
inline std::span<const PgStatement> all(const std::vector<PgStatement>& statements) {
    return {statements.data(), statements.size()};
}

}  // namespace concertd::postgres
