// The product's nouns (SPEC §2): concerts, schedules, seats, reservations, wallets, payments,
// queue tokens and events. Plain values, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace concertd::domain {

using Clock = std::chrono::system_clock;
using TimePoint = std::chrono::time_point<Clock, std::chrono::milliseconds>;

using UserId = std::int64_t;
using ConcertId = std::int64_t;
using ScheduleId = std::int64_t;
using ReservationId = std::int64_t;
using PaymentId = std::int64_t;
using SeatNo = std::int32_t;
using Won = std::int64_t;

enum class SeatStatus { kAvailable, kHeld, kSold };
enum class ReservationStatus { kHeld, kConfirmed, kExpired };
enum class TokenStatus { kWaiting, kActive, kExpired };
enum class WalletEntryType { kCharge, kUse };

std::string_view to_string(SeatStatus status);
std::string_view to_string(ReservationStatus status);
std::string_view to_string(TokenStatus status);
std::string_view to_string(WalletEntryType type);
std::optional<ReservationStatus> parse_reservation_status(std::string_view text);
std::optional<SeatStatus> parse_seat_status(std::string_view text);
std::optional<WalletEntryType> parse_wallet_entry_type(std::string_view text);

struct Concert {
    ConcertId id = 0;
    std::string title;
};

// One seat as stored: a HELD seat whose hold has passed is AVAILABLE to every reader.
struct SeatState {
    SeatNo seat_no = 0;
    Won price_won = 0;
    SeatStatus stored_status = SeatStatus::kAvailable;
    std::optional<TimePoint> hold_expires_at;

    SeatStatus status_at(TimePoint now) const;
};

struct SeatMap {
    ScheduleId schedule_id = 0;
    std::vector<SeatState> seats;  // ordered by seat_no
};

// A date of a concert: fixed when the concert is created.
struct ScheduleDate {
    ScheduleId id = 0;
    TimePoint starts_at;
    std::int32_t total_seats = 0;
};

// A schedule's seats that are not AVAILABLE as stored: it changes with every hold and sale.
struct ScheduleUsage {
    ScheduleId schedule_id = 0;
    std::int32_t sold_seats = 0;
    std::vector<TimePoint> hold_expiries;  // one per stored HELD seat

    // Of the schedule's `total_seats`, those free at `now` (a hold past its time frees its seat).
    std::int32_t available_seats_at(std::int32_t total_seats, TimePoint now) const;
};

struct Reservation {
    ReservationId id = 0;
    UserId user_id = 0;
    ScheduleId schedule_id = 0;
    ConcertId concert_id = 0;
    SeatNo seat_no = 0;
    Won price_won = 0;
    ReservationStatus stored_status = ReservationStatus::kHeld;
    TimePoint expires_at;

    // A HELD reservation whose time has passed reads as EXPIRED before the sweeper gets to it.
    ReservationStatus status_at(TimePoint now) const;
};

struct WalletEntry {
    WalletEntryType type = WalletEntryType::kCharge;
    Won amount_won = 0;
    Won balance_after_won = 0;
    TimePoint at;
};

struct Payment {
    PaymentId id = 0;
    ReservationId reservation_id = 0;
    UserId user_id = 0;
    Won amount_won = 0;
    TimePoint paid_at;
};

struct QueueTicket {
    std::string token;
    UserId user_id = 0;
    TokenStatus status = TokenStatus::kWaiting;
    std::int64_t position = 0;  // 1-based while WAITING, 0 otherwise
    std::int64_t estimated_wait_seconds = 0;
};

// An event as it sits in the outbox and travels on the bus.
struct Event {
    std::int64_t sequence = 0;  // outbox order
    std::string event_id;       // unique, for consumer dedupe
    std::string type;           // reservation.held, points.charged, ...
    std::int64_t aggregate_id = 0;
    std::string payload_json;
    TimePoint occurred_at;
};

namespace event_type {
inline constexpr std::string_view kReservationHeld = "reservation.held";
inline constexpr std::string_view kReservationExpired = "reservation.expired";
inline constexpr std::string_view kReservationConfirmed = "reservation.confirmed";
inline constexpr std::string_view kPointsCharged = "points.charged";
inline constexpr std::string_view kPointsUsed = "points.used";
inline constexpr std::string_view kPaymentCompleted = "payment.completed";
}  // namespace event_type

}  // namespace concertd::domain
