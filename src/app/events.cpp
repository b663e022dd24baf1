#include "app/events.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <random>

#include "domain/time_format.hpp"

namespace concertd::app {

using namespace domain;

namespace {

Event make_event(std::string_view type, std::int64_t aggregate_id, boost::json::object payload,
                 TimePoint at) {
    Event event;
    event.event_id = new_event_id();
    event.type = std::string(type);
    event.aggregate_id = aggregate_id;
    event.occurred_at = at;
    payload["eventId"] = event.event_id;
    payload["type"] = event.type;
    payload["occurredAt"] = format_iso8601(at);
    event.payload_json = boost::json::serialize(payload);
    return event;
}

boost::json::object reservation_payload(const Reservation& r) {
    return {{"reservationId", r.id},       {"userId", r.user_id},
            {"scheduleId", r.schedule_id}, {"seatNo", r.seat_no},
            {"price", r.price_won},        {"expiresAt", format_iso8601(r.expires_at)}};
}

}  // namespace

std::string new_event_id() {
    // Seeded with 256 bits: a 32-bit seed would make two threads or restarts repeat ids.
    thread_local std::mt19937_64 random = [] {
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(),
                           device()};
        return std::mt19937_64(seed);
    }();
    std::uint64_t high = random(), low = random();
    high = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
    low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;    // variant 1
    char text[37];
    std::snprintf(text, sizeof text, "%08x-%04x-%04x-%04x-%012llx",
                  static_cast<unsigned>(high >> 32), static_cast<unsigned>((high >> 16) & 0xffff),
                  static_cast<unsigned>(high & 0xffff), static_cast<unsigned>(low >> 48),
                  static_cast<unsigned long long>(low & 0xffffffffffffULL));
    return std::string(text, 36);
}

Event reservation_held_event(const Reservation& reservation, TimePoint at) {
    return make_event(event_type::kReservationHeld, reservation.id,
                      reservation_payload(reservation), at);
}

Event reservation_expired_event(const Reservation& reservation, TimePoint at) {
    return make_event(event_type::kReservationExpired, reservation.id,
                      reservation_payload(reservation), at);
}

Event reservation_confirmed_event(const Reservation& reservation, PaymentId payment,
                                  TimePoint at) {
    auto payload = reservation_payload(reservation);
    payload["paymentId"] = payment;
    return make_event(event_type::kReservationConfirmed, reservation.id, std::move(payload), at);
}

Event points_charged_event(UserId user, Won amount, Won balance_after, TimePoint at) {
    return make_event(event_type::kPointsCharged, user,
                      {{"userId", user}, {"amount", amount}, {"balanceAfter", balance_after}}, at);
}

Event points_used_event(UserId user, Won amount, Won balance_after, ReservationId reservation,
                        TimePoint at) {
    return make_event(event_type::kPointsUsed, user,
                      {{"userId", user},
                       {"amount", amount},
                       {"balanceAfter", balance_after},
                       {"reservationId", reservation}},
                      at);
}

Event payment_completed_event(const Payment& payment, TimePoint at) {
    return make_event(event_type::kPaymentCompleted, payment.reservation_id,
                      {{"paymentId", payment.id},
                       {"reservationId", payment.reservation_id},
                       {"userId", payment.user_id},
                       {"amount", payment.amount_won},
                       {"paidAt", format_iso8601(payment.paid_at)}},
                      at);
}

}  // namespace concertd::app
