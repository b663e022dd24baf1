// Table-driven tests of SPEC §2's rules: one line per case with its expected outcome.
#include <gtest/gtest.h>

#include "domain/rules.hpp"
#include "domain/time_format.hpp"

namespace concertd::domain {
namespace {

TimePoint at_ms(std::int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

struct ChargeCase {
    Won balance, amount;
    std::optional<Won> expected;
    std::optional<Rejection> refusal;
};

TEST(WalletRules, ChargeLimits) {
    const ChargeCase cases[] = {
        {0, 1, 1, std::nullopt},
        {0, 1'000'000, 1'000'000, std::nullopt},
        {0, 0, std::nullopt, Rejection::kValidationFailed},
        {0, -5, std::nullopt, Rejection::kValidationFailed},
        {0, 1'000'001, std::nullopt, Rejection::kValidationFailed},
        {99'000'000, 1'000'000, 100'000'000, std::nullopt},
        {99'000'001, 1'000'000, std::nullopt, Rejection::kBalanceLimitExceeded},
        {100'000'000, 1, std::nullopt, Rejection::kBalanceLimitExceeded},
    };
    for (const auto& c : cases) {
        auto result = balance_after_charge(c.balance, c.amount);
        if (c.expected) {
            ASSERT_TRUE(result.ok()) << c.balance << " + " << c.amount;
            EXPECT_EQ(result.value(), *c.expected);
        } else {
            ASSERT_FALSE(result.ok()) << c.balance << " + " << c.amount;
            EXPECT_EQ(result.refusal().code, *c.refusal);
        }
    }
}

TEST(WalletRules, UseNeverGoesNegative) {
    EXPECT_EQ(balance_after_use(100, 100).value(), 0);
    EXPECT_EQ(balance_after_use(150, 100).value(), 50);
    EXPECT_EQ(balance_after_use(99, 100).refusal().code, Rejection::kInsufficientBalance);
    EXPECT_EQ(balance_after_use(0, 1).refusal().code, Rejection::kInsufficientBalance);
}

TEST(SeatRules, HoldExpiresByClock) {
    SeatState held{7, 1000, SeatStatus::kHeld, at_ms(5000)};
    EXPECT_EQ(held.status_at(at_ms(4999)), SeatStatus::kHeld);
    EXPECT_EQ(held.status_at(at_ms(5000)), SeatStatus::kAvailable);
    EXPECT_TRUE(check_holdable(held, at_ms(5000)) == std::nullopt);
    EXPECT_EQ(check_holdable(held, at_ms(4000))->code, Rejection::kSeatUnavailable);

    SeatState sold{7, 1000, SeatStatus::kSold, std::nullopt};
    EXPECT_EQ(sold.status_at(at_ms(1'000'000)), SeatStatus::kSold);
    EXPECT_EQ(check_holdable(sold, at_ms(0))->code, Rejection::kSeatUnavailable);
}

TEST(SeatRules, AvailableCountIgnoresPassedHolds) {
    ScheduleUsage usage{1, 3, {at_ms(100), at_ms(200), at_ms(300)}};
    EXPECT_EQ(usage.available_seats_at(50, at_ms(50)), 44);
    EXPECT_EQ(usage.available_seats_at(50, at_ms(200)), 46);
    EXPECT_EQ(usage.available_seats_at(50, at_ms(1000)), 47);
}

struct PayCase {
    ReservationStatus stored;
    std::int64_t expires_ms, now_ms;
    UserId payer;
    std::optional<Rejection> refusal;
};

TEST(PaymentRules, PayablePrecedence) {
    const PayCase cases[] = {
        {ReservationStatus::kHeld, 1000, 999, 1, std::nullopt},
        {ReservationStatus::kHeld, 1000, 1000, 1, Rejection::kReservationExpired},
        {ReservationStatus::kExpired, 5000, 10, 1, Rejection::kReservationExpired},
        {ReservationStatus::kConfirmed, 1000, 5000, 1, Rejection::kReservationNotPayable},
        {ReservationStatus::kHeld, 1000, 10, 2, Rejection::kForbidden},
        {ReservationStatus::kConfirmed, 1000, 10, 2, Rejection::kForbidden},
    };
    for (const auto& c : cases) {
        Reservation r;
        r.id = 9;
        r.user_id = 1;
        r.price_won = 100;
        r.stored_status = c.stored;
        r.expires_at = at_ms(c.expires_ms);
        auto refusal = check_payable(r, c.payer, at_ms(c.now_ms));
        if (c.refusal) {
            ASSERT_TRUE(refusal.has_value());
            EXPECT_EQ(refusal->code, *c.refusal);
        } else {
            EXPECT_FALSE(refusal.has_value());
        }
    }
}

TEST(QueryRules, HistoryLimit) {
    EXPECT_EQ(parse_history_limit(std::nullopt).value(), 20);
    EXPECT_EQ(parse_history_limit("1").value(), 1);
    EXPECT_EQ(parse_history_limit("100").value(), 100);
    for (const char* bad : {"0", "101", "abc", "", "-1", "5x", "99999999999999999999"}) {
        EXPECT_FALSE(parse_history_limit(std::string_view(bad)).ok()) << bad;
    }
}

TEST(QueryRules, IdempotencyKey) {
    EXPECT_TRUE(is_valid_idempotency_key("pay-123_abc"));
    EXPECT_FALSE(is_valid_idempotency_key(""));
    EXPECT_FALSE(is_valid_idempotency_key("has space"));
    EXPECT_FALSE(is_valid_idempotency_key(std::string(129, 'k')));
    EXPECT_TRUE(is_valid_idempotency_key(std::string(128, 'k')));
}

TEST(TimeFormat, RoundTrip) {
    auto parsed = parse_iso8601("2026-12-24T19:00:00Z");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(format_iso8601(*parsed), "2026-12-24T19:00:00Z");
    EXPECT_EQ(format_iso8601(*parse_iso8601("2026-12-24T19:00:00.250Z")), "2026-12-24T19:00:00.250Z");
    EXPECT_EQ(format_iso8601(*parse_iso8601("2026-12-25T04:00:00+09:00")), "2026-12-24T19:00:00Z");
    for (const char* bad : {"", "2026-12-24", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                            "2026-12-24T25:00:00Z", "2026-12-24T19:00:00", "2026-12-24 19:00:00Z",
                            "2026-12-24T19:00:00Zjunk"}) {
        EXPECT_FALSE(parse_iso8601(bad).has_value()) << bad;
    }
}

}  // namespace
}  // namespace concertd::domain
