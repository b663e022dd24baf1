#include "domain/rules.hpp"

#include <charconv>

namespace concertd::domain {

bool is_valid_id(std::int64_t id) { return id > 0; }

Result<Won> balance_after_charge(Won balance, Won amount) {
    if (amount < limits::kChargeMinWon || amount > limits::kChargeMaxWon) {
        return Refusal{Rejection::kValidationFailed, "amount must be between 1 and 1000000"};
    }
    if (balance + amount > limits::kBalanceMaxWon) {
        return Refusal{Rejection::kBalanceLimitExceeded, "balance may not exceed 100000000"};
    }
    return balance + amount;
}

Result<Won> balance_after_use(Won balance, Won price) {
    assert(price > 0);
    if (balance < price) {
        return Refusal{Rejection::kInsufficientBalance, "balance is lower than the price"};
    }
    return balance - price;
}

std::optional<Refusal> check_holdable(const SeatState& seat, TimePoint now) {
    if (seat.status_at(now) != SeatStatus::kAvailable) {
        return Refusal{Rejection::kSeatUnavailable, "seat is held or sold"};
    }
    return std::nullopt;
}

std::optional<Refusal> check_payable(const Reservation& reservation, UserId user, TimePoint now) {
    if (reservation.user_id != user) {
        return Refusal{Rejection::kForbidden, "reservation belongs to another user"};
    }
    switch (reservation.status_at(now)) {
        case ReservationStatus::kHeld: return std::nullopt;
        case ReservationStatus::kConfirmed:
            return Refusal{Rejection::kReservationNotPayable, "reservation is already paid"};
        case ReservationStatus::kExpired:
            return Refusal{Rejection::kReservationExpired, "reservation hold has expired"};
    }
    return Refusal{Rejection::kReservationNotPayable, "reservation is not payable"};
}

Result<int> parse_history_limit(std::optional<std::string_view> raw) {
    if (!raw) return limits::kHistoryDefault;
    int value = 0;
    auto [end, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), value);
    if (ec != std::errc{} || end != raw->data() + raw->size() || value < 1 ||
        value > limits::kHistoryMax) {
        return Refusal{Rejection::kValidationFailed, "limit must be an integer from 1 to 100"};
    }
    return value;
}

bool is_valid_idempotency_key(std::string_view key) {
    if (key.empty() || key.size() > limits::kIdempotencyKeyMaxChars) return false;
    for (char c : key) {
        if (c < 0x21 || c > 0x7e) return false;  // printable ASCII, no spaces
    }
    return true;
}

}  // namespace concertd::domain
