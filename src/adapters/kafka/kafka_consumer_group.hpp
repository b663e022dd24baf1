// One app::EventConsumer as a member of a Kafka consumer group (SPEC §4): every process runs a
// member, and the group shares the partitions. A thread of its own reads; each event's effect
// runs on `executor` (the background io_context), and the event's offset is stored only after
// the effect returned, so the commit (of stored offsets, every second and on leaving) never
// passes an event whose effect is not stored. Effects dedupe by event id (processed_events in
// the effect's transaction), so a redelivery after a crash acts once.
// Failures: a dependency that is down (domain::DependencyUnavailable) is waited out, retrying
// the same event; any other failure is retried kAttemptsMax times, then the message goes to the
// dead-letter topic with its error and the partition goes on. An unreadable message goes there
// at once.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/kafka/kafka_producer.hpp"
#include "app/ports/event_bus.hpp"
#include "app/stats.hpp"

namespace RdKafka {
class KafkaConsumer;
class Message;
}  // namespace RdKafka

namespace concertd::kafka {

class KafkaConsumerGroup {
public:
    static constexpr int kAttemptsMax = 5;

    // Joins group "concertd-<consumer name>" on `topics` when start() is called.
    KafkaConsumerGroup(KafkaSettings settings, std::vector<std::string> topics,
                       app::EventConsumer& consumer, KafkaProducer& dead_letters,
                       boost::asio::any_io_executor executor, app::AppStats& stats);
    KafkaConsumerGroup(const KafkaConsumerGroup&) = delete;
    KafkaConsumerGroup& operator=(const KafkaConsumerGroup&) = delete;
    ~KafkaConsumerGroup();

    void start();
    // Leaves the group after the event in hand, commits the stored offsets, joins the thread.
    // Call while `executor`'s io_context still runs.
    void stop();

private:
    void run();
    void handle(RdKafka::Message& message);
    // Runs the consumer's effect on the executor: "" when it worked, else its error; nullopt
    // when stop() came while a dependency was down (DependencyUnavailable is retried).
    std::optional<std::string> apply(const domain::Event& event);
    // Sends the message to the dead-letter topic, retrying; false when stop() came first.
    bool dead_letter(RdKafka::Message& message, const std::string& error);

    const KafkaSettings settings_;
    const std::vector<std::string> topics_;
    app::EventConsumer& consumer_;
    KafkaProducer& dead_letters_;
    boost::asio::any_io_executor executor_;
    app::AppStats& stats_;
    std::unique_ptr<RdKafka::KafkaConsumer> client_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace concertd::kafka
