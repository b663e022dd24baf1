// The event bus port on Kafka: the outbox relay's batch becomes one message per event
// (event_envelope.hpp), and publish() returns once the broker acknowledged all of them.
#pragma once

#include "adapters/kafka/kafka_producer.hpp"
#include "app/ports/event_bus.hpp"

namespace concertd::kafka {

class KafkaEventBus final : public app::EventBus {
public:
    explicit KafkaEventBus(KafkaProducer& producer) : producer_(producer) {}
    boost::asio::awaitable<void> publish(const std::vector<domain::Event>& batch) override;

private:
    KafkaProducer& producer_;
};

// A domain event as the message the bus sends.
OutgoingMessage event_message(const domain::Event& event);

}  // namespace concertd::kafka
