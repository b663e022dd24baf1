#include "adapters/http/seat_map_body_cache.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>

#include "adapters/http/seat_map_json.hpp"

namespace concertd::http {

namespace {

using domain::TimePoint;

// Direct-mapped by schedule id: a lookup is one comparison. Bounded: kSlots bodies a thread,
// none over kBodyBytesMax (a 1000-seat map renders to ~56 KB).
constexpr std::size_t kSlots = 64;
constexpr std::size_t kBodyBytesMax = 128 * 1024;

struct Entry {
    std::weak_ptr<const domain::SeatMap> map;  // weak: a dropped map is freed, never matched
    TimePoint valid_from;                      // the body holds for valid_from <= now < valid_until
    TimePoint valid_until;
    std::shared_ptr<const std::string> body;
};

thread_local std::array<Entry, kSlots> t_entries;

std::size_t slot_of(domain::ScheduleId schedule) {
    static_assert((kSlots & (kSlots - 1)) == 0, "a power of two");
    const std::uint64_t mixed = static_cast<std::uint64_t>(schedule) * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(mixed >> 32) & (kSlots - 1);
}

// Same control block: the same object (the weak_ptr keeps the block's address from reuse).
bool same_object(const std::weak_ptr<const domain::SeatMap>& kept,
                 const std::shared_ptr<const domain::SeatMap>& map) {
    return !kept.owner_before(map) && !map.owner_before(kept);
}

}  // namespace

std::shared_ptr<const std::string> seat_map_body(const std::shared_ptr<const domain::SeatMap>& map,
                                                 TimePoint now) {
    assert(map);
    Entry& entry = t_entries[slot_of(map->schedule_id)];
    if (same_object(entry.map, map) && entry.valid_from <= now && now < entry.valid_until) {
        return entry.body;
    }
    if (map.use_count() == 1) {  // ours alone: never seen again
        return std::make_shared<const std::string>(render_seat_map(*map, now));
    }

    // status_at(now) of a HELD seat flips at its expiry: the body holds strictly between the
    // latest expiry at or before `now` and the earliest one after it.
    TimePoint from = TimePoint::min();
    TimePoint until = TimePoint::max();
    for (const domain::SeatState& seat : map->seats) {
        if (seat.stored_status != domain::SeatStatus::kHeld || !seat.hold_expires_at) continue;
        const TimePoint expiry = *seat.hold_expires_at;
        if (expiry <= now) {
            from = std::max(from, expiry);
        } else {
            until = std::min(until, expiry);
        }
    }
    entry.map.reset();
    entry.body.reset();
    auto body = std::make_shared<const std::string>(render_seat_map(*map, now));
    if (body->size() > kBodyBytesMax) return body;
    entry.body = body;
    entry.map = map;
    entry.valid_from = from;
    entry.valid_until = until;
    return entry.body;
}

}  // namespace concertd::http
