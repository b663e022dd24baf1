#include "adapters/kafka/kafka_event_bus.hpp"

#include "adapters/kafka/event_envelope.hpp"

namespace concertd::kafka {

OutgoingMessage event_message(const domain::Event& event) {
    return {topic_for(event.type),
            std::to_string(event.aggregate_id),
            envelope_json(event),
            {{std::string(kEventIdHeader), event.event_id},
             {std::string(kEventTypeHeader), event.type}}};
}

boost::asio::awaitable<void> KafkaEventBus::publish(const std::vector<domain::Event>& batch) {
    std::vector<OutgoingMessage> messages;
    messages.reserve(batch.size());
    for (const auto& event : batch) messages.push_back(event_message(event));
    co_await producer_.send(std::move(messages));
}

}  // namespace concertd::kafka
