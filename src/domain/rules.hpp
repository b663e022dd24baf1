// The rules of SPEC §2 as pure functions: limits, the wallet's arithmetic, when a seat can be
// held and when a reservation can be paid. Each refusal names the rule it enforces.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "domain/outcome.hpp"
#include "domain/types.hpp"

namespace concertd::domain {

namespace limits {
inline constexpr Won kChargeMinWon = 1;
inline constexpr Won kChargeMaxWon = 1'000'000;
inline constexpr Won kBalanceMaxWon = 100'000'000;
inline constexpr int kHistoryDefault = 20;
inline constexpr int kHistoryMax = 100;
inline constexpr std::size_t kTitleMaxChars = 200;
inline constexpr std::size_t kSchedulesPerConcertMax = 100;
inline constexpr std::int32_t kSeatsPerScheduleMax = 1000;
inline constexpr std::int32_t kDefaultSeatsPerSchedule = 50;
inline constexpr Won kSeatPriceMaxWon = 10'000'000;
inline constexpr std::size_t kIdempotencyKeyMaxChars = 128;
}  // namespace limits

bool is_valid_id(std::int64_t id);

// Balance after charging `amount` to `balance`, or why not.
Result<Won> balance_after_charge(Won balance, Won amount);
// Balance after spending `price` from `balance`, or why not.
Result<Won> balance_after_use(Won balance, Won price);

// Whether `seat` can be held now (a hold whose time has passed frees the seat).
std::optional<Refusal> check_holdable(const SeatState& seat, TimePoint now);

// Whether `user` may pay `reservation` now. Precedence: other user's reservation, already
// confirmed, expired (by status or by clock).
std::optional<Refusal> check_payable(const Reservation& reservation, UserId user, TimePoint now);

// `?limit=` of the points history: absent means the default; out of range or not a number is
// a validation failure.
Result<int> parse_history_limit(std::optional<std::string_view> raw);

bool is_valid_idempotency_key(std::string_view key);

}  // namespace concertd::domain
