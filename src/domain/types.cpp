#include "domain/types.hpp"

#include <algorithm>

namespace concertd::domain {

std::string_view to_string(SeatStatus status) {
    switch (status) {
        case SeatStatus::kAvailable: return "AVAILABLE";
        case SeatStatus::kHeld: return "HELD";
        case SeatStatus::kSold: return "SOLD";
    }
    return "AVAILABLE";
}

std::string_view to_string(ReservationStatus status) {
    switch (status) {
        case ReservationStatus::kHeld: return "HELD";
        case ReservationStatus::kConfirmed: return "CONFIRMED";
        case ReservationStatus::kExpired: return "EXPIRED";
    }
    return "EXPIRED";
}

std::string_view to_string(TokenStatus status) {
    switch (status) {
        case TokenStatus::kWaiting: return "WAITING";
        case TokenStatus::kActive: return "ACTIVE";
        case TokenStatus::kExpired: return "EXPIRED";
    }
    return "EXPIRED";
}

std::string_view to_string(WalletEntryType type) {
    return type == WalletEntryType::kCharge ? "CHARGE" : "USE";
}

std::optional<ReservationStatus> parse_reservation_status(std::string_view text) {
    if (text == "HELD") return ReservationStatus::kHeld;
    if (text == "CONFIRMED") return ReservationStatus::kConfirmed;
    if (text == "EXPIRED") return ReservationStatus::kExpired;
    return std::nullopt;
}

std::optional<SeatStatus> parse_seat_status(std::string_view text) {
    if (text == "AVAILABLE") return SeatStatus::kAvailable;
    if (text == "HELD") return SeatStatus::kHeld;
    if (text == "SOLD") return SeatStatus::kSold;
    return std::nullopt;
}

std::optional<WalletEntryType> parse_wallet_entry_type(std::string_view text) {
    if (text == "CHARGE") return WalletEntryType::kCharge;
    if (text == "USE") return WalletEntryType::kUse;
    return std::nullopt;
}

SeatStatus SeatState::status_at(TimePoint now) const {
    if (stored_status == SeatStatus::kHeld && (!hold_expires_at || *hold_expires_at <= now)) {
        return SeatStatus::kAvailable;
    }
    return stored_status;
}

std::int32_t ScheduleUsage::available_seats_at(std::int32_t total_seats, TimePoint now) const {
    auto live_holds = std::count_if(hold_expiries.begin(), hold_expiries.end(),
                                    [now](TimePoint expiry) { return expiry > now; });
    return total_seats - sold_seats - static_cast<std::int32_t>(live_holds);
}

ReservationStatus Reservation::status_at(TimePoint now) const {
    if (stored_status == ReservationStatus::kHeld && expires_at <= now) {
        return ReservationStatus::kExpired;
    }
    return stored_status;
}

}  // namespace concertd::domain
