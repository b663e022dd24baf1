#include "adapters/postgres/pg_reservation_store.hpp"

#include "adapters/postgres/pg_rows.hpp"
#include "adapters/postgres/pg_retry.hpp"
#include "adapters/postgres/pg_token_gate.hpp"
#include "app/events.hpp"
#include "domain/rules.hpp"

namespace concertd::postgres {

using app::HoldCommand;

namespace {

#define CONCERTD_PG_SEAT_SELECT                                                                  \
    "SELECT s.id, sc.concert_id, sc.starts_at, s.price, s.status, s.hold_expires_at, s.version,"  \
    " now_ms() FROM seats s JOIN schedules sc ON sc.id = s.schedule_id"                         \
    " WHERE s.schedule_id = $1 AND s.seat_no = $2"

constexpr const char* kSeatRead = CONCERTD_PG_SEAT_SELECT;
constexpr const char* kSeatForUpdate = CONCERTD_PG_SEAT_SELECT " FOR UPDATE OF s";
// The seat's HELD reservation, live or stale (at most one: the unique index).
constexpr const char* kHeldReservationsOfSeat =
    "SELECT " CONCERTD_PG_RESERVATION_COLUMNS
    " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id"
    " WHERE r.seat_id = (SELECT id FROM seats WHERE schedule_id = $1 AND seat_no = $2)"
    " AND r.status = 'HELD'";
constexpr const char* kNextReservationId = "SELECT nextval('reservations_id_seq')";
// The optimistic read in one statement: the seat, its HELD reservation (if any) and the next id.
// No lock and no transaction: the version the claim checks is what makes it safe. The LIMIT
// keeps the lateral a probe of the seat's unique index: flattened into a plain join, a plan
// made while `reservations` was near empty (a fresh database at a ticket opening) scans every
// HELD reservation for each hold (tests/e2e/test_pg_explain.py checks both).
constexpr const char* kSeatWithHeldReservation =
    "SELECT s.id, sc.concert_id, sc.starts_at, s.price, s.status, s.hold_expires_at, s.version,"
    " now_ms(), nextval('reservations_id_seq'), " CONCERTD_PG_RESERVATION_COLUMNS
    " FROM seats s JOIN schedules sc ON sc.id = s.schedule_id"
    " LEFT JOIN LATERAL (SELECT id, user_id, schedule_id, seat_no, price, status, expires_at"
    " FROM reservations WHERE seat_id = s.id AND status = 'HELD' LIMIT 1) r ON true"
    " WHERE s.schedule_id = $1 AND s.seat_no = $2";
constexpr int kHeldColumnsAt = 9;  // where kSeatWithHeldReservation's reservation columns start

// What a hold reads before it writes.
struct SeatSnapshot {
    std::optional<std::int64_t> seat_id;
    ConcertId concert_id = 0;
    TimePoint starts_at;
    SeatState state;
    std::int64_t version = 0;
    TimePoint db_now;
    std::vector<Reservation> held;
    ReservationId next_id = 0;
};

void read_seat(SeatSnapshot& s, const PgResult& seat, SeatNo seat_no) {
    if (seat.rows() > 0) {
        s.seat_id = seat.int64(0, 0);
        s.concert_id = seat.int64(0, 1);
        s.starts_at = from_millis(seat.int64(0, 2));
        s.state.seat_no = seat_no;
        s.state.price_won = seat.int64(0, 3);
        s.state.stored_status = parse_seat_status(seat.text(0, 4)).value_or(SeatStatus::kSold);
        if (auto expiry = seat.optional_int64(0, 5)) s.state.hold_expires_at = from_millis(*expiry);
        s.version = seat.int64(0, 6);
        s.db_now = from_millis(seat.int64(0, 7));
    }
}

SeatSnapshot read_snapshot(const PgResult& seat, const PgResult& held, const PgResult& next_id,
                           SeatNo seat_no) {
    SeatSnapshot s;
    read_seat(s, seat, seat_no);
    for (int row = 0; row < held.rows(); ++row) s.held.push_back(read_reservation(held, row));
    s.next_id = next_id.int64(0, 0);
    return s;
}

SeatSnapshot read_joined_snapshot(const PgResult& seat, SeatNo seat_no) {
    SeatSnapshot s;
    read_seat(s, seat, seat_no);
    if (seat.rows() == 0) return s;
    s.next_id = seat.int64(0, 8);
    if (!seat.is_null(0, kHeldColumnsAt)) s.held.push_back(read_reservation(seat, 0, kHeldColumnsAt));
    return s;
}

std::vector<PgStatement> snapshot_statements(const HoldCommand& c, const char* seat_sql) {
    return {{seat_sql, {param(c.schedule_id), param(std::int64_t{c.seat_no})}},
            {kHeldReservationsOfSeat, {param(c.schedule_id), param(std::int64_t{c.seat_no})}},
            {kNextReservationId, {}}};
}

// Adds the queue-token gate to a pipeline when the command carries a token; returns where its
// result will be (or nullopt).
std::optional<std::size_t> add_token_gate(std::vector<PgStatement>& statements,
                                          const HoldCommand& c) {
    if (!c.queue_token) return std::nullopt;
    statements.push_back(token_gate_statement(*c.queue_token));
    return statements.size() - 1;
}

std::optional<Refusal> judge_gate(const std::vector<PgResult>& results,
                                  std::optional<std::size_t> gate, const HoldCommand& c) {
    if (!gate) return std::nullopt;
    return judge_token_gate(results[*gate], c.user_id);
}

void append(std::vector<PgStatement>& statements, std::vector<PgStatement> more) {
    for (auto& statement : more) statements.push_back(std::move(statement));
}

std::optional<Refusal> check_hold(const SeatSnapshot& s) {
    if (!s.seat_id) return Refusal{Rejection::kNotFound, "no such schedule or seat"};
    if (s.starts_at <= s.db_now) {
        return Refusal{Rejection::kSeatUnavailable, "the performance has already started"};
    }
    return check_holdable(s.state, s.db_now);
}

std::chrono::milliseconds hold_duration(const HoldCommand& c) { return c.expires_at - c.now; }

Reservation new_reservation(const SeatSnapshot& s, const HoldCommand& c, TimePoint expires_at) {
    Reservation r;
    r.id = s.next_id;
    r.user_id = c.user_id;
    r.schedule_id = c.schedule_id;
    r.concert_id = s.concert_id;
    r.seat_no = c.seat_no;
    r.price_won = s.state.price_won;
    r.stored_status = ReservationStatus::kHeld;
    r.expires_at = expires_at;
    return r;
}

// The writes after the seat is claimed: resolve the stale hold, insert the reservation and the
// events, commit.
std::vector<PgStatement> record_hold(const SeatSnapshot& s, const Reservation& reservation) {
    std::vector<PgStatement> statements;
    for (auto stale : s.held) {
        // Only a hold whose time has passed: a live one read here (it committed between this
        // transaction's statements) stays, and the unique index refuses the new hold.
        if (stale.expires_at > s.db_now) continue;
        statements.push_back({"UPDATE reservations SET status = 'EXPIRED', resolved_at = $2,"
                              " version = version + 1"
                              " WHERE id = $1 AND status = 'HELD' AND expires_at <= $2",
                              {param(stale.id), param(to_millis(s.db_now))}});
        stale.stored_status = ReservationStatus::kExpired;
        statements.push_back(insert_event(app::reservation_expired_event(stale, s.db_now)));
    }
    statements.push_back(
        {"INSERT INTO reservations (id, user_id, schedule_id, seat_id, seat_no, price, status,"
         " created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, 'HELD', $7, $8)",
         {param(reservation.id), param(reservation.user_id), param(reservation.schedule_id),
          param(*s.seat_id), param(std::int64_t{reservation.seat_no}), param(reservation.price_won),
          param(to_millis(s.db_now)), param(to_millis(reservation.expires_at))}});
    statements.push_back(insert_event(app::reservation_held_event(reservation, s.db_now)));
    statements.push_back(kCommit);
    return statements;
}

// The optimistic claim and all it writes as one statement: the seat if its version is still the
// one read, then the reservation and its event only if the seat was claimed. A statement is its
// own transaction, so no row stays locked across a round trip (a stale hold to resolve takes
// the transaction path instead: claim_seat, then record_hold).
constexpr const char* kClaimAndRecord =
    "WITH claimed AS (UPDATE seats SET status = 'HELD', hold_expires_at = $3::bigint,"
    " version = version + 1 WHERE id = $1 AND version = $2 RETURNING id),"
    " held AS (INSERT INTO reservations (id, user_id, schedule_id, seat_id, seat_no, price,"
    " status, created_at, expires_at) SELECT $4::bigint, $5::bigint, $6::bigint, id,"
    " $7::integer, $8::bigint, 'HELD', $9::bigint, $3::bigint FROM claimed RETURNING id)"
    " INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at)"
    " SELECT $10::text, $11::text, $12::bigint, $13::text, $14::bigint FROM held";

PgStatement claim_and_record(const SeatSnapshot& s, const Reservation& r) {
    const auto event = app::reservation_held_event(r, s.db_now);
    return {kClaimAndRecord,
            {param(*s.seat_id), param(s.version), param(to_millis(r.expires_at)), param(r.id),
             param(r.user_id), param(r.schedule_id), param(std::int64_t{r.seat_no}),
             param(r.price_won), param(to_millis(s.db_now)), param(event.event_id),
             param(event.type), param(event.aggregate_id), param(event.payload_json),
             param(to_millis(event.occurred_at))}};
}

PgStatement claim_seat(const SeatSnapshot& s, const Reservation& r) {
    return {"UPDATE seats SET status = 'HELD', hold_expires_at = $3, version = version + 1"
            " WHERE id = $1 AND version = $2",
            {param(*s.seat_id), param(s.version), param(to_millis(r.expires_at))}};
}

PgStatement mark_seat_held(std::int64_t seat_id, TimePoint expires_at) {
    return {"UPDATE seats SET status = 'HELD', hold_expires_at = $2, version = version + 1"
            " WHERE id = $1",
            {param(seat_id), param(to_millis(expires_at))}};
}

// The unique index refused a second live hold: the strategy lost a race it could not see.
template <class Fn>
auto refusing_duplicates(Fn fn) -> decltype(fn()) {
    try {
        co_return co_await fn();
    } catch (const detail::PgError& error) {
        if (!error.is_unique_violation()) throw;
    }
    co_return Refusal{Rejection::kSeatUnavailable, "seat is held or sold"};
}

}  // namespace

app::Task<Result<Reservation>> PgReservationStore::hold(HoldCommand command) {
    co_return co_await retrying_conflicts([&] { return hold_once(command); });
}

app::Task<Result<Reservation>> PgReservationStore::hold_once(HoldCommand command) {
    switch (command.strategy) {
        case app::Strategy::kOptimistic: co_return co_await hold_optimistic(command);
        case app::Strategy::kAtomic: co_return co_await hold_atomic(command);
        case app::Strategy::kPessimistic: co_return co_await hold_locked(command, true);
        case app::Strategy::kDistributed: co_return co_await hold_locked(command, false);
    }
    co_return co_await hold_locked(command, true);
}

// pessimistic (row lock) and distributed (the lock port already serializes this seat).
app::Task<Result<Reservation>> PgReservationStore::hold_locked(HoldCommand c, bool row_lock) {
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    std::vector<PgStatement> read{kBegin};
    const auto gate = add_token_gate(read, c);
    const std::size_t fence_at = read.size();
    if (c.fence) {
        // Fenced write: only a fence newer than the seat's last one may go on (and it locks
        // the row until commit).
        read.push_back({"UPDATE seats SET lock_fence = $3"
                        " WHERE schedule_id = $1 AND seat_no = $2 AND lock_fence < $3",
                        {param(c.schedule_id), param(std::int64_t{c.seat_no}),
                         param(static_cast<std::int64_t>(*c.fence))}});
    }
    const std::size_t first = read.size();
    append(read, snapshot_statements(c, row_lock ? kSeatForUpdate : kSeatRead));
    auto results = co_await conn->pipeline(all(read), timeout);
    auto snapshot = read_snapshot(results[first], results[first + 1], results[first + 2], c.seat_no);
    std::optional<Refusal> refusal = judge_gate(results, gate, c);
    if (!refusal) refusal = check_hold(snapshot);
    if (!refusal && c.fence && results[fence_at].affected_rows() == 0) {
        refusal = stale_fence_refusal();
    }
    if (refusal) {
        co_await conn->execute("ROLLBACK", {}, timeout);
        co_return *refusal;
    }
    auto reservation = new_reservation(snapshot, c, snapshot.db_now + hold_duration(c));
    co_return co_await refusing_duplicates([&]() -> app::Task<Result<Reservation>> {
        auto writes = record_hold(snapshot, reservation);
        writes.insert(writes.begin(), mark_seat_held(*snapshot.seat_id, reservation.expires_at));
        co_await conn->pipeline(all(writes), timeout);
        co_return reservation;
    });
}

app::Task<Result<Reservation>> PgReservationStore::hold_optimistic(HoldCommand c) {
    auto timeout = pool_.options().statement_timeout;
    for (int attempt = 1; attempt <= kOptimisticAttemptsMax; ++attempt) {
        std::optional<Result<Reservation>> outcome;  // nullopt: the claim lost a race
        {
            auto conn = co_await pool_.acquire();
            std::vector<PgStatement> read;
            const auto gate = add_token_gate(read, c);
            const std::size_t seat_at = read.size();
            read.push_back({kSeatWithHeldReservation,
                            {param(c.schedule_id), param(std::int64_t{c.seat_no})}});
            auto results = co_await conn->pipeline(all(read), timeout);
            if (auto refusal = judge_gate(results, gate, c)) co_return *refusal;
            auto snapshot = read_joined_snapshot(results[seat_at], c.seat_no);
            // A taken seat is refused from the read alone: the loser never writes.
            if (auto refusal = check_hold(snapshot)) co_return *refusal;
            auto reservation = new_reservation(snapshot, c, snapshot.db_now + hold_duration(c));
            using Outcome = std::optional<Result<Reservation>>;
            outcome = co_await refusing_duplicates([&]() -> app::Task<Outcome> {
                if (snapshot.held.empty()) {
                    const std::vector<PgStatement> write{claim_and_record(snapshot, reservation)};
                    auto written = co_await conn->pipeline(all(write), timeout);
                    if (written[0].affected_rows() == 0) co_return std::nullopt;
                    co_return reservation;
                }
                const std::vector<PgStatement> claim{kBegin, claim_seat(snapshot, reservation)};
                auto claimed = co_await conn->pipeline(all(claim), timeout);
                if (claimed[1].affected_rows() == 0) {
                    co_await conn->execute("ROLLBACK", {}, timeout);
                    co_return std::nullopt;
                }
                co_await conn->pipeline(all(record_hold(snapshot, reservation)), timeout);
                co_return reservation;
            });
        }
        if (outcome) co_return std::move(*outcome);
        stats_.hold_retries.add();
        if (attempt < kOptimisticAttemptsMax) co_await jitter_pause(attempt);
    }
    // Still losing races after every retry: the seat is contended; take the row lock once.
    co_return co_await hold_locked(c, true);
}

app::Task<Result<Reservation>> PgReservationStore::hold_atomic(HoldCommand c) {
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    std::vector<PgStatement> claim{kBegin};
    // The gate runs before the claim in the same transaction: a refused token rolls it back.
    const auto gate = add_token_gate(claim, c);
    const std::size_t claim_at = claim.size();
    claim.push_back(
        {"UPDATE seats s SET status = 'HELD', hold_expires_at = now_ms() + $3,"
         " version = s.version + 1"
         " FROM schedules sc WHERE sc.id = s.schedule_id AND s.schedule_id = $1"
         " AND s.seat_no = $2 AND sc.starts_at > now_ms()"
         " AND (s.status = 'AVAILABLE' OR (s.status = 'HELD' AND s.hold_expires_at <= now_ms()))"
         " RETURNING s.id, sc.concert_id, sc.starts_at, s.price, s.status, s.hold_expires_at,"
         " s.version, now_ms()",
         {param(c.schedule_id), param(std::int64_t{c.seat_no}),
          param(static_cast<std::int64_t>(hold_duration(c).count()))}});
    auto tail = snapshot_statements(c, kSeatRead);
    claim.push_back(tail[1]);  // the stale hold, if any
    claim.push_back(tail[2]);  // the reservation id
    auto results = co_await conn->pipeline(all(claim), timeout);
    if (auto refusal = judge_gate(results, gate, c)) {
        co_await conn->execute("ROLLBACK", {}, timeout);
        co_return *refusal;
    }
    if (results[claim_at].rows() == 0) {
        // Only the refusal path reads, to tell an unknown seat from a taken one: in the same
        // round trip as the ROLLBACK (a refusal costs two, as on the other strategies).
        std::vector<PgStatement> refuse{
            kRollback, {kSeatRead, {param(c.schedule_id), param(std::int64_t{c.seat_no})}}};
        auto answers = co_await conn->pipeline(all(refuse), timeout);
        if (answers[1].rows() == 0) {
            co_return Refusal{Rejection::kNotFound, "no such schedule or seat"};
        }
        co_return Refusal{Rejection::kSeatUnavailable, "seat is held or sold"};
    }
    auto snapshot = read_snapshot(results[claim_at], results[claim_at + 1], results[claim_at + 2],
                                  c.seat_no);
    auto reservation = new_reservation(snapshot, c, *snapshot.state.hold_expires_at);
    co_return co_await refusing_duplicates([&]() -> app::Task<Result<Reservation>> {
        co_await conn->pipeline(all(record_hold(snapshot, reservation)), timeout);
        co_return reservation;
    });
}

app::Task<std::optional<Reservation>> PgReservationStore::find(ReservationId id) {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute(
        "SELECT " CONCERTD_PG_RESERVATION_COLUMNS
        " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id WHERE r.id = $1",
        {param(id)}, pool_.options().statement_timeout);
    co_return find_reservation_in(result);
}

app::Task<std::vector<Reservation>> PgReservationStore::expire_due(TimePoint now, int batch) {
    co_return co_await retrying_conflicts([&] { return expire_due_once(batch); });
}

app::Task<std::vector<Reservation>> PgReservationStore::expire_due_once(int batch) {
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    // Lock each due hold's seat and reservation together and skip any that someone holds: a
    // hold locks the seat before the reservation, a payment the reservation before the seat;
    // a sweeper that waited on either could deadlock with them.
    std::vector<PgStatement> claim{
        kBegin,
        {"SELECT r.id, s.id FROM reservations r JOIN seats s ON s.id = r.seat_id"
         " WHERE r.status = 'HELD' AND r.expires_at <= now_ms() ORDER BY r.expires_at LIMIT $1"
         " FOR UPDATE OF s, r SKIP LOCKED",
         {param(std::int64_t{batch})}}};
    auto claimed = co_await conn->pipeline(all(claim), timeout);
    if (claimed[1].rows() == 0) {
        co_await conn->execute("ROLLBACK", {}, timeout);
        co_return std::vector<Reservation>{};
    }
    std::vector<std::int64_t> reservations, seats;
    for (int row = 0; row < claimed[1].rows(); ++row) {
        reservations.push_back(claimed[1].int64(row, 0));
        seats.push_back(claimed[1].int64(row, 1));
    }
    const auto reservation_ids = int64_array(reservations);
    const auto seat_ids = int64_array(seats);
    std::vector<PgStatement> resolve{
        {"UPDATE reservations SET status = 'EXPIRED', resolved_at = now_ms(),"
         " version = version + 1 WHERE id = ANY($1::bigint[])"
         " RETURNING id, user_id, schedule_id,"
         " (SELECT concert_id FROM schedules WHERE schedules.id = reservations.schedule_id),"
         " seat_no, price, status, expires_at, now_ms()",
         {param(reservation_ids)}},
        // Not a newer hold: only seats whose hold has passed.
        {"UPDATE seats SET status = 'AVAILABLE', hold_expires_at = NULL, version = version + 1"
         " WHERE id = ANY($1::bigint[]) AND status = 'HELD' AND hold_expires_at <= now_ms()",
         {param(seat_ids)}}};
    auto results = co_await conn->pipeline(all(resolve), timeout);
    std::vector<Reservation> expired;
    std::vector<PgStatement> events;
    for (int row = 0; row < results[0].rows(); ++row) {
        auto reservation = read_reservation(results[0], row);
        events.push_back(insert_event(
            app::reservation_expired_event(reservation, from_millis(results[0].int64(row, 8)))));
        expired.push_back(reservation);
    }
    events.push_back(kCommit);
    co_await conn->pipeline(all(events), timeout);
    co_return expired;
}

}  // namespace concertd::postgres
