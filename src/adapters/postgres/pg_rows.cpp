#include "adapters/postgres/pg_rows.hpp"

namespace concertd::postgres {

std::string int64_array(std::span<const std::int64_t> values) {
    std::string literal = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) literal += ',';
        literal += std::to_string(values[i]);
    }
    literal += '}';
    return literal;
}

Reservation read_reservation(const PgResult& result, int row, int c) {
    Reservation r;
    r.id = result.int64(row, c + 0);
    r.user_id = result.int64(row, c + 1);
    r.schedule_id = result.int64(row, c + 2);
    r.concert_id = result.int64(row, c + 3);
    r.seat_no = static_cast<SeatNo>(result.int64(row, c + 4));
    r.price_won = result.int64(row, c + 5);
    r.stored_status = parse_reservation_status(result.text(row, c + 6)).value_or(ReservationStatus::kExpired);
    r.expires_at = from_millis(result.int64(row, c + 7));
    return r;
}

std::optional<Reservation> find_reservation_in(const PgResult& result) {
    if (result.rows() == 0) return std::nullopt;
    return read_reservation(result, 0);
}

PgStatement insert_event(const Event& event) {
    return {"INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            {param(event.event_id), param(event.type), param(event.aggregate_id),
             param(event.payload_json), param(to_millis(event.occurred_at))}};
}

}  // namespace concertd::postgres
