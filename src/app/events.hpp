// The events of SPEC §2 as outbox rows: every storage adapter builds them here, so payloads are
// the same whatever the database.
#pragma once

#include "domain/types.hpp"

namespace concertd::app {

domain::Event reservation_held_event(const domain::Reservation& reservation, domain::TimePoint at);
domain::Event reservation_expired_event(const domain::Reservation& reservation,
                                        domain::TimePoint at);
domain::Event reservation_confirmed_event(const domain::Reservation& reservation,
                                          domain::PaymentId payment, domain::TimePoint at);
domain::Event points_charged_event(domain::UserId user, domain::Won amount,
                                   domain::Won balance_after, domain::TimePoint at);
domain::Event points_used_event(domain::UserId user, domain::Won amount, domain::Won balance_after,
                                domain::ReservationId reservation, domain::TimePoint at);
domain::Event payment_completed_event(const domain::Payment& payment, domain::TimePoint at);

// A random UUID (version 4) for event ids.
std::string new_event_id();

}  // namespace concertd::app
