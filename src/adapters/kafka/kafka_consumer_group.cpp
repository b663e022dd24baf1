#include "adapters/kafka/kafka_consumer_group.hpp"

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <optional>
#include <stdexcept>

#include "adapters/kafka/event_envelope.hpp"
#include "domain/outcome.hpp"

namespace concertd::kafka {

namespace asio = boost::asio;

namespace {

constexpr int kConsumeTimeoutMs = 200;
constexpr auto kDependencyRetry = std::chrono::milliseconds(500);
constexpr auto kFailureBackoff = std::chrono::milliseconds(100);

void set(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
    std::string error;
    if (conf.set(name, value, error) != RdKafka::Conf::CONF_OK) {
        throw std::runtime_error("kafka consumer setting " + name + ": " + error);
    }
}

std::string text(const void* data, std::size_t size) {
    return data ? std::string(static_cast<const char*>(data), size) : std::string();
}

}  // namespace

KafkaConsumerGroup::KafkaConsumerGroup(KafkaSettings settings, std::vector<std::string> topics,
                                       app::EventConsumer& consumer, KafkaProducer& dead_letters,
                                       asio::any_io_executor executor, app::AppStats& stats)
    : settings_(std::move(settings)),
      topics_(std::move(topics)),
      consumer_(consumer),
      dead_letters_(dead_letters),
      executor_(std::move(executor)),
      stats_(stats) {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    set(*conf, "bootstrap.servers", settings_.brokers);
    set(*conf, "group.id", "concertd-" + std::string(consumer_.name()));
    set(*conf, "client.id", "concertd-" + std::string(consumer_.name()));
    set(*conf, "auto.offset.reset", "earliest");
    // Offsets are stored by hand after each effect; the commit sends the stored ones.
    set(*conf, "enable.auto.offset.store", "false");
    set(*conf, "enable.auto.commit", "true");
    set(*conf, "auto.commit.interval.ms", "1000");
    // A member killed with -9 hands its partitions over after this, not the default 45 s.
    set(*conf, "session.timeout.ms", "6000");
    set(*conf, "heartbeat.interval.ms", "1000");
    set(*conf, "allow.auto.create.topics", "true");
    set(*conf, "reconnect.backoff.max.ms", "1000");  // back within a second of the broker
    std::string error;
    client_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (!client_) throw std::runtime_error("kafka consumer: " + error);
}

KafkaConsumerGroup::~KafkaConsumerGroup() { stop(); }

void KafkaConsumerGroup::start() {
    const auto error = client_->subscribe(topics_);
    if (error != RdKafka::ERR_NO_ERROR) {
        throw std::runtime_error("kafka subscribe: " + RdKafka::err2str(error));
    }
    thread_ = std::thread([this] { run(); });
}

void KafkaConsumerGroup::stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
}

void KafkaConsumerGroup::run() {
    while (!stopping_) {
        std::unique_ptr<RdKafka::Message> message(client_->consume(kConsumeTimeoutMs));
        switch (message->err()) {
            case RdKafka::ERR_NO_ERROR: handle(*message); break;
            case RdKafka::ERR__TIMED_OUT:
            case RdKafka::ERR__PARTITION_EOF: break;
            default:
                // The topic not created yet, the broker away: librdkafka reconnects by itself.
                spdlog::debug("kafka consumer {}: {}", consumer_.name(), message->errstr());
        }
    }
    client_->close();  // commits the stored offsets and leaves the group
}

void KafkaConsumerGroup::handle(RdKafka::Message& message) {
    auto event = parse_envelope(text(message.payload(), message.len()));
    std::string error = event ? std::string() : "unreadable event envelope";
    for (int attempt = 1; event && attempt <= kAttemptsMax; ++attempt) {
        auto outcome = apply(*event);
        if (!outcome) return;  // stopping: not stored, the next member gets it again
        error = *outcome;
        if (error.empty()) break;
        spdlog::warn("kafka consumer {}: event {} failed (attempt {}): {}", consumer_.name(),
                     event->event_id, attempt, error);
        std::this_thread::sleep_for(kFailureBackoff * attempt);
    }
    if (!error.empty() && !dead_letter(message, error)) return;
    std::vector<RdKafka::TopicPartition*> offsets{RdKafka::TopicPartition::create(
        message.topic_name(), message.partition(), message.offset() + 1)};
    client_->offsets_store(offsets);
    RdKafka::TopicPartition::destroy(offsets);
}

std::optional<std::string> KafkaConsumerGroup::apply(const domain::Event& event) {
    for (;;) {
        auto done = asio::co_spawn(executor_, consumer_.consume(event), asio::use_future);
        try {
            done.get();
            return std::string();
        } catch (const domain::DependencyUnavailable& error) {
            spdlog::warn("kafka consumer {}: waiting for a dependency: {}", consumer_.name(),
                         error.what());
        } catch (const std::exception& error) {
            return std::string(error.what());
        }
        if (stopping_) return std::nullopt;
        std::this_thread::sleep_for(kDependencyRetry);
    }
}

bool KafkaConsumerGroup::dead_letter(RdKafka::Message& message, const std::string& error) {
    OutgoingMessage letter{std::string(kDeadLetterTopic),
                           message.key() ? *message.key() : std::string(),
                           text(message.payload(), message.len()),
                           {{"error", error},
                            {"consumer", std::string(consumer_.name())},
                            {"source_topic", message.topic_name()},
                            {"source_partition", std::to_string(message.partition())},
                            {"source_offset", std::to_string(message.offset())}}};
    if (auto* headers = message.headers()) {
        for (const auto& header : headers->get_all()) {
            letter.headers.emplace_back(header.key(), text(header.value(), header.value_size()));
        }
    }
    while (!stopping_) {
        try {
            asio::co_spawn(executor_, dead_letters_.send({letter}), asio::use_future).get();
            stats_.events_dead_lettered.add();
            spdlog::error("kafka consumer {}: event at {}/{}:{} sent to {}: {}", consumer_.name(),
                          message.topic_name(), message.partition(), message.offset(),
                          kDeadLetterTopic, error);
            return true;
        } catch (const std::exception& failure) {
            spdlog::warn("kafka consumer {}: dead-letter send failed: {}", consumer_.name(),
                         failure.what());
        }
        std::this_thread::sleep_for(kDependencyRetry);
    }
    return false;
}

}  // namespace concertd::kafka
