#include <algorithm>
#include <chrono>

#include "app/lock_scope.hpp"
#include "app/services.hpp"
#include "domain/rules.hpp"

namespace concertd::app {

Task<Result<Reservation>> ReservationService::hold(std::optional<std::string_view> token,
                                                   UserId user, ScheduleId schedule,
                                                   SeatNo seat_no) {
    if (!is_valid_id(user) || !is_valid_id(schedule) || seat_no <= 0) {
        co_return Refusal{Rejection::kValidationFailed, "userId, scheduleId and seatNo must be positive"};
    }
    HoldCommand command;
    command.user_id = user;
    command.schedule_id = schedule;
    command.seat_no = seat_no;
    command.now = ports_.clock.now();
    command.expires_at = command.now + ports_.settings.hold_duration;
    command.strategy = ports_.settings.strategies.seat_hold;
    // `distributed` checks the token before it takes the lock, as every other use case does.
    const bool gated = ports_.settings.store_checks_queue_token &&
                       command.strategy != Strategy::kDistributed && token && !token->empty() &&
                       token->size() <= QueueService::kTokenLengthMax;
    if (gated) co_return co_await hold_gated(*token, std::move(command));
    co_return co_await hold_checked(token, std::move(command));
}

// The store checks the token in the hold's first round trip. It answers the common cases (the
// user's ACTIVE token, an unknown one, another user's); a token in any other state takes the
// queue's own path, so the answer and a waiting token's poll are the queue's.
Task<Result<Reservation>> ReservationService::hold_gated(std::string_view token,
                                                         HoldCommand command) {
    command.queue_token = std::string(token);
    auto held = co_await hold_seat(command);
    if (held || held.refusal().code != Rejection::kQueueNotActive) co_return held;
    command.queue_token.reset();
    co_return co_await hold_checked(token, std::move(command));
}

Task<Result<Reservation>> ReservationService::hold_checked(std::optional<std::string_view> token,
                                                           HoldCommand command) {
    auto ticket = co_await QueueService(ports_).current(token);
    if (!ticket) co_return ticket.refusal();
    if (auto refusal = QueueService::check_active(ticket.value(), command.user_id)) {
        co_return *refusal;
    }
    co_return co_await hold_seat(std::move(command));
}

Task<Result<Reservation>> ReservationService::hold_seat(HoldCommand command) {
    const auto schedule = command.schedule_id;
    auto held = command.strategy == Strategy::kDistributed
                    ? co_await run_under_lock<Reservation>(
                          ports_, seat_lock_key(schedule, command.seat_no),
                          [&](std::uint64_t fence) {
                              command.fence = fence;
                              return ports_.reservations.hold(command);
                          },
                          [&] { return refuse_taken_seat(command); })
                    : co_await ports_.reservations.hold(command);
    if (held) {
        ports_.stats.holds_succeeded.add();
        co_await ports_.after_commit.invalidate(schedule);
    } else if (held.refusal().code == Rejection::kSeatUnavailable) {
        ports_.stats.holds_rejected.add();
    }
    co_return held;
}

// The seat's lock is taken: someone is holding the seat right now. A seat the seat map (the
// cache's copy, confirmed current, where there is a cache) shows taken is refused at once, so a
// crowd on one seat gets its 409s instead of waiting for the lock to hand them out one by one.
// A seat shown available takes the lock and the store decides, as always.
Task<std::optional<Refusal>> ReservationService::refuse_taken_seat(const HoldCommand& command) {
    auto map = co_await catalog_.seat_map(command.schedule_id, std::chrono::steady_clock::now());
    if (!map) co_return std::nullopt;
    const auto& seats = map.value()->seats;
    auto seat = std::lower_bound(seats.begin(), seats.end(), command.seat_no,
                                 [](const SeatState& s, SeatNo no) { return s.seat_no < no; });
    if (seat == seats.end() || seat->seat_no != command.seat_no) co_return std::nullopt;
    if (seat->status_at(ports_.clock.now()) == SeatStatus::kAvailable) co_return std::nullopt;
    co_return Refusal{Rejection::kSeatUnavailable, "seat is held or sold"};
}

Task<Result<Reservation>> ReservationService::find(ReservationId id) {
    if (!is_valid_id(id)) co_return Refusal{Rejection::kValidationFailed, "reservationId must be positive"};
    auto reservation = co_await ports_.reservations.find(id);
    if (!reservation) co_return Refusal{Rejection::kNotFound, "no such reservation"};
    co_return std::move(*reservation);
}

}  // namespace concertd::app
