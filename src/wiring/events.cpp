#include "wiring/events.hpp"

#include <algorithm>

#include "adapters/kafka/event_envelope.hpp"
#include "adapters/kafka/kafka_consumer_group.hpp"
#include "adapters/kafka/kafka_event_bus.hpp"
#include "adapters/kafka/kafka_producer.hpp"
#include "adapters/memory/event_bus.hpp"

namespace concertd::wiring {

struct Events::InProcess {
    explicit InProcess(std::vector<app::EventConsumer*> consumers) : bus(std::move(consumers)) {}
    memory::MemoryEventBus bus;
};

namespace {

// Answers from the producer's last probe: no I/O on the caller's thread.
class BrokerHealth final : public app::DependencyHealth {
public:
    explicit BrokerHealth(kafka::KafkaProducer& producer) : producer_(producer) {}
    app::Task<bool> ping() override { co_return producer_.reachable(); }

private:
    kafka::KafkaProducer& producer_;
};

std::vector<std::string> topics_of(const app::EventConsumer& consumer) {
    std::vector<std::string> topics;
    for (auto type : consumer.event_types()) {
        auto topic = kafka::topic_for(type);
        if (std::find(topics.begin(), topics.end(), topic) == topics.end()) topics.push_back(topic);
    }
    return topics;
}

}  // namespace

struct Events::OnKafka {
    OnKafka(const Config& config, std::vector<app::EventConsumer*> consumers, app::AppStats& stats)
        : settings{*config.kafka_brokers},
          producer(settings),
          bus(producer),
          health(producer),
          consumers(std::move(consumers)),
          stats(stats) {}
    kafka::KafkaSettings settings;
    kafka::KafkaProducer producer;
    kafka::KafkaEventBus bus;
    BrokerHealth health;
    std::vector<app::EventConsumer*> consumers;
    app::AppStats& stats;
    std::vector<std::unique_ptr<kafka::KafkaConsumerGroup>> groups;
};

Events::Events(const Config& config, std::vector<app::EventConsumer*> consumers,
               app::AppStats& stats) {
    if (config.kafka_brokers) {
        kafka_ = std::make_unique<OnKafka>(config, std::move(consumers), stats);
    } else {
        in_process_ = std::make_unique<InProcess>(std::move(consumers));
    }
}

Events::~Events() { stop(); }

app::EventBus& Events::bus() {
    if (kafka_) return kafka_->bus;
    return in_process_->bus;
}

void Events::start(boost::asio::any_io_executor executor) {
    if (!kafka_) return;
    for (auto* consumer : kafka_->consumers) {
        auto group = std::make_unique<kafka::KafkaConsumerGroup>(
            kafka_->settings, topics_of(*consumer), *consumer, kafka_->producer, executor,
            kafka_->stats);
        group->start();
        kafka_->groups.push_back(std::move(group));
    }
}

void Events::stop() {
    if (!kafka_) return;
    for (auto& group : kafka_->groups) group->stop();
    kafka_->producer.stop();
}

std::vector<std::pair<std::string, app::DependencyHealth*>> Events::dependencies() {
    if (!kafka_) return {};
    return {{"kafka", &kafka_->health}};
}

}  // namespace concertd::wiring
