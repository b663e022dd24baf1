#include "app/lock_scope.hpp"
#include "app/services.hpp"
#include "domain/rules.hpp"

namespace concertd::app {

Task<Result<Reservation>> ReservationService::hold(UserId user, ScheduleId schedule,
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

    auto held = command.strategy == Strategy::kDistributed
                    ? co_await run_under_lock<Reservation>(
                          ports_, seat_lock_key(schedule, seat_no),
                          [&](std::uint64_t fence) {
                              command.fence = fence;
                              return ports_.reservations.hold(command);
                          })
                    : co_await ports_.reservations.hold(command);
    if (held) {
        ports_.stats.holds_succeeded.add();
        co_await ports_.after_commit.invalidate(held->concert_id, schedule);
    } else if (held.refusal().code == Rejection::kSeatUnavailable) {
        ports_.stats.holds_rejected.add();
    }
    co_return held;
}

Task<Result<Reservation>> ReservationService::find(ReservationId id) {
    if (!is_valid_id(id)) co_return Refusal{Rejection::kValidationFailed, "reservationId must be positive"};
    auto reservation = co_await ports_.reservations.find(id);
    if (!reservation) co_return Refusal{Rejection::kNotFound, "no such reservation"};
    co_return std::move(*reservation);
}

}  // namespace concertd::app
