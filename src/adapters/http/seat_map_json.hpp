// The seat map is the hottest read (every admitted user polls it): its JSON is written straight
// into one string, without building a JSON tree.
#pragma once

#include <string>

#include "domain/types.hpp"

namespace concertd::http {

// {"scheduleId":N,"seats":[{"seatNo":1,"price":P,"status":"AVAILABLE"},...]}, statuses as
// of `now`.
std::string render_seat_map(const domain::SeatMap& map, domain::TimePoint now);

// The same, appended to `out` (whose capacity a caller may reuse).
void append_seat_map(std::string& out, const domain::SeatMap& map, domain::TimePoint now);

}  // namespace concertd::http
