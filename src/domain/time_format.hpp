// ISO 8601 UTC times on the wire ("2026-12-24T19:00:00Z", milliseconds when non-zero).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "domain/types.hpp"

namespace concertd::domain {

std::string format_iso8601(TimePoint at);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)"; nullopt when malformed or out of range.
std::optional<TimePoint> parse_iso8601(std::string_view text);

}  // namespace concertd::domain
