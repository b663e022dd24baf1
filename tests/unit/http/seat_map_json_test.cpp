#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "adapters/http/seat_map_json.hpp"

namespace concertd::http {
namespace {

using namespace domain;

TEST(SeatMapJson, RendersStatusesAsOfNow) {
    TimePoint now(std::chrono::milliseconds(10'000));
    SeatMap map{42,
                {{1, 150000, SeatStatus::kAvailable, std::nullopt},
                 {2, 150000, SeatStatus::kHeld, now + std::chrono::seconds(5)},
                 {3, 99, SeatStatus::kHeld, now},
                 {4, 1, SeatStatus::kSold, std::nullopt}}};
    auto body = render_seat_map(map, now);
    auto parsed = boost::json::parse(body);  // valid JSON, same shape as the API contract
    EXPECT_EQ(parsed, boost::json::parse(R"({"scheduleId":42,"seats":[
        {"seatNo":1,"price":150000,"status":"AVAILABLE"},
        {"seatNo":2,"price":150000,"status":"HELD"},
        {"seatNo":3,"price":99,"status":"AVAILABLE"},
        {"seatNo":4,"price":1,"status":"SOLD"}]})"));
}

TEST(SeatMapJson, EmptyMap) {
    EXPECT_EQ(render_seat_map(SeatMap{7, {}}, TimePoint{}), R"({"scheduleId":7,"seats":[]})");
}

}  // namespace
}  // namespace concertd::http
