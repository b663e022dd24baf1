#include "app/services.hpp"
#include "domain/rules.hpp"

namespace concertd::app {

namespace {

// Compares without an early exit, so timing does not reveal how much of a guess was right.
bool equal_in_constant_time(std::string_view a, std::string_view b) {
    unsigned char difference = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
        difference |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
    }
    return difference == 0 && !b.empty();
}

std::size_t utf8_length(std::string_view text) {
    std::size_t count = 0;
    for (unsigned char c : text) count += (c & 0xc0) != 0x80;
    return count;
}

std::optional<Refusal> validate(const NewConcert& concert) {
    auto title_length = utf8_length(concert.title);
    if (title_length == 0 || title_length > limits::kTitleMaxChars) {
        return Refusal{Rejection::kValidationFailed, "title must be 1 to 200 characters"};
    }
    if (concert.schedules.empty() || concert.schedules.size() > limits::kSchedulesPerConcertMax) {
        return Refusal{Rejection::kValidationFailed, "schedules must have 1 to 100 entries"};
    }
    for (const auto& schedule : concert.schedules) {
        if (schedule.seat_count < 1 || schedule.seat_count > limits::kSeatsPerScheduleMax) {
            return Refusal{Rejection::kValidationFailed, "seatCount must be 1 to 1000"};
        }
        if (schedule.price_won < 1 || schedule.price_won > limits::kSeatPriceMaxWon) {
            return Refusal{Rejection::kValidationFailed, "price must be 1 to 10000000"};
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<Refusal> AdminService::authorize(std::optional<std::string_view> admin_key) const {
    const auto& expected = ports_.settings.admin_key;
    if (!expected || !admin_key || !equal_in_constant_time(*admin_key, *expected)) {
        return Refusal{Rejection::kAdminKeyInvalid, "Admin-Key is missing or wrong"};
    }
    return std::nullopt;
}

Task<Result<CreatedConcert>> AdminService::create_concert(NewConcert concert) {
    if (auto refusal = validate(concert)) co_return *refusal;
    co_return co_await ports_.catalog.create_concert(std::move(concert), ports_.clock.now());
}

}  // namespace concertd::app
