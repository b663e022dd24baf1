// The idempotent Kafka producer the outbox relay and the dead-letter path share (STYLE.md
// "Kafka"): enable.idempotence (acks=all, bounded in flight, no reordering on retry). A thread
// of its own polls for delivery reports and probes the broker. A fatal error (librdkafka 2.0.2's
// idempotent-producer bug among them) drops the producer and builds a new one; the batch that
// was not acknowledged fails, so the relay sends it again.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace RdKafka {
class Producer;
}

namespace concertd::kafka {

struct KafkaSettings {
    std::string brokers;  // host:port,…
    // A message not acknowledged within this fails its batch (the broker may still have it).
    std::chrono::milliseconds delivery_timeout{10'000};
};

struct OutgoingMessage {
    std::string topic;
    std::string key;
    std::string value;
    std::vector<std::pair<std::string, std::string>> headers;
};

class KafkaProducer {
public:
    // Throws std::runtime_error when librdkafka refuses the configuration.
    explicit KafkaProducer(KafkaSettings settings);
    KafkaProducer(const KafkaProducer&) = delete;
    KafkaProducer& operator=(const KafkaProducer&) = delete;
    ~KafkaProducer();

    // Sends the messages and returns once the broker acknowledged every one of them; otherwise
    // throws domain::DependencyUnavailable naming the first failure (some may have been written
    // all the same: delivery is at least once). Any thread, any io_context.
    boost::asio::awaitable<void> send(std::vector<OutgoingMessage> messages);

    // Did the broker answer the last probe (about every second)? For /readyz.
    bool reachable() const { return reachable_.load(); }

    // Fails whatever is still in flight and joins the thread; for shutdown, while the
    // io_contexts of waiting senders still exist. Idempotent.
    void stop();

    class Reports;  // librdkafka's callbacks

private:
    std::shared_ptr<RdKafka::Producer> current();
    std::shared_ptr<RdKafka::Producer> build();
    void rebuild();
    void poll_loop();

    const KafkaSettings settings_;
    std::unique_ptr<Reports> reports_;
    std::mutex mutex_;  // guards producer_
    std::shared_ptr<RdKafka::Producer> producer_;
    std::atomic<bool> reachable_{false};
    std::atomic<bool> fatal_{false};
    std::atomic<bool> stopping_{false};
    std::thread poller_;
};

}  // namespace concertd::kafka
