#include "adapters/kafka/event_envelope.hpp"

#include <boost/json.hpp>
#include <chrono>

namespace concertd::kafka {

namespace json = boost::json;

std::string topic_for(std::string_view event_type) {
    return "concertd." + std::string(event_type.substr(0, event_type.find('.')));
}

std::string envelope_json(const domain::Event& event) {
    const auto occurred_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 event.occurred_at.time_since_epoch())
                                 .count();
    json::object envelope{{"eventId", event.event_id},
                          {"type", event.type},
                          {"aggregateId", event.aggregate_id},
                          {"occurredAt", occurred_ms},
                          {"payload", json::parse(event.payload_json)}};
    return json::serialize(envelope);
}

std::optional<domain::Event> parse_envelope(std::string_view value) {
    json::error_code error;
    auto parsed = json::parse(value, error);
    if (error || !parsed.is_object()) return std::nullopt;
    const auto& object = parsed.get_object();
    const auto* id = object.if_contains("eventId");
    const auto* type = object.if_contains("type");
    const auto* aggregate = object.if_contains("aggregateId");
    const auto* occurred = object.if_contains("occurredAt");
    const auto* payload = object.if_contains("payload");
    if (!id || !id->is_string() || !type || !type->is_string() || !aggregate ||
        !aggregate->is_int64() || !occurred || !occurred->is_int64() || !payload ||
        !payload->is_object()) {
        return std::nullopt;
    }
    domain::Event event;
    event.event_id = std::string(id->get_string());
    event.type = std::string(type->get_string());
    event.aggregate_id = aggregate->get_int64();
    event.occurred_at = domain::TimePoint(std::chrono::milliseconds(occurred->get_int64()));
    event.payload_json = json::serialize(*payload);
    return event;
}

}  // namespace concertd::kafka
