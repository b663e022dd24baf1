#include "adapters/http/seat_map_json.hpp"

#include <charconv>

namespace concertd::http {

namespace {

void append_integer(std::string& out, std::int64_t value) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, end);
}

}  // namespace

std::string render_seat_map(const domain::SeatMap& map, domain::TimePoint now) {
    std::string out;
    append_seat_map(out, map, now);
    return out;
}

void append_seat_map(std::string& out, const domain::SeatMap& map, domain::TimePoint now) {
    // ~50 bytes a seat: one allocation for the whole body.
    out.reserve(out.size() + 32 + map.seats.size() * 56);
    out.append("{\"scheduleId\":");
    append_integer(out, map.schedule_id);
    out.append(",\"seats\":[");
    bool first = true;
    for (const auto& seat : map.seats) {
        out.append(first ? "{\"seatNo\":" : ",{\"seatNo\":");
        first = false;
        append_integer(out, seat.seat_no);
        out.append(",\"price\":");
        append_integer(out, seat.price_won);
        out.append(",\"status\":\"");
        out.append(domain::to_string(seat.status_at(now)));
        out.append("\"}");
    }
    out.append("]}");
}

}  // namespace concertd::http
