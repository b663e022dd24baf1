#include "adapters/mysql/mysql_rows.hpp"

#include <algorithm>

namespace concertd::mysql {

Reservation read_reservation(const MysqlResult& result, int row, int c) {
    Reservation r;
    r.id = result.int64(row, c + 0);
    r.user_id = result.int64(row, c + 1);
    r.schedule_id = result.int64(row, c + 2);
    r.concert_id = result.int64(row, c + 3);
    r.seat_no = static_cast<SeatNo>(result.int64(row, c + 4));
    r.price_won = result.int64(row, c + 5);
    r.stored_status =
        parse_reservation_status(result.text(row, c + 6)).value_or(ReservationStatus::kExpired);
    r.expires_at = from_millis(result.int64(row, c + 7));
    return r;
}

std::optional<Reservation> find_reservation_in(const MysqlResult& result) {
    if (result.rows() == 0) return std::nullopt;
    return read_reservation(result, 0);
}

std::vector<MysqlParam> event_params(const Event& event) {
    return {param(event.event_id), param(event.type), param(event.aggregate_id),
            param(event.payload_json), param(to_millis(event.occurred_at))};
}

boost::asio::awaitable<void> insert_events(detail::MysqlConnection& conn,
                                           const std::vector<Event>& events,
                                           std::chrono::milliseconds timeout) {
    for (std::size_t first = 0; first < events.size(); first += kEventsPerInsertMax) {
        const std::size_t count = std::min(kEventsPerInsertMax, events.size() - first);
        std::string sql(kInsertEvent);
        std::vector<MysqlParam> params;
        params.reserve(count * 5);
        for (std::size_t i = 0; i < count; ++i) {
            if (i > 0) sql += ", (?, ?, ?, ?, ?)";
            for (auto& value : event_params(events[first + i])) params.push_back(std::move(value));
        }
        co_await conn.execute(sql, std::move(params), timeout);
    }
}

std::string int64_list(const std::vector<std::int64_t>& values) {
    std::string list;
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) list += ',';
        list += std::to_string(values[i]);
    }
    return list;
}

}  // namespace concertd::mysql
