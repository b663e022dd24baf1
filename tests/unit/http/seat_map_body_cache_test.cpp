// The per-thread body cache must always answer exactly what render_seat_map would.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "adapters/http/seat_map_body_cache.hpp"
#include "adapters/http/seat_map_json.hpp"

namespace concertd::http {
namespace {

using namespace domain;
using std::chrono::milliseconds;

constexpr TimePoint kNow{milliseconds(1'000'000)};

std::shared_ptr<const SeatMap> make_map(ScheduleId schedule, std::vector<SeatState> seats) {
    return std::make_shared<const SeatMap>(SeatMap{schedule, std::move(seats)});
}

// Renders at each time, in order, through the cache and directly.
void expect_exact(const std::shared_ptr<const SeatMap>& map, const std::vector<TimePoint>& times) {
    for (TimePoint at : times) {
        SCOPED_TRACE(at.time_since_epoch().count());
        EXPECT_EQ(*seat_map_body(map, at), render_seat_map(*map, at));
    }
}

TEST(SeatMapBodyCache, ExactAcrossHoldExpiriesAndClockSteps) {
    const auto map = make_map(1, {{1, 100, SeatStatus::kAvailable, std::nullopt},
                                  {2, 100, SeatStatus::kHeld, kNow + milliseconds(10)},
                                  {3, 100, SeatStatus::kHeld, kNow - milliseconds(5)},
                                  {4, 100, SeatStatus::kHeld, kNow + milliseconds(20)},
                                  {5, 100, SeatStatus::kSold, std::nullopt},
                                  {6, 100, SeatStatus::kHeld, std::nullopt}});
    const auto holder = map;  // a catalog cache's reference: the body is kept
    expect_exact(map, {kNow, kNow + milliseconds(9), kNow + milliseconds(10),
                       kNow + milliseconds(15), kNow + milliseconds(20), kNow + milliseconds(99),
                       kNow, kNow - milliseconds(5), kNow - milliseconds(6), kNow + milliseconds(9),
                       TimePoint::max(), TimePoint::min()});
}

TEST(SeatMapBodyCache, ANewObjectForTheSameScheduleIsRenderedAgain) {
    auto old_map = make_map(7, {{1, 100, SeatStatus::kAvailable, std::nullopt}});
    const auto old_holder = old_map;
    EXPECT_EQ(*seat_map_body(old_map, kNow), render_seat_map(*old_map, kNow));
    const auto new_map = make_map(7, {{1, 100, SeatStatus::kSold, std::nullopt}});
    const auto new_holder = new_map;
    expect_exact(new_map, {kNow, kNow});
    expect_exact(old_map, {kNow});  // a reader still on the older version gets its bytes
}

TEST(SeatMapBodyCache, AReusedAddressNeverMatches) {
    for (int round = 0; round < 50; ++round) {
        const SeatStatus status = round % 2 == 0 ? SeatStatus::kSold : SeatStatus::kAvailable;
        auto map = make_map(9, {{1, round, status, std::nullopt}});
        auto holder = map;
        expect_exact(map, {kNow});
    }  // each map freed before the next is made, often at the same address
}

TEST(SeatMapBodyCache, AMapOnlyTheCallerHoldsIsRenderedToo) {
    expect_exact(make_map(11, {{1, 5, SeatStatus::kHeld, kNow + milliseconds(1)}}),
                 {kNow, kNow + milliseconds(1)});
}

TEST(SeatMapBodyCache, SchedulesSharingASlotDoNotMix) {
    std::vector<std::shared_ptr<const SeatMap>> maps;
    for (ScheduleId schedule = 1; schedule <= 300; ++schedule) {
        maps.push_back(make_map(schedule, {{1, schedule, SeatStatus::kAvailable, std::nullopt}}));
    }
    const auto holders = maps;
    for (int pass = 0; pass < 2; ++pass) {
        for (const auto& map : maps) expect_exact(map, {kNow});
    }
}

}  // namespace
}  // namespace concertd::http
