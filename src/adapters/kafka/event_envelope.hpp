// How an event travels on Kafka (SPEC §2 "Events", docs/kafka.md): one topic per event family
// (`concertd.reservation`, `concertd.points`, `concertd.payment`), keyed by the aggregate id so
// one aggregate's events stay in one partition, in order; the value is a JSON envelope; the
// event id and type also travel as headers, for consumers that dedupe or route without parsing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/types.hpp"

namespace concertd::kafka {

inline constexpr std::string_view kDeadLetterTopic = "concertd.dead-letter";
inline constexpr std::string_view kEventIdHeader = "event_id";
inline constexpr std::string_view kEventTypeHeader = "event_type";

// "reservation.held" → "concertd.reservation".
std::string topic_for(std::string_view event_type);

// {"eventId","type","aggregateId","occurredAt","payload"}: occurredAt in epoch milliseconds,
// payload the event's own JSON object.
std::string envelope_json(const domain::Event& event);

// The event of an envelope; nullopt for anything else (a poison message). `sequence` is 0.
std::optional<domain::Event> parse_envelope(std::string_view value);

}  // namespace concertd::kafka
